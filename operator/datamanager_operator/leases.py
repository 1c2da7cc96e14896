"""Per-resource coordination.k8s.io/v1 Leases, judged the client-go way: one replica acts on a resource.

A Lease held by another replica is taken over only after this replica has watched its record stay unchanged
for the Lease's whole duration, timed by this replica's own monotonic clock from the moment it first saw
that record. Nobody compares a ``renewTime`` written by another machine with its own wall clock, so clock
skew between replicas does not matter; only clock *rates* must roughly agree, as client-go assumes too.

The holder counts its own hold from just before it sent the renewal, so it always believes it holds less
than the others grant it. Acting replicas ask for the time they need (``acquire(key, need)``): a Job is
created only with at least half a Lease left, renewing first when less is.

The Leases live in the operator's own namespace (named from the resource's kind, namespace and name), so the
operator needs Lease rights there only. Nothing else is fenced by them: status writes carry the resource's
``resourceVersion``, and a Job exists only for a run its status has claimed.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .cluster import AlreadyExistsError, Cluster, ConflictError, RejectedError
from .model import LABEL_MANAGED_BY, MANAGED_BY, Body, Key

LEASE_LABEL = "datamanager.petrosa.io/lease"  # "resource": a run Lease; "presence": an operator replica
ANNOTATION_FOR = "datamanager.petrosa.io/lease-for"  # <kind>/<namespace>/<name>
NAME_MAX = 253


def lease_name(key: Key) -> str:
    """``<kind>.<namespace>.<name>``: a DNS subdomain; cut and suffixed with a digest when too long."""
    name = f"{key.kind.lower()}.{key.namespace}.{key.name}"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: NAME_MAX - 11].rstrip('.-')}-{digest}"


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Observation:
    version: str  # the record's resourceVersion when last seen
    holder: str | None
    duration: float
    since: float  # this replica's monotonic time when it first saw that version


@dataclass
class Hold:
    body: Body
    renewed: float  # monotonic time just before the renewal that succeeded was sent


class LeaseKeeper:
    def __init__(
        self,
        cluster: Cluster,
        holder: str,
        namespace: str,
        seconds: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cluster = cluster
        self.holder = holder
        self.namespace = namespace
        self.seconds = seconds
        self.clock = clock
        self.wall = wall
        self._held: dict[Key, Hold] = {}
        self._seen: dict[Key, Observation] = {}

    def remaining(self, key: Key) -> float:
        """Seconds this replica may still act on ``key`` without renewing (0 when it does not hold it)."""
        hold = self._held.get(key)
        return max(hold.renewed + self.seconds - self.clock(), 0.0) if hold else 0.0

    def expiry(self, key: Key) -> float:
        """When this replica's hold on ``key`` ends, on its monotonic clock (``clock()``); 0 when not held."""
        hold = self._held.get(key)
        return hold.renewed + self.seconds if hold else 0.0

    def retry_in(self, key: Key) -> float:
        """When another replica's Lease could at the earliest be taken over, in seconds from now."""
        seen = self._seen.get(key)
        if seen is None:
            return float(self.seconds)
        return max(seen.since + seen.duration - self.clock(), 0.5)

    async def acquire(self, key: Key, need: float) -> bool:
        """True when this replica holds ``key``'s Lease for at least ``need`` more seconds."""
        if self.remaining(key) >= need:
            return True
        started = self.clock()
        hold = self._held.get(key)
        if hold is not None:
            renewed = await self._write(key, hold.body, started)  # no read: the version is known
            if renewed:
                return True
        elif key not in self._seen and await self._create(key, started):
            return True  # a resource's first run: no Lease to read yet, one request instead of two
        lease = await self.cluster.get_lease(self.namespace, lease_name(key))
        if lease is None:
            return await self._create(key, started)
        spec = lease.get("spec") or {}
        other = spec.get("holderIdentity")
        if other and other != self.holder and not self._expired(key, lease, started):
            self._held.pop(key, None)
            return False
        return await self._write(key, lease, started)

    def _expired(self, key: Key, lease: Body, now: float) -> bool:
        """Whether ``lease`` stayed unchanged, as seen from here, for its whole duration."""
        version = lease["metadata"].get("resourceVersion", "")
        spec = lease.get("spec") or {}
        duration = float(spec.get("leaseDurationSeconds") or self.seconds)
        seen = self._seen.get(key)
        if seen is None or seen.version != version:
            self._seen[key] = Observation(version, spec.get("holderIdentity"), duration, now)
            return False
        return now - seen.since >= seen.duration

    async def _write(self, key: Key, lease: Body, started: float) -> bool:
        spec = dict(lease.get("spec") or {})
        now = self.wall()
        if spec.get("holderIdentity") != self.holder:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.holder, renewTime=micro_time(now), leaseDurationSeconds=self.seconds)
        try:
            written = await self.cluster.replace_lease({**lease, "spec": spec})
        except ConflictError:  # someone else wrote it in between: read again next time
            self._held.pop(key, None)
            return False
        except RejectedError as exc:
            if exc.code != 404:
                raise
            self._held.pop(key, None)  # deleted under us (cleaned up, or by hand): read (and create) anew
            return False
        self._held[key] = Hold(written, started)
        self._seen.pop(key, None)
        return True

    async def _create(self, key: Key, started: float) -> bool:
        now = micro_time(self.wall())
        lease: Body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease_name(key),
                "namespace": self.namespace,
                "labels": {LABEL_MANAGED_BY: MANAGED_BY, LEASE_LABEL: "resource"},
                "annotations": {ANNOTATION_FOR: f"{key.kind}/{key.namespace}/{key.name}"},
            },
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.seconds,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self.cluster.create_lease(lease)
        except AlreadyExistsError:
            return False
        self._held[key] = Hold(created, started)
        return True

    async def delete(self, key: Key) -> None:
        """Removes the Lease of a resource that is gone, when this replica holds it (at the deletion, not at
        the next sweep of Leases without a resource, which takes those no replica holds)."""
        if key in self._held:
            await self.cluster.delete_lease(self.namespace, lease_name(key))
            self._held.pop(key, None)

    def forget(self, key: Key) -> None:
        self._held.pop(key, None)
        self._seen.pop(key, None)

    def held(self) -> list[Key]:
        return list(self._held)

    async def release(self, key: Key) -> None:
        """Gives a held Lease up at once (at shutdown), so another replica need not wait for it to expire."""
        hold = self._held.pop(key, None)
        if hold is None:
            return
        spec = {**(hold.body.get("spec") or {}), "holderIdentity": None, "renewTime": None}
        with contextlib.suppress(ConflictError):
            await self.cluster.replace_lease({**hold.body, "spec": spec})
