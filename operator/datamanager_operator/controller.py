"""Wiring: Kopf watches the two kinds and their Jobs and feeds a work queue; workers reconcile under Leases.

Kopf is used for what it is good at (watching, login, reconnecting); its peering is not leader election and
is not used. Only event handlers are registered, so Kopf writes nothing to the resources (no annotations,
no finalizers): status changes come from the reconciler alone, and only when something changed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from lightkube import AsyncClient, KubeConfig

from datamanager.api.common import GROUP, VERSION

from . import metrics
from .leases import LeaseKeeper
from .membership import Membership
from .model import LABEL_KIND, LABEL_MANAGED_BY, LABEL_RESOURCE, MANAGED_BY, PLURALS, Body, Key, Kind, as_dict
from .outcome import job_finished
from .probes import serve
from .reconciler import RESOURCES, Cache, Reconciler
from .settings import OperatorSettings
from .workqueue import WorkQueue

log = logging.getLogger("datamanager.operator")
MAX_ERROR_BACKOFF = 300.0


class Controller:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.cache = Cache()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.primed = False
        self._failures: dict[Key, int] = {}

    # ------------------------------------------------------------ watch events (from Kopf)

    def on_resource(self, kind: Kind, event_type: str | None, body: Mapping[str, Any]) -> None:
        data: Body = copy.deepcopy(dict(body))
        data.setdefault("kind", kind)
        key = Key(kind, data["metadata"]["namespace"], data["metadata"]["name"])
        if event_type == "DELETED":
            self.cache.resources.pop(key, None)
            return
        current = self.cache.resources.get(key)
        if current is not None and _rv(data) <= _rv(current):
            return  # already known: typically the echo of the operator's own status write
        self.cache.resources[key] = data
        self.queue.add(key)

    def on_job(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        data: Body = copy.deepcopy(dict(body))
        meta = data["metadata"]
        ref = (meta["namespace"], meta["name"])
        before = self.cache.jobs.get(ref)
        if event_type == "DELETED":
            self.cache.jobs.pop(ref, None)
        else:
            self.cache.jobs[ref] = data
            if before is not None and job_finished(before)[0] == job_finished(data)[0]:
                return  # progress inside a run (pods created, counts) changes nothing the owner decides on
        labels = meta.get("labels") or {}
        kind = labels.get(LABEL_KIND)
        if kind in PLURALS and labels.get(LABEL_RESOURCE):
            self.queue.add(Key(kind, meta["namespace"], labels[LABEL_RESOURCE]))

    def registry(self) -> kopf.OperatorRegistry:
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection_info(KubeConfig.from_env())

        for kind, plural in PLURALS.items():

            @kopf.on.event(GROUP, VERSION, plural, registry=registry)
            def resource_event(type: str | None, body: kopf.Body, kind: Kind = kind, **_: Any) -> None:
                self.on_resource(kind, type, body)

        @kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=registry)
        def job_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            self.on_job(type, body)

        return registry

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        client = AsyncClient(KubeConfig.from_env(), field_manager="datamanager-operator")
        leases = LeaseKeeper(client, self.settings.instance_id, self.settings.lease_seconds)
        membership = Membership(
            client,
            self.settings.namespace,
            self.settings.instance_id,
            self.settings.presence_seconds,
            self._requeue_all,
        )
        reconciler = Reconciler(client, self.settings, self.cache, leases, membership)
        runner = await serve(self.settings.http_port, lambda: self.primed)
        await membership.beat()
        await self._prime(client)
        tasks = [asyncio.create_task(self._worker(reconciler)) for _ in range(self.settings.workers)]
        tasks.append(asyncio.create_task(self._keep_membership(membership)))
        log.info(
            "datamanager operator %s started: watching %s, %d workers, lease %ss",
            self.settings.instance_id,
            ", ".join(self.settings.watch_namespaces) or "all namespaces",
            self.settings.workers,
            self.settings.lease_seconds,
        )
        try:
            await kopf.operator(
                registry=self.registry(),
                settings=self._kopf_settings(),
                standalone=True,
                clusterwide=not self.settings.watch_namespaces,
                namespaces=list(self.settings.watch_namespaces),
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await membership.leave()
            await runner.cleanup()
            await client.close()
            log.info("datamanager operator %s stopped", self.settings.instance_id)

    def _kopf_settings(self) -> kopf.OperatorSettings:
        settings = kopf.OperatorSettings()
        settings.posting.enabled = False  # our own Events say what happened; Kopf's log events are noise
        settings.scanning.disabled = True  # the kinds are known: no CRD or namespace watching, no such RBAC
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        return settings

    async def _prime(self, client: AsyncClient) -> None:
        """A first full list, so readiness means the cache holds every resource and each is queued."""
        namespaces = list(self.settings.watch_namespaces) or ["*"]
        for kind, resource in RESOURCES.items():
            for namespace in namespaces:
                async for obj in client.list(resource, namespace=namespace):
                    self.on_resource(kind, None, as_dict(obj))
        self.primed = True

    def _requeue_all(self) -> None:
        for key in list(self.cache.resources):
            self.queue.add(key)

    async def _keep_membership(self, membership: Membership) -> None:
        while True:
            await asyncio.sleep(self.settings.presence_seconds)
            try:
                await membership.beat()
                metrics.MEMBERS.set(len(membership.members))
            except Exception as exc:  # the presence Lease expires by itself; try again next beat
                log.warning("presence renewal failed: %s", exc)

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
                        exc_info=failures == 1,
                    )
            finally:
                self.queue.done(key)
            if delay is not None:
                with contextlib.suppress(RuntimeError):
                    self.queue.add_after(key, delay)


def connection_info(config: KubeConfig) -> kopf.ConnectionInfo:
    """Kopf logs in with the very credentials lightkube uses (in-cluster or kubeconfig): one source of truth.

    Re-read on every login, so a rotated service-account token is picked up when Kopf re-authenticates.
    """
    single = config.get()
    if single is None or single.user is None:
        raise kopf.LoginError("no Kubernetes credentials: neither in-cluster nor KUBECONFIG")
    cluster, user = single.cluster, single.user

    def data(value: str | None) -> bytes | None:
        return base64.b64decode(value) if value else None

    token = user.token
    if user.token_file:
        token = Path(user.token_file).read_text().strip()
    return kopf.ConnectionInfo(
        server=cluster.server,
        ca_path=cluster.certificate_auth,
        ca_data=data(cluster.certificate_auth_data),
        insecure=cluster.insecure or None,
        token=token,
        certificate_path=user.client_cert,
        certificate_data=data(user.client_cert_data),
        private_key_path=user.client_key,
        private_key_data=data(user.client_key_data),
        default_namespace=single.namespace,
    )


def _rv(body: Body) -> int:
    try:
        return int(body["metadata"].get("resourceVersion", "0"))
    except ValueError:
        return 0
