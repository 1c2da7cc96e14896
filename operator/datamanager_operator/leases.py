"""Per-resource coordination.k8s.io/v1 Leases: one operator instance acts on a resource at a time.

A Lease is taken before acting, renewed while acting, and left to expire: an instance that dies holding
one blocks the resource only until ``leaseDurationSeconds`` pass, then any other instance takes over.
Acquisition uses the API server's optimistic concurrency (resourceVersion), so two instances never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.coordination_v1 import Lease

from .model import LABEL_MANAGED_BY, MANAGED_BY, Key


def lease_name(key: Key) -> str:
    return f"datamanager-{key.kind.lower()}-{key.name}"[:253]


@dataclass
class Held:
    lease: Lease
    renewed: datetime


class LeaseKeeper:
    def __init__(self, client: AsyncClient, holder: str, seconds: int) -> None:
        self.client = client
        self.holder = holder
        self.seconds = seconds
        self._held: dict[Key, Held] = {}

    def _expired(self, spec: LeaseSpec, now: datetime) -> bool:
        if not spec.holderIdentity or spec.renewTime is None:
            return True
        return spec.renewTime + timedelta(seconds=spec.leaseDurationSeconds or self.seconds) < now

    async def acquire(self, key: Key, owner: dict[str, Any]) -> bool:
        """True when this instance holds the resource's Lease for at least the next ``seconds / 2``."""
        now = datetime.now(UTC)
        held = self._held.get(key)
        if held and (now - held.renewed).total_seconds() < self.seconds / 3:
            return True
        if held is None and await self._create(key, now, owner):
            return True  # a new resource: one request instead of a failed read and a create
        try:
            lease = await self.client.get(Lease, lease_name(key), namespace=key.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            return await self._create(key, now, owner)
        spec = lease.spec or LeaseSpec()
        if spec.holderIdentity != self.holder and not self._expired(spec, now):
            self._held.pop(key, None)
            return False
        if spec.holderIdentity != self.holder:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        spec.holderIdentity = self.holder
        spec.renewTime = now
        spec.leaseDurationSeconds = self.seconds
        lease.spec = spec
        try:
            updated = await self.client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:  # someone else renewed or took it in between
                self._held.pop(key, None)
                return False
            raise
        self._held[key] = Held(updated, now)
        return True

    async def _create(self, key: Key, now: datetime, owner: dict[str, Any]) -> bool:
        # owned by the resource, so the garbage collector removes it with the resource
        reference = OwnerReference(
            apiVersion=owner["apiVersion"], kind=key.kind, name=key.name, uid=owner["metadata"]["uid"]
        )
        lease = Lease(
            metadata=ObjectMeta(
                name=lease_name(key),
                namespace=key.namespace,
                labels={LABEL_MANAGED_BY: MANAGED_BY},
                ownerReferences=[reference],
            ),
            spec=LeaseSpec(
                holderIdentity=self.holder,
                leaseDurationSeconds=self.seconds,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            created = await self.client.create(lease)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        self._held[key] = Held(created, now)
        return True

    def forget(self, key: Key) -> None:
        self._held.pop(key, None)
