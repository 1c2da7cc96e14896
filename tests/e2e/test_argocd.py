# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""ArgoCD itself on the rig: its application controller and repo-server (built from the pinned argo-cd
module, with Redis from Debian) sync argocd/application.yaml from a Git repository of this working tree.

The chart's Application is given the rig's values (the consumer on the rig's NATS, no Prometheus Operator
objects: their CRDs are not installed) and no operator: the session's operator (operator_release) runs the
resources, so two operators never share them. What is checked: both Applications sync and the chart's is
Healthy; the health ArgoCD reports for each resource is what argocd-check computes for the same live object;
a `kubectl` suspend survives self-heal and the sync of a new revision, and is reverted once the
Application's ignoreDifferences are gone; deleting the Applications deletes nothing.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret
from lightkube.types import PatchType

from tests.argocd_health import ARGOCD_CM, argocd_healths
from tests.conftest import REPO, wait_for
from tests.e2e.conftest import CandleSource, _established
from tests.e2e.test_operator import AnalyticsJob, DataAudit
from tests.fixtures.kube import as_dict, name_of, resource
from tests.rig.rig import free_port
from tests.tools import tool

Application = create_namespaced_resource("argoproj.io", "v1alpha1", "Application", "applications")
AppProject = create_namespaced_resource("argoproj.io", "v1alpha1", "AppProject", "appprojects")
pytestmark = pytest.mark.usefixtures("operator_release")
Obj = dict[str, Any]
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}


@dataclass(frozen=True)
class ArgoCD:
    namespace: str
    server: str  # the rig's API server, registered as ArgoCD's destination cluster
    logs: Path

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def argocd(
    kube: Client, crds: None, rig_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArgoCD]:
    binary = tool("argocd")
    for path in sorted((binary.parent.parent / "crds").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        kube.apply(resource(CustomResourceDefinition, manifest), force=True)
        name = manifest["metadata"]["name"]
        wait_for(functools.partial(_established, kube, name), 60, f"CRD {name} established")
    namespace = f"argocd-{uuid.uuid4().hex[:8]}"
    kube.create(Namespace(metadata=ObjectMeta(name=namespace)))
    settings = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    kube.create(
        ConfigMap(metadata=ObjectMeta(name="argocd-cm", labels=PART_OF_ARGOCD), data=settings),
        namespace=namespace,
    )
    kube.create(
        ConfigMap(metadata=ObjectMeta(name="argocd-rbac-cm", labels=PART_OF_ARGOCD)), namespace=namespace
    )
    kube.create(
        Secret(
            metadata=ObjectMeta(name="argocd-secret", labels=PART_OF_ARGOCD),
            stringData={"server.secretkey": "rig"},
        ),
        namespace=namespace,
    )
    project = {"sourceRepos": ["*"], "destinations": [{"namespace": "*", "server": "*"}],
               "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}  # fmt: skip
    kube.create(AppProject(metadata=ObjectMeta(name="default"), spec=project), namespace=namespace)
    # the rig's API server as a destination cluster (the controller runs outside the cluster)
    config = yaml.safe_load(Path(rig_env["KUBECONFIG"]).read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]

    def b64(path: str) -> str:
        return base64.b64encode(Path(path).read_bytes()).decode()

    tls = {"caData": b64(cluster["certificate-authority"]), "certData": b64(user["client-certificate"]),
           "keyData": b64(user["client-key"])}  # fmt: skip
    kube.create(
        Secret(
            metadata=ObjectMeta(name="rig", labels={"argocd.argoproj.io/secret-type": "cluster"}),
            stringData={
                "name": "rig",
                "server": cluster["server"],
                "config": json.dumps({"tlsClientConfig": tls}),
            },
        ),
        namespace=namespace,
    )
    logs = tmp_path_factory.mktemp("argocd")
    redis, repo, repo_metrics, metrics = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "KUBECONFIG": rig_env["KUBECONFIG"],
        "ARGOCD_GPG_ENABLED": "false",
        "TMPDIR": str(logs),
    }
    commands = {
        "redis": [shutil.which("redis-server") or "redis-server", "--port", str(redis), "--bind", "127.0.0.1",
                  "--save", "", "--appendonly", "no"],
        "argocd-repo-server": [str(binary), "--port", str(repo), "--metrics-port", str(repo_metrics),
                               "--redis", f"127.0.0.1:{redis}", "--disable-tls"],
        "argocd-application-controller": [str(binary), "--kubeconfig", rig_env["KUBECONFIG"],
                                          "--namespace", namespace, "--redis", f"127.0.0.1:{redis}",
                                          "--repo-server", f"127.0.0.1:{repo}", "--repo-server-plaintext",
                                          "--metrics-port", str(metrics), "--app-resync", "15",
                                          "--status-processors", "2", "--operation-processors", "2"],
    }  # fmt: skip
    processes = []
    handle = ArgoCD(namespace, cluster["server"], logs)
    try:
        for name, argv in commands.items():
            log = (logs / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    argv, env={**env, "ARGOCD_BINARY_NAME": name}, stdout=log, stderr=subprocess.STDOUT
                )
            )
            port = {"redis": redis, "argocd-repo-server": repo, "argocd-application-controller": metrics}[
                name
            ]
            deadline = time.monotonic() + 120  # a loaded 2-core machine starts the controller slowly
            while not _listening(port):
                if processes[-1].poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start:\n{handle.tail()}")
                time.sleep(0.2)
        yield handle
    finally:
        for app in kube.list(Application, namespace=namespace):
            kube.delete(Application, name_of(app), namespace=namespace)
        for process in reversed(processes):  # only what this fixture started, by its own handle
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        kube.delete(Namespace, namespace)


def git_repository(folder: Path) -> str:
    """A Git repository of the working tree's chart and samples (as they are now, committed or not), with
    spec.suspend set in the DataAudit so that Git has an opinion about it; its file:// URL."""
    for part in ("charts", "samples"):
        shutil.copytree(REPO / part, folder / part)
    audit = folder / "samples" / "dataaudit.yaml"
    manifest = yaml.safe_load(audit.read_text())
    manifest["spec"]["suspend"] = False
    audit.write_text(yaml.safe_dump(manifest))
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "rig"]):
        subprocess.run(
            ["git", "-c", "user.email=rig@localhost", "-c", "user.name=rig", *argv], cwd=folder, check=True
        )
    return f"file://{folder}"


def commit_window(folder: Path, window: str) -> str:
    """A new revision of the repository: the DataAudit's window changed. Its commit id."""
    audit = folder / "samples" / "dataaudit.yaml"
    manifest = yaml.safe_load(audit.read_text())
    manifest["spec"]["window"] = window
    audit.write_text(yaml.safe_dump(manifest))
    git = ["git", "-c", "user.email=rig@localhost", "-c", "user.name=rig"]
    subprocess.run([*git, "commit", "-q", "-am", f"window {window}"], cwd=folder, check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], cwd=folder, check=True, capture_output=True, text=True)
    return head.stdout.strip()


def app_of(kube: Client, argocd: ArgoCD, name: str) -> Obj:
    return as_dict(kube.get(Application, name, namespace=argocd.namespace))


def test_argocd_syncs_the_example_applications_and_reports_the_operators_health(
    kube: Client,
    namespace: str,
    candles: CandleSource,
    argocd: ArgoCD,
    rig_env: dict[str, str],
    tmp_path: Path,
) -> None:
    url = git_repository(tmp_path / "repo")
    chart_namespace = f"{namespace}-dm"
    chart_app, resources_app = yaml.safe_load_all((REPO / "argocd" / "application.yaml").read_text())
    for app in (chart_app, resources_app):
        app["metadata"]["namespace"] = argocd.namespace
        app["spec"]["source"].update(repoURL=url, targetRevision="main")
        app["spec"]["destination"]["server"] = argocd.server
    chart_app["spec"]["destination"]["namespace"] = chart_namespace
    chart_app["spec"]["source"]["helm"]["valuesObject"] = {
        "operator": {"enabled": False},
        "consumer": {"replicas": 1, "nats": {"url": rig_env["RIG_NATS_URL"]}},
        "metrics": {"dashboard": {"enabled": True}},
    }
    if image := rig_env.get("RIG_IMAGE"):  # container mode: the image `make image` built
        repository, _, tag = image.rpartition(":")
        chart_app["spec"]["source"]["helm"]["valuesObject"]["image"] = {"repository": repository, "tag": tag}
    resources_app["spec"]["destination"]["namespace"] = namespace
    try:
        for app in (chart_app, resources_app):
            kube.create(Application.from_dict(app), namespace=argocd.namespace)

        def synced(name: str, health: str | None = None) -> Obj | None:
            status = app_of(kube, argocd, name).get("status") or {}
            ok = status.get("sync", {}).get("status") == "Synced"
            return (
                status
                if ok and (health is None or status.get("health", {}).get("status") == health)
                else None
            )

        try:
            wait_for(
                lambda: synced("datamanager", "Healthy"), 240, "the chart's Application Synced and Healthy"
            )
            wait_for(lambda: synced("datamanager-resources"), 120, "the resources' Application Synced")
        except pytest.fail.Exception:
            pytest.fail(f"{app_of(kube, argocd, 'datamanager').get('status')}\n{argocd.tail()}")
        assert (
            kube.get(Deployment, "datamanager-consumer", namespace=chart_namespace).status.readyReplicas == 1
        )

        # ArgoCD's controller and argocd-check agree on every resource, once the operator's runs are done
        kinds = {"DataAudit": DataAudit, "AnalyticsJob": AnalyticsJob}

        def agreed() -> list[tuple[Obj, Obj]] | None:
            reported = (app_of(kube, argocd, "datamanager-resources").get("status") or {}).get(
                "resources", []
            )
            lives = [as_dict(kube.get(kinds[r["kind"]], r["name"], namespace=namespace)) for r in reported]
            if len(lives) != 2 or any(not (o.get("status") or {}).get("lastRun") for o in lives):
                return None
            computed = argocd_healths(lives)
            pairs = [(r.get("health", {}), c) for r, c in zip(reported, computed, strict=True)]
            same = all(
                r.get("status") == c["status"] and r.get("message", "") == c["message"] for r, c in pairs
            )
            return pairs if same else None

        pairs = wait_for(agreed, 240, "ArgoCD's resource health to match argocd-check's on finished runs")
        assert {p[1]["status"] for p in pairs} <= {"Healthy", "Degraded"}

        # `kubectl` suspend: Git says false; the Application ignores the field, so self-heal leaves it
        patched_at = datetime.now(UTC)
        kube.patch(
            DataAudit, "majors", {"spec": {"suspend": True}}, namespace=namespace, patch_type=PatchType.MERGE
        )
        refresh = {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
        kube.patch(
            Application,
            "datamanager-resources",
            refresh,
            namespace=argocd.namespace,
            patch_type=PatchType.MERGE,
        )

        def reconciled_after_patch() -> Obj | None:
            status = synced("datamanager-resources")
            reconciled = (status or {}).get("reconciledAt", "1970-01-01T00:00:00Z")
            return status if datetime.fromisoformat(reconciled.replace("Z", "+00:00")) > patched_at else None

        wait_for(reconciled_after_patch, 60, "a reconcile of the resources' Application after the patch")
        time.sleep(10)  # past the self-heal timeout (5 s by default)
        assert kube.get(DataAudit, "majors", namespace=namespace).spec["suspend"] is True
        assert synced("datamanager-resources"), "the ignored field made the Application OutOfSync"

        # a new revision is synced (RespectIgnoreDifferences): Git's change lands, the live suspend stays
        revision = commit_window(tmp_path / "repo", "6d")
        kube.patch(
            Application,
            "datamanager-resources",
            refresh,
            namespace=argocd.namespace,
            patch_type=PatchType.MERGE,
        )
        wait_for(
            lambda: kube.get(DataAudit, "majors", namespace=namespace).spec["window"] == "6d",
            90,
            f"revision {revision[:7]} synced",
        )
        assert kube.get(DataAudit, "majors", namespace=namespace).spec["suspend"] is True

        # without ignoreDifferences self-heal reverts it: self-heal is on, and the entry is what held
        drop = [{"op": "remove", "path": "/spec/ignoreDifferences"}]
        kube.patch(
            Application, "datamanager-resources", drop, namespace=argocd.namespace, patch_type=PatchType.JSON
        )
        wait_for(
            lambda: kube.get(DataAudit, "majors", namespace=namespace).spec["suspend"] is False,
            90,
            "self-heal to revert the suspend once the ignore entry is gone",
        )

        # deleting the Applications deletes nothing
        for name in ("datamanager-resources", "datamanager"):
            kube.delete(Application, name, namespace=argocd.namespace)
        wait_for(
            lambda: not list(kube.list(Application, namespace=argocd.namespace)), 60, "the Applications gone"
        )
        time.sleep(5)
        assert kube.get(DataAudit, "majors", namespace=namespace)
        assert kube.get(AnalyticsJob, "majors-analytics", namespace=namespace)
        assert kube.get(Deployment, "datamanager-consumer", namespace=chart_namespace)
        assert kube.get(CustomResourceDefinition, "dataaudits.datamanager.petrosa.io")
    finally:
        try:
            kube.delete(Namespace, chart_namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
