"""What the operator asks of the API server where scale makes it count: a resource's first Lease takes one
request, and membership at rest takes one renewal per beat (the others' presence comes from a watch)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping

from datamanager_operator.cluster import AlreadyExistsError, ConflictError, RejectedError
from datamanager_operator.leases import LeaseKeeper, lease_name
from datamanager_operator.membership import Membership, Presence
from datamanager_operator.model import Body, Key

KEY = Key("DataAudit", "ns", "majors")


class LeaseServer:
    """Leases in memory, with resourceVersions and the API server's answers; counts every request."""

    def __init__(self) -> None:
        self.leases: dict[str, Body] = {}
        self.requests: list[str] = []
        self.version = 0

    def _store(self, lease: Body) -> Body:
        self.version += 1
        stored = copy.deepcopy(lease)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    async def get_lease(self, namespace: str, name: str) -> Body | None:
        self.requests.append("get")
        found = self.leases.get(name)
        return copy.deepcopy(found) if found else None

    async def create_lease(self, lease: Body) -> Body:
        self.requests.append("create")
        if lease["metadata"]["name"] in self.leases:
            raise AlreadyExistsError("exists", 409)
        return self._store(lease)

    async def replace_lease(self, lease: Body) -> Body:
        self.requests.append("update")
        current = self.leases.get(lease["metadata"]["name"])
        if current is None:
            raise RejectedError("not found", 404)
        if current["metadata"]["resourceVersion"] != lease["metadata"].get("resourceVersion"):
            raise ConflictError("changed", 409)
        return self._store(lease)

    async def delete_lease(self, namespace: str, name: str) -> None:
        self.requests.append("delete")
        self.leases.pop(name, None)

    async def list_leases(self, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        self.requests.append("list")
        return [copy.deepcopy(x) for x in self.leases.values()]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keeper(server: LeaseServer, holder: str, clock: Clock) -> LeaseKeeper:
    return LeaseKeeper(server, holder, "system", 15, clock=clock)  # type: ignore[arg-type]


def test_a_resources_first_lease_is_one_create_and_a_held_one_is_renewed_without_a_read() -> None:
    server, clock = LeaseServer(), Clock()
    leases = keeper(server, "a", clock)
    assert asyncio.run(leases.acquire(KEY, 7.5))
    assert server.requests == ["create"]
    clock.now += 10  # less than half of 15 s left: renewed, from the version it holds
    assert asyncio.run(leases.acquire(KEY, 7.5))
    assert server.requests == ["create", "update"]
    assert server.leases[lease_name(KEY)]["spec"]["holderIdentity"] == "a"


def test_a_lease_another_replica_holds_is_read_after_the_create_fails_and_taken_only_once_expired() -> None:
    server, clock = LeaseServer(), Clock()
    first, second = keeper(server, "a", clock), keeper(server, "b", clock)
    assert asyncio.run(first.acquire(KEY, 7.5))
    assert not asyncio.run(second.acquire(KEY, 7.5))
    assert server.requests == ["create", "create", "get"]  # refused by the server, then judged
    clock.now += 14.9
    assert not asyncio.run(second.acquire(KEY, 7.5))  # seen unchanged for less than its duration
    assert server.requests[-1] == "get"  # once seen, no second create is tried
    clock.now += 0.2
    assert asyncio.run(second.acquire(KEY, 7.5))
    assert server.leases[lease_name(KEY)]["spec"]["holderIdentity"] == "b"
    assert server.leases[lease_name(KEY)]["spec"]["leaseTransitions"] == 1


def test_a_gone_resources_lease_is_deleted_by_its_holder_and_one_deleted_under_its_holder_comes_back() -> (
    None
):
    server, clock = LeaseServer(), Clock()
    first, second = keeper(server, "a", clock), keeper(server, "b", clock)
    assert asyncio.run(first.acquire(KEY, 7.5))
    asyncio.run(second.delete(KEY))  # not its Lease: left alone
    assert lease_name(KEY) in server.leases
    asyncio.run(first.delete(KEY))
    assert lease_name(KEY) not in server.leases
    assert server.requests == ["create", "delete"]
    assert first.held() == []

    assert asyncio.run(first.acquire(KEY, 7.5))  # a resource of the same name, again
    del server.leases[lease_name(KEY)]  # removed under its holder (another replica's sweep)
    clock.now += 10
    assert asyncio.run(first.acquire(KEY, 7.5))  # the renewal finds nothing, a read neither: created again
    assert server.requests[-4:] == ["create", "update", "get", "create"]
    assert server.leases[lease_name(KEY)]["spec"]["holderIdentity"] == "a"


def presence(name: str, holder: str, version: int, duration: float = 30) -> Presence:
    return Presence("system", name, version, holder, duration)


def now_members(membership: Membership) -> tuple[str, ...]:
    return membership.members


def test_membership_at_rest_costs_one_renewal_per_beat_and_follows_the_watch() -> None:
    server, clock = LeaseServer(), Clock()
    changes: list[tuple[str, ...]] = []
    members = Membership(server, "system", "a", 10, lambda: changes.append(members.members), clock=clock)  # type: ignore[arg-type]

    def seen(view: Presence) -> None:
        change = members.presences.apply(view)
        assert change is not None
        members.observe(change)

    async def beats(count: int) -> None:
        for _ in range(count):
            await members.beat()

    asyncio.run(beats(1))
    assert server.requests == ["get", "create"]  # its own presence, once
    seen(presence(members.name, "a", 1))
    seen(presence("other", "b", 1))
    assert now_members(members) == ("a", "b")
    assert changes == [("a", "b")]
    asyncio.run(beats(5))
    assert server.requests[2:] == ["update"] * 5  # no list: only its own renewals
    clock.now += 29
    seen(presence("other", "b", 2))  # b renewed: alive for another 30 s from now
    clock.now += 29
    asyncio.run(beats(1))
    assert now_members(members) == ("a", "b")
    clock.now += 2  # b's record unchanged for 31 s here: b is gone
    asyncio.run(beats(1))
    assert now_members(members) == ("a",)
    assert changes[-1] == ("a",)
    change = members.presences.remove("system", "other")
    assert change is not None
    members.observe(change)
    assert "other" not in members._since  # nothing kept for a replica that left
