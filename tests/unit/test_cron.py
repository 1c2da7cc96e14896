"""Schedules: what the model admits (against a reading of the documented grammar), what an admitted one
means to croniter, and its slots across daylight-saving changes (against a brute-force walk of the wall
clock), catch-up capped without walking a long past."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import islice, pairwise, takewhile
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from datamanager import cron
from datamanager.api import schedule
from datamanager.api.common import ScheduleSpec
from tests.fixtures.cron import ADMISSIBLE, SCHEDULES, Meaning, read

# generating a schedule costs a few milliseconds (hypothesis' draws, not the code under test)
checks = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
walks = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULE_WORDS = {
    "shape": "5 fields separated by spaces",
    "field": "is not * or a list of values",
    "range": "has a range that does not go from a lower to a higher value",
    "never": "never runs",
}
DST_ZONES = [
    "Europe/Lisbon",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute shifts
    "America/Santiago",  # changes at midnight
    "Europe/London",
    "America/Havana",  # changes at midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Tehran",  # no DST since 2022: none of the windows has a change
    "UTC",
]


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in ``zone`` (its first occurrence) as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def slots_between(expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    return list(takewhile(lambda s: s <= end, cron.forward(expression, ZoneInfo(zone), start)))


# ---------------------------------------------------------------- what is admitted


@checks
@given(SCHEDULES)
def test_the_model_admits_exactly_the_documented_grammar_and_says_which_rule_fails(text: str) -> None:
    expected = read(text)
    problem = schedule.problem(text)
    if isinstance(expected, Meaning):
        assert problem is None, f"{text!r} is a valid schedule: {problem}"
        return
    assert problem is not None, f"{text!r} must be rejected ({expected.rule})"
    assert RULE_WORDS[expected.rule] in problem, (text, expected, problem)
    if expected.field is not None:
        assert f"{schedule.FIELDS[expected.field].name} '" in problem, (text, expected, problem)
    with pytest.raises(ValueError, match="schedule"):
        ScheduleSpec(schedule=text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ADMISSIBLE)
def test_croniter_reads_every_admitted_schedule_as_the_documented_grammar_means_it(text: str) -> None:
    meaning = read(text)
    assume(isinstance(meaning, Meaning))
    assert isinstance(meaning, Meaning)
    expanded = croniter.expand(schedule.canonical(text))[0]
    full = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
    sets = [
        frozenset(range(lo, hi + 1)) if e == ["*"] else frozenset(int(v) for v in e)
        for e, (lo, hi) in zip(expanded, full, strict=True)
    ]
    assert (sets[0], sets[1], sets[3]) == (meaning.minutes, meaning.hours, meaning.months)
    # croniter: a day matches either field when both are restricted, else both (canonical() makes sure it
    # is never one of croniter's own exceptions)
    either = expanded[2] != ["*"] and expanded[4] != ["*"]
    for day in range(1, 32):
        for weekday in range(7):
            by_date, by_weekday = day in sets[2], weekday in sets[4]
            theirs = (by_date or by_weekday) if either else (by_date and by_weekday)
            ours = (
                (day in meaning.days or weekday in meaning.weekdays)
                if meaning.either_day
                else (day in meaning.days and weekday in meaning.weekdays)
            )
            assert theirs == ours, (text, day, weekday)


ADMITTED = [
    ("*/15 * * * *", "0,15,30,45 * * * *"),
    ("05 4 * * *", "5 4 * * *"),
    ("0 9 * * mon-fri", "0 9 * * 1,2,3,4,5"),
    ("0 9 * * MON-Fri", "0 9 * * 1,2,3,4,5"),
    ("0 9 * * fri-sun", "0 9 * * 0,5,6"),  # sun that ends a range is 7
    ("0 9 * * 5-7", "0 9 * * 0,5,6"),
    ("0 9 * * 7", "0 9 * * 0"),
    ("0 9 * * 6/2", "0 9 * * 6"),  # a/n runs to the field's end, Saturday
    ("0 0 1 jan-mar/2 *", "0 0 1 1,3 *"),
    ("59/15 * * * *", "59 * * * *"),
    ("0 0 29 2 *", "0 0 29 2 *"),
    ("0 0 30 2 mon", "0 0 30 2 1"),  # day of week restricted: Mondays of February, and no 30th
    ("0 0 */2 * 0-6", "0 0 * * *"),  # POSIX: every weekday named, either field matches: every day
    ("0 0 1-31 * mon", "0 0 * * *"),
    ("0 0 31 1-12/2 *", "0 0 31 1,3,5,7,9,11 *"),
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
]
SHAPE = schedule.SHAPE_MESSAGE
REJECTED = [
    ("* * * *", SHAPE),
    ("* * * * * *", SHAPE),
    (" * * * * *", SHAPE),
    ("* * * * * ", SHAPE),
    ("@HOURLY", SHAPE),
    ("@reboot", SHAPE),
    ("every five minutes", SHAPE),
    ("61 * * * *", "minute '61' is not * or a list of values (0-59)"),
    ("* 24 * * *", "hour '24' is not"),
    ("* * 0 * *", "day of month '0' is not"),
    ("* * * 13 *", "month '13' is not"),
    ("* * * * 8", "day of week '8' is not"),
    ("*/0 * * * *", "minute '*/0' is not"),
    ("*/100 * * * *", "minute '*/100' is not"),
    ("* * * * 7/2", "day of week '7/2' is not"),
    ("0 0 L * *", "day of month 'L' is not"),
    ("0 0 ? * *", "day of month '?' is not"),
    ("0 0 * * 1#2", "day of week '1#2' is not"),
    ("0 0 15W * *", "day of month '15W' is not"),
    ("*,1 * * * *", "minute '*,1' is not"),
    ("*\t* * * *", SHAPE),  # a tab is no separator: four fields
    ("*\t* * * * *", "minute '*\t*' is not"),
    ("* * * * *\n", "day of week '*\\n' is not"),  # as the API server shows it: no line break
    ("* * * * \u017fun", "day of week '\u017fun' is not"),  # the long s that (?i) would take for s
    ("5-5 * * * *", "minute '5-5' has a range that does not go from a lower to a higher value"),
    ("22-2 * * * *", "minute '22-2' has a range"),
    ("* 3-1 * * *", "hour '3-1' has a range"),
    ("0 0 * * sat-mon", "day of week 'sat-mon' has a range"),
    ("0 0 * dec-jan *", "month 'dec-jan' has a range"),
    ("0 0 30 2 *", "schedule never runs: day of month '30' is in none of the months '2'"),
    ("0 0 31 4,6,9,11 *", "day of month '31' is in none of the months '4,6,9,11'"),
    ("0 0 30-31 2 *", "day of month '30-31' is in none of the months '2'"),
    ("0 0 30,31 feb *", "never runs"),
    ("0 0 31 apr-jun/2 *", "never runs"),
    ("0 0 31 2/12 *", "never runs"),
]


@pytest.mark.parametrize(("text", "lists"), ADMITTED)
def test_admitted_schedules_and_what_croniter_is_given(text: str, lists: str) -> None:
    assert schedule.problem(text) is None
    assert schedule.canonical(text) == lists
    assert ScheduleSpec(schedule=text).schedule == text


@pytest.mark.parametrize(("text", "message"), REJECTED)
def test_rejected_schedules_say_why(text: str, message: str) -> None:
    problem = schedule.problem(text)
    assert problem is not None
    assert message in problem
    with pytest.raises(ValueError, match="schedule"):
        ScheduleSpec(schedule=text)


# ---------------------------------------------------------------- slots: a brute-force walk of the wall clock


@lru_cache
def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The instants (UTC, to the minute) at which ``zone`` changes its offset in ``year``."""
    found: list[datetime] = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    step = timedelta(hours=1)
    while moment.year == year:
        if moment.astimezone(zone).utcoffset() != (moment + step).astimezone(zone).utcoffset():
            low, high = moment, moment + step
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        moment += step
    return found


def _walk(meaning: Meaning, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every slot whose wall-clock minute lies from a day before ``start`` to 3 h after ``end`` (UTC), read as
    documented: a wall time in a gap moves on by the jump, a repeated one is its first occurrence (fold=0),
    and wall times that land on one instant are one slot."""
    wall = (start - timedelta(days=1)).astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    last = (end + timedelta(hours=3)).astimezone(zone).replace(tzinfo=None)
    found: set[datetime] = set()
    while wall <= last:
        if meaning.names(wall):
            found.add(wall.replace(tzinfo=zone, fold=0).astimezone(UTC))
        wall += timedelta(minutes=1)
    return sorted(found)


@st.composite
def _near_a_change(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant within hours of one of its offset changes (or anywhere, where it has none)."""
    name = draw(st.sampled_from(DST_ZONES))
    changes = _transitions(ZoneInfo(name), draw(st.integers(2025, 2032)))
    around = draw(st.sampled_from(changes)) if changes else datetime(2026, 6, 1, tzinfo=UTC)
    return name, around + timedelta(minutes=draw(st.integers(-300, 300)))


# dense schedules put many slots near the change; the rest are the general generator's
_dense = st.builds(
    lambda m, h, rest: f"{m} {h} {rest}",
    st.sampled_from(["*", "*/15", "0", "30", "10,35", "15,45", "*/7", "59", "0-10/5", "20-40"]),
    st.sampled_from(["*", "0-3", "1,2", "2", "0", "23", "*/2", "1-2", "3"]),
    st.sampled_from(["* * *", "* * *", "* * 0", "1 * *", "*/2 * *", "* 3,4,9,10 *"]),
)


@walks
@given(
    _near_a_change(), st.one_of(_dense, _dense, ADMISSIBLE), st.integers(-180, 180), st.integers(-180, 180)
)
def test_slots_are_the_wall_clock_walked_minute_by_minute(
    place: tuple[str, datetime], text: str, after_minutes: int, now_minutes: int
) -> None:
    meaning = read(text)
    assume(isinstance(meaning, Meaning))
    assert isinstance(meaning, Meaning)
    name, around = place
    zone = ZoneInfo(name)
    start, end = around - timedelta(hours=4), around + timedelta(hours=4)
    expected = _walk(meaning, zone, start, end)
    after = around + timedelta(minutes=after_minutes, seconds=after_minutes % 7)
    got = slots_between(text, name, after, end)
    assert got == [s for s in expected if after < s <= end], (name, text, after)
    now = around + timedelta(minutes=now_minutes, seconds=now_minutes % 11)
    before = [s for s in expected if s <= now]
    latest = cron.latest_before(text, zone, now)
    if before and before[-1] >= start - timedelta(hours=20):
        assert latest == before[-1], (name, text, now)
    else:  # nothing in the walked day: the latest slot is older still
        assert latest is None or latest < start - timedelta(hours=20)


def _dates(slots: list[datetime], zone: str) -> Counter[date]:
    return Counter(s.astimezone(ZoneInfo(zone)).date() for s in slots)


@pytest.mark.parametrize(
    "zone", ["Europe/Lisbon", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
)
@pytest.mark.parametrize(
    "at", ["0 0", "30 0", "0 1", "30 1", "45 1", "0 2", "15 2", "30 2", "0 3", "0 12", "30 23"]
)
def test_a_daily_schedule_runs_once_every_day_of_the_year_both_change_days_included(
    zone: str, at: str
) -> None:
    start, end = local(zone, 2026, 1, 1), local(zone, 2027, 1, 1) - timedelta(seconds=1)
    found = slots_between(f"{at} * * *", zone, start - timedelta(seconds=1), end)
    per_day = _dates(found, zone)
    assert len(_transitions(ZoneInfo(zone), 2026)) == 2
    assert set(per_day.values()) == {1}, {d: n for d, n in per_day.items() if n != 1}
    assert len(per_day) == 365
    assert found == sorted(set(found))


@pytest.mark.parametrize(
    ("zone", "expression", "day", "expected"),
    [
        # Lisbon: 29 Mar 01:00 WET -> 02:00 WEST; 25 Oct 02:00 WEST -> 01:00 WET
        ("Europe/Lisbon", "30 1 * * *", (2026, 3, 29), "2026-03-29T02:30:00+01:00"),  # in the gap: 1 h later
        ("Europe/Lisbon", "30 1 * * *", (2026, 10, 25), "2026-10-25T01:30:00+01:00"),  # first occurrence
        ("Europe/Lisbon", "0 2 * * *", (2026, 3, 29), "2026-03-29T02:00:00+01:00"),
        ("Europe/Lisbon", "0 2 * * *", (2026, 10, 25), "2026-10-25T02:00:00+00:00"),
        # New York: 8 Mar 02:00 EST -> 03:00 EDT; 1 Nov 02:00 EDT -> 01:00 EST
        ("America/New_York", "30 2 * * *", (2026, 3, 8), "2026-03-08T03:30:00-04:00"),
        ("America/New_York", "30 1 * * *", (2026, 11, 1), "2026-11-01T01:30:00-04:00"),
        # Lord Howe: 5 Apr 02:00 +11 -> 01:30 +10:30; 4 Oct 02:00 +10:30 -> 02:30 +11
        ("Australia/Lord_Howe", "45 1 * * *", (2026, 4, 5), "2026-04-05T01:45:00+11:00"),
        ("Australia/Lord_Howe", "15 2 * * *", (2026, 10, 4), "2026-10-04T02:45:00+11:00"),  # 30 min later
        # Santiago: 5 Apr 00:00 -03 -> 23:00 -04 on the 4th; 6 Sep 00:00 -04 -> 01:00 -03
        ("America/Santiago", "30 23 * * *", (2026, 4, 4), "2026-04-04T23:30:00-03:00"),
        ("America/Santiago", "30 0 * * *", (2026, 9, 6), "2026-09-06T01:30:00-03:00"),
    ],
)
def test_change_day_slots_land_where_the_docs_say(
    zone: str, expression: str, day: tuple[int, int, int], expected: str
) -> None:
    start = local(zone, *day)
    found = slots_between(expression, zone, start - timedelta(seconds=1), start + timedelta(days=1))
    assert found[0].astimezone(ZoneInfo(zone)).isoformat() == expected


@pytest.mark.parametrize(
    ("zone", "day", "expression", "count", "longest"),
    [
        # spring: 24 hourly wall times, two of them (01:00 in the gap, 02:00) on one instant
        ("Europe/Lisbon", (2026, 3, 29), "0 * * * *", 23, timedelta(hours=1)),
        # autumn: 24 wall times, 24 instants; the repeated 01:00 runs once, so one step is 2 h
        ("Europe/Lisbon", (2026, 10, 25), "0 * * * *", 24, timedelta(hours=2)),
        ("Europe/Lisbon", (2026, 3, 29), "*/15 * * * *", 92, timedelta(minutes=15)),
        ("Europe/Lisbon", (2026, 10, 25), "*/15 * * * *", 96, timedelta(minutes=75)),
        ("America/New_York", (2026, 3, 8), "0 * * * *", 23, timedelta(hours=1)),
        ("America/New_York", (2026, 11, 1), "*/15 * * * *", 96, timedelta(minutes=75)),
        # a 30-minute gap: 02:00 runs at 02:30, with 02:30 itself
        ("Australia/Lord_Howe", (2026, 10, 4), "0,30 * * * *", 47, timedelta(minutes=30)),
        ("Australia/Lord_Howe", (2026, 4, 5), "0,30 * * * *", 48, timedelta(minutes=60)),
    ],
)
def test_frequent_schedules_across_the_gap_and_the_repeated_hour_never_run_a_slot_twice(
    zone: str, day: tuple[int, int, int], expression: str, count: int, longest: timedelta
) -> None:
    start, end = local(zone, *day), local(zone, *day) + timedelta(days=1, hours=1)
    found = [
        s
        for s in slots_between(expression, zone, start - timedelta(seconds=1), end)
        if s.astimezone(ZoneInfo(zone)).date() == date(*day)
    ]
    assert len(found) == count
    assert all(a < b for a, b in pairwise(found)), "strictly increasing"
    assert max(b - a for a, b in pairwise(found)) == longest


def test_a_day_matching_either_day_field_runs_when_both_are_restricted() -> None:
    """POSIX: 0 0 13 * fri is every 13th and every Friday (January 2026: Fridays 2, 9, 16, Tuesday 13)."""
    found = slots_between(
        "0 0 13 * fri", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 17, tzinfo=UTC)
    )
    assert [s.day for s in found] == [2, 9, 13, 16]
    only_13th = slots_between(
        "0 0 13 * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    )
    assert [(s.month, s.day) for s in only_13th] == [(1, 13), (2, 13)]


def test_a_slot_the_gap_moves_past_a_later_one_runs_in_instant_order() -> None:
    """Lord Howe jumps 02:00 -> 02:30: 02:10 runs at 02:40, after 02:35 (which runs too)."""
    zone = "Australia/Lord_Howe"
    found = slots_between("10,35 2 * * *", zone, local(zone, 2026, 10, 4), local(zone, 2026, 10, 4, 3))
    assert [s.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s in found] == ["02:35", "02:40"]
    assert cron.latest("10,35 2 * * *", zone, local(zone, 2026, 10, 4, 2, 45)) == found[1]
    assert cron.latest("10,35 2 * * *", zone, local(zone, 2026, 10, 4, 2, 37)) == found[0]


# ---------------------------------------------------------------- catching up, and what it costs


class _Counting:
    """Counts croniter's searches, to show how much of the past slots() walks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("get_next", "get_prev"):
            original = getattr(croniter, name)

            def counted(
                self_: croniter, *args: object, _original: object = original, **kwargs: object
            ) -> object:
                self.calls += 1
                return _original(self_, *args, **kwargs)  # type: ignore[operator]

            monkeypatch.setattr(croniter, name, counted)


def test_three_years_behind_counts_at_most_the_cap_and_walks_no_further(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2026, 6, 10, 12, 0, 30, tzinfo=UTC)
    counting = _Counting(monkeypatch)
    began = time.perf_counter()
    found = cron.slots("* * * * *", "Europe/Lisbon", now - timedelta(days=3 * 365), now)
    elapsed = time.perf_counter() - began
    assert found.latest == datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    assert found.passed == cron.MISSED_CAP + 1  # the latest and (at least) 100 before it
    assert found.next == datetime(2026, 6, 10, 12, 1, tzinfo=UTC)
    assert counting.calls <= cron.MISSED_CAP + 10, counting.calls  # not 1.5 million minutes
    assert elapsed < 1.0, f"{elapsed:.3f} s"  # milliseconds when the machine is idle


def test_the_latest_slot_is_found_backwards_however_old() -> None:
    # 29 February in a leap year only: 2100 is not one, so after 2096 the next is 2104
    assert cron.latest("0 0 29 2 *", "UTC", datetime(2103, 12, 31, tzinfo=UTC)) == datetime(
        2096, 2, 29, tzinfo=UTC
    )
    after = cron.slots(
        "0 0 29 2 *", "UTC", datetime(2096, 3, 1, tzinfo=UTC), datetime(2097, 1, 1, tzinfo=UTC)
    )
    assert (after.latest, after.passed, after.next) == (None, 0, datetime(2104, 2, 29, tzinfo=UTC))


@given(ADMISSIBLE, st.sampled_from(DST_ZONES), st.datetimes(datetime(2020, 1, 1), datetime(2090, 1, 1)))
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
def test_every_admitted_schedule_has_a_next_slot(text: str, zone: str, moment: datetime) -> None:
    assume(schedule.problem(text) is None)
    after = moment.replace(tzinfo=UTC)
    found = cron.slots(text, zone, after, after)
    assert found.next > after
    wall = found.next.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    meaning = read(text)
    assert isinstance(meaning, Meaning)
    shifted = [wall - timedelta(minutes=m) for m in (0, 30, 60)]  # a slot from a gap runs later
    assert any(
        meaning.names(w) and w.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) == found.next for w in shifted
    )


def test_parsed_expressions_are_shared_but_positions_are_not() -> None:
    zone, start = ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC)
    one, two = (
        cron.forward("*/7 * * * *", zone, start),
        cron.forward("*/7 * * * *", zone, start + timedelta(hours=5)),
    )
    interleaved: list[tuple[datetime, datetime]] = [(next(one), next(two)) for _ in range(20)]
    alone = list(islice(cron.forward("*/7 * * * *", zone, start), 20))
    assert [a for a, _ in interleaved] == alone
    assert all(b - a >= timedelta(hours=4) for a, b in interleaved)


def test_a_schedule_the_model_rejects_never_reaches_croniter() -> None:
    with pytest.raises(ValueError, match="never runs"):
        cron.slots("0 0 30 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="has a range"):
        next(cron.forward("0 0 31-31 2 *", ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC)))
