"""Which operator replicas are alive, and which of them should act on a resource.

Each replica keeps a presence Lease in the operator's namespace. Resources are spread over the live replicas
by rendezvous hashing on the resource's uid, so each replica does a share of the work and, when one dies,
only its share moves. A replica counts as alive while its presence record keeps changing, judged by this
replica's own clock like the run Leases (no wall clocks compared). The per-resource Lease, not this view,
is what guarantees one actor at a time: two replicas that disagree on membership only compete for Leases.

The others' presence Leases come from a watch (an informer feeds ``observe``), not from a list on every
beat: at rest a replica's only requests are its own renewals.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .cluster import AlreadyExistsError, Cluster, ClusterError
from .informer import Change, Store
from .leases import LEASE_LABEL, micro_time
from .model import LABEL_MANAGED_BY, MANAGED_BY, Body
from .views import version_of

PRESENCE = {LEASE_LABEL: "presence"}  # the label selector of the presence informer


@dataclass(frozen=True, slots=True)
class Presence:
    """A replica's presence Lease, as the presence informer keeps it."""

    namespace: str
    name: str
    version: int
    holder: str
    duration: float  # seconds; 0 when the record does not say

    @classmethod
    def of(cls, body: Body) -> Presence:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            version=version_of(meta),
            holder=str(spec.get("holderIdentity") or ""),
            duration=float(spec.get("leaseDurationSeconds") or 0),
        )


def _score(uid: str, member: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{uid}/{member}".encode()).digest()[:8], "big")


class Membership:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        me: str,
        seconds: int,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.me = me
        self.seconds = seconds
        self.on_change = on_change
        self.clock = clock
        self.members: tuple[str, ...] = (me,)
        self.known = asyncio.Event()  # set once the member list has been read
        self.name = "datamanager-operator-" + hashlib.sha256(me.encode()).hexdigest()[:12]
        self._mine: Body | None = None
        self.presences: Store[Presence] = Store()  # filled by the presence informer
        self._since: dict[str, float] = {}  # lease name -> when its current version was first seen here

    def owner(self, uid: str) -> str:
        return max(self.members, key=lambda member: _score(uid, member))

    def mine(self, uid: str) -> bool:
        return self.owner(uid) == self.me

    def observe(self, change: Change[Presence]) -> None:
        """A presence Lease changed (the informer's callback): a new version restarts its clock."""
        before, after = change
        if after is None:
            if before is not None:
                self._since.pop(before.name, None)
        else:
            self._since[after.name] = self.clock()
        self._judge()

    async def beat(self) -> None:
        """Renews this replica's presence and judges the others by what the watch has shown."""
        await self._renew()
        self._judge()

    def _judge(self) -> None:
        now = self.clock()
        alive = {self.me}
        for presence in self.presences:
            duration = presence.duration or self.seconds * 3
            if presence.holder and now - self._since.get(presence.name, now) < duration:
                alive.add(presence.holder)
        members = tuple(sorted(alive))
        self.known.set()
        if members != self.members:
            self.members = members
            self.on_change()

    async def _renew(self) -> None:
        spec = {
            "holderIdentity": self.me,
            "leaseDurationSeconds": self.seconds * 3,
            "renewTime": micro_time(datetime.now(UTC)),
        }
        if self._mine is not None:
            try:
                self._mine = await self.cluster.replace_lease({**self._mine, "spec": spec})
                return
            except ClusterError:
                self._mine = None
        current = await self.cluster.get_lease(self.namespace, self.name)
        if current is not None:
            self._mine = await self.cluster.replace_lease({**current, "spec": spec})
            return
        lease: Body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {LEASE_LABEL: "presence", LABEL_MANAGED_BY: MANAGED_BY},
            },
            "spec": spec,
        }
        with contextlib.suppress(AlreadyExistsError):
            self._mine = await self.cluster.create_lease(lease)

    async def leave(self) -> None:
        with contextlib.suppress(ClusterError):  # it expires by itself otherwise
            await self.cluster.delete_lease(self.namespace, self.name)
