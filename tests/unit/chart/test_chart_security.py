"""The chart's security settings as rendered: where the operator may write, which identities exist, where
credentials go, what the values schema refuses, disruption budgets and network policies (the e2e tier runs
them: tests/e2e/test_namespaced_release.py, test_tenancy.py, test_rbac_audit.py, test_pod_security.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chart import CHART, NAMESPACE, RELEASE, render
from tests.fixtures.rbac import granted
from tests.tools import attempt

Docs = list[dict[str, Any]]


def of(docs: Docs, kind: str) -> Docs:
    """The documents of ``kind`` the release keeps running (`helm test` hooks left out)."""
    return [
        d for d in docs if d["kind"] == kind and "helm.sh/hook" not in d["metadata"].get("annotations", {})
    ]


def env_of(docs: Docs, deployment: str) -> dict[str, Any]:
    (found,) = [d for d in of(docs, "Deployment") if d["metadata"]["name"].endswith(deployment)]
    return {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in found["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def refused(*sets: str) -> str:
    """The render fails; its message."""
    args = ["template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.36.3"]
    for value in sets:
        args += ["--set", value]
    result = attempt("helm", *args)
    assert result.returncode != 0, f"rendered with {sets}"
    return result.stderr


def test_the_default_install_writes_only_in_its_own_namespace() -> None:
    docs = render()
    assert not of(docs, "ClusterRoleBinding")
    # the only ClusterRoles are the aggregated ones, bound to nobody by the chart
    assert sorted(d["metadata"]["name"] for d in of(docs, "ClusterRole")) == [
        "dm-datamanager-edit",
        "dm-datamanager-view",
    ]
    assert {d["metadata"]["namespace"] for d in of(docs, "Role") + of(docs, "RoleBinding")} == {NAMESPACE}
    assert env_of(docs, "operator")["DATAMANAGER_WATCH_NAMESPACES"] == NAMESPACE
    (binding,) = of(docs, "ValidatingAdmissionPolicyBinding")
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NAMESPACE]}
    grants = granted(docs, "dm-datamanager", NAMESPACE)
    assert {g.scope for g in grants} == {"release"}


def test_watched_namespaces_get_the_same_rules_as_the_cluster_wide_role_and_leases_stay_home() -> None:
    """The suite proves the cluster-wide rules used and sufficient; namespaced installs get exactly those."""
    namespaced = render("rbac.watchNamespaces={team-a,team-b}")
    wide = render("rbac.clusterWide=true")
    (cluster_role,) = [
        d for d in of(wide, "ClusterRole") if d["metadata"]["name"] == "dm-datamanager-operator"
    ]
    roles = {
        d["metadata"]["namespace"]: d["rules"]
        for d in of(namespaced, "Role")
        if d["metadata"]["name"] == "dm-datamanager-operator"
    }
    assert roles == {"team-a": cluster_role["rules"], "team-b": cluster_role["rules"]}
    assert env_of(namespaced, "operator")["DATAMANAGER_WATCH_NAMESPACES"] == "team-a,team-b"
    assert env_of(wide, "operator")["DATAMANAGER_WATCH_NAMESPACES"] == ""
    for docs in (namespaced, wide):
        leases = {g for g in granted(docs, "dm-datamanager", NAMESPACE) if g.resource == "leases"}
        assert leases
        assert {g.scope for g in leases} == {"release"}
        assert not any(g.resource == "secrets" for g in granted(docs, "dm-datamanager", NAMESPACE))
    assert "rbac.clusterWide=true and rbac.watchNamespaces exclude each other" in refused(
        "rbac.clusterWide=true", "rbac.watchNamespaces={team-a}"
    )


def test_without_creating_its_service_account_the_chart_needs_a_name_of_its_own() -> None:
    assert "serviceAccount.name is required with serviceAccount.create=false" in refused(
        "serviceAccount.create=false"
    )
    assert "serviceAccount.name=default would give the operator's rights to every pod" in refused(
        "serviceAccount.create=false", "serviceAccount.name=default"
    )
    assert "consumer.serviceAccount.name is required" in refused("consumer.serviceAccount.create=false")
    docs = render("serviceAccount.create=false", "serviceAccount.name=ops")
    assert [d["metadata"]["name"] for d in of(docs, "ServiceAccount")] == ["dm-datamanager-consumer"]
    assert granted(docs, "ops", NAMESPACE)
    assert not granted(docs, "default", NAMESPACE)


def test_the_consumer_has_its_own_identity_without_rbac_or_token() -> None:
    docs = render()
    accounts = {d["metadata"]["name"]: d for d in of(docs, "ServiceAccount")}
    assert set(accounts) == {"dm-datamanager", "dm-datamanager-consumer"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    (consumer,) = [d for d in of(docs, "Deployment") if d["metadata"]["name"] == "dm-datamanager-consumer"]
    pod = consumer["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dm-datamanager-consumer"
    assert pod["automountServiceAccountToken"] is False
    assert not granted(docs, "dm-datamanager-consumer", NAMESPACE)


def test_nats_credentials_never_land_in_a_config_map() -> None:
    message = refused("consumer.nats.url=nats://dm:s3cretPW99@nats:4222")
    assert "consumer.nats.url carries credentials" in message
    assert "consumer.nats.existingSecret" in message
    assert "s3cr" not in message
    docs = render("consumer.nats.existingSecret=nats-login")
    (config,) = of(docs, "ConfigMap")
    assert "DATAMANAGER_CONSUMER_NATS_URL" not in config["data"]
    assert env_of(docs, "consumer")["DATAMANAGER_CONSUMER_NATS_URL"] == {
        "secretKeyRef": {"name": "nats-login", "key": "url"}
    }


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("securityContext.privileged=true", "/securityContext/privileged"),
        ("securityContext.capabilities.add={NET_ADMIN}", "/securityContext/capabilities/add"),
        ("securityContext.capabilities.drop={NET_RAW}", "/securityContext/capabilities/drop"),
        ("securityContext.allowPrivilegeEscalation=true", "/securityContext/allowPrivilegeEscalation"),
        ("securityContext.runAsUser=0", "/securityContext/runAsUser"),
        ("podSecurityContext.runAsUser=0", "/podSecurityContext/runAsUser"),
        ("podSecurityContext.runAsNonRoot=false", "/podSecurityContext/runAsNonRoot"),
        ("podSecurityContext.seccompProfile.type=Unconfined", "/podSecurityContext/seccompProfile/type"),
        ("podSecurityContext.hostNetwork=true", "'hostNetwork' not allowed"),
        ("podSecurityContext.hostPID=true", "'hostPID' not allowed"),
        ("podSecurityContext.hostIPC=true", "'hostIPC' not allowed"),
        ("operator.hostNetwork=true", "'hostNetwork' not allowed"),
        ("consumer.hostPID=true", "'hostPID' not allowed"),
        ("podSecurityContext.runAsNonRoot=null", "missing property 'runAsNonRoot'"),
    ],
)
def test_the_values_schema_refuses_what_pod_security_restricted_forbids(value: str, where: str) -> None:
    assert where in refused(value)


def test_a_disruption_budget_never_covers_a_single_replica() -> None:
    on = ["podDisruptionBudget.enabled=true"]
    single = render(*on, "operator.replicas=1", "consumer.replicas=1")
    assert not of(single, "PodDisruptionBudget")
    mixed = render(*on, "operator.replicas=1", "consumer.replicas=3")
    assert [d["metadata"]["name"] for d in of(mixed, "PodDisruptionBudget")] == ["dm-datamanager-consumer"]
    assert "podDisruptionBudget.minAvailable=2 leaves no operator pod evictable" in refused(
        *on, "podDisruptionBudget.minAvailable=2"
    )
    assert (
        len(
            of(
                render(*on, "podDisruptionBudget.minAvailable=50%"),
                "PodDisruptionBudget",
            )
        )
        == 2
    )


def test_network_policies_admit_only_the_scraping_namespace() -> None:
    docs = render(
        "networkPolicy.enabled=true",
        "networkPolicy.scrapePodLabels.app=prometheus",
    )
    policies = of(docs, "NetworkPolicy")
    assert len(policies) == 2
    for policy in policies:
        assert policy["spec"]["ingress"] == [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app": "prometheus"}},
                    }
                ],
                "ports": [{"port": "http", "protocol": "TCP"}],
            }
        ]
    closed = render("networkPolicy.enabled=true", "networkPolicy.scrapeNamespace=")
    assert all(p["spec"]["ingress"] == [] for p in of(closed, "NetworkPolicy"))


def test_the_policy_and_the_operator_allow_the_same_images() -> None:
    images = ["operator.allowedImages={registry.example/dm:*,other.example/x:1}"]
    for extra in ([], ["admission.enabled=false"]):
        docs = render(*images, *extra)
        operator = env_of(docs, "operator")
        assert operator["DATAMANAGER_WORKER_IMAGE"] == "ghcr.io/petrosa/datamanager:0.1.0"
        assert operator["DATAMANAGER_ALLOWED_IMAGES"] == "registry.example/dm:*,other.example/x:1"
        policies = of(docs, "ValidatingAdmissionPolicy")
        assert len(policies) == (0 if extra else 1)
        for policy in policies:
            variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
            assert json.loads(variables["allowedImages"]) == [
                "ghcr.io/petrosa/datamanager:0.1.0",
                "registry.example/dm:*",
                "other.example/x:1",
            ]
