"""datamanager.cron at its edges: slots strictly after a moment and the latest at or before one (to the
second and below), the daylight-saving days in Europe/Lisbon (2026: spring 29 March, autumn 25 October, both
at 01:00 UTC) that tests/unit/test_cron.py does not cover, a machine whose own time zone is not UTC, and what
check() says of schedules that cannot run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter

from datamanager.api.schedule import SHAPE_MESSAGE
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
    ("text", "message"),
    [
        ("every day", SHAPE_MESSAGE),
        (
            "0 0 30 2 *",
            "schedule never runs: day of month '30' is in none of the months '2'; "
            "change the day of month or the month, or give a day of week",
        ),
    ],
)
def test_check_refuses_a_schedule_with_the_api_servers_message_word_for_word(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check(text)


def test_valid_schedules_pass_the_check() -> None:
    for text in ("*/15 * * * *", "@hourly", "0 0 29 2 *", "0 0 31 2 mon"):
        check(text)


def test_no_next_slot_within_croniters_search_is_a_named_error_and_check_says_never_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CRD admits no schedule without a next slot, so croniter is made to give up (what it does past
    its search window) to reach the path that handles one all the same."""

    def gives_up(self: object, *args: object, **kwargs: object) -> datetime:
        raise CroniterBadDateError("failed to find next date")

    monkeypatch.setattr(croniter, "get_next", gives_up)
    monkeypatch.setattr(croniter, "get_prev", gives_up)
    with pytest.raises(NoNextSlotError) as never:
        first("0 0 29 2 *", ZoneInfo("UTC"), NOON)
    assert str(never.value) == "'0 0 29 2 *' names no date that ever comes"
    assert latest_before("0 0 29 2 *", ZoneInfo("UTC"), NOON) is None
    with pytest.raises(
        ValueError,
        match="^" + re.escape("schedule never runs: '0 0 29 2 *' names no date that ever comes") + "$",
    ):
        check("0 0 29 2 *")
