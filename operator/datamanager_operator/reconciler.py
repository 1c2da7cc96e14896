"""One reconcile of one resource: observe (caches, live reads where the cache could mislead), decide (the
pure ``planning.decide``), and act under the resource's Lease in the one order that keeps runs exactly once:

1. **Status first**, fenced by the resourceVersion the decision was made on: new runs are claimed (id, number,
   uid, Job name) and outcomes recorded. A replica acting on an old view gets 409 and decides again. When
   status does not change, a live read confirms the view before any Job is deleted or released.
2. **Then Jobs of recorded runs are deleted** (replaced, past the history limits, ...): under Replace the old
   Job is going before its successor exists.
3. **Then Jobs are created**, only for runs that status claims, each with the run's uid and the operator's
   finalizer, and only with at least half a Lease left. A run claimed earlier whose Job the cache does not
   show is created only after live reads confirm that the Job is absent and the run still claimed. A Job
   found under the run's name is this run's Job if it carries the run's uid (a create whose answer was lost),
   and never adopted otherwise.
4. **Then Jobs of recorded runs** lose the finalizer.

Because a Job keeps the finalizer until its run is recorded, a Job that is absent while its run is claimed was
never created; so a run's Job is created at most once, however replicas crash or race. The one thing the
Lease adds to that: between a replica's reads and its create, another replica could in principle create,
finish, record and delete the same Job; it cannot while the first holds the Lease, and a create is sent only
before the sender's Lease could be taken over. Removing the finalizer by hand voids the guarantee for the
runs concerned.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from datamanager.api.dataaudit import DataAuditSpec
from datamanager.api.status import ResourceStatus, RunRef

from . import metrics
from .cluster import AlreadyExistsError, Cluster, ConflictError, LateError, RejectedError
from .informer import Store
from .jobs import build_job
from .leases import LeaseKeeper
from .membership import Membership
from .model import SPECS, Body, Key, Kind
from .planning import Decision, Limits, Observed, decide
from .settings import OperatorSettings
from .views import JobView, PodView, ResourceView

log = logging.getLogger(__name__)
REFUSALS = 3  # a Job the API server refuses this many times fails its run (JobRejected)
CONFIRM_EVERY = 30.0  # seconds between live reads that confirm a cached Job blocking a run
RETRY_SOON = 1.0  # seconds until a Job that could not be created in time is tried again


@dataclass
class Caches:
    """What the informers hold; the reconciler reads only these and live reads."""

    resources: dict[Kind, Store[ResourceView]]
    jobs: Store[JobView] = field(default_factory=lambda: Store(lambda j: str(j.owner) if j.owner else None))
    pods: Store[PodView] = field(default_factory=lambda: Store(lambda p: f"{p.namespace}/{p.job_name}"))

    def resource(self, key: Key) -> ResourceView | None:
        return self.resources[key.kind].get(key.namespace, key.name)

    def jobs_of(self, view: ResourceView) -> dict[str, JobView]:
        return {j.name: j for j in self.jobs.indexed(str(view.key)) if j.resource_uid == view.uid}

    def orphans(self, key: Key, view: ResourceView | None) -> list[JobView]:
        """Jobs holding the finalizer whose resource is gone, going, or was re-created under its name."""
        alive = view.uid if view is not None and not view.deleting else None
        return [j for j in self.jobs.indexed(str(key)) if j.finalized and j.resource_uid != alive]

    def pods_of(self, namespace: str, job: str) -> list[PodView]:
        return self.pods.indexed(f"{namespace}/{job}")


def status_body(status: ResourceStatus) -> Body:
    return status.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


class Reconciler:
    def __init__(
        self,
        cluster: Cluster,
        settings: OperatorSettings,
        caches: Caches,
        leases: LeaseKeeper,
        membership: Membership,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_uid: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.caches = caches
        self.leases = leases
        self.membership = membership
        self.clock = clock
        self.new_uid = new_uid
        self.limits = Limits(
            settings.stuck_pod_seconds, settings.unschedulable_seconds, settings.dataset_status_limit
        )
        self._refusals: dict[tuple[Key, str], tuple[int, str]] = {}  # (key, run uid) -> (times, message)
        self._confirmed: dict[tuple[str, str], float] = {}  # (namespace, Job) -> monotonic time of the read
        self._background: set[asyncio.Task[None]] = set()

    def forget(self, key: Key) -> None:
        """Drops what this replica keeps about ``key`` (deleted, or now another replica's)."""
        self.leases.forget(key)
        for ref in [r for r in self._refusals if r[0] == key]:
            del self._refusals[ref]

    async def reconcile(self, key: Key) -> float | None:
        """Returns seconds until this resource needs another look, or None when only events matter."""
        view = self.caches.resource(key)
        orphans = self.caches.orphans(key, view)
        if orphans and self.membership.mine(orphans[0].resource_uid):
            # a resource cache that lags (not yet listed, a watch behind) must not make a live resource's
            # Jobs look orphaned: which resource lives under this name is read live
            live = await self._read(key)
            for job in self.caches.orphans(key, live):  # their runs no longer matter: the GC may have them
                await self.cluster.release_job(job.namespace, job.name)
            view = self.caches.resource(key)
        if view is None or view.deleting or not self.membership.mine(view.uid):
            if view is None:
                await self.leases.delete(key)
            self.forget(key)
            return None
        decision = self._decide(view)
        if decision.confirm and await self._confirm(view, decision.confirm):
            decision = self._decide(view)
        old = ResourceStatus.model_validate(view.status)
        changed = _comparable(decision.status) != _comparable(old)
        if not (changed or decision.create or decision.release or decision.delete):
            return self._next_look(decision)
        need = self.settings.lease_seconds / 2 if decision.create else 1.0
        if not await self.leases.acquire(key, need):
            metrics.LEASE_CONFLICTS.inc()
            return self.leases.retry_in(key)
        if changed:
            written = await self._write_status(view, decision.status)
            if written is None:
                return 0.0  # changed since it was read: decide again on the fresh object
            view = written
            self._committed(view, decision)
        elif decision.delete or decision.release:
            # no fenced write vouches for this view: a resource cache one write behind its Job cache would
            # take the newest run's Job for an ended run's, so the view is read live first
            fresh = await self._read(view.key)
            if fresh is None or fresh.resource_version != view.resource_version:
                return 0.0 if fresh is not None else None
        for name in decision.delete:
            await self.cluster.delete_job(view.namespace, name)
        created = True
        for run in decision.create:
            if not await self._create(view, run, fresh=run in decision.claimed):
                created = False  # too little Lease left: the rest waits for the next look, soon
                break
        for name in decision.release:
            await self.cluster.release_job(view.namespace, name)
        return self._next_look(decision) if created else RETRY_SOON

    # ------------------------------------------------------------ observing and deciding

    def _decide(self, view: ResourceView) -> Decision:
        spec_type = SPECS[view.kind]
        try:
            spec = spec_type.model_validate(view.spec)
            invalid = None
        except ValidationError as exc:
            spec, invalid = None, _problems(exc)
        thresholds = spec.thresholds if isinstance(spec, DataAuditSpec) else None
        if thresholds is None and view.kind == "DataAudit":
            thresholds = DataAuditSpec.model_fields["thresholds"].get_default(call_default_factory=True)
        jobs = self.caches.jobs_of(view)
        seen = Observed(
            name=view.name,
            uid=view.uid,
            generation=view.generation,
            created=view.created,
            run_now=view.run_now,
            spec=spec,
            invalid=invalid,
            thresholds=thresholds,
            status=ResourceStatus.model_validate(view.status),
            jobs=jobs,
            pods={name: self.caches.pods_of(view.namespace, name) for name in jobs},
            rejected={
                uid: message
                for (key, uid), (n, message) in self._refusals.items()
                if key == view.key and n >= REFUSALS
            },
            image_problem=self.settings.image_problem(spec.job.image) if spec else None,
        )
        return decide(seen, self.clock(), self.limits, self.new_uid)

    async def _confirm(self, view: ResourceView, names: list[str]) -> bool:
        """Reads the named Jobs and their pods live (at most every CONFIRM_EVERY seconds per Job) into the
        caches: a watch that missed a change must not block a run or fail one. True when anything was read."""
        now = time.monotonic()
        self._confirmed = {ref: t for ref, t in self._confirmed.items() if now - t < CONFIRM_EVERY}
        read = False
        for name in dict.fromkeys(names):
            ref = (view.namespace, name)
            if now - self._confirmed.get(ref, -CONFIRM_EVERY) < CONFIRM_EVERY:
                continue
            self._confirmed[ref] = now
            read = True
            job = await self.cluster.get_job(view.namespace, name)
            if job is None:
                self.caches.jobs.remove(view.namespace, name)
            else:
                self.caches.jobs.apply(JobView.of(job))
            for pod in await self.cluster.list_pods(view.namespace, name):
                self.caches.pods.apply(PodView.of(pod))
        return read

    # ------------------------------------------------------------ acting

    async def _write_status(self, view: ResourceView, status: ResourceStatus) -> ResourceView | None:
        body = status_body(status.model_copy(update={"lease_holder": self.settings.instance_id}))
        patch = merge_patch(view.status, body)
        try:
            written = await self.cluster.patch_status(view.key, patch, view.resource_version)
        except ConflictError:
            metrics.STATUS_CONFLICTS.inc()
            fresh = await self.cluster.get_resource(view.key)
            if fresh is not None:
                self.caches.resources[view.kind].apply(ResourceView.of(view.kind, fresh))
            return None
        fresh_view = ResourceView.of(view.kind, written)
        self.caches.resources[view.kind].apply(fresh_view)
        return fresh_view

    async def _create(self, view: ResourceView, run: RunRef, fresh: bool) -> bool:
        """Creates ``run``'s Job; False when this replica must stop acting (too little Lease left).

        Between the reads that say the Job is missing and the create, another replica could in principle
        create, finish, record and delete that Job; it cannot while this replica holds the Lease, so the
        create is sent only before this replica's Lease could be taken over (with a quarter of it to spare).
        """
        await self.cluster.pace(1 if fresh else 3)  # rate-limit waits happen here, not between the steps
        need = self.settings.lease_seconds / 2
        if self.leases.remaining(view.key) < need and not await self.leases.acquire(view.key, need):
            return False
        deadline = self.leases.expiry(view.key) - self.settings.lease_seconds / 4
        if not fresh and not await self._still_missing(view, run):
            return True
        spec = SPECS[view.kind].model_validate(view.spec)
        manifest = build_job(view.kind, _meta(view), spec, run, self.settings)
        try:
            created = await self.cluster.create_job(manifest, deadline)
        except LateError:
            return False  # looked again soon, with a renewed Lease
        except AlreadyExistsError:
            existing = await self.cluster.get_job(view.namespace, run.job_name)
            if existing is not None:
                self._found(view, run, JobView.of(existing))
            return True
        except RejectedError as exc:
            count = self._refusals.get((view.key, run.uid), (0, ""))[0] + 1
            self._refusals[(view.key, run.uid)] = (
                count,
                f"the API server refused Job {run.job_name}: {exc.message}",
            )
            metrics.JOB_REFUSALS.labels(view.kind).inc()
            raise
        self._refusals.pop((view.key, run.uid), None)
        self.caches.jobs.apply(JobView.of(created))
        metrics.TRIGGER_TO_JOB.labels(view.kind).observe(
            max((self.clock() - _trigger_time(view, run)).total_seconds(), 0.0)
        )
        return True

    async def _still_missing(self, view: ResourceView, run: RunRef) -> bool:
        """A claimed run's Job the cache does not show: created only if a live read finds no Job, and then a
        live read of the resource still finds the run claimed (in that order: see the module docstring)."""
        job = await self.cluster.get_job(view.namespace, run.job_name)
        if job is not None:
            self._found(view, run, JobView.of(job))
            return False
        fresh = await self._read(view.key)
        if fresh is None:
            return False
        claimed = ResourceStatus.model_validate(fresh.status).active_runs
        return fresh.uid == view.uid and any(r.uid == run.uid and r.number == run.number for r in claimed)

    def _found(self, view: ResourceView, run: RunRef, job: JobView) -> None:
        """A Job under ``run``'s name: the run's own when it carries the run's uid (a create whose answer was
        lost); another's otherwise, which fails the run (JobRejected), also when the cache cannot show that
        Job (one without the operator's labels or owner reference)."""
        self.caches.jobs.apply(job)
        if job.run_uid != run.uid:
            message = f"a Job named {run.job_name} already exists and belongs to another run"
            self._refusals[(view.key, run.uid)] = (REFUSALS, message)

    async def _read(self, key: Key) -> ResourceView | None:
        """The resource read live, into the cache."""
        body = await self.cluster.get_resource(key)
        if body is None:
            return None
        fresh = ResourceView.of(key.kind, body)
        self.caches.resources[key.kind].apply(fresh)
        return fresh

    def _emit(self, view: ResourceView, kind: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self.cluster.record_event(view.key, view.uid, kind, reason, message))
        self._background.add(task)  # events are best effort: they never delay the next reconcile
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ metrics and timing

    def _committed(self, view: ResourceView, decision: Decision) -> None:
        """Events and metrics of what the status write made true (once: a failed write emits nothing)."""
        for event in decision.events:
            self._emit(view, event.type, event.reason, event.message)
        for run in decision.claimed:
            metrics.RUNS_STARTED.labels(view.kind, run.trigger).inc()
        for run, outcome in decision.ended:
            self._refusals.pop((view.key, run.uid), None)
            metrics.RUNS.labels(view.kind, outcome.outcome, outcome.reason).inc()
            started, ended = _time(run.start_time), _time(run.completion_time)
            if started and ended:
                metrics.RUN_DURATION.labels(view.kind).observe(max((ended - started).total_seconds(), 0.0))
        if decision.missed:
            metrics.MISSED_RUNS.labels(view.kind).inc(decision.missed)

    def _next_look(self, decision: Decision) -> float | None:
        if decision.recheck_at is None:
            return None
        return max((decision.recheck_at - self.clock()).total_seconds(), 0.5)


def merge_patch(old: Body, new: Body) -> Body:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``: a merge patch merges nested objects,
    so every key ``new`` leaves out must be sent as null, at any depth (e.g. ``lastRun.scheduledTime`` of a
    scheduled run when a manual one replaces it)."""
    patch: Body = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def _comparable(status: ResourceStatus) -> Body:
    return status_body(status.model_copy(update={"lease_holder": None}))


def _problems(exc: ValidationError) -> str:
    found = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors()[:5])
    return f"invalid spec: {found}"


def _meta(view: ResourceView) -> dict[str, Any]:
    return {"name": view.name, "namespace": view.namespace, "uid": view.uid}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _trigger_time(view: ResourceView, run: RunRef) -> datetime:
    """When the trigger happened: the slot, the creation, or the user's last change (edit or annotation)."""
    if run.scheduled_time:
        return _time(run.scheduled_time) or view.created
    if run.trigger == "Created":
        return view.created
    return view.changed or view.created
