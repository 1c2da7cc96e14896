"""The command-line tools the tests run, built by tests/rig/build.sh into the rig's cache (never the repo).

A missing tool fails the test that needs it, with the command that builds it: tests are never skipped for it.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.rig.rig import CACHE, versions

ARGOCD_CHECK_SOURCES = ("main.go", "cache_export.go.in")
HERE = Path(__file__).resolve().parent


def argocd_check_key() -> str:
    """The driver's cache key part from its sources, as tests/rig/build.sh's argocd_check_key computes it."""
    source = HERE / "rig" / "argocd-check"
    return hashlib.sha256(b"".join((source / f).read_bytes() for f in ARGOCD_CHECK_SOURCES)).hexdigest()[:12]


def tool(name: str) -> Path:
    """The cached binary ``name`` (helm, kubectl, promtool, helm-docs, argocd-check, argocd) of the pinned
    version."""
    v = versions()
    folders = {
        "helm": (f"helm-{v['HELM_VERSION']}", "helm"),
        "kubectl": (f"kubernetes-{v['KUBERNETES_VERSION']}", "kubernetes"),
        "promtool": (f"promtool-{v['PROMETHEUS_VERSION']}", "promtool"),
        "helm-docs": (f"helm-docs-{v['HELM_DOCS_VERSION']}", "helm_docs"),
        "argocd-check": (f"argocd-check-{v['ARGOCD_VERSION']}-{argocd_check_key()}", "argocd_check"),
        "argocd": (f"argocd-{v['ARGOCD_VERSION']}", "argocd"),
    }
    folder, target = folders[name]
    path = CACHE / folder / "bin" / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing (or stale): build it with `tests/rig/build.sh {target}` (make rig-build)"
        )
    return path


def attempt(
    name: str, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs a tool and returns its result, whatever its exit code."""
    argv = [str(tool(name)), *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, cwd=cwd)


def run(name: str, *args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Runs a tool; its stdout, or the test fails with the command, its exit code and its output."""
    result = attempt(name, *args, stdin=stdin, cwd=cwd)
    if result.returncode != 0:
        pytest.fail(
            f"{name} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout
