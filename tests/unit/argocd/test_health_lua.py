"""The health script against its fixtures in ArgoCD's own runtime (argocd-check: ArgoCD's settings parsing,
gitops-engine's GetResourceHealth and ArgoCD's Lua VM, built from the pinned argo-cd module)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd_health import ARGOCD_CM, argocd_healths, ask
from tests.conftest import REPO

HEALTH = REPO / "argocd" / "health"
CASES: list[dict[str, Any]] = yaml.safe_load((HEALTH / "health_test.yaml").read_text())["tests"]
KINDS = ("DataAudit", "AnalyticsJob")


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, str]]:
    """Every fixture through ArgoCD in one process: inputPath -> health."""
    objects = [yaml.safe_load((HEALTH / c["inputPath"]).read_text()) for c in CASES]
    return dict(zip((c["inputPath"] for c in CASES), argocd_healths(objects), strict=True))


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_of_fixture(case: dict[str, Any], results: dict[str, dict[str, str]]) -> None:
    assert results[case["inputPath"]] == case["healthStatus"]


def test_every_fixture_is_listed_and_every_listed_one_exists() -> None:
    listed = {c["inputPath"] for c in CASES}
    on_disk = {f"testdata/{p.name}" for p in (HEALTH / "testdata").glob("*.yaml")}
    assert listed == on_disk


def test_the_script_never_says_suspended_and_every_other_status_is_reachable() -> None:
    # ArgoCD propagates Suspended to the Application (argocd app wait --health never returns for it)
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded"}
    assert not re.search(r'status = "Suspended"', (HEALTH / "health.lua").read_text())


def test_every_fixture_is_in_the_documented_table() -> None:
    doc = (REPO / "docs" / "argocd.md").read_text()
    table = doc[doc.index("## Health") : doc.index("## ", doc.index("## Health") + 1)]
    cited = set(re.findall(r"`([a-z_]+)`", table))
    missing = {Path(c["inputPath"]).stem for c in CASES} - cited
    assert not missing, f"docs/argocd.md's health table does not cite {sorted(missing)}"


def test_the_configmap_embeds_the_tested_script_for_both_kinds() -> None:
    config = yaml.safe_load(ARGOCD_CM.read_text())
    script = (HEALTH / "health.lua").read_text()
    for kind in KINDS:
        assert config["data"][f"resource.customizations.health.datamanager.petrosa.io_{kind}"] == script


def test_the_runtime_is_argocds_sandbox_not_a_permissive_lua(tmp_path: Path) -> None:
    """A canary: ArgoCD opens no string library for health scripts, so a script using one is Unknown there.
    The fixtures passing means something only because the runtime would catch that."""
    config = yaml.safe_load(ARGOCD_CM.read_text())
    canary = 'hs = {}\nhs.status = "Healthy"\nhs.message = string.lower("X")\nreturn hs\n'
    config["data"]["resource.customizations.health.datamanager.petrosa.io_DataAudit"] = canary
    path = tmp_path / "argocd-cm.yaml"
    path.write_text(yaml.safe_dump(config))
    obj = yaml.safe_load((HEALTH / "testdata" / "healthy.yaml").read_text())
    (answer,) = ask([{"op": "health", "object": obj}], argocd_cm=path)
    assert answer["status"] == "Unknown"
    assert "attempt to index a non-table object(nil) with key 'lower'" in answer["message"]


def test_a_kind_without_a_script_has_no_custom_health() -> None:
    """The script is keyed by group and kind: another group's DataAudit gets none (and no built-in)."""
    obj = yaml.safe_load((HEALTH / "testdata" / "failed.yaml").read_text())
    obj["apiVersion"] = "example.com/v1"
    assert argocd_healths([obj]) == [{"status": "", "message": ""}]
