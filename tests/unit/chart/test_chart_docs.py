"""charts/datamanager/README.md is what helm-docs (built from its pinned module) makes of values.yaml now."""

from __future__ import annotations

import re

from tests.chart import CHART
from tests.conftest import REPO
from tests.tools import run


def test_the_values_readme_is_current() -> None:
    flags = re.search(r"^HELM_DOCS_FLAGS := (.*)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert flags, "the Makefile's HELM_DOCS_FLAGS are the flags `make chart-docs` uses"
    rendered = run("helm-docs", *flags.group(1).split(), "--dry-run", cwd=REPO)
    assert rendered == (CHART / "README.md").read_text(), (
        "charts/datamanager/README.md is stale: `make chart-docs`"
    )


def test_every_value_in_the_readme_is_described() -> None:
    rows = [r for r in (CHART / "README.md").read_text().splitlines() if r.startswith("| ") and "`" in r]
    undescribed = [r.split(" | ")[0].removeprefix("| ") for r in rows if r.rstrip().endswith("|  |")]
    assert not undescribed, f"values without a `# --` comment in values.yaml: {undescribed}"
