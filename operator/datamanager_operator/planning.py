"""Deciding what a resource needs next: a pure function of what is observed (level-based, testable).

One decision, from the resource (spec, status, trigger annotation), its Jobs and their pods:

1. **Follow the active runs.** A run whose Job finished gets its outcome; a Job deleted before it finished
   ends its run as ``JobDeleted`` (how a user cancels a run); a pod that cannot start ends it with the
   pod's reason; a Job the API server refused ends it as ``JobRejected``. A claimed run whose Job is not seen
   is created (the reconciler first confirms, by live reads, that it is absent and still claimed).
2. **Start a run** when a trigger is due: a manual request (annotation), a new generation, a cron slot.
   Triggers due together start one run, which consumes them all. ``Forbid`` waits while a run is active
   (a cron slot starts late if the run ends within ``startingDeadlineSeconds``, and is missed otherwise);
   ``Replace`` ends the active runs first (``Replaced``); ``Allow`` runs them side by side.
3. **Record before anything goes.** A run's claim (id, number, uid, Job name) and every outcome are in the
   status the reconciler writes (fenced by resourceVersion) before a Job is created, released from the
   operator's finalizer, or deleted. So a run's Job is created at most once, and no Job can disappear
   before its run's outcome is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

from datamanager.api.common import ConcurrencyPolicy, RunSpecBase
from datamanager.api.dataaudit import HealthThresholds
from datamanager.api.status import ResourceStatus, RunRef, TriggerKind
from datamanager.cron import MISSED_CAP, latest, slots

from .model import job_name
from .outcome import MESSAGE_LIMIT, Outcome, finished, stuck, stuck_deadline
from .status import conditions_for, iso, phase_of, results_of, with_transition_times
from .views import JobView, PodView, parse_time


@dataclass(frozen=True)
class Limits:
    """Operator settings the decision depends on."""

    stuck_pod_seconds: int = 120
    unschedulable_seconds: int = 600
    dataset_status_limit: int = 10


@dataclass(frozen=True)
class Observed:
    name: str
    uid: str
    generation: int
    created: datetime
    run_now: str | None  # the manual-trigger annotation's value
    spec: RunSpecBase | None  # None: the spec is invalid
    invalid: str | None  # why the spec is invalid
    thresholds: HealthThresholds | None  # audits only
    status: ResourceStatus
    jobs: Mapping[str, JobView]  # this resource's Jobs, by name
    pods: Mapping[str, Sequence[PodView]]  # by Job name
    rejected: Mapping[str, str] = field(default_factory=dict)  # run uid -> why the API server refused its Job
    image_problem: str | None = None  # why spec.job.image may not run


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Decision:
    status: ResourceStatus
    claimed: list[RunRef] = field(default_factory=list)  # new runs: their Jobs cannot exist yet
    create: list[RunRef] = field(default_factory=list)  # every run whose Job must now be created
    release: list[str] = field(default_factory=list)  # Jobs whose run is recorded: the finalizer goes
    delete: list[str] = field(default_factory=list)  # Jobs of ended runs to remove (history, replaced, ...)
    ended: list[tuple[RunRef, Outcome]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    missed: int = 0
    confirm: list[str] = field(default_factory=list)  # cached Jobs to read live before trusting them
    recheck_at: datetime | None = None  # when to look again if nothing happens

    def look_again(self, moment: datetime | None) -> None:
        if moment is not None and (self.recheck_at is None or moment < self.recheck_at):
            self.recheck_at = moment


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    slot: datetime | None = None


def decide(seen: Observed, now: datetime, limits: Limits, new_uid: Callable[[], str]) -> Decision:
    planner = _Planner(seen, now, limits, new_uid)
    planner.follow_active_runs()
    planner.plan_next_run()
    planner.collect_history()
    planner.finish_status()
    return planner.decision


def history_to_delete(jobs: Sequence[JobView], keep_succeeded: int, keep_failed: int) -> list[str]:
    """Finished Jobs beyond the history limits, oldest first."""
    doomed: list[str] = []
    for succeeded, keep in ((True, keep_succeeded), (False, keep_failed)):
        done = sorted(
            (j for j in jobs if j.finished and j.succeeded is succeeded), key=lambda j: (j.created, j.name)
        )
        doomed += [j.name for j in done[: max(len(done) - keep, 0)]]
    return doomed


class _Planner:
    def __init__(self, seen: Observed, now: datetime, limits: Limits, new_uid: Callable[[], str]) -> None:
        self.seen, self.now, self.limits, self.new_uid = seen, now, limits, new_uid
        self.decision = Decision(status=seen.status)
        self.invalid = seen.invalid  # why the spec cannot run, if it cannot

    @property
    def status(self) -> ResourceStatus:
        return self.decision.status

    def update(self, **fields: object) -> None:
        self.decision.status = self.decision.status.model_copy(update=fields)

    # ------------------------------------------------------------ 1. active runs

    def follow_active_runs(self) -> None:
        seen, limits = self.seen, self.limits
        for run in sorted(self.status.active_runs, key=lambda r: r.number):
            job = seen.jobs.get(run.job_name)
            if job is not None and run.uid and job.run_uid != run.uid:
                message = f"a Job named {run.job_name} already exists and belongs to another run"
                self.end(run, Outcome(False, "JobRejected", message))
            elif job is None:
                if run.uid in seen.rejected:
                    self.end(run, Outcome(False, "JobRejected", seen.rejected[run.uid]))
                else:
                    self.decision.create.append(run)
            elif job.finished:
                self.end(run, finished(job, seen.pods.get(job.name, ())))
            elif job.deleting:
                message = f"Job {job.name} was deleted before it finished: the run is cancelled"
                self.end(run, Outcome(False, "JobDeleted", message))
            else:
                pods = seen.pods.get(job.name, ())
                why = stuck(pods, self.now, limits.stuck_pod_seconds, limits.unschedulable_seconds)
                if why is not None:
                    self.end(run, Outcome(False, *why))  # its Job goes with the history: unfinished
                    self.decision.confirm.append(job.name)  # from the cache: read the pods again first
                else:
                    self.decision.look_again(
                        stuck_deadline(pods, limits.stuck_pod_seconds, limits.unschedulable_seconds)
                    )

    def end(self, run: RunRef, outcome: Outcome) -> None:
        """Records how ``run`` ended; an older run ending after a newer one never becomes ``lastRun``."""
        completed = outcome.completion_time or iso(self.now)
        ended = run.model_copy(
            update={
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "message": outcome.message[:MESSAGE_LIMIT],
                "completion_time": completed,
            }
        )
        status = self.status
        fields: dict[str, object] = {
            "active_runs": [r for r in status.active_runs if r.number != run.number],
            "consecutive_failures": 0 if outcome.succeeded else status.consecutive_failures + 1,
        }
        if outcome.succeeded:
            fields["last_successful_time"] = max(status.last_successful_time or "", completed)
        if status.last_run is None or run.number > status.last_run.number:
            fields["last_run"] = ended
            if outcome.succeeded:
                fields.update(
                    results_of(outcome.summaries, self.seen.thresholds, self.limits.dataset_status_limit)
                )
        self.update(**fields)
        self.decision.create = [r for r in self.decision.create if r.number != run.number]
        self.decision.ended.append((ended, outcome))
        if outcome.succeeded:
            event = Event("Normal", "RunSucceeded", f"run {run.id} succeeded ({run.job_name})")
        else:
            message = f"run {run.id} failed: {outcome.reason}: {outcome.message}"
            event = Event("Warning", "RunFailed", message[:MESSAGE_LIMIT])
        self.decision.events.append(event)

    # ------------------------------------------------------------ 2. the next run

    def plan_next_run(self) -> None:
        seen, spec, status = self.seen, self.seen.spec, self.status
        manual = seen.run_now if seen.run_now and seen.run_now != status.handled_trigger else None
        new_generation = status.observed_generation != seen.generation
        if spec is None:  # invalid: the generation is taken (conditions say why), nothing can start
            self.update(observed_generation=seen.generation)
            if manual:
                self.ignore(manual, "the spec is invalid")
            return
        try:
            slot = self.schedule(spec)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            # the model admits no such schedule; one stored under older rules must not fail every reconcile
            self.invalid = f"invalid spec: schedule: {exc}"
            self.update(observed_generation=seen.generation, next_run_time=None)
            if manual:
                self.ignore(manual, "the spec is invalid")
            return
        if spec.suspend:
            if manual:
                self.ignore(manual, "the resource is suspended")  # dropped, not queued
            self.update(observed_generation=seen.generation)
            return
        due: list[Trigger] = []
        if manual:
            due.append(Trigger("Manual"))
        if new_generation:
            due.append(Trigger("Created" if status.observed_generation is None else "SpecChanged"))
        if slot is not None:
            due.append(Trigger("Schedule", slot))
        active = self.status.active_runs
        if not due:
            return
        if active and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
            # wait for the active run, after confirming it still runs: a watch may have missed its end
            self.decision.confirm += [r.job_name for r in active if r.job_name in seen.jobs]
            if slot is not None:
                self.decision.look_again(slot + timedelta(seconds=spec.starting_deadline_seconds + 1))
            return
        if active and spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
            for run in list(active):
                self.end(run, Outcome(False, "Replaced", f"replaced by a new run ({due[0].kind})"))
                self.decision.delete.append(run.job_name)  # may not be in the cache yet: by name
        self.start(spec, due)

    def ignore(self, token: str, why: str) -> None:
        self.update(handled_trigger=token)
        self.decision.events.append(Event("Normal", "TriggerIgnored", f"run-now {token!r} ignored: {why}"))

    def schedule(self, spec: RunSpecBase) -> datetime | None:
        """Reads the cron schedule: the slot that may start now, if any; reports and skips missed ones."""
        if not spec.schedule:
            self.update(next_run_time=None)
            return None
        last = parse_time(self.status.last_schedule_time)
        found = slots(spec.schedule, spec.time_zone, last or self.seen.created, self.now)
        self.decision.look_again(found.next)
        self.update(next_run_time=None if spec.suspend else iso(found.next))
        if found.latest is None:
            return None
        if spec.suspend:
            self.update(last_schedule_time=iso(found.latest))  # slots while suspended are not missed
            return None
        # a spec not yet taken (created, a schedule added or changed, resumed) counts from when it is: the
        # run it starts stands for the slots before, which were never its to miss
        counts = self.status.observed_generation == self.seen.generation
        if (self.now - found.latest).total_seconds() > spec.starting_deadline_seconds:
            if counts:
                self.missed(spec, found.passed)
            self.update(last_schedule_time=iso(found.latest))
            return None
        if found.passed > 1:  # the slots before the latest never started: missed, and handled
            if counts:
                self.missed(spec, found.passed - 1)
            before = latest(spec.schedule, spec.time_zone, found.latest - timedelta(seconds=1))
            self.update(last_schedule_time=iso(before) if before else None)
        return found.latest

    def missed(self, spec: RunSpecBase, count: int) -> None:
        count = min(count, MISSED_CAP)  # as CronJob: past the cap, only "at least 100" is known
        self.decision.missed += count
        self.update(missed_runs=self.status.missed_runs + count)
        self.decision.events.append(
            Event(
                "Warning",
                "MissedSchedule",
                f"{count} scheduled run(s) did not start within startingDeadlineSeconds "
                f"({spec.starting_deadline_seconds}s); they are not replayed",
            )
        )

    def start(self, spec: RunSpecBase, due: list[Trigger]) -> None:
        """Claims one run for every trigger due: its id, number, uid and Job name go into status first."""
        seen, status = self.seen, self.status
        number = (
            max((r.number for r in [*status.active_runs, *filter(None, [status.last_run])]), default=0) + 1
        )
        primary = due[0]
        slot = next((t.slot for t in due if t.slot is not None), None)
        if primary.kind == "Manual":
            run_id = f"m{number}"
        elif primary.kind == "Schedule" and slot is not None:
            run_id = f"s{slot:%Y%m%d%H%M}"
        else:
            run_id = f"g{seen.generation}"
        run = RunRef(
            id=run_id,
            number=number,
            uid=self.new_uid(),
            job_name=job_name(seen.name, seen.uid, run_id),
            trigger=primary.kind,
            generation=seen.generation,
            scheduled_time=iso(slot) if slot else None,
            start_time=iso(self.now),
            outcome="Running",
        )
        fields: dict[str, object] = {
            "observed_generation": seen.generation,
            "active_runs": [*status.active_runs, run],
        }
        if any(t.kind == "Manual" for t in due):
            fields["handled_trigger"] = seen.run_now
        if slot is not None:
            fields["last_schedule_time"] = iso(slot)
        elif spec.schedule and status.observed_generation != seen.generation:
            # the schedule applies from this spec on: earlier slots were never this spec's to miss. Never
            # back, though: a replica whose clock is behind would otherwise start a handled slot again
            before = latest(spec.schedule, spec.time_zone, self.now)
            handled = parse_time(status.last_schedule_time)
            if before is not None and (handled is None or before > handled):
                fields["last_schedule_time"] = iso(before)
        self.update(**fields)
        if seen.image_problem:
            self.end(run, Outcome(False, "ImageNotAllowed", seen.image_problem))
            return
        self.decision.claimed.append(run)
        self.decision.create.append(run)
        self.decision.events.append(
            Event("Normal", "RunStarted", f"run {run.id} ({run.trigger}) -> Job {run.job_name}")
        )

    # ------------------------------------------------------------ 3. Jobs of recorded runs

    def collect_history(self) -> None:
        """Jobs whose run is recorded lose the finalizer; unfinished ones (replaced, stuck, rejected, or a
        run cancelled some other way) and those beyond the history limits are deleted."""
        active = {r.job_name for r in self.status.active_runs}
        recorded = [j for j in self.seen.jobs.values() if j.name not in active]
        self.decision.release += [j.name for j in recorded if j.finalized]
        doomed = set(self.decision.delete)
        for job in recorded:
            if not job.finished and not job.deleting and job.name not in doomed:
                self.decision.delete.append(job.name)
        spec = self.seen.spec
        if spec is not None:
            kept = [j for j in recorded if j.finished and not j.deleting]
            self.decision.delete += history_to_delete(
                kept, spec.successful_runs_history_limit, spec.failed_runs_history_limit
            )

    # ------------------------------------------------------------ 4. status

    def finish_status(self) -> None:
        seen, spec = self.seen, self.seen.spec
        conditions = conditions_for(self.status, seen.thresholds, seen.generation, self.invalid)
        self.update(
            phase=phase_of(self.status, bool(spec and spec.suspend), self.invalid is not None),
            conditions=with_transition_times(conditions, seen.status.conditions, iso(self.now)),
        )
