"""Which operator replicas are alive, and which of them should act on a resource.

Each replica keeps a presence Lease in the operator's namespace. Resources are spread over the live replicas
by rendezvous hashing on the resource's uid, so each replica does a share of the work and, when one dies,
only its share moves. A replica counts as alive while its presence record keeps changing, judged by this
replica's own clock like the run Leases (no wall clocks compared). The per-resource Lease, not this view,
is what guarantees one actor at a time: two replicas that disagree on membership only compete for Leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .cluster import AlreadyExistsError, Cluster, ClusterError
from .leases import LEASE_LABEL, micro_time
from .model import LABEL_MANAGED_BY, MANAGED_BY, Body


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
        self._seen: dict[str, tuple[str, float]] = {}  # lease name -> (resourceVersion, first seen)

    def owner(self, uid: str) -> str:
        return max(self.members, key=lambda member: _score(uid, member))

    def mine(self, uid: str) -> bool:
        return self.owner(uid) == self.me

    async def beat(self) -> None:
        """Renews this replica's presence and refreshes the member list."""
        await self._renew()
        now = self.clock()
        alive = {self.me}
        listed = await self.cluster.list_leases(self.namespace, {LEASE_LABEL: "presence"})
        for lease in listed:
            name, version = lease["metadata"]["name"], lease["metadata"].get("resourceVersion", "")
            spec = lease.get("spec") or {}
            if name not in self._seen or self._seen[name][0] != version:
                self._seen[name] = (version, now)
            duration = float(spec.get("leaseDurationSeconds") or self.seconds * 3)
            if spec.get("holderIdentity") and now - self._seen[name][1] < duration:
                alive.add(spec["holderIdentity"])
        self._seen = {n: v for n, v in self._seen.items() if n in {x["metadata"]["name"] for x in listed}}
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
