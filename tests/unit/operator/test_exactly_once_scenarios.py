"""Exactly once, scenario by scenario: each sequence of issue 14 (and each one the model test found) as a
named, deterministic regression test. The real ``Reconciler``, ``LeaseKeeper`` and ``Membership`` run against
the FAKE API server of ``fake_cluster.py``; the rig's ``tests/e2e/test_exactly_once.py`` is the real proof.

Besides its own assertions, every test that runs the reconciler ends with ``clean``: faults stop, the runs
settle, and nothing the fake server checks at each write went wrong on the way (a second Job for a run, a
run revived after it closed, a status that goes back, a Job gone while its run is active, an outcome no Job of
the run shows, two unfinished Jobs under Forbid or Replace, a status write that leaves fields the operator
did not write), and every run ended with its outcome recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datamanager_operator.model import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_RESOURCE_UID,
    MANAGED_BY,
    Key,
    job_name,
)
from tests.unit.operator.fake_cluster import (
    LEASE_SECONDS,
    OPERATOR_NAMESPACE,
    CrashPlan,
    FakeServer,
    Fault,
    Replica,
    World,
    jobs_of,
    resource_spec,
    status_of,
)

NS = "team-a"
MakeWorld = Callable[..., World]


@pytest.fixture
def make_world() -> Iterator[MakeWorld]:
    worlds: list[World] = []

    def make(replicas: int = 1) -> World:
        world = World(replicas)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


def create(server: FakeServer, name: str = "majors", kind: Any = "DataAudit", **spec: Any) -> Key:
    policy = spec.pop("policy", "Forbid")
    server.create_resource(kind, NS, name, resource_spec(policy, **spec))
    return Key(kind, NS, name)


def uid_of(server: FakeServer, key: Key) -> str:
    return str(server.objects[key.kind][(key.namespace, key.name)]["metadata"]["uid"])


def active(server: FakeServer, key: Key) -> list[str]:
    return [r["id"] for r in status_of(server, key).get("activeRuns") or []]


def job_of(server: FakeServer, key: Key, run_id: str) -> str:
    """The name of the Job of ``run_id`` as status claims it."""
    status = status_of(server, key)
    runs = [*(status.get("activeRuns") or []), *([status["lastRun"]] if status.get("lastRun") else [])]
    return str(next(r["jobName"] for r in runs if r["id"] == run_id))


def creations(server: FakeServer, key: Key) -> int:
    uid = uid_of(server, key)
    return sum(n for (resource, _), n in server.created_by_id.items() if resource == uid)


def reasons(server: FakeServer) -> list[str]:
    return [f"{e['reason']}: {e['message']}" for e in server.events]


def clean(world: World, keys: list[Key]) -> None:
    """Faults stop and every run settles; nothing the fake checks may have gone wrong on the way."""
    problems = world.settle(keys)
    assert not world.server.violations, "\n".join(world.server.violations)
    assert not problems, "\n".join(problems)


def rounds(world: World, keys: list[Key], times: int = 3, seconds: float = LEASE_SECONDS + 1) -> None:
    """Rounds of every replica reconciling, time passing between them (a Lease of a dead replica expires)."""
    for _ in range(times):
        world.round(keys, beat=True)
        world.server.advance(seconds)
    world.round(keys, beat=True)


def act(world: World, replica: Replica, key: Key) -> str:
    """``replica`` catches up with its watches and reconciles ``key``."""
    replica.deliver_all()
    return world.reconcile(replica, key)


def take_over(world: World, replica: Replica, key: Key) -> None:
    """``replica`` takes ``key``'s Lease the client-go way: it sees the record unchanged for a duration."""
    replica.membership.members = (replica.identity,)  # its share now (the other replica died or lags)
    assert not world.run(replica.leases.acquire(key, 1.0))  # first sight of the holder's record
    world.server.advance(LEASE_SECONDS + 1)


# ------------------------------------------------------------ 1. a missing Job is never created again


def test_kubectl_delete_job_of_a_running_run_cancels_it_and_the_job_is_never_created_again(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    world.round([key])
    name = job_of(server, key, "g1")
    assert server.user_delete_job(NS, name)  # kubectl delete job
    assert (NS, name) in server.objects["Job"], (
        "the operator's finalizer holds the Job until the run is recorded"
    )
    for _ in range(4):
        world.round([key])
        server.advance(30)
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["outcome"], last["reason"]) == ("g1", "Failed", "JobDeleted")
    assert not active(server, key)
    assert (NS, name) not in server.objects["Job"], "released once recorded: the deletion completes"
    assert creations(server, key) == 1
    assert any(r.startswith("RunFailed: run g1 failed: JobDeleted") for r in reasons(server))
    clean(world, [key])
    assert creations(server, key) == 1


def test_a_finished_job_deleted_by_its_ttl_while_the_operator_is_down_keeps_its_outcome(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    server = world.server
    key = create(server, ttl=0, succeeded_limit=0)
    world.round([key])
    name = job_of(server, key, "g1")
    world.crash(0)  # the operator is down ...
    server.finish_job(NS, name, 0)
    server.advance(600)  # ... past the Job's TTL
    job = server.objects["Job"].get((NS, name))
    assert job is not None, "the finalizer holds the Job"
    assert job["metadata"].get("deletionTimestamp"), "deleted by the TTL"
    world.start_replica(0)  # a new process: the dead one's Lease expires first
    rounds(world, [key])
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["outcome"], last["reason"]) == ("g1", "Succeeded", "RunSucceeded")
    assert status_of(server, key)["results"]["runId"] == name, (
        "the outcome is the Job's own, summary included"
    )
    assert (NS, name) not in server.objects["Job"]
    clean(world, [key])
    assert creations(server, key) == 1


# ------------------------------------------------------------ 2. outcomes are recorded before Jobs can go


@pytest.mark.parametrize("applied", [True, False], ids=["dies-after-the-request", "dies-before-the-request"])
@pytest.mark.parametrize("at", range(4))
def test_history_limit_zero_keeps_the_outcome_whichever_request_the_operator_dies_on(
    make_world: MakeWorld, at: int, applied: bool
) -> None:
    """The reconcile that records a finished run makes three requests: the status write, the history delete,
    the finalizer's release. The operator dies on each in turn (and on none); the outcome survives and the
    Job is never created again."""
    world = make_world()
    server = world.server
    key = create(server, succeeded_limit=0, failed_limit=0)
    world.round([key])
    name = job_of(server, key, "g1")
    server.finish_job(NS, name, 0)
    world.catch_up()
    server.crashes[world.slots[0].identity] = CrashPlan(at, applied)
    outcome = world.reconcile(world.slots[0], key)
    assert outcome == ("crashed" if at < 3 else "ok")
    clean(world, [key])
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["outcome"]) == ("g1", "Succeeded")
    assert not jobs_of(server, key), "history limit 0: the Job goes, after its outcome is recorded"
    assert creations(server, key) == 1


# ------------------------------------------------------------ 3. no second concurrent Job after a restart


def test_no_second_concurrent_job_after_a_restart_whose_job_cache_is_still_empty(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    world.round([key])
    first = job_of(server, key, "g1")
    spec = resource_spec(window="12h")
    server.update_spec(key, spec)  # a spec change while g1 runs ...
    world.crash(0)
    replica = world.start_replica(0)  # ... then a rollout: the new replica has not listed its Jobs yet
    replica.caches.jobs.replace([], None)
    replica.caches.pods.replace([], None)
    replica.broken["jobs"] = replica.broken["pods"] = True
    for _ in range(4):  # past the dead replica's Lease
        world.beat(replica)
        world.reconcile(replica, key)
        server.advance(LEASE_SECONDS + 1)
    assert [j["metadata"]["name"] for j in jobs_of(server, key)] == [first]
    assert active(server, key) == ["g1"], "the spec change waits for g1: status, not the Job cache, says so"
    replica.relist("jobs")
    replica.relist("pods")
    server.finish_job(NS, first, 0)
    world.round([key])
    assert status_of(server, key)["lastRun"]["id"] == "g1"
    assert active(server, key) == ["g2"]
    clean(world, [key])
    assert creations(server, key) == 2


# ------------------------------------------------------------ 4. Allow records every outcome


def test_allow_records_the_outcome_of_every_overlapping_run(make_world: MakeWorld) -> None:
    world = make_world()
    server = world.server
    key = create(server, policy="Allow")
    world.round([key])
    for value in ("a", "b"):
        server.annotate(key, value)
        world.round([key])
    assert active(server, key) == ["g1", "m2", "m3"]
    running = next(c for c in status_of(server, key)["conditions"] if c["type"] == "Running")
    assert running["status"] == "True"
    assert "g1" in running["message"]
    assert "m3" in running["message"]
    server.finish_job(NS, job_of(server, key, "m3"), 0)  # the newest ends first
    world.round([key])
    assert status_of(server, key)["lastRun"]["id"] == "m3"
    assert active(server, key) == ["g1", "m2"]
    assert status_of(server, key)["phase"] == "Running", "older runs still run"
    server.finish_job(NS, job_of(server, key, "g1"), 3)
    world.round([key])
    server.finish_job(NS, job_of(server, key, "m2"), 0)
    world.round([key])
    assert status_of(server, key)["lastRun"]["id"] == "m3", "an older run never becomes lastRun"
    assert not active(server, key)
    assert any(r.startswith("RunFailed: run g1 failed: SourceUnavailable") for r in reasons(server))
    assert any(r.startswith("RunSucceeded: run m2 succeeded") for r in reasons(server))
    clean(world, [key])
    assert {r.run_id: r.recorded for r in server.runs.values()} == {
        "g1": "event RunFailed",
        "m2": "event RunSucceeded",
        "m3": "lastRun RunSucceeded",
    }
    assert creations(server, key) == 3


@pytest.mark.parametrize("loss", ["crash-after-the-write", "event-refused"])
def test_allow_an_older_run_ending_late_is_counted_in_status_even_when_its_event_is_lost(
    make_world: MakeWorld, loss: str
) -> None:
    """Under Allow, lastRun never goes back to an older run; the write that closes the older one counts it in
    lastSuccessfulTime / consecutiveFailures, and its details go to an Event, which is best effort."""
    world = make_world()
    server = world.server
    key = create(server, policy="Allow")
    world.round([key])
    server.annotate(key, "a")
    world.round([key])
    server.finish_job(NS, job_of(server, key, "m2"), 0)
    world.round([key])
    server.finish_job(NS, job_of(server, key, "g1"), 0)
    world.catch_up()
    if loss == "crash-after-the-write":
        server.crashes[world.slots[0].identity] = CrashPlan(0, applied=True)
    else:
        server.faults.append(Fault("invalid", "record_event", None, 1))
    before = status_of(server, key)
    world.reconcile(world.slots[0], key)
    assert not active(server, key)
    after = status_of(server, key)
    assert after["lastRun"]["id"] == "m2", "lastRun keeps the newer run"
    assert after["lastSuccessfulTime"] >= before["lastSuccessfulTime"]
    assert after.get("consecutiveFailures", 0) == 0
    clean(world, [key])


# ------------------------------------------------------------ 5. a reused run-now value


def test_run_now_values_reused_a_b_a_start_three_runs_and_never_adopt_a_finished_job(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    world.round([key])
    server.finish_job(NS, job_of(server, key, "g1"), 0)
    world.round([key])
    names = []
    for value, run_id in (("a", "m2"), ("b", "m3"), ("a", "m4")):
        server.annotate(key, value)
        world.round([key])
        assert active(server, key) == [run_id], f"run-now={value} starts {run_id}"
        names.append(job_of(server, key, run_id))
        if run_id != "m4":
            server.finish_job(NS, names[-1], 0)
            world.round([key])
    assert len(set(names)) == 3, "the second 'a' has its own Job, not the first one's"
    assert status_of(server, key)["lastRun"]["id"] == "m3", (
        "m4 runs: no finished Job is reported as its outcome"
    )
    server.annotate(key, "a")  # the same value again, unchanged: nothing new
    world.round([key])
    assert active(server, key) == ["m4"]
    server.finish_job(NS, names[-1], 0)
    clean(world, [key])
    assert status_of(server, key)["lastRun"]["id"] == "m4"
    assert creations(server, key) == 4


# ------------------------------------------------------------ 6. names with dots near the length limits

LONG = ("candle." * 34) + "s.eu-west-1"  # 249 characters, dots everywhere
NAMES = [
    "majors.candle.eu-west-1",
    # 63, and the Job name's prefix is cut right at a dot (where a cut once left ".-")
    "market-data.binance-futures.usdm.klines-hourly1.eu.west-1.daily",
    "x" * 46 + ".candle.eu-west-1",  # 63: the longest name that fits a label value
    "x" * 47 + ".candle.eu-west-1",  # 64: it does not
    LONG,
]


@pytest.mark.parametrize("name", NAMES, ids=lambda n: f"{len(n)}-chars")
def test_resource_names_with_dots_at_the_length_limits_get_valid_jobs(
    make_world: MakeWorld, name: str
) -> None:
    world = make_world()
    server = world.server
    key = create(server, name=name)
    world.round([key])
    assert active(server, key) == ["g1"]
    job = job_of(server, key, "g1")
    assert len(job) <= 60
    assert "." not in job
    assert (NS, job) in server.objects["Job"], f"the API server refused Job {job}: {server.violations}"
    server.finish_job(NS, job, 0)
    clean(world, [key])
    assert status_of(server, key)["lastRun"]["outcome"] == "Succeeded"


# ------------------------------------------------------------ 6. a Job the API server refuses


@pytest.mark.parametrize("kind", ["invalid", "forbidden"], ids=["422-invalid", "403-quota-or-webhook"])
def test_a_job_the_server_refuses_fails_its_run_as_job_rejected_after_three_attempts(
    make_world: MakeWorld, kind: str
) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    server.faults.append(Fault(kind, "create_job", None, 1000))
    for _ in range(6):
        world.reconcile(world.slots[0], key)
        world.catch_up()
        server.advance(10)
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["outcome"], last["reason"]) == ("g1", "Failed", "JobRejected")
    assert "admission webhook denied the request" in last["message"], "the server's own words"
    assert status_of(server, key)["phase"] == "Failed"
    assert server.stats[f"hit:{kind}"] == 3, (
        "three attempts, then the run fails: no resource Running for ever"
    )
    assert not jobs_of(server, key)
    server.faults.clear()
    clean(world, [key])
    assert creations(server, key) == 0


@pytest.mark.parametrize("labelled", [True, False], ids=["with-the-operators-labels", "without-labels"])
def test_a_job_already_under_the_runs_name_is_never_adopted(make_world: MakeWorld, labelled: bool) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    uid = uid_of(server, key)
    name = job_name(key.name, uid, "g1")
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: key.kind, LABEL_RESOURCE_UID: uid} if labelled else {}
    server.squat(NS, name, labels)  # someone else's Job, under the name the first run claims
    server.finish_job(NS, name, 0)  # finished, even: it must not count as the run's outcome
    clean(world, [key])
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["outcome"], last["reason"]) == ("g1", "Failed", "JobRejected")
    assert "belongs to another run" in last["message"]
    assert creations(server, key) == 0


# ------------------------------------------------------------ 7. fencing: an old view or a lost Lease


def test_a_replica_that_lost_its_lease_cannot_revive_a_closed_run(make_world: MakeWorld) -> None:
    world = make_world(2)
    server = world.server
    key = create(server)
    a, b = world.slots
    a.membership.members = (a.identity,)
    act(world, a, key)  # a claims g1, creates its Job and holds the Lease
    name = job_of(server, key, "g1")
    server.finish_job(NS, name, 0)
    a.deliver_all()  # a's last view: g1 claimed, its Job finished; then a is cut off
    lease = next(n for (_, n) in server.objects["Lease"] if n.startswith("dataaudit."))
    server.delete_lease(OPERATOR_NAMESPACE, lease)  # its Lease expired and was cleaned up
    b.membership.members = (b.identity,)
    world.round([key])  # b (and a, cut off from its watches) reconcile: b takes a new Lease and records g1
    b.deliver_all()
    server.annotate(key, "a")
    b.deliver_all()
    world.reconcile(b, key)  # b starts m2
    assert active(server, key) == ["m2"]
    assert a.reconciler.leases.remaining(key) > 0, "a still believes it holds the resource"
    for _ in range(3):  # a acts on its old view: g1 still claimed, its Job finished
        world.reconcile(a, key)
    assert active(server, key) == ["m2"], "g1 stays closed; m2 stays active"
    assert status_of(server, key)["lastRun"]["id"] == "g1"
    clean(world, [key])
    assert creations(server, key) == 2


def test_clock_skew_of_a_minute_does_not_let_a_replica_take_a_live_lease(make_world: MakeWorld) -> None:
    world = make_world(2)
    server = world.server
    key = create(server)
    a, b = world.slots
    a.skew, b.skew = -60.0, 59.0  # a's renewTime reads two minutes old on b's wall clock
    assert world.run(a.leases.acquire(key, 1.0))
    for _ in range(12):  # a renews every 5 s; b keeps trying
        server.advance(5)
        assert world.run(a.leases.acquire(key, LEASE_SECONDS))
        assert not world.run(b.leases.acquire(key, 1.0)), "b took a Lease a renews"
    waited = 0
    while not world.run(b.leases.acquire(key, 1.0)):  # a stops renewing (it died)
        server.advance(5)
        waited += 5
    assert waited >= LEASE_SECONDS, "b took over before it had seen the record unchanged for a whole duration"
    assert a.leases.remaining(key) == 0, "a's own count of its hold ran out before b took over"


def test_a_lease_deleted_under_its_holder_does_not_wedge_it(make_world: MakeWorld) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    world.round([key])
    lease = next(n for (_, n) in server.objects["Lease"] if n.startswith("dataaudit."))
    server.delete_lease(OPERATOR_NAMESPACE, lease)  # cleaned up as an orphan by a replica whose cache lagged
    server.advance(LEASE_SECONDS + 1)
    server.finish_job(NS, job_of(server, key, "g1"), 0)
    world.round([key])
    assert status_of(server, key)["lastRun"]["outcome"] == "Succeeded", world.errors
    assert not world.errors
    clean(world, [key])


# ------------------------------------------------------------ 9. watch gaps


def test_a_job_deleted_during_a_watch_gap_does_not_block_forbid(make_world: MakeWorld) -> None:
    world = make_world()
    server = world.server
    key = create(server)
    world.round([key])
    replica = world.slots[0]
    name = job_of(server, key, "g1")
    replica.broken["jobs"] = replica.broken["pods"] = True  # the Job watch breaks ...
    server.user_delete_job(NS, name)  # ... and the Job is deleted in the gap
    server.update_spec(key, resource_spec(window="12h"))
    server.advance(31)
    world.round([key])  # the cached Job (running, as far as the cache knows) blocks g2: it is read live
    last = status_of(server, key)["lastRun"]
    assert (last["id"], last["reason"]) == ("g1", "JobDeleted")
    assert active(server, key) == ["g2"], "g2 starts without waiting for the watch"
    replica.relist("jobs")  # the informer lists again: the Job deleted in the gap is gone from the cache
    assert replica.caches.jobs.get(NS, name) is None
    clean(world, [key])
    assert creations(server, key) == 2


def test_a_run_that_ended_during_a_watch_gap_is_recorded_once_the_watch_lists_again(
    make_world: MakeWorld,
) -> None:
    world = make_world()
    server = world.server
    key = create(server, ttl=0)
    world.round([key])
    replica = world.slots[0]
    name = job_of(server, key, "g1")
    replica.broken["jobs"] = replica.broken["pods"] = True
    server.finish_job(NS, name, 0)
    server.advance(10)  # the TTL controller deletes it: the finalizer holds it
    world.round([key])
    assert active(server, key) == ["g1"], "nothing seen, nothing recorded (and nothing created)"
    replica.relist("jobs")
    replica.relist("pods")
    world.round([key])
    assert status_of(server, key)["lastRun"]["outcome"] == "Succeeded"
    clean(world, [key])
    assert creations(server, key) == 1


# ------------------------------------------------------------ found while building the model test


def test_a_lagging_resource_cache_never_strips_a_live_runs_job_of_its_finalizer(
    make_world: MakeWorld,
) -> None:
    """A replica whose resource watch lags behind its Job watch sees a Job whose resource it does not know:
    an orphan, it would think. Releasing it let the TTL delete the Job while its run was active, and the run
    was then created again. (Found by the model test.)"""
    world = make_world(2)
    server = world.server
    a, b = world.slots
    key = create(server, ttl=60)
    a.membership.members, b.membership.members = (a.identity,), (b.identity,)
    act(world, a, key)
    name = job_of(server, key, "g1")
    b.deliver("jobs")  # b sees the Job; its DataAudit watch is behind
    assert b.caches.resource(key) is None
    world.reconcile(b, key)
    assert server.objects["Job"][(NS, name)]["metadata"].get("finalizers"), (
        "a live run's Job lost its finalizer"
    )
    server.finish_job(NS, name, 0)
    server.advance(120)  # past the TTL
    clean(world, [key])
    assert creations(server, key) == 1


def test_a_stale_status_view_never_deletes_or_releases_an_active_runs_job(make_world: MakeWorld) -> None:
    """Under Allow, a replica whose resource cache is one write behind its Job cache sees the newest run's Job
    as a Job of no active run: deleting and releasing it (with no status write to fence the view) let it go,
    and the run was then created again. (Found by reading the reconciler for the model test.)"""
    world = make_world(2)
    server = world.server
    a, b = world.slots
    key = create(server, policy="Allow")
    a.membership.members = (a.identity,)
    act(world, a, key)  # g1
    b.deliver_all()
    server.annotate(key, "a")
    a.deliver_all()
    world.reconcile(a, key)  # m2, by a
    newest = job_of(server, key, "m2")
    b.deliver("jobs")  # b sees m2's Job but not the status that claims m2
    world.crash(0)
    take_over(world, b, key)
    world.reconcile(b, key)
    job = server.objects["Job"].get((NS, newest))
    assert job is not None, "m2's Job was deleted and released on a view in which m2 was not claimed yet"
    assert job["metadata"].get("finalizers")
    assert not job["metadata"].get("deletionTimestamp")
    clean(world, [key])
    assert creations(server, key) == 2


def test_replace_deletes_the_old_job_before_the_new_one_exists(make_world: MakeWorld) -> None:
    world = make_world()
    server = world.server
    key = create(server, policy="Replace")
    world.round([key])
    old = job_of(server, key, "g1")
    server.update_spec(key, resource_spec("Replace", window="12h"))
    world.round([key])
    new = job_of(server, key, "g2")
    story = server.story(old, new).splitlines()
    deleted = next(i for i, line in enumerate(story) if old in line and "deleting=True" in line)
    created = next(i for i, line in enumerate(story) if f"ADDED Job {NS}/{new}" in line)
    assert deleted < created, "\n".join(story)
    assert status_of(server, key)["lastRun"]["reason"] == "Replaced"
    clean(world, [key])


def test_a_status_write_leaves_no_field_of_the_previous_run_behind(make_world: MakeWorld) -> None:
    """Status is written as a JSON merge patch, which merges nested objects: a field the new lastRun lacks
    (the scheduled run's scheduledTime, when a manual run follows) must be sent as null."""
    world = make_world()
    server = world.server
    key = create(server, schedule="*/5 * * * *")
    world.round([key])
    server.finish_job(NS, job_of(server, key, "g1"), 0)
    server.advance(150)  # 10:00:30: the 10:00 slot
    world.round([key])
    scheduled = active(server, key)[0]
    server.finish_job(NS, job_of(server, key, scheduled), 0)
    world.round([key])
    assert status_of(server, key)["lastRun"]["scheduledTime"] == "2026-03-02T10:00:00Z"
    server.annotate(key, "a")
    world.round([key])
    server.finish_job(NS, job_of(server, key, "m3"), 0)
    world.round([key])
    last = status_of(server, key)["lastRun"]
    assert last["id"] == "m3"
    assert "scheduledTime" not in last, last
    assert not server.violations, "\n".join(server.violations)


def test_clock_skew_between_replicas_never_replays_a_schedule_slot(make_world: MakeWorld) -> None:
    """A replica whose clock is a minute ahead starts the 10:00 slot; one a minute behind takes a spec change
    and must not move lastScheduleTime back before 10:00, or it starts the 10:00 slot again."""
    world = make_world(2)
    server = world.server
    a, b = world.slots
    a.skew, b.skew = 59.0, -60.0
    key = create(server, schedule="*/5 * * * *", succeeded_limit=0)
    a.membership.members = (a.identity,)
    act(world, a, key)
    server.finish_job(NS, job_of(server, key, "g1"), 0)
    server.advance(72)  # 09:59:12; a's clock reads 10:00:11
    a.deliver_all()
    world.reconcile(a, key)
    a.deliver_all()
    world.reconcile(a, key)
    assert active(server, key) == ["s202603021000"]
    server.finish_job(NS, job_of(server, key, "s202603021000"), 0)
    a.deliver_all()
    world.reconcile(a, key)
    assert status_of(server, key)["lastScheduleTime"] == "2026-03-02T10:00:00Z"
    world.crash(0)
    server.update_spec(key, resource_spec(schedule="*/5 * * * *", succeeded_limit=0, window="12h"))
    take_over(world, b, key)  # b's clock reads 09:59:28
    b.deliver_all()
    world.reconcile(b, key)
    assert active(server, key) == ["g2"], server.story(key.name) + str(world.errors)
    assert status_of(server, key)["lastScheduleTime"] >= "2026-03-02T10:00:00Z", "lastScheduleTime went back"
    server.finish_job(NS, job_of(server, key, "g2"), 0)
    server.advance(90)  # b's clock passes 10:00 again
    clean(world, [key])
    ids = [r.run_id for r in server.runs.values()]
    assert ids.count("s202603021000") == 1, ids
