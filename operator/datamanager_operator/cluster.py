"""Every request the operator makes besides its watches: one typed facade over the API server.

Requests share a client-side rate limit (a token bucket, like client-go's QPS and Burst). Throttling (429)
and server errors (5xx, lost connections) are retried with backoff, 429 after the server's Retry-After;
other refusals come back as typed errors the reconciler decides on (``ConflictError``, ``AlreadyExistsError``,
``RejectedError``). The model tests replace this class with an in-memory fake of the same interface.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Pod
from lightkube.types import CascadeType, PatchType

from datamanager.api.common import GROUP, VERSION

from . import metrics
from .model import FINALIZER, PLURALS, Body, Key, as_dict

log = logging.getLogger(__name__)
RESOURCES = {
    kind: create_namespaced_resource(GROUP, VERSION, kind, plural) for kind, plural in PLURALS.items()
}
T = TypeVar("T")
RETRIES = 4


class ClusterError(Exception):
    """A request the API server did not carry out; ``message`` is the server's own words."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class ConflictError(ClusterError):
    """The object changed since it was read (optimistic concurrency): read again and decide again."""


class AlreadyExistsError(ClusterError):
    pass


class RejectedError(ClusterError):
    """Refused for good as asked: invalid, forbidden, over quota, denied by an admission webhook."""


class UnavailableError(ClusterError):
    """Throttled, failing or unreachable after the retries: try again later."""


class LateError(UnavailableError):
    """Not sent: its deadline had passed."""


class Cluster(Protocol):
    async def pace(self, requests: int) -> None: ...
    async def get_resource(self, key: Key) -> Body | None: ...
    async def patch_status(self, key: Key, status: Body, resource_version: str) -> Body: ...
    async def get_job(self, namespace: str, name: str) -> Body | None: ...
    async def create_job(self, manifest: Body, deadline: float) -> Body: ...
    async def release_job(self, namespace: str, name: str) -> None: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def list_pods(self, namespace: str, job_name: str) -> list[Body]: ...
    async def get_lease(self, namespace: str, name: str) -> Body | None: ...
    async def create_lease(self, lease: Body) -> Body: ...
    async def replace_lease(self, lease: Body) -> Body: ...
    async def delete_lease(self, namespace: str, name: str) -> None: ...
    async def list_leases(self, namespace: str, labels: Mapping[str, str]) -> list[Body]: ...
    async def record_event(self, key: Key, uid: str, kind: str, reason: str, message: str) -> None: ...


class TokenBucket:
    """``rate`` requests per second on average, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.stamp = float(burst), clock()

    def delay(self, tokens: int = 1) -> float:
        """Takes ``tokens``; returns how long to wait before using them."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= tokens
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# requests the current task has already waited for (``pace``): they go out without waiting again
_PREPAID: ContextVar[int] = ContextVar("prepaid", default=0)


def classify(exc: Exception) -> ClusterError:
    if isinstance(exc, ApiError):
        code, message = exc.status.code or 0, exc.status.message or str(exc)
        if code == 409:
            return (
                AlreadyExistsError(message, code)
                if exc.status.reason == "AlreadyExists"
                else ConflictError(message, code)
            )
        if code == 429 or code >= 500:
            return UnavailableError(message, code)
        return RejectedError(message, code)
    return UnavailableError(f"{type(exc).__name__}: {exc}")


def _retry_after(exc: Exception) -> float | None:
    if isinstance(exc, ApiError) and exc.status.code == 429:
        details = exc.status.details
        seconds = getattr(details, "retryAfterSeconds", None) if details else None
        return float(seconds) if seconds else 1.0
    return None


class LiveCluster:
    """The facade on a lightkube client, with the client-side rate limit."""

    def __init__(self, client: AsyncClient, qps: float, burst: int, instance: str) -> None:
        self.client = client
        self.bucket = TokenBucket(qps, burst)
        self.instance = instance

    async def _call(self, verb: str, request: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
        for attempt in range(RETRIES + 1):
            prepaid = _PREPAID.get()
            if prepaid and not attempt:
                _PREPAID.set(prepaid - 1)
            elif wait := self.bucket.delay():
                await asyncio.sleep(wait)
            if deadline is not None and time.monotonic() > deadline:
                raise LateError(f"{verb} not sent: its deadline passed")
            try:
                result = await request()
                metrics.API_REQUESTS.labels(verb, "ok").inc()
                return result
            except (ApiError, httpx2.HTTPError) as exc:
                error = classify(exc)
                metrics.API_REQUESTS.labels(verb, type(error).__name__).inc()
                if not isinstance(error, UnavailableError) or attempt == RETRIES:
                    raise error from exc
                pause = _retry_after(exc) or min(0.2 * 2**attempt, 5.0) * random.uniform(0.5, 1.5)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def pace(self, requests: int) -> None:
        """Waits now for the rate limit of this task's next ``requests`` requests, which then go out at once:
        for a sequence that must not be delayed between its steps (reads, then a create before a deadline)."""
        if wait := self.bucket.delay(requests):
            await asyncio.sleep(wait)
        _PREPAID.set(_PREPAID.get() + requests)

    async def _maybe(self, verb: str, request: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await self._call(verb, request)
        except RejectedError as exc:
            if exc.code == 404:
                return None
            raise

    async def get_resource(self, key: Key) -> Body | None:
        found = await self._maybe(
            "get", lambda: self.client.get(RESOURCES[key.kind], key.name, namespace=key.namespace)
        )
        return as_dict(found) if found is not None else None

    async def patch_status(self, key: Key, status: Body, resource_version: str) -> Body:
        # resourceVersion in a merge patch is a precondition: a replica acting on an old view gets 409
        patch = {"metadata": {"resourceVersion": resource_version}, "status": status}
        resource = RESOURCES[key.kind]
        updated = await self._call(
            "patch",
            lambda: self.client.patch(
                resource.Status, key.name, patch, namespace=key.namespace, patch_type=PatchType.MERGE
            ),
        )
        return as_dict(updated)

    async def get_job(self, namespace: str, name: str) -> Body | None:
        found = await self._maybe("get", lambda: self.client.get(Job, name, namespace=namespace))
        return as_dict(found) if found is not None else None

    async def create_job(self, manifest: Body, deadline: float) -> Body:
        """Creates a Job, never sending the request (or a retry) after ``deadline`` (``time.monotonic``)."""
        job = cast(Job, Job.from_dict(manifest))
        return as_dict(await self._call("create", lambda: self.client.create(job), deadline))

    async def release_job(self, namespace: str, name: str) -> None:
        # a strategic merge patch removes the one entry, whatever else is in the list, without a read
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [FINALIZER]}}
        await self._maybe(
            "patch",
            lambda: self.client.patch(Job, name, patch, namespace=namespace, patch_type=PatchType.STRATEGIC),
        )

    async def delete_job(self, namespace: str, name: str) -> None:
        await self._maybe(
            "delete",
            lambda: self.client.delete(Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND),
        )

    async def list_pods(self, namespace: str, job_name: str) -> list[Body]:
        async def listing() -> list[Body]:
            pods = self.client.list(
                Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job_name}
            )
            return [as_dict(p) async for p in pods]

        return await self._call("list", listing)

    async def get_lease(self, namespace: str, name: str) -> Body | None:
        found = await self._maybe("get", lambda: self.client.get(Lease, name, namespace=namespace))
        return as_dict(found) if found is not None else None

    async def create_lease(self, lease: Body) -> Body:
        obj = cast(Lease, Lease.from_dict(lease))
        return as_dict(await self._call("create", lambda: self.client.create(obj)))

    async def replace_lease(self, lease: Body) -> Body:
        obj = cast(Lease, Lease.from_dict(lease))
        return as_dict(await self._call("update", lambda: self.client.replace(obj)))

    async def delete_lease(self, namespace: str, name: str) -> None:
        await self._maybe("delete", lambda: self.client.delete(Lease, name, namespace=namespace))

    async def list_leases(self, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        selector: dict[str, Any] = dict(labels)

        async def listing() -> list[Body]:
            leases = self.client.list(Lease, namespace=namespace, labels=selector)
            return [as_dict(lease) async for lease in leases]

        return await self._call("list", listing)

    async def record_event(self, key: Key, uid: str, kind: str, reason: str, message: str) -> None:
        now = datetime.now().astimezone()
        event = Event(
            metadata=ObjectMeta(generateName=f"{key.name[:200]}.", namespace=key.namespace),
            involvedObject=ObjectReference(
                apiVersion=f"{GROUP}/{VERSION}",
                kind=key.kind,
                name=key.name,
                namespace=key.namespace,
                uid=uid,
            ),
            reason=reason,
            message=message[:1024],
            type=kind,
            count=1,
            firstTimestamp=now,
            lastTimestamp=now,
            source=EventSource(component="datamanager-operator"),
            reportingComponent="datamanager-operator",
            reportingInstance=self.instance,
        )
        try:
            await self._call("create", lambda: self.client.create(event))
        except ClusterError as exc:  # events are best effort
            log.debug("event %s for %s not recorded: %s", reason, key, exc.message)
