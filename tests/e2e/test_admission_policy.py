# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The admission policy's allow-lists on the API server: what they list is admitted, the rest refused with a
message that names the list (the chart's renders: tests/unit/chart/test_chart_security.py)."""

from __future__ import annotations

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
from tests.e2e.conftest import RELEASE, CandleSource, render, resource_manifest
from tests.fixtures.kube import as_dict, resource

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
Docs = list[dict[str, Any]]
NS = "dm-sec"


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
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
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
