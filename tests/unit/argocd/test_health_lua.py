"""The ArgoCD health script against its fixtures (ArgoCD's health_test.yaml convention), in real Lua."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.argocd_health import argocd_health
from tests.conftest import REPO

HEALTH = REPO / "argocd" / "health"
CASES: list[dict[str, Any]] = yaml.safe_load((HEALTH / "health_test.yaml").read_text())["tests"]


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"] for c in CASES])
def test_health_of_fixture(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((HEALTH / case["inputPath"]).read_text())
    assert argocd_health(obj) == case["healthStatus"]


def test_every_status_argocd_knows_is_reachable() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_the_configmap_embeds_the_tested_script() -> None:
    config = yaml.safe_load((REPO / "argocd" / "argocd-cm.yaml").read_text())
    script = (HEALTH / "health.lua").read_text()
    for kind in ("DataAudit", "AnalyticsJob"):
        assert config["data"][f"resource.customizations.health.datamanager.petrosa.io_{kind}"] == script
