"""The schedule paths of planning.decide: which slots become runs, which are missed and how many, and that
nothing a schedule can say makes a reconcile fail.

``Cluster`` plays the part of the API server and the Jobs for the pure decision: it keeps the status each
decision writes, creates the Jobs of claimed runs, finishes them after a run time, and wakes the decision at
``recheck_at`` or when a Job finishes (what a watch event would do).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datamanager.api.dataaudit import DataAuditSpec
from datamanager.api.status import ResourceStatus, RunRef
from datamanager.cron import MISSED_CAP
from datamanager_operator.planning import Decision, Limits, Observed, decide
from datamanager_operator.status import iso
from datamanager_operator.views import JobView

BASE: dict[str, Any] = {
    "source": {"dsnSecretRef": {"name": "mysql", "key": "dsn"}},
    "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
    "symbols": ["BTCUSDT"],
    "intervals": ["1h"],
}
UID = "5f0c2a1e-0000-4000-8000-000000000001"
_uids = itertools.count(1)


def spec(**fields: Any) -> DataAuditSpec:
    return DataAuditSpec.model_validate(BASE | fields)


def new_uid() -> str:
    return f"run-{next(_uids)}"


def job(run: RunRef, created: datetime, done: datetime | None = None) -> JobView:
    return JobView(
        namespace="ns",
        name=run.job_name,
        uid=f"job-{run.uid}",
        version=1,
        owner=None,
        resource_uid=UID,
        run_id=run.id,
        run_uid=run.uid,
        created=created,
        deleting=False,
        finalized=True,
        finished=done is not None,
        succeeded=done is not None,
        reason="Complete" if done else "",
        message="",
        completion_time=iso(done) if done else None,
    )


def observe(
    spec_: DataAuditSpec,
    status: ResourceStatus,
    *,
    generation: int = 1,
    created: datetime,
    jobs: dict[str, JobView] | None = None,
    invalid: str | None = None,
) -> Observed:
    return Observed(
        name="majors",
        uid=UID,
        generation=generation,
        created=created,
        run_now=None,
        spec=spec_,
        invalid=invalid,
        thresholds=spec_.thresholds,
        status=status,
        jobs=jobs or {},
        pods={},
    )


def taken(at: datetime, **fields: Any) -> ResourceStatus:
    """The status of generation 1 taken at ``at``: its schedule counts from then."""
    return ResourceStatus(observed_generation=1, last_schedule_time=iso(at), **fields)


def events(decision: Decision, reason: str) -> list[str]:
    return [e.message for e in decision.events if e.reason == reason]


@dataclass
class Cluster:
    """The resource, its Jobs and the clock, as decide() sees them from one reconcile to the next."""

    spec: DataAuditSpec
    status: ResourceStatus
    now: datetime
    created: datetime
    generation: int = 1
    run_for: timedelta = timedelta(minutes=1)
    jobs: dict[str, JobView] = field(default_factory=dict)
    started: list[RunRef] = field(default_factory=list)
    missed: int = 0

    def reconcile(self) -> Decision:
        seen = observe(
            self.spec, self.status, generation=self.generation, created=self.created, jobs=self.jobs
        )
        decision = decide(seen, self.now, Limits(), new_uid)
        self.status = decision.status
        self.missed += decision.missed
        for run in decision.create:
            self.jobs[run.job_name] = job(run, self.now)
        self.started += decision.claimed
        for name in decision.delete:
            self.jobs.pop(name, None)
        return decision

    def run_until(self, end: datetime) -> None:
        """Reconciles whenever the decision asks to look again or a Job finishes, until ``end``."""
        while self.now < end:
            decision = self.reconcile()
            finishing = [j.created + self.run_for for j in self.jobs.values() if not j.finished]
            wake = min([t for t in [decision.recheck_at, *finishing, end] if t is not None])
            self.now = max(wake, self.now + timedelta(seconds=1))
            for name, view in list(self.jobs.items()):
                if not view.finished and view.created + self.run_for <= self.now:
                    self.jobs[name] = replace(
                        view, finished=True, succeeded=True, completion_time=iso(view.created + self.run_for)
                    )


def per_local_day(runs: list[RunRef], zone: str) -> Counter[date]:
    return Counter(
        datetime.fromisoformat(str(r.scheduled_time).replace("Z", "+00:00")).astimezone(ZoneInfo(zone)).date()
        for r in runs
    )


def slot_of(run: RunRef) -> datetime:
    return datetime.fromisoformat(str(run.scheduled_time).replace("Z", "+00:00"))


# ---------------------------------------------------------------- daylight saving


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("Europe/Lisbon", [date(2026, 3, 29), date(2026, 10, 25)]),
        ("America/New_York", [date(2026, 3, 8), date(2026, 11, 1)]),
        ("Australia/Lord_Howe", [date(2026, 4, 5), date(2026, 10, 4)]),  # 30-minute shifts
    ],
)
@pytest.mark.parametrize("at", ["0 0", "30 1", "0 2", "15 2", "30 2", "0 3"])
def test_a_daily_schedule_starts_one_run_on_each_change_day(zone: str, days: list[date], at: str) -> None:
    for day in days:
        before, after = day - timedelta(days=1), day + timedelta(days=1)
        start = datetime(before.year, before.month, before.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        end = datetime(after.year, after.month, after.day, 23, 59, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        first = start - timedelta(minutes=1)
        cluster = Cluster(
            spec(schedule=f"{at} * * *", timeZone=zone), taken(first), first, first - timedelta(days=9)
        )
        cluster.run_until(end)
        counted = per_local_day(cluster.started, zone)
        assert counted == {before: 1, day: 1, after: 1}, (day, counted)
        assert cluster.missed == 0
        assert all(r.trigger == "Schedule" for r in cluster.started)
        assert [r.start_time for r in cluster.started] == [iso(slot_of(r)) for r in cluster.started], (
            "on time"
        )


@pytest.mark.parametrize(
    ("zone", "day", "expression", "count"),
    [
        ("Europe/Lisbon", date(2026, 3, 29), "0 * * * *", 23),
        ("Europe/Lisbon", date(2026, 10, 25), "0 * * * *", 24),
        ("Europe/Lisbon", date(2026, 3, 29), "*/15 * * * *", 92),
        ("America/New_York", date(2026, 11, 1), "*/15 * * * *", 96),
        ("Australia/Lord_Howe", date(2026, 10, 4), "10,35 * * * *", 48),  # 02:10 runs at 02:40, after 02:35
        ("Australia/Lord_Howe", date(2026, 10, 4), "0,30 * * * *", 47),  # 02:00 runs at 02:30, with it
    ],
)
def test_frequent_schedules_across_a_change_start_each_slot_once_in_order(
    zone: str, day: date, expression: str, count: int
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    cluster = Cluster(
        spec(schedule=expression, timeZone=zone),
        taken(start - timedelta(seconds=1)),
        start,
        start,
        run_for=timedelta(seconds=20),
    )
    cluster.run_until(
        datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    )
    slots = [slot_of(r) for r in cluster.started]
    assert len(slots) == count
    assert all(a < b for a, b in itertools.pairwise(slots)), "strictly increasing instants, none twice"
    assert len({r.id for r in cluster.started}) == count
    assert cluster.missed == 0


@pytest.mark.parametrize(("macro", "count"), [("@hourly", 24), ("@daily", 1)])
def test_macros_are_admitted_and_run(macro: str, count: int) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    cluster = Cluster(spec(schedule=macro), taken(start - timedelta(seconds=1)), start, start)
    cluster.run_until(start + timedelta(days=1) - timedelta(seconds=1))
    assert [r.id for r in cluster.started] == [
        f"s{start + timedelta(hours=h):%Y%m%d%H%M}" for h in range(count)
    ]


# ---------------------------------------------------------------- missed slots


def test_three_years_behind_counts_one_hundred_missed_and_starts_the_latest() -> None:
    now = datetime(2026, 6, 10, 12, 0, 10, tzinfo=UTC)
    behind = taken(now - timedelta(days=3 * 365))
    decision = decide(
        observe(spec(schedule="* * * * *"), behind, created=now - timedelta(days=4 * 365)),
        now,
        Limits(),
        new_uid,
    )
    assert decision.missed == MISSED_CAP
    assert decision.status.missed_runs == MISSED_CAP
    assert [r.id for r in decision.claimed] == ["s202606101200"]
    assert len(events(decision, "MissedSchedule")) == 1


def test_three_years_behind_and_past_the_deadline_counts_one_hundred_missed() -> None:
    now = datetime(2026, 6, 10, 12, 0, 10, tzinfo=UTC)
    behind = taken(now - timedelta(days=3 * 365))
    seen = observe(
        spec(schedule="0 * * * *", startingDeadlineSeconds=5), behind, created=now - timedelta(days=1500)
    )
    decision = decide(seen, now, Limits(), new_uid)
    assert decision.missed == MISSED_CAP  # CronJob's cap: not 101
    assert decision.status.missed_runs == MISSED_CAP
    assert decision.claimed == []
    assert decision.status.last_schedule_time == "2026-06-10T12:00:00Z"


@pytest.mark.parametrize(
    ("late", "starts"), [(timedelta(seconds=300), True), (timedelta(seconds=300, microseconds=1), False)]
)
def test_a_slot_exactly_at_the_starting_deadline_still_starts(late: timedelta, starts: bool) -> None:
    slot = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    seen = observe(
        spec(schedule="0 * * * *", startingDeadlineSeconds=300),
        taken(slot - timedelta(hours=1)),
        created=slot - timedelta(days=1),
    )
    decision = decide(seen, slot + late, Limits(), new_uid)
    assert [r.id for r in decision.claimed] == (["s202606101200"] if starts else [])
    assert decision.missed == (0 if starts else 1)
    assert decision.status.last_schedule_time == "2026-06-10T12:00:00Z"


@pytest.mark.parametrize("before", [None, "0 3 * * *"])
def test_adding_or_changing_a_schedule_on_an_old_resource_reports_no_missed_runs(before: str | None) -> None:
    created = datetime(2023, 1, 1, tzinfo=UTC)
    now = datetime(2026, 6, 10, 12, 7, 30, tzinfo=UTC)
    old_slot = "2026-06-10T03:00:00Z" if before else None
    status = ResourceStatus(observed_generation=1, last_schedule_time=old_slot)
    cluster = Cluster(spec(schedule="*/5 * * * *"), status, now, created, generation=2)
    decision = cluster.reconcile()
    assert decision.missed == 0
    assert events(decision, "MissedSchedule") == []
    assert decision.status.missed_runs == 0
    assert [r.trigger for r in decision.claimed] == ["SpecChanged"]  # the 12:05 slot is due with it: one run
    assert decision.claimed[0].scheduled_time == "2026-06-10T12:05:00Z"
    cluster.run_until(now + timedelta(hours=1))
    assert cluster.missed == 0
    assert [r.id for r in cluster.started[1:3]] == ["s202606101210", "s202606101215"]


def test_a_spec_change_waiting_under_forbid_stands_for_the_slots_that_pass() -> None:
    now = datetime(2026, 6, 10, 12, 0, 0, tzinfo=UTC)
    cluster = Cluster(
        spec(schedule="*/5 * * * *", startingDeadlineSeconds=60),
        taken(now),
        now,
        now,
        run_for=timedelta(minutes=30),
    )
    cluster.run_until(now + timedelta(minutes=2))
    assert [r.id for r in cluster.started] == []
    cluster.spec, cluster.generation = (
        spec(schedule="*/5 * * * *", startingDeadlineSeconds=60, window="48h"),
        2,
    )
    cluster.run_until(now + timedelta(minutes=4))
    assert [r.id for r in cluster.started] == ["g2"]
    cluster.spec, cluster.generation = (
        spec(schedule="*/5 * * * *", startingDeadlineSeconds=60, window="72h"),
        3,
    )
    cluster.run_until(
        now + timedelta(minutes=34)
    )  # g2 runs until 12:32: slots 12:05 ... 12:30 pass meanwhile
    assert [r.id for r in cluster.started] == ["g2", "g3"]
    assert cluster.started[1].start_time == "2026-06-10T12:32:00Z"
    assert cluster.missed == 0


# ---------------------------------------------------------------- Forbid: a slot inside an active run


@pytest.mark.parametrize(
    ("ends_after", "starts_late"), [(timedelta(seconds=240), True), (timedelta(seconds=420), False)]
)
def test_a_slot_inside_an_active_run_starts_late_within_the_deadline_and_is_missed_after_it(
    ends_after: timedelta, starts_late: bool
) -> None:
    slot = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    first = slot - timedelta(minutes=1)
    cluster = Cluster(
        spec(schedule="0 12 * * *", startingDeadlineSeconds=300),
        taken(first - timedelta(seconds=1)),
        first,
        first - timedelta(days=1),
        run_for=timedelta(minutes=1) + ends_after,
    )
    cluster.status = cluster.status.model_copy(
        update={"observed_generation": 0}
    )  # a spec change starts a run
    cluster.run_until(slot + timedelta(minutes=20))
    assert [r.id for r in cluster.started][:1] == ["g1"]
    late = [r for r in cluster.started if r.trigger == "Schedule"]
    if starts_late:
        assert [r.id for r in late] == ["s202606101200"]
        assert late[0].start_time == iso(slot + ends_after), "when the active run ended"
        assert cluster.missed == 0
    else:
        assert late == []
        assert cluster.missed == 1
        assert cluster.status.missed_runs == 1
    assert len([j for j in cluster.jobs.values() if not j.finished]) == 0


# ---------------------------------------------------------------- suspend


def test_slots_while_suspended_are_not_missed_and_resuming_counts_none() -> None:
    now = datetime(2026, 6, 10, 12, 0, 30, tzinfo=UTC)
    cluster = Cluster(
        spec(schedule="* * * * *", suspend=True),
        taken(now - timedelta(hours=2)),
        now,
        now - timedelta(days=5),
    )
    cluster.run_until(now + timedelta(hours=3))
    assert cluster.started == []
    assert cluster.missed == 0
    assert cluster.status.missed_runs == 0
    assert cluster.status.phase == "Suspended"
    assert cluster.status.next_run_time is None
    cluster.spec, cluster.generation = spec(schedule="* * * * *"), 2
    cluster.now += timedelta(hours=5)  # the operator looks again long after the resume
    decision = cluster.reconcile()
    assert decision.missed == 0
    assert cluster.status.missed_runs == 0
    assert [r.trigger for r in decision.claimed] == ["SpecChanged"]


# ---------------------------------------------------------------- what slipped past validation


@pytest.mark.parametrize(
    ("schedule", "zone"),
    [
        ("0 0 30 2 *", "UTC"),  # never comes
        ("0 0 31-31 2 *", "UTC"),  # croniter would read it as every day of February
        ("every five minutes", "UTC"),
        ("61 * * * *", "UTC"),
        ("* * * * *", "Mars/Olympus_Mons"),
    ],
)
def test_a_schedule_that_slipped_past_validation_fails_the_spec_not_the_reconcile(
    schedule: str, zone: str
) -> None:
    """An object stored under older rules (or written around them) reaches decide() with a schedule the
    model would reject: the decision says the spec is invalid, and starts nothing."""
    valid = spec(schedule="0 * * * *")
    slipped = valid.model_copy(update={"schedule": schedule, "time_zone": zone})  # no validation
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    for status in (ResourceStatus(), taken(now - timedelta(days=1))):
        decision = decide(observe(slipped, status, created=now - timedelta(days=2)), now, Limits(), new_uid)
        assert decision.claimed == []
        assert decision.create == []
        failed = next(c for c in decision.status.conditions if c.type == "Failed")
        assert (failed.status, failed.reason) == ("True", "InvalidSpec")
        assert "schedule" in failed.message
        assert decision.status.phase == "Failed"
        assert decision.status.next_run_time is None
