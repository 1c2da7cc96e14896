"""datamanager.cron at its edges: slots strictly after a moment and the latest at or before one (to the
second and below), daylight-saving changes in Europe/Lisbon (2026: spring 29 March, autumn 25 October, both
at 01:00 UTC), a machine whose own time zone is not UTC, and the messages of schedules that cannot run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from datamanager.cron import NoNextSlotError, check, forward, latest, latest_before, slots

LISBON = ZoneInfo("Europe/Lisbon")
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def first(schedule: str, zone: ZoneInfo, after: datetime, count: int = 1) -> list[datetime]:
    return list(islice(forward(schedule, zone, after), count))


@pytest.fixture
def machine_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone at +13:45: nothing may depend on it."""
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_slots_are_strictly_after_the_moment_even_a_fraction_of_a_second_before_one() -> None:
    utc = ZoneInfo("UTC")
    assert first("*/15 * * * *", utc, NOON, 2) == [at(2026, 11, 28, 12, 15), at(2026, 11, 28, 12, 30)]
    assert first("*/15 * * * *", utc, NOON - timedelta(microseconds=1)) == [NOON]
    assert first("*/15 * * * *", utc, NOON - timedelta(milliseconds=500)) == [NOON]


def test_the_latest_slot_includes_one_exactly_at_the_moment() -> None:
    utc = ZoneInfo("UTC")
    assert latest_before("*/15 * * * *", utc, NOON) == NOON
    assert latest_before("*/15 * * * *", utc, NOON - timedelta(microseconds=1)) == at(2026, 11, 28, 11, 45)
    assert latest("*/15 * * * *", "UTC", NOON + timedelta(minutes=14)) == NOON


def test_slots_come_from_the_moment_given_not_from_the_clock() -> None:
    assert first("0 0 * * *", ZoneInfo("UTC"), at(2001, 1, 1)) == [at(2001, 1, 2)]
    assert latest_before("0 0 * * *", ZoneInfo("UTC"), at(2001, 1, 1, 12)) == at(2001, 1, 1)


def test_a_slot_in_the_spring_gap_runs_when_the_clock_jumps_and_one_in_the_repeated_hour_runs_once() -> None:
    spring = first("30 1 * * *", LISBON, at(2026, 3, 28, 12), 2)
    assert spring == [at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30)], "01:30 that never was: 02:30 WEST"
    autumn = first("30 1 * * *", LISBON, at(2026, 10, 24, 12), 2)
    assert autumn == [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)], "the first 01:30 (WEST), once"


def test_an_hourly_schedule_across_both_changes_never_runs_a_slot_twice() -> None:
    spring = first("30 * * * *", LISBON, at(2026, 3, 28, 23), 4)
    assert spring == [
        at(2026, 3, 28, 23, 30),
        at(2026, 3, 29, 0, 30),
        at(2026, 3, 29, 1, 30),
        at(2026, 3, 29, 2, 30),
    ]
    autumn = first("0 * * * *", LISBON, at(2026, 10, 24, 22), 4)
    assert autumn == [at(2026, 10, 24, 23), at(2026, 10, 25, 0), at(2026, 10, 25, 2), at(2026, 10, 25, 3)], (
        "the repeated 01:00 runs at its first occurrence only"
    )


def test_a_slot_whose_wall_time_is_before_the_moment_but_whose_instant_is_after_is_found() -> None:
    """At 01:10 UTC on the spring day the clock reads 02:10, yet today's 01:30 (at 01:30 UTC) is still due."""
    assert first("30 1 * * *", LISBON, at(2026, 3, 29, 1, 10)) == [at(2026, 3, 29, 1, 30)]


def test_the_latest_slot_in_the_repeated_hour_is_todays_first_occurrence() -> None:
    """At 01:10 UTC on the autumn day the clock reads 01:10 (again): today's 01:30 ran at 00:30 UTC."""
    assert latest_before("30 1 * * *", LISBON, at(2026, 10, 25, 1, 10)) == at(2026, 10, 25, 0, 30)


def test_slots_do_not_depend_on_the_machines_time_zone(machine_far_from_utc: None) -> None:
    summer = first("0 13 * * *", LISBON, at(2026, 7, 1))
    assert summer == [at(2026, 7, 1, 12)]
    assert summer[0].utcoffset() == timedelta(0)
    assert latest_before("0 13 * * *", LISBON, at(2026, 7, 1, 18)) == at(2026, 7, 1, 12)
    found = slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(minutes=20))
    assert found.latest is not None
    assert (found.latest.utcoffset(), found.next.utcoffset()) == (timedelta(0), timedelta(0))
    assert found.next.strftime("%H:%M") == "12:30", "formatted as UTC in status"


def test_slots_counts_a_slot_exactly_at_now_and_names_the_one_after_it() -> None:
    found = slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(minutes=15))
    assert (found.latest, found.passed, found.next) == (
        at(2026, 11, 28, 12, 15),
        1,
        at(2026, 11, 28, 12, 30),
    )


def test_slots_after_the_latest_handled_one_are_none_until_the_next() -> None:
    found = slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(minutes=14, seconds=59))
    assert (found.latest, found.passed, found.next) == (None, 0, at(2026, 11, 28, 12, 15))


def test_slots_counts_every_passed_slot_up_to_the_cap() -> None:
    assert slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(hours=1)).passed == 4
    assert slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(hours=25)).passed == 100
    assert slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(hours=25, minutes=15)).passed == 101
    assert slots("*/15 * * * *", "UTC", NOON, NOON + timedelta(days=30)).passed == 101, "101: more than 100"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("every day", "'every day' is not a cron expression such as '*/15 * * * *' or '@hourly'"),
        ("0 0 30 2 *", "'0 0 30 2 *' names no date that ever comes (e.g. 30 February)"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_with_what_to_write(schedule: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check(schedule)


def test_valid_schedules_pass_the_check_in_any_zone() -> None:
    for schedule in ("*/15 * * * *", "@hourly", "0 0 29 2 *"):
        check(schedule, "Europe/Lisbon")


def test_a_schedule_with_no_date_ever_stops_the_iteration_with_a_named_error() -> None:
    with pytest.raises(NoNextSlotError) as never:
        first("0 0 31 4 *", ZoneInfo("UTC"), NOON)
    assert str(never.value) == "'0 0 31 4 *' names no date that ever comes"
    assert latest_before("0 0 31 4 *", ZoneInfo("UTC"), NOON) is None
