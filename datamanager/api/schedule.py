"""What a schedule may say: the rules the CRD's CEL and the model both apply, and what an admitted one means.

A schedule is five fields separated by spaces, or a macro (@yearly, @annually, @monthly, @weekly, @daily,
@midnight, @hourly). A field is ``*`` or a comma-separated list of values, ranges ``a-b`` (``a`` < ``b``) and
steps ``*/n``, ``a-b/n``, ``a/n`` (``n`` 1-99; ``a/n`` runs to the field's end). Values: minute 0-59, hour
0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-7 or sun-sat (0 and 7 are Sunday; ``sun``
that ends a range is 7, so ``fri-sun`` is Friday to Sunday; a range or ``a/n`` starts at 0-6). Names and
single-digit values with a leading zero are accepted in any case. When both day of month and day of week are
restricted (neither is ``*``) a day that matches either runs, as in POSIX cron.

Three rules, each checked only when the ones before it pass, so a rejected schedule gets one message, the
same from the API server (``datamanager.api.crd`` puts them in CEL) and from the model (``problem``):

1. ``GRAMMAR``: the shape above, ranges in any order.
2. ``ASCENDING``: every range goes from a lower to a higher value (croniter would read ``5-5`` as the whole
   cycle and ``22-2`` as a wrap-around; CronJob refuses both).
3. ``NEVER``: not a day of month that none of the listed months has, with day of week ``*`` (``0 0 30 2 *``,
   ``0 0 31 4,6,9,11 *``): such a schedule never runs. With a restricted day of week it runs on those days.

They are regular expressions, which RE2 (CEL) and Python's ``re`` read alike, because a regex match is what
the API server's CEL cost estimate can afford on a 100-character string (splitting and looping over one was
several times the per-rule budget). ``canonical`` turns an admitted schedule into explicit lists for croniter,
so none of croniter's own readings of shorthand decides what runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
STEP_MAX = 99
# days in each month, February in a leap year (croniter looks 8 years ahead: 2096 -> 2104 has no 29 Feb)
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _ints(low: int, high: int, *, padded: bool = True) -> str:
    """A regex of the decimal integers in [low, high] (0 <= low <= high <= 99); 0-9 also with one leading
    zero when ``padded``."""
    assert 0 <= low <= high <= 99, (low, high)
    parts: list[str] = []
    tens = low // 10
    while tens <= high // 10:
        first, last = max(low, tens * 10) % 10, min(high, tens * 10 + 9) % 10
        digits = str(first) if first == last else f"[{first}-{last}]"
        if tens == 0:
            parts.append(("0?" if padded else "") + digits)
            tens += 1
        elif digits == "[0-9]":  # whole decades together: [1-9][0-9]
            top = min(high // 10 if high % 10 == 9 else high // 10 - 1, 9)
            parts.append(f"{tens}[0-9]" if top == tens else f"[{tens}-{top}][0-9]")
            tens = top + 1
        else:
            parts.append(f"{tens}{digits}")
            tens += 1
    return "|".join(parts)


def _name(name: str) -> str:
    # ASCII letters spelled out: (?i) would also take the long s and the Kelvin sign, in both engines
    return "".join(f"[{c}{c.upper()}]" for c in name)


STEP = f"/({_ints(1, STEP_MAX, padded=False)})"


@dataclass(frozen=True)
class Field:
    name: str
    first: int  # the values * and a/n cover
    last: int
    top: int  # the highest value that may be written (7: Sunday again)
    names: tuple[str, ...] = ()
    base: int = 0  # the value of the first name

    def value(self, name: str, *, end: bool = False) -> int:
        number = self.names.index(name) + self.base
        return self.top if end and number == 0 and self.top == 7 else number

    def values(self, low: int, high: int, *, end: bool = False) -> str:
        """A regex of the ways to write a value in [low, high] (a range's end when ``end``)."""
        named = [n for n in self.names if low <= self.value(n, end=end) <= high]
        numbers = [_ints(low, high)] if low <= high else []
        return "|".join([*numbers, *map(_name, named)])

    def element(self, ascending: bool) -> str:
        step = STEP
        if ascending:
            ranges = "|".join(
                f"({self.values(a, a)})-({self.values(a + 1, self.top, end=True)})"
                for a in range(self.first, min(self.last, self.top - 1) + 1)  # a start below some end
            )
        else:
            ranges = f"({self.values(self.first, self.last)})-({self.values(self.first, self.top, end=True)})"
        start = self.values(self.first, self.last)
        return rf"\*{step}|({ranges})({step})?|({start}){step}|({self.values(self.first, self.top)})"

    def pattern(self, ascending: bool) -> str:
        element = self.element(ascending)
        return rf"\*|({element})(,({element}))*"


FIELDS = (
    Field("minute", 0, 59, 59),
    Field("hour", 0, 23, 23),
    Field("day of month", 1, 31, 31),
    Field("month", 1, 12, 12, MONTH_NAMES, 1),
    Field("day of week", 0, 6, 7, DAY_NAMES, 0),
)
MINUTE, HOUR, DOM, MONTH, DOW = range(5)
DESCRIBED = (
    "0-59",
    "0-23",
    "1-31",
    "1-12 or jan-dec",
    "0-7 or sun-sat; 0 and 7 are Sunday, and a range or a/n starts at 0-6",
)


def _whole(fields: list[str]) -> str:
    macros = "|".join(MACROS)
    return "^" + " +".join(f"({f})" for f in fields) + f"$|^({macros})$"


FIELD_GRAMMARS = tuple(f"^({f.pattern(False)})$" for f in FIELDS)
FIELD_ASCENDING = tuple(f"^({f.pattern(True)})$" for f in FIELDS)
GRAMMAR = _whole([f.pattern(False) for f in FIELDS])
ASCENDING = _whole([f.pattern(True) for f in FIELDS])


def _month_elements_within(months: set[int]) -> str:
    """A regex of the (ascending) month-list elements that name only ``months``."""
    field = FIELDS[MONTH]
    forms: list[str] = [field.values(m, m) for m in sorted(months)]
    spans = [(a, b, True) for a in range(1, 13) for b in range(a + 1, 13)] + [
        (a, 12, False) for a in range(1, 13)
    ]
    for a, b, written in spans:  # a-b/n (and a-b when n may be 1), or a/n
        steps = [n for n in range(1, STEP_MAX + 1) if set(range(a, b + 1, n)) <= months]
        if not steps:
            continue
        runs: list[tuple[int, int]] = []
        for n in steps:
            if runs and runs[-1][1] == n - 1:
                runs[-1] = (runs[-1][0], n)
            else:
                runs.append((n, n))
        step = "|".join(_ints(lo, hi, padded=False) for lo, hi in runs)
        head = (
            f"({field.values(a, a)})-({field.values(b, b, end=True)})"
            if written
            else f"({field.values(a, a)})"
        )
        forms.append(f"{head}/({step})")
        if written and 1 in steps:
            forms.append(head)
    element = "|".join(f"({form})" for form in forms)
    return f"({element})(,({element}))*"


def _never() -> str:
    day_31 = f"31({STEP})?"
    day_30 = f"3[01]({STEP})?|30-31({STEP})?"
    cases = (
        (day_31, {2, 4, 6, 9, 11}),  # the months without a 31st
        (day_30, {2}),  # February has no 30th
    )
    return "|".join(
        rf"^[^ ]+ +[^ ]+ +(({days})(,({days}))*) +({_month_elements_within(months)}) +\*$"
        for days, months in cases
    )


NEVER = _never()

# What the model and the API server say, word for word (crd.py builds its messageExpressions from these).
SHAPE_MESSAGE = (
    "schedule must be a cron expression: 5 fields separated by spaces (minute hour day-of-month month "
    "day-of-week, e.g. '*/15 * * * *') or one of " + ", ".join(MACROS)
)
FIELD_MESSAGE = (
    "schedule must be a cron expression: {field} '{token}' is not * or a list of values ({values}), "
    "ranges a-b and steps */n, a-b/n or a/n (n 1-99) separated by commas"
)
RANGE_MESSAGE = (
    "schedule: {field} '{token}' has a range that does not go from a lower to a higher value "
    "(write 5 rather than 5-5, 22-23,0-2 rather than 22-2)"
)
NEVER_MESSAGE = (
    "schedule never runs: day of month '{days}' is in none of the months '{months}'; "
    "change the day of month or the month, or give a day of week"
)
TOKEN = "[^ ]+"


def shown(token: str) -> str:
    """A token as messages quote it: the API server drops a message with a line break for the rule's fixed
    one, so a newline shows as \\n (crd.py does the same replacement in CEL)."""
    return token.replace("\n", "\\n")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # RE2's $ is only the end of the text; Python's also matches before a final newline: \Z is RE2's $
    return re.compile(pattern.replace("$", r"\Z"))


def _matches(pattern: str, text: str) -> bool:
    """As CEL's ``text.matches(pattern)``: a search (the patterns here are anchored)."""
    return _compiled(pattern).search(text) is not None


def problem(schedule: str) -> str | None:
    """Why the CRD does not admit ``schedule``, in the API server's words; None when it does."""
    tokens = re.findall(TOKEN, schedule)
    if not _matches(GRAMMAR, schedule):
        if len(tokens) == len(FIELDS):
            for field, token, grammar, values in zip(FIELDS, tokens, FIELD_GRAMMARS, DESCRIBED, strict=True):
                if not _matches(grammar, token):
                    return FIELD_MESSAGE.format(field=field.name, token=shown(token), values=values)
        return SHAPE_MESSAGE
    if not _matches(ASCENDING, schedule):
        for field, token, ascending in zip(FIELDS, tokens, FIELD_ASCENDING, strict=True):
            if not _matches(ascending, token):
                return RANGE_MESSAGE.format(field=field.name, token=shown(token))
        return RANGE_MESSAGE.format(field="a field", token="a-b")  # as the CEL rule's fallback
    if _matches(NEVER, schedule):
        return NEVER_MESSAGE.format(days=shown(tokens[DOM]), months=shown(tokens[MONTH]))
    return None


def _numbers(token: str, field: Field) -> set[int]:
    """The values an admitted field names (7 in day of week is 0)."""
    if token == "*":
        return set(range(field.first, field.last + 1))
    lowered = token.lower()
    numbers: set[int] = set()
    for element in lowered.split(","):
        base, _, step = element.partition("/")
        low, _, high = base.partition("-")
        first = field.first if low == "*" else _number(low, field)
        last = _number(high, field, end=True) if high else field.last if step else first
        numbers.update(range(first, last + 1, int(step or 1)))
    return {0 if field.top == 7 and n == 7 else n for n in numbers}


def _number(text: str, field: Field, *, end: bool = False) -> int:
    return int(text) if text.isdigit() else field.value(text, end=end)


@lru_cache(maxsize=1024)
def canonical(schedule: str) -> str:
    """An admitted schedule as explicit lists (or ``*``), for croniter; ValueError (the rule's message) if
    the CRD does not admit it."""
    why = problem(schedule)
    if why is not None:
        raise ValueError(why)
    tokens = re.findall(TOKEN, MACROS.get(schedule, schedule))
    numbers = [_numbers(token, field) for token, field in zip(tokens, FIELDS, strict=True)]
    fields = [t if t == "*" else ",".join(map(str, sorted(n))) for t, n in zip(tokens, numbers, strict=True)]
    # POSIX: a restricted day field that names every day makes every day run, whatever the other one says
    # (croniter would read a day of week 0-6 as * when the day of month has a * in it, and only then)
    if any(tokens[i] != "*" and len(numbers[i]) == size for i, size in ((DOM, 31), (DOW, 7))):
        fields[DOM] = fields[DOW] = "*"
    return " ".join(fields)
