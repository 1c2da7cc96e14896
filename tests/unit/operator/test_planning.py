"""When runs start, are skipped or are missed: the pure planning function, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from datamanager.api.common import ConcurrencyPolicy, ScheduleSpec
from datamanager_operator.planning import Observed, ObservedJob, history_to_delete, manual_run_id, plan

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def seen(**changes: object) -> Observed:
    base = {
        "generation": 1,
        "observed_generation": 1,
        "created": T0,
        "run_now": None,
        "handled_trigger": None,
        "last_schedule_time": None,
        "jobs": (),
    }
    base.update(changes)
    return Observed(**base)  # type: ignore[arg-type]


def active_job(run_id: str = "g1") -> ObservedJob:
    return ObservedJob(f"x-{run_id}", run_id, active=True, succeeded=False, created=T0)


def test_a_new_resource_runs_once_as_created() -> None:
    start = plan(ScheduleSpec(), seen(observed_generation=None), T0).start
    assert start is not None
    assert (start.run_id, start.kind) == ("g1", "Created")
    assert plan(ScheduleSpec(), seen(), T0).start is None


def test_a_spec_change_runs_under_the_new_generation() -> None:
    start = plan(ScheduleSpec(), seen(generation=3, observed_generation=2), T0).start
    assert start is not None
    assert (start.run_id, start.kind) == ("g3", "SpecChanged")


def test_cron_slot_runs_within_the_starting_deadline_with_a_deterministic_id() -> None:
    spec = ScheduleSpec(schedule="*/15 * * * *")
    decided = plan(spec, seen(), T0 + timedelta(minutes=15, seconds=3))
    assert decided.start is not None
    assert decided.start.run_id == "s202611281215"
    assert decided.next_run == T0 + timedelta(minutes=30)
    assert decided.missed == 0


def test_slots_past_the_deadline_are_reported_not_replayed() -> None:
    spec = ScheduleSpec(schedule="*/15 * * * *", starting_deadline_seconds=60)
    decided = plan(spec, seen(), T0 + timedelta(hours=1, minutes=5))
    assert decided.start is None
    assert decided.missed == 4
    assert decided.last_schedule_time == T0 + timedelta(hours=1)


def test_only_the_latest_of_several_due_slots_runs() -> None:
    spec = ScheduleSpec(schedule="* * * * *", starting_deadline_seconds=300)
    decided = plan(spec, seen(), T0 + timedelta(minutes=3, seconds=10))
    assert decided.start is not None
    assert decided.start.run_id == "s202611281203"
    assert decided.missed == 2


def test_forbid_skips_a_slot_while_a_run_is_active_and_defers_other_triggers() -> None:
    spec = ScheduleSpec(schedule="*/15 * * * *")
    decided = plan(spec, seen(jobs=(active_job(),)), T0 + timedelta(minutes=15))
    assert decided.start is None
    assert decided.skipped_slot == T0 + timedelta(minutes=15)
    deferred = plan(ScheduleSpec(), seen(generation=2, jobs=(active_job(),)), T0)
    assert deferred.start is None
    assert not deferred.observe_generation  # still pending: it runs once the active run ends


def test_replace_deletes_the_active_run_and_allow_keeps_it() -> None:
    replace = plan(
        ScheduleSpec(concurrency_policy=ConcurrencyPolicy.REPLACE),
        seen(generation=2, jobs=(active_job(),)),
        T0,
    )
    assert replace.start is not None
    assert replace.delete_active == ["x-g1"]
    allow = plan(
        ScheduleSpec(concurrency_policy=ConcurrencyPolicy.ALLOW), seen(generation=2, jobs=(active_job(),)), T0
    )
    assert allow.start is not None
    assert allow.delete_active == []


def test_suspend_stops_every_trigger_without_queueing_them() -> None:
    spec = ScheduleSpec(schedule="*/15 * * * *", suspend=True)
    decided = plan(spec, seen(generation=2, run_now="now"), T0 + timedelta(hours=2))
    assert decided.start is None
    assert decided.observe_generation
    assert decided.handled_trigger == "now"
    assert decided.missed == 0


def test_a_manual_trigger_runs_once_per_token() -> None:
    decided = plan(ScheduleSpec(), seen(run_now="a"), T0)
    assert decided.start is not None
    assert (decided.start.run_id, decided.start.kind) == (manual_run_id("a"), "Manual")
    assert decided.handled_trigger == "a"
    assert plan(ScheduleSpec(), seen(run_now="a", handled_trigger="a"), T0).start is None


def test_schedules_follow_the_time_zone() -> None:
    spec = ScheduleSpec(schedule="0 9 * * *", time_zone="America/New_York")
    decided = plan(spec, seen(), T0)
    assert decided.next_run == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # 09:00 EST


def test_history_keeps_the_newest_finished_jobs() -> None:
    jobs = [ObservedJob(f"j{i}", f"g{i}", False, i % 2 == 0, T0 + timedelta(minutes=i)) for i in range(6)]
    assert history_to_delete(jobs, keep_succeeded=1, keep_failed=1) == ["j0", "j2", "j1", "j3"]
