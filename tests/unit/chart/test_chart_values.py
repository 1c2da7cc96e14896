"""Chart values that reach the operator and its pods: worker settings, image digest, topology spread, the
`helm test` hook and NOTES (rendered by the pinned Helm; the e2e tier installs the chart for real)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.chart import CHART, NAMESPACE, RELEASE, render
from tests.conftest import REPO
from tests.tools import attempt

DIGEST = "sha256:" + "0123456789abcdef" * 4
Doc = dict[str, Any]


def kind(docs: list[Doc], wanted: str, name: str | None = None) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == wanted and (name is None or d["metadata"]["name"] == name)]
    return doc


def operator_container(*sets: str) -> Doc:
    deployment = kind(render(*sets), "Deployment", f"{RELEASE}-datamanager-operator")
    container: Doc = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def env(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def failing_template(*sets: str) -> str:
    args = ["template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.36.3"]
    for value in sets:
        args += ["--set", value]
    result = attempt("helm", *args)
    assert result.returncode != 0, f"helm template accepted {sets}"
    return result.stderr


def test_worker_settings_reach_the_operator_as_the_contract_names_them() -> None:
    values = env(
        operator_container(
            "imagePullSecrets[0].name=registry-a",
            "imagePullSecrets[1].name=registry-b",
            "workers.serviceAccountName=datamanager-worker",
            "workers.podLabels.team=market-data",
            "workers.podAnnotations.cost-center=md-42",
        )
    )
    assert values["DATAMANAGER_WORKER_IMAGE_PULL_SECRETS"] == "registry-a,registry-b"
    assert values["DATAMANAGER_WORKER_SERVICE_ACCOUNT"] == "datamanager-worker"
    assert json.loads(values["DATAMANAGER_WORKER_POD_LABELS"]) == {"team": "market-data"}
    assert json.loads(values["DATAMANAGER_WORKER_POD_ANNOTATIONS"]) == {"cost-center": "md-42"}


def test_worker_settings_default_to_nothing() -> None:
    values = env(operator_container())
    assert values["DATAMANAGER_WORKER_IMAGE_PULL_SECRETS"] == ""
    assert values["DATAMANAGER_WORKER_SERVICE_ACCOUNT"] == ""
    assert json.loads(values["DATAMANAGER_WORKER_POD_LABELS"]) == {}
    assert json.loads(values["DATAMANAGER_WORKER_POD_ANNOTATIONS"]) == {}


@pytest.mark.parametrize("key", ["datamanager.petrosa.io/resource", "app.kubernetes.io/instance"])
def test_reserved_worker_pod_labels_are_refused_with_the_reason(key: str) -> None:
    escaped = key.replace(".", "\\.")  # --set splits keys at dots
    stderr = failing_template(f"workers.podLabels.{escaped}=x")
    assert f'workers.podLabels: "{key}" is reserved' in stderr


def test_image_digest_pins_every_image_the_chart_names() -> None:
    images: set[str] = set()
    for doc in render(f"image.digest={DIGEST}"):
        pod_spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc.get("spec", {})
        images |= {c["image"] for c in pod_spec.get("containers", [])}
    worker = env(operator_container(f"image.digest={DIGEST}"))["DATAMANAGER_WORKER_IMAGE"]
    assert images | {worker} == {f"ghcr.io/petrosa/datamanager@{DIGEST}"}


def test_a_malformed_digest_is_refused_by_the_schema() -> None:
    assert "image/digest" in failing_template("image.digest=latest")


def test_operator_replicas_spread_over_nodes_and_zones_by_default() -> None:
    deployment = kind(render(), "Deployment", f"{RELEASE}-datamanager-operator")
    spec = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    constraints = spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for c in constraints:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway"  # never blocks scheduling on a small cluster
        assert c["labelSelector"] == {"matchLabels": selector}
        assert c["matchLabelKeys"] == ["pod-template-hash"]


def test_own_topology_spread_constraints_replace_the_default_ones() -> None:
    docs = render(
        "operator.topologySpreadConstraints[0].maxSkew=2",
        "operator.topologySpreadConstraints[0].topologyKey=rack",
        "operator.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    )
    deployment = kind(docs, "Deployment", f"{RELEASE}-datamanager-operator")
    (constraint,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraint == {
        "maxSkew": 2,
        "topologyKey": "rack",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    off = kind(
        render("operator.defaultTopologySpread=false"), "Deployment", f"{RELEASE}-datamanager-operator"
    )
    assert "topologySpreadConstraints" not in off["spec"]["template"]["spec"]


def test_the_helm_test_hook_checks_the_operator_with_least_rights() -> None:
    docs = render()
    hooks = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert sorted(d["kind"] for d in hooks) == ["Pod", "Role", "RoleBinding", "ServiceAccount"]
    role = kind(hooks, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": [f"{RELEASE}-datamanager-operator"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]
    pod = kind(hooks, "Pod")
    assert pod["spec"]["serviceAccountName"] == role["metadata"]["name"]
    assert "/readyz" in pod["spec"]["containers"][0]["args"][0]
    for sets in (("tests.enabled=false",), ("operator.enabled=false",)):
        assert not [d for d in render(*sets) if "helm.sh/hook" in d["metadata"].get("annotations", {})]


def test_the_dashboard_and_rules_are_opt_in_and_rules_need_a_monitor() -> None:
    kinds = {d["kind"] for d in render()}
    assert not kinds & {"PrometheusRule", "ServiceMonitor", "PodMonitor"}
    assert not [d for d in render() if d["metadata"]["name"].endswith("-dashboard")]
    stderr = failing_template("metrics.prometheusRule.enabled=true")
    assert (
        "metrics.prometheusRule.enabled needs metrics.serviceMonitor.enabled or metrics.podMonitor.enabled"
        in stderr
    )


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_both_monitors_give_the_job_label_the_rules_select(monitor: str) -> None:
    docs = render(f"metrics.{monitor}.enabled=true")
    kind_name = monitor[0].upper() + monitor[1:]
    for component in ("operator", "consumer"):
        doc = kind(docs, kind_name, f"{RELEASE}-datamanager-{component}")
        (endpoint,) = doc["spec"]["endpoints" if monitor == "serviceMonitor" else "podMetricsEndpoints"]
        job = f"{NAMESPACE}/{RELEASE}-datamanager-{component}"
        assert endpoint["relabelings"] == [{"targetLabel": "job", "replacement": job}]
        # the operator's per-resource series carry the resource's namespace: Prometheus must keep it
        assert endpoint["honorLabels"] is (component == "operator")


def test_notes_and_readme_name_only_make_targets_that_exist() -> None:
    targets = set(re.findall(r"^([a-z0-9-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))
    for path in (CHART / "templates" / "NOTES.txt", CHART / "README.md.gotmpl", REPO / "README.md"):
        named = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", path.read_text()))
        assert named <= targets, f"{path.name} names missing make targets {named - targets}"
    assert "crds-upgrade" in targets
