"""The checked-in CRDs are exactly what the API models generate, and the chart ships the same files."""

from __future__ import annotations

from datamanager.api.crd import all_crds, render
from tests.conftest import REPO


def test_checked_in_crds_match_a_fresh_generation() -> None:
    for name, schema in all_crds().items():
        checked_in = (REPO / "crds" / name).read_text()
        assert checked_in == render(schema), f"crds/{name} is stale: run `make crds`"


def test_the_chart_ships_the_same_crds() -> None:
    for name in all_crds():
        chart_copy = REPO / "charts" / "datamanager" / "crds" / name
        assert chart_copy.read_text() == (REPO / "crds" / name).read_text(), f"run `make crds` ({chart_copy})"
