"""Wiring: informers fill the caches and feed a work queue; workers reconcile under Leases.

Startup order: the HTTP endpoints (``/readyz`` says not ready), then every informer lists its kind and the
replica reads its peers; only then is every resource queued and do the workers start, so no decision is
ever made on a cache that has not been filled. Every resource is queued again every ``resync_seconds``, each
at its own moment of the period (level-based: a reconcile that finds nothing to do makes no request), and
Leases of resources that no longer exist and that no replica removed are removed at the start and every
``SWEEP_PERIODS`` periods. Transient API errors are retried with backoff and never end the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import signal
import zlib
from collections.abc import Iterator

from lightkube import AsyncClient, KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Pod
from prometheus_client.registry import Collector

from . import metrics
from .cluster import RESOURCES, ClusterError, LiveCluster
from .informer import Change, Informer, Store
from .leases import ANNOTATION_FOR, LEASE_LABEL, LeaseKeeper
from .membership import PRESENCE, Membership, Presence
from .model import LABEL_MANAGED_BY, MANAGED_BY, PLURALS, Key
from .probes import serve
from .reconciler import Caches, Reconciler
from .settings import OperatorSettings
from .views import JobView, PodView, ResourceView
from .workqueue import WorkQueue

log = logging.getLogger("datamanager.operator")
AnyInformer = Informer[ResourceView] | Informer[JobView] | Informer[PodView] | Informer[Presence]
MAX_ERROR_BACKOFF = 300.0
SWEEP_PERIODS = 6  # resync periods between two sweeps of Leases whose resource is gone
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


class Controller:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.caches = Caches(resources={kind: Store() for kind in PLURALS})
        self.queue: WorkQueue[Key] = WorkQueue()
        self.informers: list[AnyInformer] = []
        self.membership: Membership | None = None
        self._failures: dict[Key, int] = {}

    def ready(self) -> bool:
        return bool(
            self.informers
            and all(i.primed.is_set() for i in self.informers)
            and self.membership is not None
            and self.membership.known.is_set()
        )

    # ------------------------------------------------------------ changes seen by the informers

    def on_resource(self, change: Change[ResourceView]) -> None:
        before, after = change
        view = after or before
        assert view is not None
        self.queue.add(view.key)

    def on_job(self, change: Change[JobView]) -> None:
        before, after = change
        job = after or before
        if before is not None and after is None:  # its pods' summaries were kept for it: no longer needed
            for pod in self.caches.pods_of(before.namespace, before.name):
                self.caches.pods.remove(pod.namespace, pod.name)
        if job is not None and job.owner is not None:
            self.queue.add(job.owner)

    def on_pod(self, change: Change[PodView]) -> None:
        before, after = change
        pod = after or before
        if pod is None:
            return
        job = self.caches.jobs.get(pod.namespace, pod.job_name)
        if after is None and before is not None and before.exit_code is not None and job and job.finalized:
            # a finished pod deleted before its run was recorded (ttlSecondsAfterFinished deletes pods
            # first): its summary is kept until the Job goes
            self.caches.pods.apply(before)
        if job is not None and job.owner is not None:
            self.queue.add(job.owner)

    def collectors(self, leases: LeaseKeeper) -> list[Collector]:
        """Per-resource series of the resources this replica owns, and what it keeps, read at scrape time."""
        return [
            metrics.ResourceCollector(self.owned),
            metrics.StateCollector(
                self._cached,
                lambda: (len(self.queue), self.queue.scheduled),
                lambda: len(leases.held()),
            ),
        ]

    def _cached(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for informer in self.informers:  # one per kind and namespace; those of a kind share one store
            counts[informer.name] = len(informer.store)
        return counts

    def owned(self) -> Iterator[ResourceView]:
        membership = self.membership
        if membership is None:
            return
        for store in self.caches.resources.values():
            yield from (view for view in store if membership.mine(view.uid))

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        settings = self.settings
        client = AsyncClient(KubeConfig.from_env(), field_manager="datamanager-operator")
        cluster = LiveCluster(client, settings.qps, settings.burst, settings.instance_id)
        leases = LeaseKeeper(cluster, settings.instance_id, settings.namespace, settings.lease_seconds)
        self.membership = Membership(
            cluster, settings.namespace, settings.instance_id, settings.presence_seconds, self._requeue_all
        )
        reconciler = Reconciler(cluster, settings, self.caches, leases, self.membership)
        for collector in self.collectors(leases):
            metrics.REGISTRY.register(collector)
        runner = await serve(settings.http_port, self.ready)
        self.informers = self._informers(client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(i.run()) for i in self.informers]
        tasks.append(asyncio.create_task(self._keep_membership()))
        log.info(
            "datamanager operator %s starting: watching %s, %d workers, lease %ss",
            settings.instance_id,
            ", ".join(settings.watch_namespaces) or "all namespaces",
            settings.workers,
            settings.lease_seconds,
        )
        try:
            started = asyncio.create_task(self._start_when_ready(reconciler, leases, tasks))
            await stop.wait()
            started.cancel()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for key in leases.held():
                with contextlib.suppress(ClusterError):
                    await leases.release(key)
            await self.membership.leave()
            await runner.cleanup()
            await client.close()
            log.info("datamanager operator %s stopped", settings.instance_id)

    def _informers(self, client: AsyncClient) -> list[AnyInformer]:
        namespaces: list[str | None] = list(self.settings.watch_namespaces) or [None]
        assert self.membership is not None
        membership = self.membership
        found: list[AnyInformer] = [
            Informer(
                "presence",
                client,
                Lease,
                Presence.of,
                membership.presences,
                membership.observe,
                self.settings.namespace,
                PRESENCE,
            )
        ]
        for namespace in namespaces:
            for kind in PLURALS:
                found.append(
                    Informer(
                        PLURALS[kind],
                        client,
                        RESOURCES[kind],
                        functools.partial(ResourceView.of, kind),
                        self.caches.resources[kind],
                        self.on_resource,
                        namespace,
                    )
                )
            found.append(
                Informer("jobs", client, Job, JobView.of, self.caches.jobs, self.on_job, namespace, MANAGED)
            )
            found.append(
                Informer("pods", client, Pod, PodView.of, self.caches.pods, self.on_pod, namespace, MANAGED)
            )
        return found

    async def _start_when_ready(
        self, reconciler: Reconciler, leases: LeaseKeeper, tasks: list[asyncio.Task[None]]
    ) -> None:
        assert self.membership is not None
        await asyncio.gather(*(i.primed.wait() for i in self.informers), self.membership.known.wait())
        metrics.READY.set(1)
        self._requeue_all()
        tasks += [asyncio.create_task(self._worker(reconciler)) for _ in range(self.settings.workers)]
        tasks.append(asyncio.create_task(self._resync(leases)))
        log.info("datamanager operator %s ready: %d resources", self.settings.instance_id, self._count())

    def _count(self) -> int:
        return sum(len(store) for store in self.caches.resources.values())

    def _all(self) -> Iterator[ResourceView]:
        for store in self.caches.resources.values():
            yield from store

    def _requeue_all(self) -> None:
        for view in self._all():
            self.queue.add(view.key)

    async def _keep_membership(self) -> None:
        assert self.membership is not None
        failures = 0
        while True:
            try:
                await self.membership.beat()
                metrics.MEMBERS.set(len(self.membership.members))
                failures = 0
            except ClusterError as exc:  # the presence Lease expires by itself; try again next beat
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("presence renewal failed (%d in a row): %s", failures, exc)
            await asyncio.sleep(self.settings.presence_seconds)

    async def _resync(self, leases: LeaseKeeper) -> None:
        assert self.membership is not None
        period, loop = self.settings.resync_seconds, asyncio.get_running_loop()
        for count in itertools.count():
            # The sweep lists every run Lease (a replica's biggest request at rest). Holders delete the
            # Leases of deleted resources themselves, so it only finds those whose holder was gone: at the
            # start, when this replica may be the one that was gone, and every SWEEP_PERIODS periods after.
            if count % SWEEP_PERIODS == 0:
                with contextlib.suppress(ClusterError):
                    await self._remove_orphan_leases(leases)
            # Each resource at its own fixed moment of the period, so once per period: all at once would be a
            # replica's busiest moment at rest.
            started = loop.time()
            for phase, key in sorted((_phase(view.key), view.key) for view in self._all()):
                await asyncio.sleep(max(started + phase * period - loop.time(), 0.0))
                self.queue.add(key)
            await asyncio.sleep(max(started + period - loop.time(), 0.0))

    async def _remove_orphan_leases(self, leases: LeaseKeeper) -> None:
        """Run Leases live in the operator's namespace, so no owner reference removes them. Their holder
        deletes them when their resource goes; those nobody held then (their holder was gone too) are deleted
        here by the replica a deleted resource's key maps to."""
        assert self.membership is not None
        for lease in await leases.cluster.list_leases(self.settings.namespace, {LEASE_LABEL: "resource"}):
            target = (lease["metadata"].get("annotations") or {}).get(ANNOTATION_FOR, "")
            kind, _, rest = target.partition("/")
            namespace, _, name = rest.partition("/")
            if kind not in PLURALS or not self.membership.mine(target):
                continue
            key = Key(kind, namespace, name)
            if self.caches.resource(key) is None:
                leases.forget(key)
                await leases.cluster.delete_lease(self.settings.namespace, lease["metadata"]["name"])

    async def _worker(self, reconciler: Reconciler) -> None:
        while True:
            key = await self.queue.get()
            delay: float | None = None
            try:
                delay = await reconciler.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(2.0**failures, MAX_ERROR_BACKOFF)
                metrics.RECONCILE_ERRORS.labels(key.kind).inc()
                if failures in (1, 5) or failures % 20 == 0:  # rate-limited: the metric counts every one
                    log.warning(
                        "reconcile of %s failed (%d in a row, retry in %.0fs): %s",
                        key,
                        failures,
                        delay,
                        exc,
                        exc_info=failures == 1 and not isinstance(exc, ClusterError),
                    )
            finally:
                self.queue.done(key)
            if delay is not None:
                self.queue.add_after(key, delay)
            if self.caches.resource(key) is None:
                self._failures.pop(key, None)
                self.queue.forget(key)


def _phase(key: Key) -> float:
    """A resource's fixed moment in the resync period, as a fraction of it."""
    return (zlib.crc32(str(key).encode()) % 997) / 997
