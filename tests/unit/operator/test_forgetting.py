"""A resource that is deleted, or handed to another replica, leaves nothing behind in this replica: no metric
series, no scheduled reconcile, no held Lease, no cached object. Read through the operator's own /metrics
endpoint, served as the process serves it, while its real work-queue workers run."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from datamanager_operator import metrics
from datamanager_operator.controller import Controller
from datamanager_operator.informer import Change
from datamanager_operator.leases import LeaseKeeper, lease_name
from datamanager_operator.membership import Membership, Presence, _score
from datamanager_operator.model import Body, Key, job_name
from datamanager_operator.probes import serve
from datamanager_operator.reconciler import Reconciler, status_body
from datamanager_operator.settings import OperatorSettings
from datamanager_operator.views import JobView, PodView, ResourceView
from tests.unit.operator.test_requests_at_scale import LeaseServer

NOW = datetime.now(UTC).replace(microsecond=0)
STAMP = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


class Server(LeaseServer):
    """Leases in memory, the live read that confirms a deletion, and the one Job request a deleted resource's
    Jobs need (their finalizer goes)."""

    def __init__(self) -> None:
        super().__init__()
        self.released: list[str] = []
        self.deleted: set[Key] = set()

    async def get_resource(self, key: Key) -> Body | None:
        self.requests.append("get")
        assert key in self.deleted, f"a live read of {key}, which the test never deleted"
        return None

    async def release_job(self, namespace: str, name: str) -> None:
        self.requests.append("release")
        self.released.append(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resource_body(name: str, uid: str, status: Body) -> Body:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": "10",
            "generation": 1,
            "creationTimestamp": STAMP,
        },
        "spec": {
            "source": {"dsnSecretRef": {"name": "db", "key": "dsn"}},
            "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
            "symbols": ["BTCUSDT"],
            "intervals": ["1h"],
        },
        "status": status,
    }


class Replica:
    """A Controller with its caches filled as its informers would fill them, and its workers running."""

    def __init__(self, server: Server) -> None:
        self.settings = OperatorSettings(instance_id="a", namespace="system", unschedulable_seconds=3600)
        self.controller = Controller(self.settings)
        self.membership = Membership(server, "system", "a", 10, self.controller._requeue_all)  # type: ignore[arg-type]
        self.controller.membership = self.membership
        self.controller.informers = self.controller._informers(None)  # type: ignore[arg-type]  # never run
        self.leases = LeaseKeeper(server, "a", "system", 15)  # type: ignore[arg-type]
        self.reconciler = Reconciler(
            server,  # type: ignore[arg-type]
            self.settings,
            self.controller.caches,
            self.leases,
            self.membership,
        )

    def resource(self, view: ResourceView) -> None:
        change = self.controller.caches.resources[view.kind].apply(view)
        assert change is not None
        self.controller.on_resource(change)

    def delete_resource(self, key: Key) -> None:
        self.reconciler.cluster.deleted.add(key)  # type: ignore[attr-defined]
        change = self.controller.caches.resources[key.kind].remove(key.namespace, key.name)
        assert change is not None
        self.controller.on_resource(change)

    def job(self, view: JobView) -> None:
        change = self.controller.caches.jobs.apply(view)
        assert change is not None
        self.controller.on_job(change)

    def pod(self, view: PodView) -> None:
        change = self.controller.caches.pods.apply(view)
        assert change is not None
        self.controller.on_pod(change)

    def presence(self, view: Presence) -> None:
        change: Change[Presence] | None = self.membership.presences.apply(view)
        assert change is not None
        self.membership.observe(change)

    async def settle(self) -> None:
        """Until every queued key is reconciled and no worker is busy."""
        queue = self.controller.queue
        for _ in range(400):
            await asyncio.sleep(0.01)
            if not len(queue) and not queue._active:
                return
        raise AssertionError("the work queue did not drain")


@asynccontextmanager
async def running(replica: Replica) -> AsyncIterator[str]:
    """The replica's /metrics endpoint (the process's own server and registry) and two workers."""
    collectors = replica.controller.collectors(replica.leases)
    for collector in collectors:
        metrics.REGISTRY.register(collector)
    port = free_port()
    runner = await serve(port, lambda: True)
    workers = [asyncio.create_task(replica.controller._worker(replica.reconciler)) for _ in range(2)]
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await runner.cleanup()
        for collector in collectors:
            metrics.REGISTRY.unregister(collector)


async def scrape(url: str) -> dict[str, float]:
    """Every sample of the operator's state gauges and per-resource series, by its line's name and labels."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    wanted = re.compile(
        r"^(datamanager_operator_(?:cached_objects|workqueue_\w+|run_leases_held|health_score|"
        r"last_success_timestamp_seconds|consecutive_failures|active_runs)(?:\{[^}]*\})?) (\S+)$"
    )
    return {m[1]: float(m[2]) for line in text.splitlines() if (m := wanted.match(line))}


def owned_names(samples: dict[str, float]) -> set[str]:
    return {m[1] for key in samples if (m := re.search(r'[{,]name="([^"]+)"', key))}


def uid_owned_by(owner: str, others: tuple[str, ...]) -> str:
    """A resource uid that rendezvous hashing gives to ``owner`` among ``others``."""
    for n in range(10_000):
        uid = f"uid-{n}"
        if max(others, key=lambda member: _score(uid, member)) == owner:
            return uid
    raise AssertionError("no such uid")


@pytest.fixture
def replica() -> Replica:
    return Replica(Server())


def add_running_resource(replica: Replica, name: str, uid: str) -> Key:
    """A DataAudit whose run is active (claimed, its Job created, its pod Pending and Unschedulable), which
    succeeded before: it has every per-resource series, and a scheduled look (the pod's deadline)."""
    earlier = {"lastSuccessfulTime": STAMP, "healthScore": 97.5}
    decision = replica.reconciler._decide(ResourceView.of("DataAudit", resource_body(name, uid, earlier)))
    run = decision.claimed[0]  # the status the operator wrote when it claimed the run
    view = ResourceView.of("DataAudit", resource_body(name, uid, status_body(decision.status)))
    replica.resource(view)
    created = NOW - timedelta(seconds=5)
    replica.job(
        JobView(
            namespace="ns",
            name=run.job_name,
            uid=f"j-{uid}",
            version=11,
            owner=view.key,
            resource_uid=uid,
            run_id=run.id,
            run_uid=run.uid,
            created=created,
            deleting=False,
            finalized=True,
            finished=False,
            succeeded=False,
            reason="",
            message="",
            completion_time=None,
        )
    )
    replica.pod(
        PodView(
            namespace="ns",
            name=f"{run.job_name}-x",
            uid=f"p-{uid}",
            version=12,
            job_name=run.job_name,
            index=0,
            created=created,
            phase="Pending",
            waiting_reason="",
            waiting_message="",
            exit_code=None,
            terminated_reason="",
            summary="",
            unschedulable="0/1 nodes are available",
        )
    )
    assert run.job_name == job_name(name, uid, "g1")
    return view.key


async def forgets(replica: Replica) -> None:
    server = replica.reconciler.cluster
    assert isinstance(server, Server)
    replica.presence(Presence("system", replica.membership.name, 1, "a", 30))
    gone_uid = uid_owned_by("a", ("a",))
    kept_uid = uid_owned_by("a", ("a", "b"))
    moved_uid = uid_owned_by("b", ("a", "b"))
    gone = add_running_resource(replica, "gone", gone_uid)
    kept = add_running_resource(replica, "kept", kept_uid)
    moved = add_running_resource(replica, "moved", moved_uid)
    for key in (gone, kept, moved):
        assert await replica.leases.acquire(key, 1.0)  # as if it had acted on each
    async with running(replica) as url:
        await replica.settle()
        before = await scrape(url)
        assert owned_names(before) == {"gone", "kept", "moved"}
        assert (
            before['datamanager_operator_health_score{kind="DataAudit",name="moved",namespace="ns"}'] == 97.5
        )
        assert before["datamanager_operator_workqueue_scheduled"] == 3  # each pod's deadline
        assert before["datamanager_operator_run_leases_held"] == 3
        assert before["datamanager_operator_workqueue_depth"] == 0

        replica.delete_resource(gone)  # kubectl delete: the informer reports the deletion
        await replica.settle()
        after_delete = await scrape(url)
        assert owned_names(after_delete) == {"kept", "moved"}
        assert after_delete["datamanager_operator_workqueue_scheduled"] == 2
        assert after_delete["datamanager_operator_run_leases_held"] == 2
        assert server.released == [job_name("gone", gone_uid, "g1")]  # its Job may go now
        assert lease_name(gone) not in server.leases  # its Lease went with it
        assert lease_name(moved) in server.leases

        replica.presence(Presence("system", "other", 1, "b", 30))  # replica b joins and takes "moved"
        await replica.settle()
        after_handoff = await scrape(url)
        assert replica.membership.members == ("a", "b")
        assert owned_names(after_handoff) == {"kept"}
        assert after_handoff["datamanager_operator_workqueue_scheduled"] == 1
        assert after_handoff["datamanager_operator_run_leases_held"] == 1
        assert replica.leases.held() == [kept]
        assert not replica.controller._failures

        # the Job controller's garbage collector removes the deleted resource's Job and pod
        change = replica.controller.caches.jobs.remove("ns", job_name("gone", gone_uid, "g1"))
        assert change is not None
        replica.controller.on_job(change)
        await replica.settle()
        cached = await scrape(url)
        for informer in ("dataaudits", "jobs", "pods"):
            assert before[f'datamanager_operator_cached_objects{{informer="{informer}"}}'] == 3
            assert cached[f'datamanager_operator_cached_objects{{informer="{informer}"}}'] == 2
        assert replica.controller.caches.pods_of("ns", job_name("gone", gone_uid, "g1")) == []


def test_a_deleted_or_handed_off_resource_leaves_no_series_no_scheduled_look_and_no_lease(
    replica: Replica,
) -> None:
    asyncio.run(forgets(replica))
