"""Deciding what a resource needs next, as a pure function of what is observed (level-based, testable).

Triggers, in priority order: a manual request (annotation), a new generation (created or spec changed), a
cron slot. Each gets a deterministic run id, so whichever replica acts, a run maps to exactly one Job name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter

from datamanager.api.common import ConcurrencyPolicy, ScheduleSpec

TriggerKind = Literal["Created", "SpecChanged", "Schedule", "Manual"]
MAX_SLOTS = 1000  # a schedule far behind is summarised, not iterated forever


@dataclass(frozen=True)
class ObservedJob:
    name: str
    run_id: str
    active: bool
    succeeded: bool
    created: datetime


@dataclass(frozen=True)
class Trigger:
    run_id: str
    kind: TriggerKind
    scheduled_time: datetime | None = None


@dataclass
class Plan:
    start: Trigger | None = None
    delete_active: list[str] = field(default_factory=list)  # Replace policy
    skipped_slot: datetime | None = None  # Forbid: a slot passed while a run was active
    missed: int = 0  # slots past the starting deadline, reported and not replayed
    last_schedule_time: datetime | None = None
    observe_generation: bool = False  # suspended: the new spec is taken without a run
    handled_trigger: str | None = None
    next_run: datetime | None = None


@dataclass(frozen=True)
class Observed:
    generation: int
    observed_generation: int | None
    created: datetime
    run_now: str | None  # the manual-trigger annotation's value
    handled_trigger: str | None
    last_schedule_time: datetime | None
    jobs: tuple[ObservedJob, ...]


def manual_run_id(token: str) -> str:
    return "m" + hashlib.sha256(token.encode()).hexdigest()[:8]


def schedule_slots(
    spec: ScheduleSpec, after: datetime, now: datetime
) -> tuple[int, datetime | None, datetime]:
    """How many cron slots fell in (after, now], the latest of them, and the next one after now."""
    assert spec.schedule is not None
    zone = ZoneInfo(spec.time_zone)
    iterator = croniter(spec.schedule, after.astimezone(zone))
    count, latest = 0, None
    slot: datetime = iterator.get_next(datetime)
    while slot <= now:
        count, latest = count + 1, slot
        if count == MAX_SLOTS:  # far behind: find the latest slot from the recent past instead
            iterator = croniter(spec.schedule, max(slot, now - timedelta(days=2)).astimezone(zone))
        slot = iterator.get_next(datetime)
    return count, latest and latest.astimezone(UTC), slot.astimezone(UTC)


def plan(spec: ScheduleSpec, seen: Observed, now: datetime) -> Plan:
    result = Plan(last_schedule_time=seen.last_schedule_time)
    active = [job for job in seen.jobs if job.active]
    due: list[Trigger] = []

    if seen.run_now and seen.run_now != seen.handled_trigger:
        if spec.suspend:
            result.handled_trigger = seen.run_now  # a request made while suspended is dropped, not queued
        else:
            due.append(Trigger(manual_run_id(seen.run_now), "Manual"))
    if seen.observed_generation != seen.generation:
        if spec.suspend:
            result.observe_generation = True
        else:
            kind: TriggerKind = "Created" if seen.observed_generation is None else "SpecChanged"
            due.append(Trigger(f"g{seen.generation}", kind))

    if spec.schedule:
        count, latest, result.next_run = schedule_slots(spec, seen.last_schedule_time or seen.created, now)
        if latest is not None:
            result.last_schedule_time = latest
            result.missed = count - 1
            if spec.suspend:
                result.missed = 0
            elif (now - latest).total_seconds() > spec.starting_deadline_seconds:
                result.missed += 1
            else:
                due.append(Trigger(f"s{latest:%Y%m%d%H%M}", "Schedule", latest))

    if not due:
        return result
    trigger = due[0]
    if active and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
        if trigger.kind == "Schedule":
            result.skipped_slot = trigger.scheduled_time
        return result  # manual and generation triggers wait for the active run to end
    if active and spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
        result.delete_active = [job.name for job in active if job.run_id != trigger.run_id]
    result.start = trigger
    if trigger.kind == "Manual":
        result.handled_trigger = seen.run_now
    return result


def history_to_delete(jobs: list[ObservedJob], keep_succeeded: int, keep_failed: int) -> list[str]:
    """Finished Jobs beyond the history limits, oldest first."""
    doomed: list[str] = []
    for succeeded, keep in ((True, keep_succeeded), (False, keep_failed)):
        finished = sorted(
            (j for j in jobs if not j.active and j.succeeded is succeeded), key=lambda j: j.created
        )
        doomed += [j.name for j in finished[: max(len(finished) - keep, 0)]]
    return doomed
