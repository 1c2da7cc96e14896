"""The Dockerfile, its lock files and .dockerignore, checked without a container engine: reproducible and
layered dependencies, no build tools in the runtime, the user and labels the chart relies on. The built image
itself is checked in the e2e tier's container mode (tests/e2e/test_containers.py)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
STAGES = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
BUILD, RUNTIME = STAGES
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile style lock; fails on any line that is not pinned."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", lock.read_text())  # join continued lines
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split(" --hash=")
        name, sep, version = requirement.strip().partition("==")
        assert sep, f"{lock.name}: {requirement!r} is not pinned with =="
        entries[name.lower()] = (version, [o.strip() for o in options])
    return entries


@pytest.mark.parametrize("lock", ["requirements.lock", "build-requirements.lock"])
def test_every_locked_file_is_pinned_by_sha256(lock: str) -> None:
    entries = pins(REPO / lock)
    assert entries
    for name, (_, hashes) in entries.items():
        assert hashes, f"{lock}: {name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{lock}: {name}"


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PYPROJECT["project"]["dependencies"]),
        ("build-requirements.lock", PYPROJECT["build-system"]["requires"]),
    ],
)
def test_the_locks_satisfy_pyproject(lock: str, requirements: list[str]) -> None:
    """A dependency added or narrowed in pyproject.toml without `make lock` fails here."""
    entries = pins(REPO / lock)
    for text in requirements:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in entries, f"{name} is in pyproject.toml but not in {lock}: run `make lock`"
        version = entries[name][0]
        assert requirement.specifier.contains(version), f"{lock} pins {name}=={version}, not {requirement}"


def test_dependencies_install_from_the_lock_in_a_layer_before_the_source() -> None:
    lock_copy = BUILD.index("COPY requirements.lock")
    lock_install = BUILD.index("-r requirements.lock")
    first_source = min(BUILD.index(f"COPY {d}") for d in ("datamanager", "operator", "workers"))
    assert lock_copy < lock_install < first_source
    for install in re.findall(r"pip[^\n]* install[^\n]*\\\n[^\n]*|pip[^\n]* install[^\n]*", BUILD):
        if "-r " in install:
            assert "--require-hashes" in install
            assert "--only-binary=:all:" in install  # wheels only: nothing compiled, no compiler needed
            assert "--no-deps" in install  # exactly the lock, no resolution at build time


def test_the_runtime_stage_gets_the_environment_only_and_removes_pip() -> None:
    assert "COPY --from=build /opt/datamanager /opt/datamanager" in RUNTIME
    assert "/opt/build" not in RUNTIME  # the build tools' environment (pip, hatchling) stays behind
    for leftover in ("/usr/local/bin/pip*", "site-packages/pip*", "ensurepip"):
        assert leftover in RUNTIME
    assert "--without-pip /opt/datamanager" in BUILD  # the application's environment never had pip


def test_the_runtime_user_is_the_charts_numeric_non_root_user() -> None:
    values = yaml.safe_load((REPO / "charts" / "datamanager" / "values.yaml").read_text())
    pod = values["podSecurityContext"]
    (user,) = re.findall(r"^USER (\S+)$", RUNTIME, re.M)
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    assert pod["runAsUser"] != 0
    assert f"nonroot:x:{pod['runAsUser']}:{pod['runAsGroup']}:" in RUNTIME  # a name for getpass.getuser()


def test_the_image_carries_the_oci_labels() -> None:
    labels = dict(re.findall(r"org\.opencontainers\.image\.(\w+)=\"([^\"]*)\"", RUNTIME))
    assert set(labels) >= {"title", "description", "version", "revision", "source", "licenses"}
    assert labels["version"] == "${VERSION}"
    assert labels["licenses"] == PYPROJECT["project"]["license"]


def test_the_base_is_a_build_argument_for_both_stages() -> None:
    assert STAGES[0].startswith("${BUILD_IMAGE} AS build")
    assert STAGES[1].startswith("${BASE_IMAGE}")
    assert re.search(r"^ARG BASE_IMAGE=docker\.io/library/python:3\.11-slim$", DOCKERFILE, re.M)
    assert re.search(r"^ARG BUILD_IMAGE=docker\.io/library/python:3\.11-slim$", DOCKERFILE, re.M)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, as far as this file uses it: the last matching pattern wins, ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, body) for p in prefixes) or fnmatch.fnmatch(path, body):
            ignored = not negate
    return ignored


def test_the_build_context_is_what_the_dockerfile_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M))
    sources = {s for line in copied for s in line.split()}
    assert sources == {
        "build-requirements.lock",
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "datamanager",
        "operator",
        "workers",
    }
    for source in sources:
        assert not _ignored(source, patterns), f"{source} is copied but .dockerignore leaves it out"
    assert not _ignored("datamanager/cli.py", patterns)
    for private in (".venv/bin/python", ".rig/env", ".git/config", "tests/conftest.py", "charts/x", ".env"):
        assert _ignored(private, patterns), f"{private} would be sent to the builder"
    assert _ignored("datamanager/__pycache__/cli.cpython-311.pyc", patterns)


def test_make_rig_image_builds_the_tag_the_rig_runs() -> None:
    from tests.rig.rig import IMAGE

    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "rig-image"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"IMAGE={IMAGE} tests/rig/image.sh" in dry_run
