# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""GitOps and observability on the rig: ArgoCD's own code on what the operator wrote, the chart's alerts and
dashboard against a real scrape of the operator and the consumer, the `helm test` hook, `make crds-upgrade`.

Written against the status and metrics contract of issue #14 (docs/operator.md): `status.activeRuns`, run refs
with a generation, the per-resource gauges, `datamanager_operator_ready`, the consumer's per-type worst lag,
and the ignore-resource-updates annotation on the operator's Jobs and pods. Until the operator implements all
of it, the tests that read those fail and say which part is missing.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import PatchType
from prometheus_client.parser import text_string_to_metric_families

from tests.argocd_health import argocd_health, argocd_healths, ask
from tests.chart import all_queries, series_used
from tests.conftest import REPO, wait_for
from tests.e2e.conftest import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    CandleSource,
    chart_image,
    resource_manifest,
    run_tool,
    tool_path,
)
from tests.e2e.test_operator import DataAudit
from tests.fixtures.kube import as_dict

pytestmark = pytest.mark.usefixtures("operator_release")
Obj = dict[str, Any]
IGNORE_UPDATES = "argocd.argoproj.io/ignore-resource-updates"
SCRAPE_LABELS = {"datamanager_operator": {"job", "pod"}, "datamanager_consumer": {"job", "pod", "namespace"}}


def live(kube: Client, name: str, namespace: str) -> Obj:
    return as_dict(kube.get(DataAudit, name, namespace=namespace))


def finished(obj: Obj) -> Obj | None:
    status = obj.get("status") or {}
    done = (status.get("lastRun") or {}).get("outcome") in ("Succeeded", "Failed")
    return obj if done and not status.get("activeRuns") else None


def in_flight(obj: Obj) -> Obj | None:
    return obj if (obj.get("status") or {}).get("activeRuns") else None


def test_argocd_health_of_live_resources_through_their_lives(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    """ArgoCD's health (its Lua VM, argocd-cm as shipped) of statuses the operator wrote, at each stage."""
    kube.create(
        Secret(metadata=ObjectMeta(name="not-mysql"), stringData={"dsn": "postgres://not-mysql"}),
        namespace=namespace,
    )
    # a Secret that does not exist keeps the first run's pod waiting (stuckPodSeconds: 20 on the rig)
    stuck = resource_manifest("DataAudit", "stuck", candles)
    stuck["spec"]["source"] = {"dsnSecretRef": {"name": "does-not-exist", "key": "dsn"}}
    broken = resource_manifest("DataAudit", "broken", candles)
    broken["spec"]["source"] = {"dsnSecretRef": {"name": "not-mysql", "key": "dsn"}}
    for manifest in (resource_manifest("DataAudit", "good", candles), stuck, broken):
        kube.create(DataAudit.from_dict(manifest), namespace=namespace)

    first = wait_for(lambda: in_flight(live(kube, "stuck", namespace)), 60, "stuck's first run to start")
    assert argocd_health(first)["status"] == "Progressing"
    assert argocd_health(first)["message"].startswith("First run of generation 1 in progress: g1 (")

    good = wait_for(lambda: finished(live(kube, "good", namespace)), 120, "good's first run")
    assert good["status"]["lastRun"]["outcome"] == "Succeeded", good["status"]
    assert argocd_health(good)["status"] == "Healthy"  # a low score is only said, unless opted in

    failed = wait_for(lambda: finished(live(kube, "broken", namespace)), 120, "broken's first run")
    reason = failed["status"]["lastRun"]["reason"]
    assert argocd_health(failed) == {
        "status": "Degraded",
        "message": f"InvalidConfig: {failed['status']['lastRun']['message']}",
    }
    assert reason == "InvalidConfig"

    # a manual run in flight keeps the last outcome's health: Healthy stays Healthy, Degraded stays Degraded
    for name in ("good", "broken"):
        annotation = {"metadata": {"annotations": {"datamanager.petrosa.io/run-now": "again"}}}
        kube.patch(DataAudit, name, annotation, namespace=namespace, patch_type=PatchType.MERGE)
    running_good = wait_for(
        lambda: in_flight(live(kube, "good", namespace)), 60, "good's manual run", interval=0.1
    )
    assert argocd_health(running_good)["status"] == "Healthy"
    running_broken = wait_for(
        lambda: in_flight(live(kube, "broken", namespace)), 60, "broken's manual run", interval=0.1
    )
    assert argocd_health(running_broken)["status"] == "Degraded"

    # suspended: Healthy with a message when the last run succeeded, Degraded when it failed
    wait_for(lambda: finished(live(kube, "good", namespace)), 120, "good's manual run to end")
    for name in ("good", "broken"):
        kube.patch(
            DataAudit, name, {"spec": {"suspend": True}}, namespace=namespace, patch_type=PatchType.MERGE
        )

    def suspended(name: str) -> Obj | None:
        obj = live(kube, name, namespace)
        return obj if (obj.get("status") or {}).get("phase") == "Suspended" else None

    healths = argocd_healths([wait_for(lambda: suspended("good"), 120, "good suspended")])
    healths += argocd_healths([wait_for(lambda: suspended("broken"), 120, "broken suspended")])
    assert healths[0]["status"] == "Healthy"
    assert healths[0]["message"].startswith("Suspended: no new runs start; last run ")
    assert healths[1]["status"] == "Degraded"
    assert healths[1]["message"].endswith("; suspended: no new runs start")

    stuck_failed = wait_for(lambda: finished(live(kube, "stuck", namespace)), 120, "stuck's run to fail")
    assert argocd_health(stuck_failed)["status"] == "Degraded"
    assert argocd_health(stuck_failed)["message"].startswith("CreateContainerConfigError: ")


def test_the_operators_jobs_and_pods_are_annotated_so_their_churn_refreshes_nothing(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    kube.create(DataAudit.from_dict(resource_manifest("DataAudit", "quiet", candles)), namespace=namespace)
    wait_for(lambda: finished(live(kube, "quiet", namespace)), 120, "the run")
    (job,) = kube.list(Job, namespace=namespace, labels={"datamanager.petrosa.io/resource": "quiet"})
    pods = list(
        kube.list(Pod, namespace=namespace, labels={"batch.kubernetes.io/job-name": job.metadata.name})
    )
    assert pods, "the Job's pod is gone before the test could read it"
    for obj, where in [
        (job, "Job"),
        (job.spec.template, "the Job's pod template"),
        (pods[0], "the worker pod"),
    ]:
        annotations = obj.metadata.annotations or {}
        assert annotations.get(IGNORE_UPDATES) == "true", f'{where} lacks {IGNORE_UPDATES}: "true"'
    # what ArgoCD's controller decides for the live objects when their status and finalizers change
    live_job, live_pod = as_dict(job), as_dict(pods[0])
    changed_job, changed_pod = copy.deepcopy(live_job), copy.deepcopy(live_pod)
    changed_job["status"]["ready"] = 0
    changed_job["metadata"]["finalizers"] = []
    changed_pod["metadata"]["finalizers"] = []
    changed_pod["status"]["conditions"] = []
    answers = ask(
        [
            {"op": "refresh", "old": live_job, "new": changed_job},
            {"op": "refresh", "old": live_pod, "new": changed_pod},
        ]
    )
    assert [a["refresh"] for a in answers] == [False, False], answers


def scrape(ip: str) -> dict[str, list[dict[str, str]]]:
    """Sample names -> their label sets, from a /metrics endpoint on the rig."""
    with urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


@pytest.fixture
def consumer_pod_ip(kube: Client, namespace: str, rig_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A consumer installed by the chart in the test's namespace on its own subject: (pod IP, subject)."""
    subject = f"test.{uuid.uuid4().hex}"
    release = "dmscrape"
    run_tool(
        rig_env, "helm", "install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "120s",
        "--set", "operator.enabled=false", "--set", "consumer.replicas=1",
        "--set", f"consumer.nats.url={rig_env['RIG_NATS_URL']}", "--set", f"consumer.nats.subject={subject}",
        *chart_image(rig_env),
    )  # fmt: skip
    try:
        (pod,) = kube.list(Pod, namespace=namespace, labels={"app.kubernetes.io/instance": release})
        yield str(pod.status.podIP), subject
    finally:
        run_tool(rig_env, "helm", "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")


async def publish(url: str, subject: str) -> None:
    client = await nats.connect(url)
    now_ms = int(time.time() * 1000)
    messages = [
        {
            "stream": "btcusdt@markPrice@1s",
            "data": {"e": "markPriceUpdate", "E": now_ms, "s": "BTCUSDT", "p": "1"},
        },
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": now_ms, "s": "BTCUSDT", "p": "1", "q": "1"}},
    ]
    for message in messages:
        await client.publish(subject, json.dumps({**message, "timestamp": "2026-01-01T00:00:00Z"}).encode())
    await client.publish(subject, b"not json")
    await client.flush()
    await client.close()


def test_every_series_the_alerts_and_dashboard_read_exists_in_a_real_scrape(
    kube: Client,
    namespace: str,
    candles: CandleSource,
    rig_env: dict[str, str],
    consumer_pod_ip: tuple[str, str],
) -> None:
    """Names and labels: each metric an alert or a panel reads has a sample with every label it relies on
    (the scrape adds job, pod and, for the consumer, namespace)."""
    # scheduled (once a year), so the per-resource next-run gauge has a sample too
    manifest = resource_manifest("DataAudit", "scraped", candles, schedule="0 0 1 1 *")
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(lambda: finished(live(kube, "scraped", namespace)), 120, "a finished audit")
    ip, subject = consumer_pod_ip
    asyncio.run(publish(rig_env["RIG_NATS_URL"], subject))
    wait_for(
        lambda: scrape(ip).get("datamanager_consumer_malformed_messages_total"), 30, "the consumer's counters"
    )

    def missing_series() -> list[str]:
        # per-resource series come from the replica that owns the resource at scrape time: while a replica
        # of an earlier test leaves (its presence Lease expiring), ownership may move between two scrapes
        samples: dict[str, list[dict[str, str]]] = {}
        operators = kube.list(
            Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"}
        )
        for pod in operators:
            if pod.status and pod.status.podIP and pod.status.phase == "Running":
                try:
                    scraped = scrape(str(pod.status.podIP))
                except OSError:  # a replica going away (URLError is an OSError): the next round without it
                    continue
                for name, label_sets in scraped.items():
                    samples.setdefault(name, []).extend(label_sets)
        samples.update(scrape(ip))
        missing = []
        for where, expr in all_queries().items():
            for metric, labels in series_used(expr).items():
                wanted = labels - SCRAPE_LABELS["_".join(metric.split("_")[:2])]
                if not any(wanted <= set(s) for s in samples.get(metric, [])):
                    have = sorted({k for s in samples.get(metric, []) for k in s})
                    missing.append(
                        f"{where}: {metric} with {sorted(wanted)} (scraped: {have or 'no sample'})"
                    )
        return missing

    deadline = time.monotonic() + 60
    while (missing := missing_series()) and time.monotonic() < deadline:
        time.sleep(2)
    assert not missing, "series the alerts and dashboard read but nothing exports:\n" + "\n".join(
        sorted(set(missing))
    )


def test_helm_test_passes_when_every_operator_replica_is_ready(rig_env: dict[str, str]) -> None:
    # a passing test pod is deleted at once (hook-succeeded), so there are no logs to read: its phase says it
    result = run_tool(rig_env, "helm", "test", RELEASE, "-n", RELEASE_NAMESPACE, "--timeout", "180s")
    assert f"TEST SUITE:     {RELEASE}-datamanager-test-operator-ready" in result.stdout
    assert "Phase:          Succeeded" in result.stdout


def test_helm_test_fails_when_the_operator_has_no_replica(rig_env: dict[str, str], namespace: str) -> None:
    release = "dmnone"
    run_tool(
        rig_env, "helm", "install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "60s",
        "--set", "consumer.enabled=false", "--set", "operator.replicas=0",
        "--set", f"rbac.watchNamespaces={{{namespace}}}", *chart_image(rig_env),
    )  # fmt: skip
    try:
        result = run_tool(
            rig_env, "helm", "test", release, "-n", namespace, "--logs", "--timeout", "120s", check=False
        )
        assert result.returncode != 0
        assert (
            f"operator not ready: Deployment {release}-datamanager-operator has 0 replicas" in result.stdout
        )
    finally:
        run_tool(rig_env, "helm", "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")


def test_make_crds_upgrade_applies_the_charts_crds(rig_env: dict[str, str]) -> None:
    env = {**os.environ, "KUBECONFIG": rig_env["KUBECONFIG"], "PATH": tool_path()}
    result = subprocess.run(
        ["make", "-s", "crds-upgrade"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for plural in ("dataaudits", "analyticsjobs"):
        crd = f"customresourcedefinition.apiextensions.k8s.io/{plural}.datamanager.petrosa.io"
        assert f"{crd} serverside-applied" in result.stdout


def test_the_new_values_pass_server_side_dry_run(rig_env: dict[str, str], namespace: str) -> None:
    """Without the test hook (--skip-tests): its pod needs its ServiceAccount; `helm test` runs it."""
    rendered = run_tool(
        rig_env, "helm", "template", "dm", str(CHART), "-n", namespace, "--kube-version", "1.36.3",
        "--skip-tests",
        "--set", "metrics.dashboard.enabled=true", "--set", "workers.podLabels.team=md",
        "--set", "image.digest=sha256:" + "0" * 64,
    ).stdout  # fmt: skip
    result = run_tool(rig_env, "kubectl", "apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert "configmap/dm-datamanager-dashboard created (server dry run)" in result.stdout
    assert "deployment.apps/dm-datamanager-operator created (server dry run)" in result.stdout
