# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Fixtures of the end-to-end tier: the chart installed by Helm, CRDs, seeded candles and their Secrets."""

from __future__ import annotations

import functools
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Secret

from tests.conftest import REPO, RESTRICTED, wait_for
from tests.fixtures.audit import AuditLog
from tests.fixtures.candles import Defects, generate, store
from tests.fixtures.kube import as_dict, resource
from tests.fixtures.mysql import connect
from tests.rig.rig import CACHE, versions

CHART = REPO / "charts" / "datamanager"
RELEASE = "dm-e2e"
RELEASE_NAMESPACE = "dm-e2e-system"
OPERATOR_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}-datamanager"
# images the process node never pulls, or pulls slowly (its conventions: see docs/rig.md)
TEST_IMAGES = "unpullable.invalid/*,slowpull.invalid/*"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "after_suite: runs after every other test, on the record of what the suite did"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_suite") is not None)  # stable


def tool_path() -> str:
    v = versions()
    bins = [
        CACHE / f"kubernetes-{v['KUBERNETES_VERSION']}" / "bin",
        CACHE / f"helm-{v['HELM_VERSION']}" / "bin",
    ]
    return ":".join([*map(str, bins), os.environ.get("PATH", "")])


def run_tool(
    rig_env: dict[str, str], *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl or helm against the rig; the output is in the failure message when it fails."""
    env = {**os.environ, "KUBECONFIG": rig_env["KUBECONFIG"], "PATH": tool_path()}
    result = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def crds(kube: Client) -> None:
    """The current CRDs, applied server-side (Helm only installs CRDs that are missing)."""
    for path in sorted((REPO / "crds").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        kube.apply(resource(CustomResourceDefinition, manifest), force=True)
        name = manifest["metadata"]["name"]
        wait_for(functools.partial(_established, kube, name), 30, f"CRD {name} established")


def _established(kube: Client, name: str) -> bool:
    crd = kube.get(CustomResourceDefinition, name)
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


# how the suite's operator is installed (the RBAC test renders the chart with the same values)
OPERATOR_VALUES = [
    "--set",
    "consumer.enabled=false",
    "--set",
    "operator.replicas=2",
    "--set",
    "operator.stuckPodSeconds=20",
    "--set",
    "operator.leaseSeconds=10",
    "--set",
    "operator.unschedulableSeconds=20",
    "--set",
    "rbac.clusterWide=true",
    "--set",
    f"operator.allowedImages={{{TEST_IMAGES}}}",
]


def restricted_namespace(kube: Client, name: str) -> None:
    """``name`` exists and enforces Pod Security ``restricted`` (created, or labelled when it exists)."""
    try:
        kube.create(Namespace(metadata=ObjectMeta(name=name, labels=RESTRICTED)))
    except ApiError as exc:
        if exc.status.code != 409:
            raise
        kube.patch(Namespace, name, {"metadata": {"labels": RESTRICTED}})


def slow_image(rig_env: dict[str, str], seconds: int) -> str:
    """An image whose pull takes ``seconds`` on the process node, then runs the project's image: a way to
    hold a run active (the node's convention: docs/rig.md)."""
    return f"slowpull.invalid/{seconds}/{rig_env.get('RIG_IMAGE') or 'datamanager'}"


def chart_image(rig_env: dict[str, str]) -> list[str]:
    """Helm values for the chart's image: the image `make image` built when the node runs pods as containers
    (container mode: what users deploy is what runs); the process node ignores images."""
    image = rig_env.get("RIG_IMAGE")
    if not image:
        return []
    repository, _, tag = image.rpartition(":")
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]


@pytest.fixture(scope="session")
def operator_audit_start(rig_env: dict[str, str]) -> int:
    """Where the API server's audit log stood before the suite's operator was installed."""
    return AuditLog(rig_env["RIG_AUDIT_LOG"]).mark()


@pytest.fixture(scope="session")
def operator_release(
    kube: Client, crds: None, rig_env: dict[str, str], operator_audit_start: int
) -> Iterator[str]:
    """The chart installed by Helm with the operator only, in a namespace that enforces Pod Security
    ``restricted``; its RBAC and admission policy are exactly what the chart ships (cluster-wide: every
    test has its own namespace). Its worker images: the default and the never-pulled ones some tests use."""
    restricted_namespace(kube, RELEASE_NAMESPACE)
    run_tool(
        rig_env,
        "helm",
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "-n",
        RELEASE_NAMESPACE,
        "--wait",
        "--timeout",
        "120s",
        *OPERATOR_VALUES,
        *chart_image(rig_env),
    )
    yield RELEASE_NAMESPACE
    run_tool(rig_env, "helm", "uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s")


def render(rig_env: dict[str, str], release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    """The chart's manifests as ``helm template`` renders them for this release."""
    out = run_tool(
        rig_env, "helm", "template", release, str(CHART), "-n", namespace, "--kube-version", "1.36.3", *values
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def operator_deployment(kube: Client) -> Deployment:
    return kube.get(Deployment, f"{RELEASE}-datamanager-operator", namespace=RELEASE_NAMESPACE)


@dataclass(frozen=True)
class CandleSource:
    database: str
    mongo_database: str
    defective_symbol: str
    clean_symbol: str


@pytest.fixture
def candles(kube: Client, namespace: str, rig_env: dict[str, str]) -> Iterator[CandleSource]:
    """A week of hourly candles for two symbols (one with a gap and an invalid candle) in a fresh database,
    and the Secrets a resource in ``namespace`` references: extractor-mysql/dsn, datamanager-mongodb/uri."""
    with candle_source(kube, namespace, rig_env) as source:
        yield source


@contextmanager
def candle_source(
    kube: Client, namespace: str, rig_env: dict[str, str], *, dsn_of: Callable[[str], str] | None = None
) -> Iterator[CandleSource]:
    """What the ``candles`` fixture gives, for any namespace; ``dsn_of`` turns the database's admin DSN into
    the one the Secret holds (another user, say)."""
    server = urlsplit(rig_env["RIG_MYSQL_DSN"])
    database = f"e2e_{uuid.uuid4().hex[:10]}"
    conn = connect(rig_env["RIG_MYSQL_DSN"])
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    count = 24 * 7
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
        cur.execute(f"USE `{database}`")
        for index, symbol in enumerate(("BTCUSDT", "ETHUSDT")):
            defects = (
                Defects(gaps=[(50, 3)], invalid=[(80, "low_above_high")])
                if symbol == "ETHUSDT"
                else Defects()
            )
            series = generate(
                symbol, "1h", now - timedelta(hours=count - 1), count, seed=index, defects=defects
            )
            store(cur, "klines_h1", series, create=index == 0)
    dsn = urlunsplit(server._replace(path=f"/{database}"))
    mongo = f"e2e_{uuid.uuid4().hex[:10]}"
    for name, key, value in (
        ("extractor-mysql", "dsn", dsn_of(database) if dsn_of else dsn),
        ("datamanager-mongodb", "uri", rig_env["RIG_MONGODB_URI"]),
    ):
        kube.create(Secret(metadata=ObjectMeta(name=name), stringData={key: value}), namespace=namespace)
    try:
        yield CandleSource(database, mongo, "ETHUSDT", "BTCUSDT")
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()


def resource_manifest(kind: str, name: str, source: CandleSource, **spec: object) -> dict[str, object]:
    base: dict[str, object] = {
        "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
        "sink": {
            "uriSecretRef": {"name": "datamanager-mongodb", "key": "uri"},
            "database": source.mongo_database,
        },
        "symbols": [source.clean_symbol, source.defective_symbol],
        "intervals": ["1h"],
        "window": "7d",
    }
    base.update(spec)
    return {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": base,
    }


def finished_run(kube: Client, res: Any, name: str, namespace: str) -> dict[str, Any] | None:
    """The resource's status once its last run has finished and none is running; None before."""
    status: dict[str, Any] = as_dict(kube.get(res, name, namespace=namespace)).get("status") or {}
    last = status.get("lastRun") or {}
    running = status.get("activeRuns") or status.get("activeRun")
    return status if last.get("outcome") in ("Succeeded", "Failed") and not running else None


def delete_quietly(kube: Client, res: type, name: str, namespace: str) -> None:
    try:
        kube.delete(res, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code != 404:
            raise
