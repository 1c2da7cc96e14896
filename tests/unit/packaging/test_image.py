"""What can be tested of the image without a Docker engine: the built wheel provides every entry point
the Dockerfile and the chart call, and they match one another."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CHART_TEMPLATES = REPO / "charts" / "datamanager" / "templates"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("datamanager-*.whl")
    return built


def test_the_dockerfile_entrypoint_is_the_wheels_console_script(wheel: Path) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["datamanager"]' in dockerfile
    assert re.search(r"^USER 65532:65532$", dockerfile, re.M)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "datamanager = datamanager.cli:main" in entry_points
    for package in (
        "datamanager/cli.py",
        "datamanager_operator/cli.py",
        "datamanager_workers/consumer/cli.py",
        "datamanager_workers/audit/cli.py",
        "datamanager_workers/analytics/cli.py",
    ):
        assert package in names, f"{package} missing from the wheel"


def test_every_subcommand_the_chart_and_the_operator_use_is_in_the_installed_wheel(
    wheel: Path, tmp_path: Path
) -> None:
    chart_args = set()
    for template in CHART_TEMPLATES.glob("*-deployment.yaml"):
        chart_args |= set(re.findall(r"args: \[(\w+)\]", template.read_text()))
    from datamanager_operator.model import WORKER_COMMAND

    subcommands = chart_args | set(WORKER_COMMAND.values())
    assert subcommands == {"operator", "consume", "audit", "analytics"}
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = target / "bin" / "datamanager"
    for command in sorted(subcommands):
        # the wheel's own console script and code (PYTHONPATH first); dependencies from this environment
        result = subprocess.run(
            [sys.executable, str(script), command, "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr
        assert "usage: datamanager" in result.stdout


def _leaf_paths(node: object, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node:
        return {p for key, value in node.items() for p in _leaf_paths(value, f"{prefix}/{key}")}
    return {prefix}


def _schema_allows(schema: dict[str, object], path: str) -> bool:
    node: object = schema
    for part in path.strip("/").split("/"):
        if not isinstance(node, dict):
            return False
        if "$ref" in node:
            node = schema["definitions"][str(node["$ref"]).rsplit("/", 1)[-1]]  # type: ignore[index]
        properties = node.get("properties", {}) if isinstance(node, dict) else {}
        if (
            isinstance(node, dict)
            and node.get("type") == "object"
            and "properties" not in node
            and "additionalProperties" not in node
        ):
            return True  # a free-form object (e.g. a Kubernetes securityContext)
        if part in properties:
            node = properties[part]
        elif isinstance(node, dict) and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def test_every_value_is_covered_by_the_schema() -> None:
    chart = REPO / "charts" / "datamanager"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    schema = json.loads((chart / "values.schema.json").read_text())
    missing = sorted(p for p in _leaf_paths(values) if not _schema_allows(schema, p))
    assert not missing, f"values without a schema entry: {missing}"
