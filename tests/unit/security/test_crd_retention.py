"""The CRDs outlive the release: deleting one would delete every DataAudit and AnalyticsJob with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from datamanager.api.crd import all_crds

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_crd_copy_is_kept_by_helm_and_never_pruned_or_deleted_by_argocd(name: str) -> None:
    for folder in (REPO / "crds", REPO / "charts" / "datamanager" / "crds"):
        annotations = yaml.safe_load((folder / name).read_text())["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"
        options = set(annotations["argocd.argoproj.io/sync-options"].split(","))
        assert {"Prune=false", "Delete=false"} <= options
