# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Exactly once on the real cluster, counted from the kube-apiserver's audit log (every `create jobs` that
took effect: see tests/fixtures/audit.py), never from a watch: a watch can miss a Job created and deleted
inside a gap.

Runs are held active as long as a scenario needs with the process node's `slowpull.invalid/<seconds>/<image>`
images (the pull takes that long, then the real worker runs).
"""

from __future__ import annotations

import glob
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.core_v1 import ResourceQuotaSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Pod, ResourceQuota, Secret
from lightkube.types import PatchType

from tests.conftest import REPO, wait_for
from tests.e2e.burst import DataAudit, create_many
from tests.e2e.conftest import (
    RELEASE_NAMESPACE,
    CandleSource,
    operator_deployment,
    resource_manifest,
    slow_image,
)
from tests.fixtures.audit import AuditLog
from tests.fixtures.kube import as_dict, name_of
from tests.rig.rig import free_port

RESOURCES = 200
JOB_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
pytestmark = pytest.mark.usefixtures("operator_release")


@pytest.fixture
def audit(rig_env: dict[str, str]) -> AuditLog:
    return AuditLog(rig_env["RIG_AUDIT_LOG"])


def status_of(kube: Client, name: str, namespace: str) -> dict[str, Any]:
    return dict(as_dict(kube.get(DataAudit, name, namespace=namespace)).get("status") or {})


def settled(kube: Client, name: str, namespace: str) -> dict[str, Any] | None:
    """The status once no run is active and at least one has ended."""
    status = status_of(kube, name, namespace)
    return status if status.get("lastRun") and not status.get("activeRuns") else None


def creations(audit: AuditLog, namespace: str, since: int) -> Counter[str]:
    return Counter(audit.job_creations(namespace, since))


def events_of(kube: Client, namespace: str, name: str) -> list[tuple[str, str]]:
    return [
        (e.reason or "", e.message or "")
        for e in kube.list(Event, namespace=namespace, fields={"involvedObject.name": name})
    ]


def restart_operator(kube: Client) -> None:
    """`kubectl rollout restart`, and wait until only new, ready replicas run."""
    deployment = operator_deployment(kube)
    stamp = datetime.now(UTC).isoformat()
    patch = {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}
    }
    kube.patch(Deployment, name_of(deployment), patch, namespace=RELEASE_NAMESPACE)
    wanted = deployment.spec.replicas

    def rolled_out() -> bool:
        d = operator_deployment(kube)
        s = d.status
        pods = [
            p
            for p in kube.list(
                Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"}
            )
            if not p.metadata.deletionTimestamp
        ]
        return bool(
            s
            and s.observedGeneration == d.metadata.generation
            and s.updatedReplicas == wanted
            and s.readyReplicas == wanted
            and len(pods) == wanted
        )

    wait_for(rolled_out, 120, "the operator rollout")


def test_a_deleted_job_cancels_its_run_and_is_never_created_again(
    kube: Client, namespace: str, candles: CandleSource, audit: AuditLog, rig_env: dict[str, str]
) -> None:
    mark = audit.mark()
    manifest = resource_manifest("DataAudit", "cancel", candles, job={"image": slow_image(rig_env, 300)})
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    active = wait_for(lambda: status_of(kube, "cancel", namespace).get("activeRuns"), 60, "the run to start")
    job_name = active[0]["jobName"]
    wait_for(lambda: creations(audit, namespace, mark)[job_name], 30, "the Job's creation in the audit log")

    kube.delete(Job, job_name, namespace=namespace)  # how a user cancels a run

    status = wait_for(lambda: settled(kube, "cancel", namespace), 60, "the run to end")
    assert (status["lastRun"]["reason"], status["lastRun"]["outcome"]) == ("JobDeleted", "Failed")
    assert status["lastRun"]["jobName"] == job_name
    wait_for(lambda: not list(kube.list(Job, namespace=namespace)), 60, "the Job to be gone")
    time.sleep(15)  # more than a Lease and several reconciles: a re-creation would have happened by now
    assert creations(audit, namespace, mark) == Counter({job_name: 1})
    assert not list(kube.list(Job, namespace=namespace)), "the cancelled run's Job came back"
    assert any(
        reason == "RunFailed" and "JobDeleted" in message
        for reason, message in events_of(kube, namespace, "cancel")
    )


def test_ttl_zero_and_no_history_lose_no_outcome_across_operator_restarts(
    kube: Client, namespace: str, candles: CandleSource, audit: AuditLog
) -> None:
    mark = audit.mark()
    manifest = resource_manifest(
        "DataAudit",
        "ttl",
        candles,
        successfulRunsHistoryLimit=0,
        failedRunsHistoryLimit=0,
        job={"ttlSecondsAfterFinished": 0},
    )
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(
        lambda: (settled(kube, "ttl", namespace) or {}).get("lastRun", {}).get("id") == "g1", 120, "run g1"
    )
    ids = ["g1"]
    for token, restart in (("a", True), ("b", False), ("a", True)):
        before = status_of(kube, "ttl", namespace)["lastRun"]["number"]
        kube.patch(
            DataAudit,
            "ttl",
            {"metadata": {"annotations": {"datamanager.petrosa.io/run-now": token}}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
        if restart:
            restart_operator(kube)

        def next_run(before: int = before) -> dict[str, Any] | None:
            status = settled(kube, "ttl", namespace)
            return status if status and status["lastRun"]["number"] > before else None

        status = wait_for(next_run, 180, f"the run for run-now={token}")
        assert status["lastRun"]["outcome"] == "Succeeded", status["lastRun"]
        assert status["lastRun"]["number"] == before + 1
        ids.append(status["lastRun"]["id"])
    assert ids == ["g1", "m2", "m3", "m4"], "a reused run-now value starts a new run"
    wait_for(lambda: not list(kube.list(Job, namespace=namespace)), 60, "TTL 0 and no history: no Job left")
    made = creations(audit, namespace, mark)
    assert sorted(made.values()) == [1, 1, 1, 1], made
    assert sorted(name.rsplit("-", 1)[1] for name in made) == sorted(ids)


def test_a_spec_change_during_a_run_then_an_operator_rollout_starts_no_second_job(
    kube: Client, namespace: str, candles: CandleSource, audit: AuditLog, rig_env: dict[str, str]
) -> None:
    mark = audit.mark()
    manifest = resource_manifest("DataAudit", "rollout", candles, job={"image": slow_image(rig_env, 40)})
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(lambda: status_of(kube, "rollout", namespace).get("activeRuns"), 60, "run g1 to start")
    kube.patch(
        DataAudit, "rollout", {"spec": {"window": "6d"}}, namespace=namespace, patch_type=PatchType.MERGE
    )
    restart_operator(kube)
    # Forbid: g2 waits for g1; g1's outcome is recorded, then g2 runs
    status = wait_for(
        lambda: (s := settled(kube, "rollout", namespace)) and s["lastRun"]["id"] == "g2" and s,
        240,
        "run g2 to end",
    )
    assert status["lastRun"]["outcome"] == "Succeeded"
    jobs = {
        j.metadata.labels["datamanager.petrosa.io/run-id"]: j for j in kube.list(Job, namespace=namespace)
    }
    assert set(jobs) == {"g1", "g2"}
    g1_done = jobs["g1"].status.completionTime
    assert g1_done is not None
    assert jobs["g1"].status.succeeded == 1
    g2_created = jobs["g2"].metadata.creationTimestamp
    assert g2_created is not None
    assert g2_created >= g1_done.replace(microsecond=0), "g2 ran beside g1"
    assert sorted(creations(audit, namespace, mark).values()) == [1, 1]
    started = [m for r, m in events_of(kube, namespace, "rollout") if r == "RunSucceeded"]
    assert any("run g1 succeeded" in m for m in started), "the first run's outcome was recorded"


def test_allow_records_every_overlapping_run(
    kube: Client, namespace: str, candles: CandleSource, audit: AuditLog, rig_env: dict[str, str]
) -> None:
    mark = audit.mark()
    manifest = resource_manifest(
        "DataAudit", "overlap", candles, concurrencyPolicy="Allow", job={"image": slow_image(rig_env, 25)}
    )
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(lambda: status_of(kube, "overlap", namespace).get("activeRuns"), 60, "run g1 to start")
    kube.patch(
        DataAudit,
        "overlap",
        {"metadata": {"annotations": {"datamanager.petrosa.io/run-now": "x"}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    wait_for(
        lambda: len(status_of(kube, "overlap", namespace).get("activeRuns") or []) == 2, 60, "two active runs"
    )
    status = wait_for(lambda: settled(kube, "overlap", namespace), 180, "both runs to end")
    assert (status["lastRun"]["id"], status["lastRun"]["number"]) == ("m2", 2)
    succeeded = [m for r, m in events_of(kube, namespace, "overlap") if r == "RunSucceeded"]
    assert any("run g1 succeeded" in m for m in succeeded)
    assert any("run m2 succeeded" in m for m in succeeded)
    assert sorted(creations(audit, namespace, mark).values()) == [1, 1]


def test_a_dotted_name_at_the_length_limit_gets_a_valid_job(
    kube: Client, namespace: str, audit: AuditLog
) -> None:
    for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
        kube.create(Secret(metadata=ObjectMeta(name=name), stringData={key: "unused"}), namespace=namespace)
    base = "candles." + ".".join(letter * 63 for letter in "abc") + "."
    name = base + "x" * (253 - len(base) - 10) + ".eu-west-1"  # the longest name a resource may have
    assert len(name) == 253
    mark = audit.mark()
    manifest = _plain(name)
    manifest["spec"]["job"] = {"image": "unpullable.invalid/datamanager:x"}
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    status = wait_for(lambda: settled(kube, name, namespace), 90, "the run to end")
    job_name = status["lastRun"]["jobName"]
    assert status["lastRun"]["reason"] == "ImagePullBackOff", status["lastRun"]  # it ran, and failed as asked
    assert re.match(JOB_NAME, job_name), job_name
    assert len(job_name) <= 60, job_name
    assert creations(audit, namespace, mark) == Counter({job_name: 1})


def test_a_job_the_quota_refuses_fails_the_run_as_rejected(
    kube: Client, namespace: str, audit: AuditLog
) -> None:
    for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
        kube.create(Secret(metadata=ObjectMeta(name=name), stringData={key: "unused"}), namespace=namespace)
    kube.create(
        ResourceQuota(
            metadata=ObjectMeta(name="no-jobs"), spec=ResourceQuotaSpec(hard={"count/jobs.batch": "0"})
        ),
        namespace=namespace,
    )
    wait_for(
        lambda: kube.get(ResourceQuota, "no-jobs", namespace=namespace).status, 30, "the quota to be counted"
    )
    kube.create(DataAudit.from_dict(_plain("refused")), namespace=namespace)
    status = wait_for(lambda: settled(kube, "refused", namespace), 90, "the run to end")
    assert (status["lastRun"]["outcome"], status["lastRun"]["reason"]) == ("Failed", "JobRejected")
    assert "exceeded quota" in status["lastRun"]["message"]
    assert status["phase"] == "Failed"
    assert not list(kube.list(Pod, namespace=namespace))
    assert not audit.job_creations(namespace)


def _plain(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": "DataAudit",
        "metadata": {"name": name},
        "spec": {
            "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
            "sink": {"uriSecretRef": {"name": "datamanager-mongodb", "key": "uri"}},
            "symbols": ["BTCUSDT"],
            "intervals": ["1h"],
        },
    }


# ---------------------------------------------------------------- chaos


def scale_operator(kube: Client, replicas: int) -> None:
    name = name_of(operator_deployment(kube))
    kube.patch(Deployment, name, {"spec": {"replicas": replicas}}, namespace=RELEASE_NAMESPACE)

    def ready() -> bool:
        status = operator_deployment(kube).status
        return bool(status and status.readyReplicas == replicas and status.updatedReplicas == replicas)

    wait_for(ready, 90, f"{replicas} ready operator replicas")


def kill_replicas(kube: Client, kills: int, stop: threading.Event) -> list[str]:
    """Deletes operator pods with no grace period (their processes are SIGKILLed) at random moments."""
    killed: list[str] = []
    rng = random.Random(7)
    while len(killed) < kills and not stop.wait(rng.uniform(0.3, 2.5)):
        try:
            pods = [
                p
                for p in kube.list(
                    Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"}
                )
                if p.status and p.status.phase == "Running" and not p.metadata.deletionTimestamp
            ]
            if pods:
                victim = name_of(rng.choice(pods))
                kube.delete(Pod, victim, namespace=RELEASE_NAMESPACE, grace_period=0)
                killed.append(victim)
        except Exception:  # the API server is restarting: try again
            continue
    return killed


def delete_jobs(kube: Client, namespace: str, count: int, stop: threading.Event) -> list[str]:
    """Deletes Jobs at random, as users cancelling runs would."""
    deleted: list[str] = []
    rng = random.Random(11)
    while len(deleted) < count and not stop.wait(rng.uniform(0.2, 1.0)):
        try:
            jobs = [
                name_of(j) for j in kube.list(Job, namespace=namespace) if not j.metadata.deletionTimestamp
            ]
            if jobs:
                victim = rng.choice(jobs)
                kube.delete(Job, victim, namespace=namespace)
                deleted.append(victim)
        except Exception:  # the API server is restarting, or the Job is going already: try again
            continue
    return deleted


@pytest.fixture
def skewed_replicas(rig_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two more operator replicas, outside the chart, whose wall clocks run 50 s ahead and 50 s behind
    (libfaketime): clock skew between replicas must change nothing."""
    library = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), None)
    if library is None:
        pytest.fail("libfaketime is missing: `make rig-build` (tests/rig/build.sh libfaketime) installs it")
    processes = []
    for index, skew in enumerate(("+50s", "-50s")):
        env = {
            **os.environ,
            "KUBECONFIG": rig_env["KUBECONFIG"],
            "LD_PRELOAD": library,
            "FAKETIME": skew,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "POD_NAME": f"skewed-{index}",
            "POD_NAMESPACE": RELEASE_NAMESPACE,
            "DATAMANAGER_HTTP_PORT": str(free_port()),
            "DATAMANAGER_LEASE_SECONDS": "10",
            "DATAMANAGER_STUCK_POD_SECONDS": "20",
            "DATAMANAGER_UNSCHEDULABLE_SECONDS": "20",
            "DATAMANAGER_ALLOWED_IMAGES": "unpullable.invalid/*,slowpull.invalid/*",
            "DATAMANAGER_LOG_LEVEL": "WARNING",
        }
        log = (Path(rig_env["RIG_STATE_DIR"]) / "logs" / f"skewed-operator-{index}.log").open("ab")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "datamanager.cli", "operator"],
                env=env,
                stdout=log,
                stderr=log,
                cwd=REPO,
            )
        )
    yield processes
    for process in processes:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_every_run_has_exactly_one_job_whatever_the_cluster_does(
    kube: Client, namespace: str, audit: AuditLog, rig_env: dict[str, str], skewed_replicas: list[Any]
) -> None:
    """200 resources at once, while operator replicas are killed, the API server restarts, users delete Jobs
    and two replicas' clocks are skewed by 50 s either way."""
    for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
        kube.create(Secret(metadata=ObjectMeta(name=name), stringData={key: "unused"}), namespace=namespace)
    scale_operator(kube, 3)
    mark = audit.mark()
    names = [f"burst-{i:03d}" for i in range(RESOURCES)]
    stop = threading.Event()
    killed: list[str] = []
    deleted: list[str] = []
    killer = threading.Thread(target=lambda: killed.extend(kill_replicas(kube, 3, stop)))
    canceller = threading.Thread(target=lambda: deleted.extend(delete_jobs(kube, namespace, 10, stop)))
    try:
        killer.start()
        canceller.start()
        create_many(kube, namespace, names[: RESOURCES // 2])
        subprocess.run(
            [sys.executable, str(REPO / "tests" / "rig" / "rig.py"), "restart", "kube-apiserver"],
            check=True,
            capture_output=True,
        )
        wait_for(_api_answers(kube, namespace), 90, "the restarted API server")
        create_many(kube, namespace, names[RESOURCES // 2 :])

        def all_settled() -> bool:
            statuses = [as_dict(r).get("status") or {} for r in kube.list(DataAudit, namespace=namespace)]
            return len(statuses) == RESOURCES and all(
                s.get("lastRun") and not s.get("activeRuns") for s in statuses
            )

        wait_for(all_settled, 420, "every resource's run to end", interval=2)
        stop.set()
        killer.join()
        canceller.join()
        assert len(killed) == 3
        assert all(p.poll() is None for p in skewed_replicas), "a skewed replica died"
        # an API server restart (and its "storage is (re)initializing" answers) is retried, never a crash
        restarts = {
            name_of(pod): [c.restartCount for c in (pod.status.containerStatuses or [])]
            for pod in kube.list(
                Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"}
            )
            if pod.status
        }
        assert all(counts == [0] for counts in restarts.values()), f"operator restarts: {restarts}"
        made = creations(audit, namespace, mark)
        duplicates = {name: n for name, n in made.items() if n != 1}
        assert not duplicates, f"Jobs created more than once: {duplicates}"
        per_resource = Counter(name.rsplit("-", 2)[0] for name in made)
        lost = sorted(set(names) - set(per_resource))
        existing = {name_of(j) for j in kube.list(Job, namespace=namespace)}
        details = {
            name: (
                status_of(kube, name, namespace).get("lastRun"),
                sorted(j for j in existing if j.startswith(name)),
            )
            for name in lost
        }
        assert not lost, f"resources without a Job creation in the audit log: {details}"
        assert set(per_resource.values()) == {1}, "a resource got more than one run"
        reasons: Counter[str] = Counter()
        for resource in kube.list(DataAudit, namespace=namespace):
            last = resource.status["lastRun"]
            assert made[last["jobName"]] == 1
            assert last["id"] == "g1"
            # a Job deleted while its run was active cancels it; one deleted after is just history. While the
            # API server restarts, the node's heartbeat cannot reach it: the node turns unreachable (tainted
            # NoSchedule), and a pod created then can stay unschedulable past unschedulableSeconds (20 s here)
            allowed = {"ImagePullBackOff", "Unschedulable"}
            if last["jobName"] in deleted:
                allowed.add("JobDeleted")
            assert last["reason"] in allowed, (resource.metadata.name, last)
            reasons[last["reason"]] += 1
        assert reasons["JobDeleted"] >= 1, f"no cancellation happened: {reasons}, deleted {deleted}"
    finally:
        stop.set()
        scale_operator(kube, 2)


def _api_answers(kube: Client, namespace: str) -> Any:
    def answers() -> bool:
        try:  # the custom resources' paths come last
            list(kube.list(DataAudit, namespace=namespace))
        except Exception:
            return False
        return True

    return answers
