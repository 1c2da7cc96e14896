"""The real image on a kind cluster (pytest-kind), where Docker and kind exist; elsewhere skipped, saying why.

It builds the image from the Dockerfile, loads it into kind, installs the chart, and checks that the operator
runs a DataAudit's Job with the real image and reports an unreachable source.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import REPO


def _docker_engine() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "the docker client cannot reach a Docker engine"
    if shutil.which("kind") is None:
        return "no kind binary"
    return None


MISSING = _docker_engine()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"kind tier needs Docker and kind: {MISSING}")
IMAGE = "datamanager:kind-test"


@pytest.fixture(scope="module")
def cluster(kind_cluster: Any) -> Any:
    subprocess.run(["docker", "build", "-t", IMAGE, str(REPO)], check=True)
    kind_cluster.load_docker_image(IMAGE)
    kind_cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    subprocess.run(
        [
            "helm",
            "install",
            "dm",
            str(REPO / "charts" / "datamanager"),
            "-n",
            "dm",
            "--create-namespace",
            "--kubeconfig",
            str(kind_cluster.kubeconfig_path),
            "--wait",
            "--set",
            "consumer.enabled=false",
            "--set",
            "image.repository=datamanager",
            "--set",
            "image.tag=kind-test",
            "--set",
            "image.pullPolicy=Never",
            "--set",
            "rbac.watchNamespaces={default}",  # where the test's resources go
        ],
        check=True,
    )
    return kind_cluster


def test_a_dataaudit_with_an_unreachable_source_fails_with_that_reason(cluster: Any) -> None:
    cluster.kubectl(
        "create", "secret", "generic", "extractor-mysql", "--from-literal=dsn=mysql://u:p@10.255.255.1:3306/x"
    )
    cluster.kubectl(
        "create", "secret", "generic", "datamanager-mongodb", "--from-literal=uri=mongodb://10.255.255.1/"
    )
    sample = (REPO / "samples" / "dataaudit.yaml").read_text().replace("schedule:", "# schedule:")
    subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig_path), "apply", "-f", "-"],
        input=sample,
        text=True,
        check=True,
    )
    deadline = time.monotonic() + 600
    reason = ""
    while time.monotonic() < deadline and not reason:
        reason = cluster.kubectl(
            "get", "dataaudit", "majors", "-o", "jsonpath={.status.lastRun.reason}"
        ).strip()
        time.sleep(5)
    assert reason == "SourceUnavailable"
