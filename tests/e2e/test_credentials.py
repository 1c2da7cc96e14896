# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""No credential ever leaves its Secret: the whole flow, failures included, with hostile passwords.

The MySQL user, the MongoDB URI and a NATS server that requires a login get passwords full of URL-special
and non-ASCII characters. The suite's operator runs an audit and an analytics job that succeed with them,
and four that fail (a wrong password, an unreachable host, a malformed DSN, a malformed URI); consumers run
with the right NATS password, a wrong one and a malformed URL. Then everything a user, a log shipper or a
GitOps tool can see is searched for any 4-character piece of any password (as written, percent-encoded and
JSON-escaped): resource status, Events, every pod (termination messages included) and every container log
of the namespace and of the operator, the metrics and /stats endpoints, ConfigMaps and every document the
workers wrote to MongoDB. Zero hits.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import string
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import nats
import pytest
from bson import json_util
from lightkube import Client
from lightkube.core.client import LabelSelector
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Secret
from pymongo import AsyncMongoClient

from tests.conftest import wait_for
from tests.e2e.conftest import (
    CHART,
    RELEASE_NAMESPACE,
    CandleSource,
    candle_source,
    chart_image,
    finished_run,
    resource_manifest,
    run_tool,
)
from tests.fixtures.kube import as_dict, name_of
from tests.fixtures.mysql import connect
from tests.rig.rig import CACHE, free_port, versions

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
AnalyticsJob = create_namespaced_resource(
    "datamanager.petrosa.io", "v1alpha1", "AnalyticsJob", "analyticsjobs"
)
pytestmark = pytest.mark.usefixtures("operator_release")
SPECIAL = "/?#@:%&=+[]!$'()*,;\"\\ <>{}|^`~"
NON_ASCII = "éüßøæçñ€£字鍵🔑Ω"
SUBJECT = "market.data.test"


def hostile(rng: random.Random, pieces: int = 8) -> str:
    """Letter, URL-special, non-ASCII, repeated: every 4-character window holds a random letter and a
    character no message template has, so a window found anywhere was copied from the password. The last
    special is a '/', so the password left unencoded in a URL always makes it malformed, and a parser that
    reads what precedes the '/' as the port would quote most of the password."""
    return "".join(
        rng.choice(string.ascii_letters)
        + ("/" if i == pieces - 1 else rng.choice(SPECIAL))
        + rng.choice(NON_ASCII)
        for i in range(pieces)
    )


def windows(secret: str) -> set[str]:
    """Every 4-character piece of the password as written, percent-encoded (either case) and JSON-escaped.
    A piece of an encoded form made of encoding characters only ('%C3', 'u03a') is no trace of the password:
    ids and hashes are full of those."""
    encoded = (quote(secret, safe=""), quote(secret, safe="").lower(), json.dumps(secret)[1:-1])
    pieces = {secret[i : i + 4] for i in range(len(secret) - 3)}
    return pieces | {
        form[i : i + 4] for form in encoded for i in range(len(form) - 3) if set(form[i : i + 4]) - _ENCODING
    }


_ENCODING = set(string.hexdigits + "%\\u")


class Passwords:
    def __init__(self) -> None:
        rng = random.Random(uuid.uuid4().int)
        self.mysql, self.wrong, self.mongodb, self.nats, self.nats_wrong = (hostile(rng) for _ in range(5))

    def all(self) -> dict[str, str]:
        return dict(vars(self))


@pytest.fixture
def passwords() -> Passwords:
    return Passwords()


@pytest.fixture
def nats_server(rig_env: dict[str, str], passwords: Passwords, tmp_path: Path) -> Iterator[str]:
    """A NATS server of the test's own that requires user `dm` with the hostile password: host:port."""
    host, port = rig_env["RIG_NODE_IP"], free_port(rig_env["RIG_NODE_IP"])
    binary = CACHE / f"nats-server-{versions()['NATS_SERVER_VERSION']}" / "bin" / "nats-server"
    log = (tmp_path / "nats.log").open("w")
    server = subprocess.Popen(
        [str(binary), "-a", host, "-p", str(port), "--user", "dm", "--pass", passwords.nats],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _accepts(host, port, passwords.nats), 15, "the NATS server with a login")
        yield f"{host}:{port}"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


async def _quiet(_: Exception) -> None:
    """Refusals while the server starts are expected."""


def _accepts(host: str, port: int, password: str) -> bool:
    async def attempt() -> bool:
        try:
            client = await nats.connect(
                f"nats://{host}:{port}",
                user="dm",
                password=password,
                connect_timeout=1,
                max_reconnect_attempts=0,
                error_cb=_quiet,
            )
        except Exception:
            return False
        await client.close()
        return True

    return asyncio.run(attempt())


@pytest.fixture
def hostile_candles(
    kube: Client, namespace: str, rig_env: dict[str, str], passwords: Passwords
) -> Iterator[CandleSource]:
    """Candles readable by a MySQL user of their own whose password is hostile; the Secrets hold its DSN
    and a MongoDB URI with a hostile password (FerretDB takes any login over PLAIN)."""
    user = f"dm_{uuid.uuid4().hex[:8]}"
    admin = connect(rig_env["RIG_MYSQL_DSN"])

    def dsn_of(database: str) -> str:
        with admin.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, passwords.mysql))
            cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@'%%'", (user,))
        server = urlsplit(rig_env["RIG_MYSQL_DSN"])
        netloc = f"{user}:{quote(passwords.mysql, safe='')}@{server.hostname}:{server.port}"
        return urlunsplit(server._replace(netloc=netloc, path=f"/{database}"))

    try:
        with candle_source(kube, namespace, rig_env, dsn_of=dsn_of) as source:
            mongo = urlsplit(rig_env["RIG_MONGODB_URI"])
            uri = f"mongodb://dm:{quote(passwords.mongodb, safe='')}@{mongo.netloc}/?authMechanism=PLAIN"
            kube.patch(Secret, "datamanager-mongodb", {"stringData": {"uri": uri}}, namespace=namespace)
            yield source
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        admin.close()


def copy_secret(kube: Client, namespace: str, source: str, name: str, key: str, value: str) -> None:
    """Secret ``name``: a copy of ``source`` with ``key`` set to ``value``."""
    data = kube.get(Secret, source, namespace=namespace).data or {}
    secret = Secret(metadata=ObjectMeta(name=name), data=dict(data), stringData={key: value})
    kube.create(secret, namespace=namespace)


def consumer(rig_env: dict[str, str], namespace: str, release: str, url: str, kube: Client) -> None:
    kube.create(
        Secret(metadata=ObjectMeta(name=f"{release}-nats"), stringData={"url": url}), namespace=namespace
    )
    run_tool(
        rig_env,
        "helm",
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "operator.enabled=false",
        "--set",
        "consumer.replicas=1",
        "--set",
        f"consumer.nats.existingSecret={release}-nats",
        "--set",
        f"consumer.nats.subject={SUBJECT}",
        "--set",
        "consumer.summaryIntervalSeconds=2",
        *chart_image(rig_env),
    )


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body: bytes = answer.read()
    return body.decode()


def pod_of(kube: Client, namespace: str, release: str) -> Pod | None:
    labels: LabelSelector = {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": "consumer"}
    return next(iter(kube.list(Pod, namespace=namespace, labels=labels)), None)


async def publish(server: str, password: str, count: int) -> None:
    client = await nats.connect(f"nats://{server}", user="dm", password=password)
    envelope = {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT", "p": "1", "q": "1"}}
    for _ in range(count):
        await client.publish(SUBJECT, json.dumps(envelope).encode())
    await client.flush()
    await client.close()


async def mongo_documents(uri: str, database: str) -> list[str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        found = []
        for collection in await client[database].list_collection_names():
            async for document in client[database][collection].find():
                found.append(f"mongodb {database}.{collection}: {json_util.dumps(document)}")
        return found
    finally:
        await client.close()


def log_text(rig_env: dict[str, str], namespace: str, pod: str = "*") -> dict[str, str]:
    """Every container log the process node keeps for ``namespace`` (restarts included): place -> text."""
    folder = Path(rig_env["RIG_STATE_DIR"], "pods")
    return {
        f"log {path.parent.parent.name}/{path.name}": path.read_text(errors="replace")
        for path in sorted(folder.glob(f"{namespace}_{pod}_*/logs/*.log"))
    }


def consumer_log(kube: Client, rig_env: dict[str, str], namespace: str, release: str) -> str:
    pod = pod_of(kube, namespace, release)
    return "".join(log_text(rig_env, namespace, name_of(pod)).values()) if pod else ""


def consumer_ready(kube: Client, namespace: str, release: str) -> Pod | None:
    pod = pod_of(kube, namespace, release)
    conditions = (pod.status.conditions or []) if pod and pod.status else []
    return pod if any(c.type == "Ready" and c.status == "True" for c in conditions) else None


def get_or_empty(url: str) -> str:
    try:
        return get(url)
    except OSError:  # urllib's HTTP errors included
        return ""


def test_no_part_of_any_password_is_seen_anywhere(
    kube: Client,
    namespace: str,
    rig_env: dict[str, str],
    passwords: Passwords,
    hostile_candles: CandleSource,
    nats_server: str,
) -> None:
    source = hostile_candles
    stored = kube.get(Secret, "extractor-mysql", namespace=namespace).data["dsn"]
    dsn = urlsplit(base64.b64decode(stored).decode())
    user, where = dsn.username, f"{dsn.hostname}:{dsn.port}/{source.database}"
    encoded = {label: quote(secret, safe="") for label, secret in passwords.all().items()}
    mongo = urlsplit(rig_env["RIG_MONGODB_URI"]).netloc
    copy_secret(kube, namespace, "extractor-mysql", "wrong-password", "dsn",
                f"mysql://{user}:{encoded['wrong']}@{where}")  # fmt: skip
    copy_secret(kube, namespace, "extractor-mysql", "unreachable", "dsn",
                f"mysql://{user}:{encoded['mysql']}@db.invalid:3306/{source.database}")  # fmt: skip
    copy_secret(kube, namespace, "extractor-mysql", "malformed-dsn", "dsn",
                f"mysql://{user}:{passwords.mysql}@{where}")  # fmt: skip
    copy_secret(kube, namespace, "datamanager-mongodb", "malformed-uri", "uri",
                f"mongodb://dm:{passwords.mongodb}@{mongo}/")  # fmt: skip

    runs: list[tuple[Any, str, str, str]] = [  # kind, name, the DSN's Secret, the URI's Secret
        (DataAudit, "audit", "extractor-mysql", "datamanager-mongodb"),
        (AnalyticsJob, "analytics", "extractor-mysql", "datamanager-mongodb"),
        (DataAudit, "wrong-password", "wrong-password", "datamanager-mongodb"),
        (DataAudit, "unreachable", "unreachable", "datamanager-mongodb"),
        (DataAudit, "malformed-dsn", "malformed-dsn", "datamanager-mongodb"),
        (AnalyticsJob, "malformed-uri", "extractor-mysql", "malformed-uri"),
    ]
    for kind, name, dsn_secret, uri_secret in runs:
        manifest = resource_manifest(kind.__name__, name, source, job={"backoffLimit": 0})
        manifest["spec"]["source"]["dsnSecretRef"]["name"] = dsn_secret
        manifest["spec"]["sink"]["uriSecretRef"]["name"] = uri_secret
        kube.create(kind.from_dict(manifest), namespace=namespace)
    login = f"dm:{quote(passwords.nats, safe='')}"
    consumer(rig_env, namespace, "good", f"nats://{login}@{nats_server}", kube)
    consumer(
        rig_env, namespace, "badpw", f"nats://dm:{quote(passwords.nats_wrong, safe='')}@{nats_server}", kube
    )
    consumer(rig_env, namespace, "malformed", f"nats://dm:{passwords.nats}@{nats_server}", kube)

    last = {}
    for kind, name, _, _ in runs:

        def done(kind: Any = kind, name: str = name) -> dict[str, Any] | None:
            return finished_run(kube, kind, name, namespace)

        last[name] = wait_for(done, 180, f"the run of {name}")["lastRun"]
    assert {name: run["outcome"] for name, run in last.items()} == {
        "audit": "Succeeded",
        "analytics": "Succeeded",
        "wrong-password": "Failed",
        "unreachable": "Failed",
        "malformed-dsn": "Failed",
        "malformed-uri": "Failed",
    }, last
    assert last["wrong-password"]["reason"] == "SourceUnavailable"
    assert f"refused the credentials of user '{user}'" in last["wrong-password"]["message"]
    assert last["unreachable"]["reason"] == "SourceUnavailable"
    assert "db.invalid:3306" in last["unreachable"]["message"]
    # the first problem found is named: a space (percent-encode it) or the '/' that cuts the password short
    for name, what in (("malformed-dsn", "the MySQL DSN"), ("malformed-uri", "the MongoDB URI")):
        assert last[name]["reason"] == "InvalidConfig"
        message = last[name]["message"]
        assert f"{what} has an '@' after its host part" in message or f"{what} contains whitespace" in message

    # the right NATS password works (decoded from the URL); the wrong one and the malformed URL never do
    good = wait_for(lambda: consumer_ready(kube, namespace, "good"), 60, "the consumer to subscribe")
    asyncio.run(publish(nats_server, passwords.nats, 25))
    wait_for(
        lambda: json.loads(get(f"http://{good.status.podIP}:8080/stats"))["messages"]["total"] >= 25,
        30,
        "the consumer to count what was published",
    )
    wait_for(
        lambda: "Authorization" in consumer_log(kube, rig_env, namespace, "badpw"), 60, "the refused login"
    )
    wait_for(lambda: "the NATS URL" in consumer_log(kube, rig_env, namespace, "malformed"), 60, "the bad URL")
    assert not consumer_ready(kube, namespace, "badpw")
    assert not consumer_ready(kube, namespace, "malformed")

    seen = everything_visible(kube, namespace, rig_env, source)
    hits = sorted(
        (label, piece, place)
        for label, secret in passwords.all().items()
        for piece in windows(secret)
        for place, text in seen.items()
        if piece in text
    )
    report = "\n".join(f"  {label} {piece!r} in {place}" for label, piece, place in hits[:20])
    assert not hits, f"password pieces seen:\n{report}"


def everything_visible(
    kube: Client, namespace: str, rig_env: dict[str, str], source: CandleSource
) -> dict[str, str]:
    """Place -> text, for every place a user, a log shipper, a scraper or a GitOps tool can look."""
    seen: dict[str, str] = {}
    for kind in (DataAudit, AnalyticsJob):
        for obj in kube.list(kind, namespace=namespace):
            seen[f"{kind.__name__} {name_of(obj)}"] = json.dumps(as_dict(obj), ensure_ascii=False)
    running: list[Pod] = []
    for ns in (namespace, RELEASE_NAMESPACE):
        for res in (Event, Pod, Job, ConfigMap):  # pods: their termination messages
            for item in kube.list(res, namespace=ns):
                seen[f"{res.__name__} {ns}/{name_of(item)}"] = json.dumps(as_dict(item), ensure_ascii=False)
        running += [p for p in kube.list(Pod, namespace=ns) if p.status.phase == "Running" and p.status.podIP]
        seen.update(log_text(rig_env, ns))
    for pod in running:
        for path in ("/metrics", "/stats"):
            seen[f"{name_of(pod)}{path}"] = get_or_empty(f"http://{pod.status.podIP}:8080{path}")
    workers = [place for place in seen if place.startswith("log ") and place.endswith("/worker.log")]
    assert len(workers) >= 6, f"expected the logs of six worker pods: {sorted(seen)}"
    assert (
        sum(place.endswith("/metrics") and bool(seen[place]) for place in seen) >= 3
    )  # 2 operators, 1 consumer
    documents = asyncio.run(mongo_documents(rig_env["RIG_MONGODB_URI"], source.mongo_database))
    assert documents, "the successful runs wrote results"
    seen.update({f"document {i}": text for i, text in enumerate(documents)})
    return seen
