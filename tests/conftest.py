"""Shared fixtures: the rig's real services and control plane, isolated per test.

Tiers follow the folder: tests/unit (no services), tests/integration (MariaDB, FerretDB, NATS),
tests/e2e (control plane and process node). A test that needs the rig fails with the reason when the rig is
not running; it is never skipped silently.
"""

from __future__ import annotations

import os
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.core_v1 import ContainerState
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace, Pod, ServiceAccount
from pymongo import AsyncMongoClient

from tests.fixtures.mysql import connect

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e", "kind")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pod_security(level): the Pod Security level the test's namespace enforces instead of restricted"
        " (for tests of what the node itself refuses)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that had a namespace gets what the cluster and the node saw there in its report.

    A timeout on the rig is otherwise a bare "timed out waiting for ...", and the rig (with its logs) is gone
    by the time anyone reads a CI run's output.
    """
    report: pytest.TestReport = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed and call.when == "call" and "namespace" in funcargs and "kube" in funcargs:
        report.sections.append(("rig state", _rig_state(funcargs["kube"], funcargs["namespace"])))
    return report


def _rig_state(kube: Client, namespace: str) -> str:
    lines = [f"pods in {namespace}:"]
    try:
        for pod in kube.list(Pod, namespace=namespace):
            status = pod.status
            states = (
                [f"{c.name}={_state_of(c.state)}" for c in (status.containerStatuses or [])] if status else []
            )
            phase = status.phase if status else None
            name, node = pod.metadata and pod.metadata.name, pod.spec and pod.spec.nodeName
            lines.append(f"  {name} phase={phase} node={node} {' '.join(states)}")
        lines.append("events:")
        for event in list(kube.list(Event, namespace=namespace))[-20:]:
            lines.append(f"  {event.involvedObject.name} {event.reason}: {event.message}")
    except ApiError as exc:
        lines.append(f"  (the API server answered {exc.status.code}: {exc.status.message})")
    node_log = Path(os.environ.get("RIG_STATE_DIR", "/nonexistent")) / "logs" / "procnode.log"
    if node_log.exists():
        log_lines = node_log.read_text(errors="replace").splitlines()
        lines += ["process node log (last 30 lines):", *log_lines[-30:]]
    return "\n".join(lines)


def _state_of(state: ContainerState | None) -> str:
    if state is None:
        return "unknown"
    if state.terminated:
        return f"terminated({state.terminated.reason}, exit {state.terminated.exitCode})"
    if state.waiting:
        return f"waiting({state.waiting.reason}: {state.waiting.message})"
    return "running" if state.running else "unknown"


def _read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            if key != "PATH":
                env[key] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="session")
def rig_env() -> dict[str, str]:
    """The rig's addresses: from the environment (CI, `source .rig/env`) or from `.rig/env`."""
    env_file = Path(os.environ.get("RIG_HOME", REPO / ".rig")) / "env"
    env = _read_env_file(env_file) if env_file.exists() else {}
    env.update({k: v for k, v in os.environ.items() if k.startswith("RIG_") or k == "KUBECONFIG"})
    if "RIG_MYSQL_DSN" not in env:
        pytest.fail("the rig is not running: start it with `make rig-up` (or run `make test`, which does)")
    return env


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mysql_dsn(rig_env: dict[str, str]) -> Iterator[str]:
    """DSN of a fresh, empty MariaDB database that is dropped after the test."""
    server = urlsplit(rig_env["RIG_MYSQL_DSN"])
    name = _unique("t")
    conn = connect(rig_env["RIG_MYSQL_DSN"])
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield urlunsplit(server._replace(path=f"/{name}"))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(scope="session")
def mongodb_uri(rig_env: dict[str, str]) -> str:
    return rig_env["RIG_MONGODB_URI"]


@pytest.fixture
async def mongo_database(mongodb_uri: str) -> AsyncIterator[str]:
    """Name of a fresh MongoDB database on the rig's FerretDB, dropped after the test."""
    name = _unique("t")
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture(scope="session")
def nats_url(rig_env: dict[str, str]) -> str:
    return rig_env["RIG_NATS_URL"]


@pytest.fixture
def nats_subject() -> str:
    """A subject no other test publishes on."""
    return f"test.{uuid.uuid4().hex}"


# ---------------------------------------------------------------- control plane


@pytest.fixture(scope="session")
def kubeconfig_path(rig_env: dict[str, str]) -> Path:
    if "KUBECONFIG" not in rig_env:
        pytest.fail(
            "the rig runs without a control plane: restart it with `make rig-up` (not --services-only)"
        )
    return Path(rig_env["KUBECONFIG"])


@pytest.fixture(scope="session")
def kube(kubeconfig_path: Path) -> Iterator[Client]:
    """A client with cluster-admin rights (the rig's client-certificate admin user)."""
    client = Client(KubeConfig.from_file(kubeconfig_path), field_manager="tests")
    yield client
    client.close()


# Pod Security "restricted", enforced: every pod of the tests (operator, consumer, workers) must be admitted
# under it, as in a hardened cluster.
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
# What a pod of the tests' own needs to be admitted there (the process node ignores it).
RESTRICTED_POD_SECURITY = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}
RESTRICTED_CONTAINER_SECURITY = {
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
}


@pytest.fixture
def namespace(kube: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, Pod Security ``restricted`` enforced (another level with the test's
    ``pod_security`` marker), deleted afterwards (its pods are stopped by the process node)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    marker = request.node.get_closest_marker("pod_security")
    level = {"pod-security.kubernetes.io/enforce": marker.args[0]} if marker else {}
    labels = {"datamanager.io/test": "true", **RESTRICTED, **level}
    kube.create(Namespace(metadata=ObjectMeta(name=name, labels=labels)))
    wait_for(lambda: _has_default_service_account(kube, name), timeout=30, what="default ServiceAccount")
    yield name
    kube.delete(Namespace, name)


def _has_default_service_account(kube: Client, namespace: str) -> bool:
    try:
        kube.get(ServiceAccount, "default", namespace=namespace)
    except ApiError:
        return False
    return True


@pytest.fixture
def as_service_account(kube: Client, kubeconfig_path: Path) -> Iterator[Callable[[str, str], Client]]:
    """Factory: a client authenticated with a real bound token of the given ServiceAccount (TokenRequest)."""
    clients: list[Client] = []
    admin = KubeConfig.from_file(kubeconfig_path).get()
    assert admin is not None, f"{kubeconfig_path} has no current context"
    assert admin.cluster is not None, f"{kubeconfig_path} names no cluster"

    def make(namespace: str, name: str) -> Client:
        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=name), spec=TokenRequestSpec(audiences=[], expirationSeconds=3600)
        )
        status = kube.create(request, name, namespace=namespace).status
        assert status is not None, "the TokenRequest came back without a token"
        token = status.token
        config = KubeConfig.from_dict(
            {
                "clusters": [
                    {
                        "name": "rig",
                        "cluster": {
                            "server": admin.cluster.server,
                            "certificate-authority": str(admin.cluster.certificate_auth),
                        },
                    }
                ],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": "rig", "user": name, "namespace": namespace}}
                ],
                "current-context": "sa",
            }
        )
        client = Client(config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def wait_for(
    predicate: Callable[[], T | bool | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Polls until ``predicate`` returns something truthy; fails with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
