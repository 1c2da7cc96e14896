# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The Helm chart: lint, templates validated by the real API server, and a full install/upgrade/uninstall."""

from __future__ import annotations

import pytest
from lightkube import Client
from lightkube.core.client import LabelSelector
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Service, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding, Role, RoleBinding

from tests.conftest import wait_for
from tests.e2e.conftest import CHART, chart_image, run_tool

VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "namespaced-rbac": ["--set", "rbac.watchNamespaces={team-a,team-b}"],
    "hardened-extras": ["--set", "podDisruptionBudget.enabled=true", "--set", "networkPolicy.enabled=true"],
    "operator-only": ["--set", "consumer.enabled=false", "--set", "operator.replicas=3"],
    "consumer-secret": ["--set", "operator.enabled=false", "--set", "consumer.nats.existingSecret=nats"],
}


def test_helm_lint_is_clean(rig_env: dict[str, str]) -> None:
    out = run_tool(rig_env, "helm", "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("args", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_templates_pass_server_side_dry_run(rig_env: dict[str, str], namespace: str, args: list[str]) -> None:
    # without the `helm test` hook (its pod needs its ServiceAccount to exist); test_gitops runs `helm test`
    rendered = run_tool(
        rig_env, "helm", "template", "dm", str(CHART), "-n", namespace, "--kube-version", "1.36.3",
        "--skip-tests", *args,
    ).stdout  # fmt: skip
    for extra in ("team-a", "team-b"):
        run_tool(rig_env, "kubectl", "create", "namespace", extra, check=False)
    # every template names its namespace; the monitoring CRDs (Prometheus Operator) are not installed here, so
    # the value sets that need them are not in this table
    result = run_tool(rig_env, "kubectl", "apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert "created (server dry run)" in result.stdout


def test_values_schema_rejects_bad_values_with_a_clear_message(rig_env: dict[str, str]) -> None:
    bad = run_tool(
        rig_env,
        "helm",
        "template",
        "dm",
        str(CHART),
        "--kube-version",
        "1.36.3",
        "--set",
        "operator.leaseSeconds=1",
        "--set",
        "consumer.nats.url=http://nats",
        check=False,
    )
    assert bad.returncode != 0
    assert "operator/leaseSeconds" in bad.stderr
    assert "consumer/nats/url" in bad.stderr


def test_install_upgrade_uninstall_leaves_nothing(
    kube: Client, rig_env: dict[str, str], namespace: str
) -> None:
    release = "dmlife"
    common = [
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "120s",
        "--set",
        "operator.enabled=false",
        "--set",
        f"consumer.nats.url={rig_env['RIG_NATS_URL']}",
        *chart_image(rig_env),
    ]
    run_tool(rig_env, "helm", "install", release, str(CHART), *common, "--set", "consumer.replicas=1")
    deployment = f"{release}-datamanager-consumer"
    assert kube.get(Deployment, deployment, namespace=namespace).status.readyReplicas == 1
    run_tool(rig_env, "helm", "upgrade", release, str(CHART), *common, "--set", "consumer.replicas=2")
    wait_for(
        lambda: kube.get(Deployment, deployment, namespace=namespace).status.readyReplicas == 2,
        60,
        "2 ready consumers after the upgrade",
    )
    uninstall = run_tool(rig_env, "helm", "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")
    assert "uninstalled" in uninstall.stdout
    selector: LabelSelector = {"app.kubernetes.io/instance": release}
    for kind in (Deployment, Service, ConfigMap, ServiceAccount, Role, RoleBinding):
        assert not list(kube.list(kind, namespace=namespace, labels=selector)), f"{kind.__name__} left behind"
    for cluster_kind in (ClusterRole, ClusterRoleBinding):
        assert not list(kube.list(cluster_kind, labels=selector)), f"{cluster_kind.__name__} left behind"
