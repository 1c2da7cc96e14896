"""One reconcile of one resource: observe, plan, and act under the resource's Lease.

Order matters for exactly-once: the intended run is recorded in status first, then its Job is created with
a name derived from the run; a Job that already exists for that run is adopted. A crash at any point leads
the next reconcile (in this or another instance) to the same Job, never to a second one.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Pod
from lightkube.types import CascadeType, PatchType
from pydantic import ValidationError

from datamanager.api.common import GROUP, VERSION, RunSpecBase

from . import metrics
from .jobs import build_job
from .leases import LeaseKeeper
from .membership import Membership
from .model import (
    ANNOTATION_RUN_NOW,
    LABEL_RESOURCE_UID,
    LABEL_RUN_ID,
    PLURALS,
    SPECS,
    Body,
    Key,
    as_dict,
)
from .outcome import Outcome, job_finished, now_utc, outcome_of, stuck_reason
from .planning import Observed, ObservedJob, Plan, Trigger, history_to_delete, plan
from .settings import OperatorSettings
from .status import combine, conditions_for, iso, phase_of, with_transition_times

log = logging.getLogger(__name__)
RESOURCES = {
    kind: create_namespaced_resource(GROUP, VERSION, kind, plural) for kind, plural in PLURALS.items()
}
ACTIVE_RECHECK_SECONDS = 15.0


@dataclass
class Cache:
    """The latest bodies seen by the watches, keyed for the reconciler."""

    resources: dict[Key, Body] = field(default_factory=dict)
    jobs: dict[tuple[str, str], Body] = field(default_factory=dict)  # (namespace, name)

    def jobs_of(self, namespace: str, uid: str) -> list[Body]:
        return [
            job
            for (ns, _), job in self.jobs.items()
            if ns == namespace and job["metadata"].get("labels", {}).get(LABEL_RESOURCE_UID) == uid
        ]


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def observed_job(job: Body) -> ObservedJob:
    finished, succeeded, _ = job_finished(job)
    meta = job["metadata"]
    created = parse_time(meta.get("creationTimestamp")) or now_utc()
    return ObservedJob(
        meta["name"], meta.get("labels", {}).get(LABEL_RUN_ID, ""), not finished, succeeded, created
    )


@dataclass
class Actions:
    """Side effects a reconcile decided on, applied in a fixed order under the Lease."""

    status: Body
    create: Body | None = None
    delete: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    finished: Outcome | None = None


class Reconciler:
    def __init__(
        self,
        client: AsyncClient,
        settings: OperatorSettings,
        cache: Cache,
        leases: LeaseKeeper,
        membership: Membership,
    ) -> None:
        self.client = client
        self.settings = settings
        self.cache = cache
        self.leases = leases
        self.membership = membership
        self._background: set[asyncio.Task[None]] = set()

    async def reconcile(self, key: Key) -> float | None:
        """Returns seconds until this resource needs another look, or None when only events matter."""
        body = self.cache.resources.get(key)
        if body is None:
            self.leases.forget(key)
            return None
        meta = body["metadata"]
        if meta.get("deletionTimestamp") or not self.membership.mine(meta["uid"]):
            return None
        status: Body = copy.deepcopy(body.get("status") or {})
        try:
            spec: RunSpecBase = SPECS[key.kind].model_validate(body.get("spec") or {})
        except ValidationError as exc:
            return await self._invalid(key, body, status, exc)
        now = now_utc()
        jobs = self.cache.jobs_of(key.namespace, meta["uid"])
        actions = Actions(status=status)
        await self._follow_active_run(key, spec, jobs, actions, now)
        seen = Observed(
            generation=int(meta.get("generation", 1)),
            observed_generation=status.get("observedGeneration"),
            created=parse_time(meta.get("creationTimestamp")) or now,
            run_now=(meta.get("annotations") or {}).get(ANNOTATION_RUN_NOW),
            handled_trigger=status.get("handledTrigger"),
            last_schedule_time=parse_time(status.get("lastScheduleTime")),
            jobs=tuple(observed_job(j) for j in jobs if j["metadata"]["name"] not in actions.delete),
        )
        decided = plan(spec, seen, now)
        self._apply_plan(key, body, spec, decided, actions, now, seen)
        actions.delete += history_to_delete(
            [observed_job(j) for j in jobs if j["metadata"]["name"] not in actions.delete],
            spec.successful_runs_history_limit,
            spec.failed_runs_history_limit,
        )
        self._finish_status(body, spec, actions.status)
        changed = _without_holder(actions.status) != _without_holder(body.get("status") or {})
        if changed or actions.create or actions.delete:
            actions.status["leaseHolder"] = self.settings.instance_id
            if not await self.leases.acquire(key, owner=body):
                metrics.LEASE_CONFLICTS.inc()
                return float(self.settings.lease_seconds)
            await self._execute(key, body, actions)
            if decided.start is not None:
                metrics.RUNS_STARTED.labels(key.kind, decided.start.kind).inc()
                started = decided.start.scheduled_time or self._trigger_time(body, decided.start)
                metrics.TRIGGER_TO_JOB.labels(key.kind).observe(
                    max((now_utc() - started).total_seconds(), 0.0)
                )
        if actions.status.get("activeRun"):
            return ACTIVE_RECHECK_SECONDS
        if decided.next_run is not None:
            return max((decided.next_run - now_utc()).total_seconds(), 0.5)
        return None

    # ------------------------------------------------------------ observing

    async def _follow_active_run(
        self, key: Key, spec: RunSpecBase, jobs: list[Body], actions: Actions, now: datetime
    ) -> None:
        active = actions.status.get("activeRun")
        if not active:
            return
        job = next((j for j in jobs if j["metadata"]["name"] == active["jobName"]), None)
        if job is None:
            # recorded but not created yet (an instance stopped in between): create it now, same name
            actions.create = build_job(self.cache.resources[key], spec, _trigger_of(active), self.settings)
            return
        finished, _, _ = job_finished(job)
        created = parse_time(job["metadata"].get("creationTimestamp")) or now
        if not finished and (now - created).total_seconds() < self.settings.stuck_pod_seconds:
            return  # too young to be stuck: no need to look at its pods yet
        pods = await self._pods_of(key.namespace, active["jobName"])
        outcome = outcome_of(job, pods)
        if not outcome.finished:
            stuck = stuck_reason(pods, now, self.settings.stuck_pod_seconds)
            if stuck is None:
                return
            actions.delete.append(active["jobName"])
            outcome = Outcome(True, False, stuck[0], f"a worker pod could not start: {stuck[1]}", iso(now))
        self._record_outcome(key, spec, active, outcome, actions)

    async def _pods_of(self, namespace: str, job_name: str) -> list[Body]:
        pods = self.client.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job_name})
        return [as_dict(pod) async for pod in pods]

    def _record_outcome(
        self, key: Key, spec: RunSpecBase, active: Body, outcome: Outcome, actions: Actions
    ) -> None:
        status = actions.status
        last = {
            **active,
            "completionTime": outcome.completion_time,
            "outcome": "Succeeded" if outcome.succeeded else "Failed",
            "reason": outcome.reason,
            "message": outcome.message[:1000],
        }
        status["lastRun"] = last
        status["activeRun"] = None
        if outcome.succeeded:
            status.update(combine(outcome.summaries, spec, self.settings.dataset_status_limit))
            actions.events.append(
                ("Normal", "RunSucceeded", f"run {active['id']} succeeded ({active['jobName']})")
            )
        else:
            actions.events.append(
                (
                    "Warning",
                    "RunFailed",
                    f"run {active['id']} failed: {outcome.reason}: {outcome.message[:300]}",
                )
            )
        actions.finished = outcome

    # ------------------------------------------------------------ deciding

    def _apply_plan(
        self,
        key: Key,
        body: Body,
        spec: RunSpecBase,
        decided: Plan,
        actions: Actions,
        now: datetime,
        seen: Observed,
    ) -> None:
        status = actions.status
        if decided.last_schedule_time is not None:
            status["lastScheduleTime"] = iso(decided.last_schedule_time)
        status["nextRunTime"] = iso(decided.next_run) if decided.next_run and not spec.suspend else None
        if decided.missed:
            status["missedRuns"] = int(status.get("missedRuns") or 0) + decided.missed
            metrics.MISSED_RUNS.labels(key.kind).inc(decided.missed)
            actions.events.append(
                (
                    "Warning",
                    "MissedSchedule",
                    f"{decided.missed} scheduled run(s) missed their starting deadline "
                    f"({spec.starting_deadline_seconds}s); not replayed",
                )
            )
        if decided.skipped_slot is not None:
            actions.events.append(
                (
                    "Normal",
                    "RunSkipped",
                    f"slot {iso(decided.skipped_slot)} skipped: a run is "
                    "still active and concurrencyPolicy is Forbid",
                )
            )
        if decided.handled_trigger is not None:
            status["handledTrigger"] = decided.handled_trigger
        if decided.observe_generation:
            status["observedGeneration"] = seen.generation
        actions.delete += decided.delete_active
        trigger = decided.start
        if trigger is None:
            return
        job = build_job(body, spec, trigger, self.settings)
        status["activeRun"] = {
            "id": trigger.run_id,
            "jobName": job["metadata"]["name"],
            "trigger": trigger.kind,
            "scheduledTime": iso(trigger.scheduled_time) if trigger.scheduled_time else None,
            "startTime": iso(now),
            "outcome": "Running",
        }
        if trigger.kind in ("Created", "SpecChanged"):
            status["observedGeneration"] = seen.generation
        status.setdefault("observedGeneration", seen.generation)
        actions.create = job
        actions.events.append(
            (
                "Normal",
                "RunStarted",
                f"run {trigger.run_id} ({trigger.kind}) -> Job {job['metadata']['name']}",
            )
        )

    def _finish_status(self, body: Body, spec: RunSpecBase, status: Body) -> None:
        if status.get("activeRun") is None:
            status.pop("activeRun", None)
        status["leaseHolder"] = (
            self.settings.instance_id
            if (status.get("activeRun") or status != (body.get("status") or {}))
            else status.get("leaseHolder")
        )
        status["phase"] = phase_of(status, spec.suspend)
        generation = int(status.get("observedGeneration") or body["metadata"].get("generation", 1))
        old = (body.get("status") or {}).get("conditions") or []
        conditions = conditions_for(status, spec, generation, None)
        status["conditions"] = with_transition_times(conditions, old, iso(now_utc()))
        for name in [k for k, v in status.items() if v is None]:
            del status[name]

    # ------------------------------------------------------------ acting

    async def _execute(self, key: Key, body: Body, actions: Actions) -> None:
        for name in actions.delete:
            try:
                await self.client.delete(Job, name, namespace=key.namespace, cascade=CascadeType.BACKGROUND)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
            self.cache.jobs.pop((key.namespace, name), None)
        await self._write_status(key, body, actions.status)
        if actions.create is not None:
            await self._create_job(key, actions.create)
        if actions.finished is not None:
            self._finished_metrics(key, body, actions)
        for kind, reason, message in actions.events:
            task = asyncio.create_task(self._event(key, body, kind, reason, message))
            self._background.add(task)  # events are best effort: they never delay the next reconcile
            task.add_done_callback(self._background.discard)

    async def _write_status(self, key: Key, body: Body, status: Body) -> None:
        old = body.get("status") or {}
        if status == old:
            return
        patch = {**{k: None for k in old if k not in status}, **status}
        resource = RESOURCES[key.kind]
        updated = await self.client.patch(
            resource.Status, key.name, {"status": patch}, namespace=key.namespace, patch_type=PatchType.MERGE
        )
        fresh = as_dict(updated)
        fresh.setdefault("kind", key.kind)
        current = self.cache.resources.get(key)
        if current is None or _version(fresh) >= _version(current):
            self.cache.resources[key] = fresh

    async def _create_job(self, key: Key, manifest: Body) -> None:
        name = manifest["metadata"]["name"]
        try:
            created = await self.client.create(cast(Job, Job.from_dict(manifest)))
            self.cache.jobs[(key.namespace, name)] = as_dict(created)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            # the Job of this run exists already (another instance, or before a restart): adopt it
            log.debug("adopting existing Job %s/%s", key.namespace, name)

    def _finished_metrics(self, key: Key, body: Body, actions: Actions) -> None:
        outcome = actions.finished
        assert outcome is not None
        status = actions.status
        last = status.get("lastRun") or {}
        metrics.RUNS.labels(key.kind, last.get("outcome", "Failed"), outcome.reason).inc()
        started, ended = parse_time(last.get("startTime")), parse_time(outcome.completion_time)
        if started and ended:
            metrics.RUN_DURATION.labels(key.kind).observe(max((ended - started).total_seconds(), 0.0))
        if outcome.succeeded and ended:
            metrics.LAST_SUCCESS.labels(key.kind, key.namespace, key.name).set(ended.timestamp())
            if status.get("healthScore") is not None:
                metrics.HEALTH_SCORE.labels(key.namespace, key.name).set(float(status["healthScore"]))

    async def _event(self, key: Key, body: Body, kind: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = now_utc()
        event = Event(
            metadata=ObjectMeta(generateName=f"{key.name}.", namespace=key.namespace),
            involvedObject=ObjectReference(
                apiVersion=f"{GROUP}/{VERSION}",
                kind=key.kind,
                name=key.name,
                namespace=key.namespace,
                uid=meta["uid"],
                resourceVersion=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type=kind,
            count=1,
            firstTimestamp=now,
            lastTimestamp=now,
            source=EventSource(component="datamanager-operator"),
            reportingComponent="datamanager-operator",
            reportingInstance=self.settings.instance_id,
        )
        try:
            await self.client.create(event)
        except ApiError as exc:  # events are best effort
            log.debug("event %s for %s not recorded: %s", reason, key, exc.status.message)

    async def _invalid(self, key: Key, body: Body, status: Body, exc: ValidationError) -> float | None:
        """A spec the API server accepted but the models reject (e.g. an impossible cron date)."""
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        generation = int(body["metadata"].get("generation", 1))
        status["observedGeneration"] = generation
        status["phase"] = "Failed"
        status["conditions"] = with_transition_times(
            conditions_for(status, None, generation, f"invalid spec: {problems}"),
            (body.get("status") or {}).get("conditions") or [],
            iso(now_utc()),
        )
        if status != (body.get("status") or {}) and await self.leases.acquire(key, owner=body):
            await self._write_status(key, body, status)
        return None

    @staticmethod
    def _trigger_time(body: Body, trigger: Trigger) -> datetime:
        meta = body["metadata"]
        if trigger.kind == "Created":
            return parse_time(meta.get("creationTimestamp")) or now_utc()
        fields = meta.get("managedFields") or []
        times = [
            parse_time(f.get("time")) for f in fields if f.get("time") and f.get("subresource") != "status"
        ]
        return max((t for t in times if t), default=now_utc())


def _trigger_of(active: Body) -> Trigger:
    return Trigger(active["id"], active["trigger"], parse_time(active.get("scheduledTime")))


def _without_holder(status: Body) -> Body:
    return {k: v for k, v in status.items() if k != "leaseHolder"}


def _version(body: Body) -> int:
    try:
        return int(body["metadata"].get("resourceVersion", "0"))
    except ValueError:
        return 0
