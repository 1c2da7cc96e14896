# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Pod Security `restricted`, enforced for real: the suite's namespaces refuse a pod that breaks it, and the
operator, the consumer and the worker pods are admitted."""

from __future__ import annotations

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod

from tests.conftest import RESTRICTED, wait_for
from tests.e2e.conftest import (
    CHART,
    RELEASE_NAMESPACE,
    CandleSource,
    chart_image,
    finished_run,
    resource_manifest,
    run_tool,
)
from tests.fixtures.kube import resource

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
pytestmark = pytest.mark.usefixtures("operator_release")


def ready(pod: Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


@pytest.mark.parametrize(
    "container_security",
    [{}, {"privileged": True}, {"runAsUser": 0}, {"capabilities": {"add": ["NET_ADMIN"]}}],
    ids=["unconfined", "privileged", "root", "capability"],
)
def test_the_suite_s_namespaces_refuse_a_pod_that_breaks_restricted(
    kube: Client, namespace: str, container_security: dict[str, object]
) -> None:
    container = {"name": "c", "image": "busybox", "command": ["true"], "securityContext": container_security}
    for ns in (namespace, RELEASE_NAMESPACE):
        labels = kube.get(Namespace, ns).metadata.labels
        assert {k: labels[k] for k in RESTRICTED} == RESTRICTED
        with pytest.raises(ApiError) as refused:
            kube.create(
                resource(Pod, {"metadata": {"name": "bad"}, "spec": {"containers": [container]}}),
                namespace=ns,
                dry_run=True,
            )
        assert 'violates PodSecurity "restricted:latest"' in str(refused.value.status.message)


def test_operator_consumer_and_worker_pods_are_admitted_under_restricted(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    operators = list(
        kube.list(Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"})
    )
    assert operators
    assert all(ready(pod) for pod in operators)

    kube.create(
        DataAudit.from_dict(resource_manifest("DataAudit", "restricted", candles)), namespace=namespace
    )
    run_tool(
        rig_env,
        "helm",
        "install",
        "psa",
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "60s",
        "--set",
        "operator.enabled=false",
        "--set",
        "consumer.replicas=1",
        "--set",
        f"consumer.nats.url={rig_env['RIG_NATS_URL']}",
        *chart_image(rig_env),
    )
    (consumer,) = kube.list(Pod, namespace=namespace, labels={"app.kubernetes.io/component": "consumer"})
    assert ready(consumer)
    status = wait_for(lambda: finished_run(kube, DataAudit, "restricted", namespace), 120, "the run")
    assert status["lastRun"]["outcome"] == "Succeeded", status
    (job,) = kube.list(Job, namespace=namespace, labels={"datamanager.petrosa.io/resource": "restricted"})
    assert job.status.succeeded == 1
