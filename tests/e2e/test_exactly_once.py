# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Exactly once under stress: several operator replicas, a burst of resources, replicas killed mid-flight."""

from __future__ import annotations

import random
import threading

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, Secret

from tests.conftest import wait_for
from tests.e2e.burst import DataAudit, JobWatcher, create_many
from tests.e2e.conftest import RELEASE_NAMESPACE, operator_deployment
from tests.fixtures.kube import as_dict, name_of

RESOURCES = 200
pytestmark = pytest.mark.usefixtures("operator_release")


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
    for _ in range(kills):
        if stop.wait(rng.uniform(0.3, 2.5)):
            break
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
    return killed


def test_every_run_has_exactly_one_job_while_replicas_die(kube: Client, namespace: str) -> None:
    for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
        kube.create(Secret(metadata=ObjectMeta(name=name), stringData={key: "unused"}), namespace=namespace)
    scale_operator(kube, 3)
    names = [f"burst-{i:03d}" for i in range(RESOURCES)]
    stop = threading.Event()
    killed: list[str] = []
    killer = threading.Thread(target=lambda: killed.extend(kill_replicas(kube, 3, stop)))
    try:
        with JobWatcher(kube, namespace) as jobs:
            killer.start()
            create_many(kube, namespace, names)

            def all_settled() -> bool:
                statuses = [as_dict(r).get("status") or {} for r in kube.list(DataAudit, namespace=namespace)]
                return len(statuses) == RESOURCES and all(
                    (s.get("lastRun") or {}).get("outcome") == "Failed" for s in statuses
                )

            wait_for(all_settled, 300, "every resource's run to end", interval=2)
            killer.join()
        assert len(killed) == 3
        duplicates = {r: n for r, n in jobs.by_resource.items() if len(n) != 1}
        assert not duplicates, f"resources with other than one Job: {duplicates}"
        assert set(jobs.by_resource) == set(names), "a run was lost"
        for resource in kube.list(DataAudit, namespace=namespace):
            last = resource.status["lastRun"]
            (job_name,) = jobs.by_resource[resource.metadata.name]
            assert last["jobName"] == job_name
            assert (last["id"], last["reason"]) == ("g1", "ImagePullBackOff")
    finally:
        stop.set()
        scale_operator(kube, 2)
