# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The chart's security settings as rendered, and the admission policy's allow-lists on the API server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.admissionregistration_v1 import (
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
)

from tests.conftest import wait_for
from tests.e2e.conftest import CHART, RELEASE, CandleSource, render, resource_manifest, run_tool
from tests.fixtures.kube import as_dict, resource
from tests.fixtures.rbac import granted

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
Docs = list[dict[str, Any]]
NS = "dm-sec"


def of(docs: Docs, kind: str) -> Docs:
    return [doc for doc in docs if doc["kind"] == kind]


def env_of(docs: Docs, deployment: str) -> dict[str, Any]:
    (found,) = [d for d in of(docs, "Deployment") if d["metadata"]["name"].endswith(deployment)]
    return {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in found["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def refused(rig_env: dict[str, str], *values: str) -> str:
    """The render fails; its message."""
    result = run_tool(
        rig_env,
        "helm",
        "template",
        "dm",
        str(CHART),
        "-n",
        NS,
        "--kube-version",
        "1.36.3",
        *values,
        check=False,
    )
    assert result.returncode != 0, f"rendered with {values}"
    return result.stderr


def test_the_default_install_writes_only_in_its_own_namespace(rig_env: dict[str, str]) -> None:
    docs = render(rig_env, "dm", NS)
    assert not of(docs, "ClusterRoleBinding")
    # the only ClusterRoles are the aggregated ones, bound to nobody by the chart
    assert sorted(d["metadata"]["name"] for d in of(docs, "ClusterRole")) == [
        "dm-datamanager-edit",
        "dm-datamanager-view",
    ]
    assert {d["metadata"]["namespace"] for d in of(docs, "Role") + of(docs, "RoleBinding")} == {NS}
    assert env_of(docs, "operator")["DATAMANAGER_WATCH_NAMESPACES"] == NS
    (binding,) = of(docs, "ValidatingAdmissionPolicyBinding")
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NS]}
    grants = granted(docs, "dm-datamanager", NS)
    assert {g.scope for g in grants} == {"release"}


def test_watched_namespaces_get_the_same_rules_as_the_cluster_wide_role_and_leases_stay_home(
    rig_env: dict[str, str],
) -> None:
    """The suite proves the cluster-wide rules used and sufficient; namespaced installs get exactly those."""
    namespaced = render(rig_env, "dm", NS, "--set", "rbac.watchNamespaces={team-a,team-b}")
    wide = render(rig_env, "dm", NS, "--set", "rbac.clusterWide=true")
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
        leases = {g for g in granted(docs, "dm-datamanager", NS) if g.resource == "leases"}
        assert leases
        assert {g.scope for g in leases} == {"release"}
        assert not any(g.resource == "secrets" for g in granted(docs, "dm-datamanager", NS))
    assert "rbac.clusterWide=true and rbac.watchNamespaces exclude each other" in refused(
        rig_env, "--set", "rbac.clusterWide=true", "--set", "rbac.watchNamespaces={team-a}"
    )


def test_without_creating_its_service_account_the_chart_needs_a_name_of_its_own(
    rig_env: dict[str, str],
) -> None:
    assert "serviceAccount.name is required with serviceAccount.create=false" in refused(
        rig_env, "--set", "serviceAccount.create=false"
    )
    assert "serviceAccount.name=default would give the operator's rights to every pod" in refused(
        rig_env, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=default"
    )
    assert "consumer.serviceAccount.name is required" in refused(
        rig_env, "--set", "consumer.serviceAccount.create=false"
    )
    docs = render(
        rig_env, "dm", NS, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=ops"
    )
    assert [d["metadata"]["name"] for d in of(docs, "ServiceAccount")] == ["dm-datamanager-consumer"]
    assert granted(docs, "ops", NS)
    assert not granted(docs, "default", NS)


def test_the_consumer_has_its_own_identity_without_rbac_or_token(rig_env: dict[str, str]) -> None:
    docs = render(rig_env, "dm", NS)
    accounts = {d["metadata"]["name"]: d for d in of(docs, "ServiceAccount")}
    assert set(accounts) == {"dm-datamanager", "dm-datamanager-consumer"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    (consumer,) = [d for d in of(docs, "Deployment") if d["metadata"]["name"] == "dm-datamanager-consumer"]
    pod = consumer["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dm-datamanager-consumer"
    assert pod["automountServiceAccountToken"] is False
    assert not granted(docs, "dm-datamanager-consumer", NS)


def test_nats_credentials_never_land_in_a_config_map(rig_env: dict[str, str]) -> None:
    message = refused(rig_env, "--set", "consumer.nats.url=nats://dm:s3cretPW99@nats:4222")
    assert "consumer.nats.url carries credentials" in message
    assert "consumer.nats.existingSecret" in message
    assert "s3cr" not in message
    docs = render(rig_env, "dm", NS, "--set", "consumer.nats.existingSecret=nats-login")
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
def test_the_values_schema_refuses_what_pod_security_restricted_forbids(
    rig_env: dict[str, str], value: str, where: str
) -> None:
    assert where in refused(rig_env, "--set", value)


def test_a_disruption_budget_never_covers_a_single_replica(rig_env: dict[str, str]) -> None:
    on = ["--set", "podDisruptionBudget.enabled=true"]
    single = render(rig_env, "dm", NS, *on, "--set", "operator.replicas=1", "--set", "consumer.replicas=1")
    assert not of(single, "PodDisruptionBudget")
    mixed = render(rig_env, "dm", NS, *on, "--set", "operator.replicas=1", "--set", "consumer.replicas=3")
    assert [d["metadata"]["name"] for d in of(mixed, "PodDisruptionBudget")] == ["dm-datamanager-consumer"]
    assert "podDisruptionBudget.minAvailable=2 leaves no operator pod evictable" in refused(
        rig_env, *on, "--set", "podDisruptionBudget.minAvailable=2"
    )
    assert (
        len(
            of(
                render(rig_env, "dm", NS, *on, "--set", "podDisruptionBudget.minAvailable=50%"),
                "PodDisruptionBudget",
            )
        )
        == 2
    )


def test_network_policies_admit_only_the_scraping_namespace(rig_env: dict[str, str]) -> None:
    docs = render(
        rig_env,
        "dm",
        NS,
        "--set",
        "networkPolicy.enabled=true",
        "--set",
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
    closed = render(
        rig_env, "dm", NS, "--set", "networkPolicy.enabled=true", "--set", "networkPolicy.scrapeNamespace="
    )
    assert all(p["spec"]["ingress"] == [] for p in of(closed, "NetworkPolicy"))


def test_the_policy_and_the_operator_allow_the_same_images(rig_env: dict[str, str]) -> None:
    images = ["--set", "operator.allowedImages={registry.example/dm:*,other.example/x:1}"]
    for extra in ([], ["--set", "admission.enabled=false"]):
        docs = render(rig_env, "dm", NS, *images, *extra)
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


OPEN = [
    "--set",
    "operator.allowedImages={registry.example/dm:*}",
    "--set",
    "admission.placement.nodeSelectorKeys={kubernetes.io/arch}",
    "--set",
    "admission.placement.tolerationKeys={dedicated}",
    "--set",
    "admission.placement.affinity=true",
    "--set",
    "admission.placement.priorityClassNames={batch-low}",
]


@pytest.fixture
def open_policy(kube: Client, rig_env: dict[str, str], namespace: str) -> Iterator[None]:
    """The policy rendered with allow-lists, bound to the test's namespace alone; the suite's (empty lists,
    every namespace) is unbound meanwhile."""
    release = f"open{uuid.uuid4().hex[:4]}"
    docs = render(rig_env, release, namespace, "--set", f"rbac.watchNamespaces={{{namespace}}}", *OPEN)
    suite_binding = as_dict(kube.get(ValidatingAdmissionPolicyBinding, f"{RELEASE}-datamanager-resources"))
    restore = {key: suite_binding[key] for key in ("apiVersion", "kind", "spec")}
    restore["metadata"] = {
        "name": suite_binding["metadata"]["name"],
        "labels": suite_binding["metadata"]["labels"],
    }
    kube.delete(ValidatingAdmissionPolicyBinding, f"{RELEASE}-datamanager-resources")
    (policy,) = of(docs, "ValidatingAdmissionPolicy")
    (binding,) = of(docs, "ValidatingAdmissionPolicyBinding")
    try:
        kube.create(resource(ValidatingAdmissionPolicy, policy))
        kube.create(resource(ValidatingAdmissionPolicyBinding, binding))
        yield
    finally:
        for doc in (binding, policy):
            kind = ValidatingAdmissionPolicy if doc is policy else ValidatingAdmissionPolicyBinding
            try:
                kube.delete(kind, doc["metadata"]["name"])
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
        kube.create(resource(ValidatingAdmissionPolicyBinding, restore))


@pytest.mark.usefixtures("operator_release", "open_policy")
def test_the_allow_lists_admit_what_they_list_and_name_it_when_they_refuse(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    def attempt(**job: Any) -> str | None:
        body = DataAudit.from_dict(resource_manifest("DataAudit", "placed", candles, job=job))
        try:
            kube.create(body, namespace=namespace, dry_run=True)
        except ApiError as exc:
            return str(exc.status.message).partition("denied request: ")[2] or str(exc.status.message)
        return None

    # bindings take a moment to reach (and leave) the API server's policy cache
    wait_for(
        lambda: "registry.example/dm:*" in (attempt(image="registry.example/other:1") or ""),
        30,
        "the open policy to apply",
    )
    wait_for(lambda: attempt(image="registry.example/dm:2") is None, 30, "the suite's policy to be unbound")
    allowed: list[dict[str, Any]] = [
        {"image": "registry.example/dm:2"},
        {"nodeSelector": {"kubernetes.io/arch": "amd64"}},
        {
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}
            ]
        },
        {"affinity": {"nodeAffinity": {}}},
        {"priorityClassName": "batch-low"},
    ]
    for job in allowed:
        assert attempt(**job) is None, job
    refusals: list[tuple[dict[str, Any], Callable[[str], bool]]] = [
        (
            {"image": "registry.example/other:1"},
            lambda m: "(allowed: ghcr.io/petrosa/datamanager:0.1.0, registry.example/dm:*)" in m,
        ),
        (
            {"nodeSelector": {"kubernetes.io/arch": "amd64", "zone": "a"}},
            lambda m: m.startswith(
                "spec.job.nodeSelector may not use zone (allowed keys: kubernetes.io/arch)"
            ),
        ),
        (
            {"tolerations": [{"operator": "Exists"}]},
            lambda m: m.startswith(
                "spec.job.tolerations may tolerate only the taint keys dedicated here"
                " (a toleration without a key tolerates every taint)"
            ),
        ),
        ({"priorityClassName": "system-cluster-critical"}, lambda m: "(allowed: batch-low)" in m),
    ]
    for job, check in refusals:
        message = attempt(**job)
        assert message is not None, job
        assert check(message), (job, message)
