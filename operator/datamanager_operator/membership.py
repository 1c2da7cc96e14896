"""Which operator instances are alive, and which of them should act on a resource.

Each instance keeps a presence Lease in its own namespace. Resources are spread over the live instances by
rendezvous hashing on the resource's uid, so each instance does a share of the work and, when one dies,
only its share moves. The per-resource Lease, not this view, is what guarantees one actor at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from .model import LABEL_MANAGED_BY, MANAGED_BY

PRESENCE_LABEL = "datamanager.petrosa.io/operator-presence"


def _score(uid: str, member: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{uid}/{member}".encode()).digest()[:8], "big")


class Membership:
    def __init__(
        self, client: AsyncClient, namespace: str, me: str, seconds: int, on_change: Callable[[], None]
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.me = me
        self.seconds = seconds
        self.on_change = on_change
        self.members: tuple[str, ...] = (me,)
        self._name = "datamanager-operator-" + hashlib.sha256(me.encode()).hexdigest()[:12]

    def owner(self, uid: str) -> str:
        return max(self.members, key=lambda member: _score(uid, member))

    def mine(self, uid: str) -> bool:
        return self.owner(uid) == self.me

    async def beat(self) -> None:
        """Renews this instance's presence and refreshes the member list."""
        now = datetime.now(UTC)
        spec = LeaseSpec(holderIdentity=self.me, leaseDurationSeconds=self.seconds * 3, renewTime=now)
        lease = Lease(
            metadata=ObjectMeta(
                name=self._name,
                namespace=self.namespace,
                labels={PRESENCE_LABEL: "true", LABEL_MANAGED_BY: MANAGED_BY},
            ),
            spec=spec,
        )
        await self.client.apply(lease, force=True)
        alive = {self.me}
        async for other in self.client.list(Lease, namespace=self.namespace, labels={PRESENCE_LABEL: "true"}):
            s = other.spec
            if not (s and s.holderIdentity and s.renewTime and s.leaseDurationSeconds):
                continue
            if s.renewTime + timedelta(seconds=s.leaseDurationSeconds) > now:
                alive.add(s.holderIdentity)
        members = tuple(sorted(alive))
        if members != self.members:
            self.members = members
            self.on_change()

    async def leave(self) -> None:
        with contextlib.suppress(ApiError):  # it expires by itself otherwise
            await self.client.delete(Lease, self._name, namespace=self.namespace)
