# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Conditions that `kubectl wait` can trust, tried with kubectl itself."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.types import PatchType

from tests.conftest import REPO, wait_for
from tests.e2e.conftest import CandleSource, _established, resource_manifest, run_tool, slow_image
from tests.e2e.test_operator import DataAudit, condition, status_of
from tests.fixtures.kube import resource

pytestmark = pytest.mark.usefixtures("operator_release")


def kubectl(rig_env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> Any:
    return run_tool(rig_env, "kubectl", *args, stdin=stdin, check=check)


def test_kubectl_wait_after_a_spec_change_waits_for_the_run_of_that_change(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    manifest = resource_manifest("DataAudit", "waiter", candles, job={"image": slow_image(rig_env, 3)})
    kubectl(rig_env, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    wait = ("wait", "-n", namespace, "--for=condition=Succeeded", "dataaudit/waiter", "--timeout=180s")
    kubectl(rig_env, *wait)
    assert status_of(kube, DataAudit, "waiter", namespace)["lastRun"]["id"] == "g1"

    # the new spec's run takes a while: a wait that returned on g1's old result would return at once
    changed = copy.deepcopy(manifest)
    spec = changed["spec"]
    assert isinstance(spec, dict)
    spec.update(window="6d", job={"image": slow_image(rig_env, 25)})
    kubectl(rig_env, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(changed))
    kubectl(rig_env, *wait)
    status = status_of(kube, DataAudit, "waiter", namespace)
    assert (status["lastRun"]["id"], status["lastRun"]["outcome"]) == ("g2", "Succeeded"), status["lastRun"]
    assert condition(status, "Succeeded")["observedGeneration"] == 2


def test_a_run_in_progress_turns_succeeded_and_failed_unknown(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str]
) -> None:
    manifest = resource_manifest("DataAudit", "progress", candles, job={"image": slow_image(rig_env, 3)})
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(lambda: status_of(kube, DataAudit, "progress", namespace).get("lastRun") or {}, 120, "run g1")
    kube.patch(
        DataAudit,
        "progress",
        {
            "metadata": {"annotations": {"datamanager.petrosa.io/run-now": "1"}},
            "spec": {"job": {"image": slow_image(rig_env, 30)}},
        },
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    status = wait_for(
        lambda: (s := status_of(kube, DataAudit, "progress", namespace)).get("activeRuns") and s, 60, "run 2"
    )
    for kind in ("Succeeded", "Failed"):
        found = condition(status, kind)
        assert (found["status"], found["reason"], found["observedGeneration"]) == (
            "Unknown",
            "RunInProgress",
            2,
        )
    assert condition(status, "Ready")["status"] == "True", "Ready keeps the last finished run's outcome"
    assert condition(status, "Running")["status"] == "True"


@pytest.fixture
def relaxed_crd(kube: Client) -> Any:
    """The DataAudit CRD without its CEL rules, as when the CRDs are older than the operator: a spec the
    operator cannot run then reaches it. The current CRD is put back afterwards."""
    path = REPO / "crds" / "dataaudits.yaml"
    manifest = yaml.safe_load(path.read_text())
    kube.apply(resource(CustomResourceDefinition, _without_rules(copy.deepcopy(manifest))), force=True)
    wait_for(functools.partial(_established, kube, manifest["metadata"]["name"]), 30, "the relaxed CRD")
    yield
    kube.apply(resource(CustomResourceDefinition, manifest), force=True)
    wait_for(functools.partial(_established, kube, manifest["metadata"]["name"]), 30, "the CRD restored")


def _without_rules(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_rules(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [_without_rules(v) for v in node]
    return node


def test_kubectl_wait_for_failed_returns_on_a_spec_the_operator_cannot_run(
    kube: Client, namespace: str, candles: CandleSource, rig_env: dict[str, str], relaxed_crd: None
) -> None:
    manifest = resource_manifest("DataAudit", "impossible", candles, schedule="0 0 30 2 *")
    kubectl(rig_env, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    kubectl(
        rig_env, "wait", "-n", namespace, "--for=condition=Failed", "dataaudit/impossible", "--timeout=60s"
    )
    status = status_of(kube, DataAudit, "impossible", namespace)
    for kind, state in (("Failed", "True"), ("Succeeded", "False"), ("Ready", "False")):
        found = condition(status, kind)
        assert (found["status"], found["reason"]) == (state, "InvalidSpec"), found
        assert "schedule" in found["message"]
    assert status["phase"] == "Failed"
    assert "activeRuns" not in status
