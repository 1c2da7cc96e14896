"""Cron slots in the decision: which slot starts a run and under what id, the starting deadline to the second,
missed slots (counted, capped, never replayed), catch-up after a gap, suspension, and schedules that a spec
change adds or changes (docs/operator.md, "Schedules")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from datamanager.api.status import ResourceStatus
from datamanager_operator.model import job_name
from tests.unit.operator.observed import NAME, T0, UID, audit_spec, decided, job_of, observed, run

EVERY_15 = "*/15 * * * *"


def scheduled(**fields: Any) -> ResourceStatus:
    """A resource whose spec has been taken (generation 1) and whose 12:00 slot was handled."""
    return ResourceStatus.model_validate(
        {"observedGeneration": 1, "lastScheduleTime": "2026-11-28T12:00:00Z", **fields}
    )


def test_a_due_slot_starts_a_run_named_after_the_slot() -> None:
    now = T0 + timedelta(minutes=15, seconds=2)
    decision = decided(observed(audit_spec(schedule=EVERY_15), status=scheduled()), now)
    (started,) = decision.claimed
    assert (started.id, started.trigger, started.scheduled_time) == (
        "s202611281215",
        "Schedule",
        "2026-11-28T12:15:00Z",
    )
    assert started.job_name == job_name(NAME, UID, "s202611281215")
    assert started.start_time == "2026-11-28T12:15:02Z"
    assert decision.status.last_schedule_time == "2026-11-28T12:15:00Z"
    assert decision.status.next_run_time == "2026-11-28T12:30:00Z"
    assert decision.recheck_at == T0 + timedelta(minutes=30), "woken for the next slot without any event"
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "RunStarted")]
    assert decision.events[0].message == f"run s202611281215 (Schedule) -> Job {started.job_name}"
    assert decision.status.missed_runs == 0


def test_between_slots_nothing_starts_and_the_next_slot_is_announced() -> None:
    now = T0 + timedelta(minutes=7)
    decision = decided(observed(audit_spec(schedule=EVERY_15), status=scheduled()), now)
    assert decision.claimed == []
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z"
    assert decision.status.next_run_time == "2026-11-28T12:15:00Z"
    assert decision.recheck_at == T0 + timedelta(minutes=15)
    assert decision.events == []


def test_a_resource_without_a_schedule_has_no_next_run_time() -> None:
    status = scheduled(nextRunTime="2026-11-28T12:15:00Z")  # left by a schedule since removed
    decision = decided(observed(audit_spec(), status=status), T0 + timedelta(minutes=7))
    assert decision.status.next_run_time is None
    assert decision.recheck_at is None
    assert decision.claimed == []


@pytest.mark.parametrize(("late", "starts"), [(59, True), (60, True), (61, False)])
def test_a_slot_starts_up_to_its_starting_deadline_to_the_second(late: int, starts: bool) -> None:
    spec = audit_spec(schedule=EVERY_15, startingDeadlineSeconds=60)
    now = T0 + timedelta(minutes=15, seconds=late)
    decision = decided(observed(spec, status=scheduled()), now)
    assert decision.status.last_schedule_time == "2026-11-28T12:15:00Z", "started or missed, it is handled"
    if starts:
        assert [r.id for r in decision.claimed] == ["s202611281215"]
        assert decision.status.missed_runs == 0
        return
    assert decision.claimed == []
    assert (decision.missed, decision.status.missed_runs) == (1, 1)
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        (
            "Warning",
            "MissedSchedule",
            "1 scheduled run(s) did not start within startingDeadlineSeconds (60s); they are not replayed",
        )
    ]


def test_after_a_gap_the_latest_slot_runs_and_the_earlier_ones_are_missed() -> None:
    now = T0 + timedelta(hours=1, seconds=30)  # 12:15, 12:30, 12:45 and 13:00 passed
    decision = decided(observed(audit_spec(schedule=EVERY_15), status=scheduled(missedRuns=2)), now)
    assert [r.id for r in decision.claimed] == ["s202611281300"]
    assert (decision.missed, decision.status.missed_runs) == (3, 5), "added to what was counted before"
    assert [e.reason for e in decision.events] == ["MissedSchedule", "RunStarted"]
    assert decision.events[0].message.startswith("3 scheduled run(s) did not start")
    assert decision.status.last_schedule_time == "2026-11-28T13:00:00Z"


def test_after_two_slots_the_first_is_missed_and_the_second_runs() -> None:
    now = T0 + timedelta(minutes=30, seconds=5)
    decision = decided(observed(audit_spec(schedule=EVERY_15), status=scheduled()), now)
    assert [r.id for r in decision.claimed] == ["s202611281230"]
    assert decision.status.missed_runs == 1


def test_after_a_gap_longer_than_the_deadline_every_slot_is_missed_and_none_replayed() -> None:
    now = T0 + timedelta(hours=1, minutes=10)  # 13:00 passed 600 s ago, past the default 300 s
    decision = decided(observed(audit_spec(schedule=EVERY_15), status=scheduled()), now)
    assert decision.claimed == []
    assert decision.status.missed_runs == 4
    assert decision.status.last_schedule_time == "2026-11-28T13:00:00Z"
    again = decided(observed(audit_spec(schedule=EVERY_15), status=decision.status), now)
    assert (again.claimed, again.missed, again.status.missed_runs) == ([], 0, 4), "counted once"


def test_slots_pass_while_suspended_without_being_missed_and_do_not_run_on_resume() -> None:
    suspended = audit_spec(schedule=EVERY_15, suspend=True)
    decision = decided(observed(suspended, status=scheduled()), T0 + timedelta(minutes=31))
    assert decision.claimed == []
    assert decision.status.last_schedule_time == "2026-11-28T12:30:00Z"
    assert decision.status.next_run_time is None
    assert decision.status.missed_runs == 0
    assert decision.status.phase == "Suspended"
    resumed = decided(
        observed(audit_spec(schedule=EVERY_15), status=decision.status, generation=2),
        T0 + timedelta(minutes=33),
    )
    assert [(r.id, r.trigger, r.scheduled_time) for r in resumed.claimed] == [("g2", "SpecChanged", None)]
    assert resumed.status.missed_runs == 0
    assert resumed.status.last_schedule_time == "2026-11-28T12:30:00Z"
    assert resumed.status.next_run_time == "2026-11-28T12:45:00Z"


def test_a_schedule_added_to_an_old_resource_reports_no_past_slot_as_missed() -> None:
    """docs/operator.md: "adding a schedule to an old resource, or changing it, reports no past slot as
    missed" (before the fix, the 96 slots since the resource was created were counted)."""
    old = observed(
        audit_spec(schedule=EVERY_15),
        status=ResourceStatus(observed_generation=1),
        generation=2,
        created=T0 - timedelta(days=1),
    )
    decision = decided(old, T0 + timedelta(minutes=7))
    assert (decision.missed, decision.status.missed_runs) == (0, 0)
    assert [e.reason for e in decision.events] == ["RunStarted"]
    assert [(r.id, r.scheduled_time) for r in decision.claimed] == [("g2", None)]
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z", "counted from now on"
    later = decided(
        observed(audit_spec(schedule=EVERY_15), status=decision.status, generation=2),
        T0 + timedelta(minutes=15, seconds=1),
    )
    assert [r.id for r in later.claimed] == [], "Forbid: g2 is still active"
    assert later.status.missed_runs == 0


def test_a_changed_schedule_reports_no_past_slot_as_missed_and_takes_a_due_one_along() -> None:
    daily_until_now = scheduled(lastScheduleTime="2026-11-28T00:00:00Z")
    decision = decided(
        observed(
            audit_spec(schedule=EVERY_15), status=daily_until_now, generation=2, created=T0 - timedelta(3)
        ),
        T0 + timedelta(minutes=2),
    )
    assert decision.status.missed_runs == 0
    assert [(r.id, r.trigger, r.scheduled_time) for r in decision.claimed] == [
        ("g2", "SpecChanged", "2026-11-28T12:00:00Z")
    ], "a spec change at a cron slot is one run"
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z"


def test_a_new_resource_counts_none_of_the_slots_since_its_creation_as_missed() -> None:
    created = T0 - timedelta(minutes=50)  # the operator was down: 11:15, 11:30, 11:45, 12:00 passed
    decision = decided(observed(audit_spec(schedule=EVERY_15), created=created), T0 + timedelta(seconds=30))
    (started,) = decision.claimed
    assert (started.id, started.trigger, started.scheduled_time) == ("g1", "Created", "2026-11-28T12:00:00Z")
    assert (decision.missed, decision.status.missed_runs) == (0, 0), "the Created run stands for them"
    assert [e.reason for e in decision.events] == ["RunStarted"]
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z"


def test_a_slot_waiting_behind_a_forbid_run_is_looked_at_again_when_its_deadline_passes() -> None:
    g1 = run()
    spec = audit_spec(schedule=EVERY_15, startingDeadlineSeconds=120)
    status = scheduled(activeRuns=[g1.model_dump(by_alias=True)])
    now = T0 + timedelta(minutes=15, seconds=10)
    decision = decided(observed(spec, status=status, jobs=[job_of(g1)]), now)
    assert decision.claimed == []
    assert decision.recheck_at == T0 + timedelta(minutes=17, seconds=1), "the slot's deadline, then missed"
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z", "still waiting, not handled"
    ended = decided(
        observed(spec, status=status, jobs=[job_of(g1, finished=True, succeeded=True)]),
        T0 + timedelta(minutes=16),
    )
    assert [r.id for r in ended.claimed] == ["s202611281215"], "it starts late when the run ends in time"
    gone = decided(
        observed(spec, status=status, jobs=[job_of(g1, finished=True, succeeded=True)]),
        T0 + timedelta(minutes=17, seconds=1),
    )
    assert gone.claimed == []
    assert gone.status.missed_runs == 1, "and is missed when it does not"


def test_a_schedule_in_a_time_zone_runs_at_the_zones_wall_clock() -> None:
    spec = audit_spec(schedule="0 13 * * *", timeZone="Europe/Lisbon")  # WET in November: UTC+0
    status = scheduled(lastScheduleTime="2026-11-27T13:00:00Z")
    assert [r.id for r in decided(observed(spec, status=status), T0 + timedelta(hours=1)).claimed] == [
        "s202611281300"
    ]
    summer = audit_spec(schedule="0 13 * * *", timeZone="Europe/Lisbon")  # WEST in July: UTC+1
    july = T0.replace(month=7, day=1, hour=12, minute=0, second=5)
    status = scheduled(lastScheduleTime="2026-06-30T12:00:00Z")
    assert [r.id for r in decided(observed(summer, status=status), july).claimed] == ["s202607011200"], (
        "the run id names the slot in UTC"
    )


def test_slots_missed_behind_a_forbid_run_are_counted_once_while_the_latest_waits() -> None:
    g1 = run()
    status = scheduled(activeRuns=[g1.model_dump(by_alias=True)])
    now = T0 + timedelta(hours=1, seconds=30)  # 12:15, 12:30, 12:45 passed; 13:00 is within its deadline
    first = decided(observed(audit_spec(schedule=EVERY_15), status=status, jobs=[job_of(g1)]), now)
    assert (first.claimed, first.status.missed_runs) == ([], 3)
    assert first.status.last_schedule_time == "2026-11-28T12:45:00Z", "handled up to the one before 13:00"
    again = decided(
        observed(audit_spec(schedule=EVERY_15), status=first.status, jobs=[job_of(g1)]),
        now + timedelta(seconds=10),
    )
    assert again.status.missed_runs == 3, "not counted again on the next look"


def test_a_new_scheduled_resource_takes_the_slot_before_its_creation_as_handled() -> None:
    decision = decided(
        observed(audit_spec(schedule=EVERY_15), created=T0 + timedelta(minutes=7)), T0 + timedelta(minutes=8)
    )
    assert [(r.id, r.scheduled_time) for r in decision.claimed] == [("g1", None)]
    assert decision.status.last_schedule_time == "2026-11-28T12:00:00Z", "the schedule applies from here on"
    assert decision.status.next_run_time == "2026-11-28T12:15:00Z"
    assert decision.status.missed_runs == 0


def test_a_spec_change_never_moves_the_handled_slot_back() -> None:
    """A replica whose clock is behind takes a new spec: the slot it finds latest (12:00) is before the one
    already handled (12:15), which stays, so 12:15 cannot start a second time."""
    status = scheduled(lastScheduleTime="2026-11-28T12:15:00Z")
    changed = observed(audit_spec(schedule=EVERY_15), status=status, generation=2)
    decision = decided(changed, T0 + timedelta(minutes=14))
    assert [(r.id, r.trigger, r.scheduled_time) for r in decision.claimed] == [("g2", "SpecChanged", None)]
    assert decision.status.last_schedule_time == "2026-11-28T12:15:00Z"
    forward = decided(
        observed(audit_spec(schedule=EVERY_15), status=scheduled(), generation=2), T0 + timedelta(minutes=14)
    )
    assert forward.status.last_schedule_time == "2026-11-28T12:00:00Z", "a later slot does move it"


def test_a_schedule_the_model_now_rejects_takes_the_generation_and_ignores_a_manual_trigger() -> None:
    """A stored schedule that the current rules reject (30 February): the spec is invalid, its generation
    is taken so that the condition names it, the next run time is cleared and a run-now is ignored, once."""
    slipped = audit_spec(schedule=EVERY_15).model_copy(update={"schedule": "0 0 30 2 *"})  # no validation
    status = scheduled(nextRunTime="2026-11-28T12:15:00Z")
    decision = decided(
        observed(slipped, status=status, generation=2, run_now="now"), T0 + timedelta(minutes=1)
    )
    assert decision.claimed == []
    assert decision.status.observed_generation == 2
    assert decision.status.next_run_time is None
    assert decision.status.handled_trigger == "now"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Normal", "TriggerIgnored", "run-now 'now' ignored: the spec is invalid")
    ]
