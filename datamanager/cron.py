"""Cron slots in a time zone, as wall-clock times that map to strictly increasing instants.

What a schedule may say, and what it means, is ``datamanager.api.schedule``'s (the rules the CRD and the model
share); croniter searches the explicit lists ``schedule.canonical`` makes of it.

A schedule is read in the zone's wall clock (``0 2 * * *`` in Europe/Lisbon is 02:00 Lisbon time, summer or
winter). Across daylight-saving changes each wall-clock slot maps to one instant: a slot inside the spring
gap runs as much later as the clock jumps (01:30 in Lisbon's one-hour gap runs at 02:30 summer time), a slot
in the repeated autumn hour runs at its first occurrence, and slots that map to one instant run once; slots
run in the order of their instants. So a daily cron runs once on both change days, and no slot ever runs
twice.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter

from datamanager.api.schedule import canonical

MISSED_CAP = 100  # like CronJob: past this many, "at least 100" is all that is worth counting
# croniter searches this far for a date such as 29 February (2096 -> 2104) before it gives up
_SEARCH_YEARS = 8
_NEAR = timedelta(hours=3)  # no zone shifts its offset by more than this at once


class NoNextSlotError(ValueError):
    """A cron expression that names no date that ever comes (e.g. ``0 0 30 2 *``)."""


# ---------------------------------------------------------------- slots


@dataclass(frozen=True)
class Slots:
    """What a schedule says at ``now`` about the slots after ``after``."""

    latest: datetime | None  # the latest slot in (after, now], UTC
    passed: int  # how many slots fell in (after, now], at most MISSED_CAP + 1
    next: datetime  # the first slot after now, UTC


@lru_cache(maxsize=1024)
def _parsed(schedule: str) -> croniter:
    """croniter's expansion of ``schedule``, done once: it is most of what a fresh croniter costs."""
    return croniter(canonical(schedule), datetime(2000, 1, 1), max_years_between_matches=_SEARCH_YEARS)


def _cron(schedule: str, start: datetime) -> croniter:
    cron = copy.copy(_parsed(schedule))  # its own position; the expansion is shared and never changed
    cron.set_current(start, force=True)
    return cron


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a repeated wall time is its first occurrence; a wall time in a gap takes the offset from
    # before the gap, which moves it later by the size of the jump
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _margin(moment: datetime, zone: ZoneInfo) -> timedelta:
    """How far wall time and instants may disagree in order near ``moment`` (UTC): the size of a nearby
    offset change (a slot's wall time can then lie on the other side of ``moment``'s), else nothing."""
    before = (moment - _NEAR).astimezone(zone).utcoffset()
    after = (moment + _NEAR).astimezone(zone).utcoffset()
    return abs(after - before) if before is not None and after is not None else timedelta(0)


def forward(schedule: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Slots strictly after ``after`` (UTC), strictly increasing, for ever.

    Wall-clock order is instant order except inside a spring gap: a slot there moves later by the size of
    the jump and can overtake slots just after the gap. So a slot is held until no later wall-clock slot can
    map before it (only near an offset change: elsewhere that is at once)."""
    cron = _cron(schedule, _wall(after, zone) - _margin(after, zone) - timedelta(seconds=1))
    held: list[datetime] = []
    last = after
    while True:
        try:
            slot = _instant(cron.get_next(datetime), zone)
        except CroniterBadDateError as exc:
            raise NoNextSlotError(f"{schedule!r} names no date that ever comes") from exc
        heapq.heappush(held, slot)
        settled = slot - _margin(slot, zone)  # later wall-clock slots map to no earlier instant than this
        while held and held[0] <= settled:
            ready = heapq.heappop(held)
            if ready > last:  # two wall-clock slots on one instant run once
                last = ready
                yield ready


def latest_before(schedule: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The latest slot at or before ``now`` (UTC), found backwards: no iteration over a long past."""
    cron = _cron(schedule, _wall(now, zone) + _margin(now, zone) + timedelta(seconds=1))
    best: datetime | None = None
    try:
        while True:  # at most the slots within one offset change of now are passed over
            slot = _instant(cron.get_prev(datetime), zone)
            if slot <= now and (best is None or slot > best):
                best = slot
            if best is not None and slot + _margin(slot, zone) <= best:
                return best  # earlier wall-clock slots map to no later instant than slot + margin
    except CroniterBadDateError:
        return best


def latest(schedule: str, time_zone: str, now: datetime) -> datetime | None:
    """The latest slot at or before ``now`` in ``time_zone``."""
    return latest_before(schedule, ZoneInfo(time_zone), now)


def slots(schedule: str, time_zone: str, after: datetime, now: datetime) -> Slots:
    """The latest slot in (after, now], how many fell there (capped), and the next one after now.

    Raises ValueError for an expression the CRD does not admit, NoNextSlotError if no slot comes."""
    zone = ZoneInfo(time_zone)
    latest = latest_before(schedule, zone, now)
    if latest is not None and latest <= after:
        latest = None
    passed = 0
    if latest is not None:
        for slot in forward(schedule, zone, after):
            if slot > now or passed > MISSED_CAP:
                break
            passed += 1
    upcoming = next(slot for slot in forward(schedule, zone, max(now, latest or now)) if slot > now)
    return Slots(latest, passed, upcoming)


def check(schedule: str) -> None:
    """Raises ValueError, in the API server's words, unless the CRD admits ``schedule``; and (which the
    CRD's rules exclude, checked all the same) unless a slot comes."""
    canonical(schedule)
    try:
        next(forward(schedule, ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC)))
    except (NoNextSlotError, CroniterError) as exc:
        raise ValueError(f"schedule never runs: {schedule!r} names no date that ever comes") from exc
