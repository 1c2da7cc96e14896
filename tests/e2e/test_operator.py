# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The operator end to end: resources in, exactly one Job per run, real workers in pods, status out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Pod, Secret
from lightkube.types import PatchType
from pymongo import AsyncMongoClient

from tests.argocd_health import argocd_health
from tests.conftest import wait_for
from tests.e2e.conftest import CandleSource, resource_manifest
from tests.fixtures.kube import as_dict

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
AnalyticsJob = create_namespaced_resource(
    "datamanager.petrosa.io", "v1alpha1", "AnalyticsJob", "analyticsjobs"
)
pytestmark = pytest.mark.usefixtures("operator_release")
Obj = dict[str, Any]


def status_of(kube: Client, res: Any, name: str, namespace: str) -> Obj:
    return dict(kube.get(res, name, namespace=namespace).status or {})


def condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def finished(kube: Client, res: Any, name: str, namespace: str) -> Obj | None:
    status = status_of(kube, res, name, namespace)
    last = status.get("lastRun") or {}
    return status if last.get("outcome") in ("Succeeded", "Failed") and not status.get("activeRuns") else None


def jobs_of(kube: Client, namespace: str, name: str) -> list[Job]:
    return list(kube.list(Job, namespace=namespace, labels={"datamanager.petrosa.io/resource": name}))


async def mongo_count(uri: str, database: str, collection: str, run_id: str) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        total = 0
        for name in await client[database].list_collection_names():
            if name.startswith(collection):
                total += await client[database][name].count_documents({"run_id": run_id})
        return total
    finally:
        await client.close()


def test_dataaudit_runs_once_and_reports_health_and_results(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    kube.create(DataAudit.from_dict(resource_manifest("DataAudit", "audit", candles)), namespace=namespace)
    status = wait_for(lambda: finished(kube, DataAudit, "audit", namespace), 120, "the audit to finish")
    assert status["lastRun"]["outcome"] == "Succeeded", status
    assert status["phase"] == "Succeeded"
    assert condition(status, "Succeeded")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    assert status["observedGeneration"] == 1
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])
    # the defective symbol scores lower and comes first (worst first); the clean one is perfect
    datasets = status["datasets"]
    assert [d["symbol"] for d in datasets] == [candles.defective_symbol, candles.clean_symbol]
    assert datasets[1]["score"] == 100
    assert 0 < datasets[0]["score"] < 100
    assert datasets[0]["score"] < status["healthScore"] < 100
    healthy = condition(status, "Healthy")
    assert healthy["status"] == ("True" if status["healthScore"] >= 90 else "False")
    results = status["results"]
    assert results["database"] == candles.mongo_database
    assert results["runId"] == status["lastRun"]["jobName"]
    assert "password" not in str(results).lower()
    assert results["documents"] >= 3  # a run document and one per dataset
    written = asyncio.run(
        mongo_count(rig_env["RIG_MONGODB_URI"], results["database"], results["collection"], results["runId"])
    )
    assert written == results["documents"]
    (job,) = jobs_of(kube, namespace, "audit")
    assert job.metadata.name == status["lastRun"]["jobName"]
    pod_spec = job.spec.template.spec
    assert pod_spec.automountServiceAccountToken is False
    assert pod_spec.securityContext.runAsNonRoot is True
    literal_values = " ".join(e.value or "" for e in pod_spec.containers[0].env)
    assert "mysql://" not in literal_values  # credentials only by Secret reference
    assert "mongodb://" not in literal_values
    live = as_dict(kube.get(DataAudit, "audit", namespace=namespace))
    # a low score is Degraded in ArgoCD only for resources that opt in (docs/argocd.md)
    assert argocd_health(live)["status"] == "Healthy"
    reasons = {
        e.reason for e in kube.list(Event, namespace=namespace, fields={"involvedObject.name": "audit"})
    }
    assert {"RunStarted", "RunSucceeded"} <= reasons


def test_analyticsjob_runs_once_and_reports_results(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    kube.create(
        AnalyticsJob.from_dict(resource_manifest("AnalyticsJob", "stats", candles)), namespace=namespace
    )
    status = wait_for(
        lambda: finished(kube, AnalyticsJob, "stats", namespace), 180, "the analytics to finish"
    )
    assert status["lastRun"]["outcome"] == "Succeeded", status
    results = status["results"]
    assert results["documents"] > 0
    written = asyncio.run(
        mongo_count(rig_env["RIG_MONGODB_URI"], results["database"], results["collection"], results["runId"])
    )
    assert written == results["documents"]
    assert "healthScore" not in status
    assert len(jobs_of(kube, namespace, "stats")) == 1


def test_a_manual_trigger_starts_exactly_one_more_run(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    kube.create(DataAudit.from_dict(resource_manifest("DataAudit", "again", candles)), namespace=namespace)
    wait_for(lambda: finished(kube, DataAudit, "again", namespace), 120, "the first run")
    patch = {"metadata": {"annotations": {"datamanager.petrosa.io/run-now": "please"}}}
    kube.patch(DataAudit, "again", patch, namespace=namespace, patch_type=PatchType.MERGE)

    def manual_run_done() -> Obj | None:
        status = finished(kube, DataAudit, "again", namespace)
        return status if status and status["lastRun"]["trigger"] == "Manual" else None

    status = wait_for(manual_run_done, 120, "the manual run")
    assert status["lastRun"]["outcome"] == "Succeeded"
    assert status["handledTrigger"] == "please"
    assert len(jobs_of(kube, namespace, "again")) == 2


def test_worker_identity_reads_neither_secrets_nor_resources(
    kube: Client, namespace: str, candles: CandleSource, as_service_account: Any
) -> None:
    kube.create(DataAudit.from_dict(resource_manifest("DataAudit", "rbac", candles)), namespace=namespace)
    wait_for(lambda: finished(kube, DataAudit, "rbac", namespace), 120, "the run")
    (job,) = jobs_of(kube, namespace, "rbac")
    identity = job.spec.template.spec.serviceAccountName or "default"
    worker = as_service_account(namespace, identity)
    for res in (Secret, DataAudit):
        with pytest.raises(ApiError) as denied:
            list(worker.list(res, namespace=namespace))
        assert denied.value.status.code == 403


def _failure_case(
    kube: Client, namespace: str, candles: CandleSource, dsn: str, name: str
) -> tuple[Obj, int]:
    kube.patch(Secret, "extractor-mysql", {"stringData": {"dsn": dsn}}, namespace=namespace)
    manifest = resource_manifest("DataAudit", name, candles, job={"backoffLimit": 1})
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    status = wait_for(lambda: finished(kube, DataAudit, name, namespace), 180, f"{name} to fail")
    (job,) = jobs_of(kube, namespace, name)
    pods = list(
        kube.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job.metadata.name})
    )
    return status, len(pods)


def test_an_unreachable_source_fails_with_its_reason_after_retries(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    node_ip = rig_env["RIG_NODE_IP"]
    status, attempts = _failure_case(kube, namespace, candles, f"mysql://u:p@{node_ip}:1/db", "srcdown")
    assert status["lastRun"]["outcome"] == "Failed"
    assert status["lastRun"]["reason"] == "SourceUnavailable"
    assert "retries exhausted" in status["lastRun"]["message"]
    assert attempts == 2  # backoffLimit 1: transient failures are retried
    failed = condition(status, "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "SourceUnavailable")
    assert condition(status, "Ready")["status"] == "False"
    live = as_dict(kube.get(DataAudit, "srcdown", namespace=namespace))
    assert argocd_health(live) == {"status": "Degraded", "message": f"SourceUnavailable: {failed['message']}"}


def test_a_permanent_configuration_error_is_not_retried(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    status, attempts = _failure_case(kube, namespace, candles, "postgres://not-mysql", "badcfg")
    assert status["lastRun"]["reason"] == "InvalidConfig"
    assert attempts == 1


def test_a_pod_that_cannot_pull_its_image_fails_the_run(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    manifest = resource_manifest(
        "DataAudit", "noimage", candles, job={"image": "unpullable.invalid/datamanager:0"}
    )
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(
        lambda: status_of(kube, DataAudit, "noimage", namespace).get("activeRuns"), 60, "the run to start"
    )
    assert (
        argocd_health(as_dict(kube.get(DataAudit, "noimage", namespace=namespace)))["status"] == "Progressing"
    )
    status = wait_for(lambda: finished(kube, DataAudit, "noimage", namespace), 120, "the stuck run to fail")
    assert status["lastRun"]["reason"] == "ImagePullBackOff"
    assert "unpullable.invalid" in status["lastRun"]["message"]


def test_a_missing_secret_fails_the_run_with_create_container_config_error(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    manifest = resource_manifest("DataAudit", "nosecret", candles)
    manifest["spec"]["source"] = {"dsnSecretRef": {"name": "does-not-exist", "key": "dsn"}}
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    status = wait_for(lambda: finished(kube, DataAudit, "nosecret", namespace), 120, "the stuck run to fail")
    assert status["lastRun"]["reason"] == "CreateContainerConfigError"
    assert 'secret "does-not-exist" not found' in status["lastRun"]["message"]


def test_a_run_past_its_deadline_fails_with_deadline_exceeded(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    # the pod never starts (unpullable image) and the Job's deadline (10 s) comes before the stuck-pod timeout
    job = {"image": "unpullable.invalid/datamanager:0", "activeDeadlineSeconds": 10}
    kube.create(
        DataAudit.from_dict(resource_manifest("DataAudit", "late", candles, job=job)), namespace=namespace
    )
    status = wait_for(
        lambda: finished(kube, DataAudit, "late", namespace), 120, "the run to hit its deadline"
    )
    assert status["lastRun"]["reason"] == "DeadlineExceeded"
    assert condition(status, "Failed")["reason"] == "DeadlineExceeded"
