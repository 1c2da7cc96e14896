"""`make demo`: start the local cluster and services, seed candles with a few defects, install the chart,
apply the sample DataAudit and AnalyticsJob, publish some stream traffic, and show the results.

The rig stays up afterwards so you can look around; `make rig-down` stops it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NAMESPACE = "market-data"
SYSTEM = "datamanager-system"
RELEASE = "datamanager"


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def sh(*argv: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(argv, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        if capture:
            print(result.stdout, result.stderr, file=sys.stderr)
        sys.exit(f"demo: `{' '.join(argv)}` failed")
    return result.stdout if capture else ""


def rig_env() -> dict[str, str]:
    from tests.rig import rig

    if rig.running() is None:
        say("Starting the local cluster and services (about 30 s; binaries were built by `make rig-build`)")
        if rig.up(with_cluster=True) != 0:
            sys.exit("demo: the rig did not start; see the log tail above")
    env = dict(os.environ)
    for line in rig.ENV_FILE.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key == "PATH":
            env["PATH"] = value.replace('"$PATH"', os.environ.get("PATH", ""))
        else:
            env[key] = value
    return env


def seed(env: dict[str, str]) -> str:
    """Candles as the extractor stores them, with defects the audit should find."""
    from tests.fixtures.candles import Defects, generate, store
    from tests.fixtures.mysql import connect

    say(
        "Seeding MySQL: 30 days of 1h candles (3 symbols) and 7 days of 5m candles (2 symbols), with a gap, "
        "an invalid candle, a price spike and stale candles"
    )
    server = urlsplit(env["RIG_MYSQL_DSN"])
    conn = connect(env["RIG_MYSQL_DSN"])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS binance")
        cur.execute("CREATE DATABASE binance")
        cur.execute("USE binance")
        plans = [
            (
                "1h",
                720,
                {
                    # defects inside the sample audit's 7-day window (the last 168 of 720 candles)
                    "BTCUSDT": Defects(spikes=[600]),
                    "ETHUSDT": Defects(invalid=[(650, "low_above_high")]),
                    "SOLUSDT": Defects(),
                },
            ),
            ("5m", 2016, {"BTCUSDT": Defects(stale=4), "ETHUSDT": Defects(gaps=[(1500, 6)])}),
        ]
        for interval, count, symbols in plans:
            step = timedelta(hours=1) if interval == "1h" else timedelta(minutes=5)
            last_open = now - (now - datetime(2020, 1, 1, tzinfo=UTC)) % step - step
            for index, (symbol, defects) in enumerate(symbols.items()):
                series = generate(
                    symbol,
                    interval,
                    last_open - step * (count - 1),
                    count,
                    seed=index,
                    defects=defects,
                    start_price=[60_000.0, 3_000.0, 150.0][index],
                )
                store(cur, f"klines_{interval[-1]}{interval[:-1]}", series, create=index == 0)
    conn.close()
    return urlunsplit(server._replace(path="/binance"))


def image_values(env: dict[str, str]) -> list[str]:
    """The image `make image` built, where the rig's node runs pods as containers (what you would deploy);
    the process node runs the same code from the virtual environment and ignores images."""
    image = env.get("RIG_IMAGE")
    if not image:
        reason = shlex.split(env.get("RIG_NODE_RUNTIME_REASON", "no image"))[0]
        say(f"Pods run as local processes, not containers: {reason}")
        return []
    say(f"Pods run as containers of {image}, confined by the chart's security context")
    repository, _, tag = image.rpartition(":")
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]


def install(env: dict[str, str], dsn: str) -> None:
    image = image_values(env)
    say(f"Installing the Helm chart into {SYSTEM} (operator and consumer, 2 replicas each)")
    sh("kubectl", "apply", "--server-side", "-f", str(REPO / "crds"), env=env, capture=True)
    # the operator manages the namespaces it is given (a Role in each), so that one exists first
    manifest = sh(
        "kubectl", "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml", env=env, capture=True
    )
    subprocess.run(["kubectl", "apply", "-f", "-"], input=manifest, env=env, text=True, capture_output=True)
    sh(
        "helm",
        "upgrade",
        "--install",
        RELEASE,
        str(REPO / "charts" / "datamanager"),
        "-n",
        SYSTEM,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        f"consumer.nats.url={env['RIG_NATS_URL']}",
        "--set",
        "consumer.summaryIntervalSeconds=15",
        "--set",
        f"rbac.watchNamespaces={{{NAMESPACE}}}",
        *image,
        env=env,
        capture=True,
    )
    say(f"Creating the Secrets the workers read in {NAMESPACE}")
    for name, key, value in (
        ("extractor-mysql", "dsn", dsn),
        ("datamanager-mongodb", "uri", env["RIG_MONGODB_URI"]),
    ):
        secret = sh(
            "kubectl",
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "generic",
            name,
            f"--from-literal={key}={value}",
            "--dry-run=client",
            "-o",
            "yaml",
            env=env,
            capture=True,
        )
        subprocess.run(["kubectl", "apply", "-f", "-"], input=secret, env=env, text=True, capture_output=True)


def publish(env: dict[str, str]) -> None:
    import asyncio

    import nats

    say("Publishing 3,000 stream messages in every format to NATS for the consumers to count")
    formats = [
        {
            "stream": "btcusdt@trade",
            "data": {"e": "trade", "E": 0, "s": "BTCUSDT", "p": "60000.1", "q": "0.01"},
        },
        {"stream": "ethusdt@depth20@100ms", "data": {"lastUpdateId": 1, "bids": [["1", "2"]], "asks": []}},
        {"stream": "solusdt@kline_1h", "data": {"e": "kline", "E": 0, "s": "SOLUSDT", "k": {"s": "SOLUSDT"}}},
        {
            "stream": "!markPrice@arr@1s",
            "data": [
                {"e": "markPriceUpdate", "E": 0, "s": "BTCUSDT", "p": "1"},
                {"e": "markPriceUpdate", "E": 0, "s": "ETHUSDT", "p": "1"},
            ],
        },
    ]

    async def run() -> None:
        nc = await nats.connect(env["RIG_NATS_URL"])
        for i in range(3000):
            message = json.loads(json.dumps(formats[i % len(formats)]))
            data = message["data"]
            for event in data if isinstance(data, list) else [data]:
                if "E" in event:
                    event["E"] = int(time.time() * 1000)
            await nc.publish("binance.futures.websocket.data", json.dumps(message).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(run())


def apply_samples(env: dict[str, str]) -> None:
    say("Applying samples/dataaudit.yaml and samples/analyticsjob.yaml")
    for sample in ("dataaudit.yaml", "analyticsjob.yaml"):
        path = str(REPO / "samples" / sample)
        # a second demo starts from fresh resources, so their first run audits the freshly seeded candles
        sh(
            "kubectl",
            "-n",
            NAMESPACE,
            "delete",
            "--ignore-not-found",
            "--wait",
            "-f",
            path,
            env=env,
            capture=True,
        )
        sh("kubectl", "-n", NAMESPACE, "apply", "-f", path, env=env, capture=True)
    say("Waiting for both runs to succeed (each is one Job whose pod runs the real worker)")
    for resource in ("dataaudit/majors", "analyticsjob/majors-analytics"):
        sh(
            "kubectl",
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Succeeded",
            resource,
            "--timeout=300s",
            env=env,
            capture=True,
        )


def consumer_stats(env: dict[str, str]) -> str:
    pods = sh(
        "kubectl",
        "-n",
        SYSTEM,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=consumer",
        "-o",
        "jsonpath={.items[*].status.podIP}",
        env=env,
        capture=True,
    ).split()
    totals: dict[str, int] = {}
    for ip in pods:
        with urllib.request.urlopen(f"http://{ip}:8080/stats", timeout=5) as response:
            stats = json.loads(response.read())
        for key, value in stats["messages"]["by_type"].items():
            totals[key] = totals.get(key, 0) + value
        totals["malformed"] = totals.get("malformed", 0) + stats["malformed"]["total"]
    return ", ".join(f"{k}={v}" for k, v in sorted(totals.items()) if v) or "(no counts yet)"


def main() -> int:
    started = time.monotonic()
    env = rig_env()
    dsn = seed(env)
    install(env, dsn)
    publish(env)
    apply_samples(env)
    say("Result")
    print(
        sh("kubectl", "-n", NAMESPACE, "get", "dataaudits,analyticsjobs", "-o", "wide", env=env, capture=True)
    )
    audit = json.loads(
        sh("kubectl", "-n", NAMESPACE, "get", "dataaudit/majors", "-o", "json", env=env, capture=True)
    )["status"]
    print(
        "Worst datasets:",
        ", ".join(f"{d['symbol']} {d['interval']} {d.get('score')}" for d in audit["datasets"]),
    )
    for kind in ("dataaudit/majors", "analyticsjob/majors-analytics"):
        status = json.loads(sh("kubectl", "-n", NAMESPACE, "get", kind, "-o", "json", env=env, capture=True))
        results = status["status"]["results"]
        where = f"{results['database']}.{results['collection']}"
        print(f"{kind}: {results['documents']} documents in MongoDB {where} (run id {results['runId']})")
    print("Consumers counted:", consumer_stats(env))
    print(f"\nDone in {time.monotonic() - started:.0f}s. Look around (the rig stays up):")
    print("  source .rig/env")
    print(f"  kubectl -n {NAMESPACE} get datamanager                 # both kinds, health, last and next run")
    print(f"  kubectl -n {NAMESPACE} describe dataaudit majors       # conditions and events")
    trigger = "datamanager.petrosa.io/run-now=$(date +%s)"
    print(f"  kubectl -n {NAMESPACE} annotate dataaudit majors {trigger} --overwrite   # run now")
    print(
        "  python -c \"import pymongo,os; c=pymongo.MongoClient(os.environ['RIG_MONGODB_URI']); "
        'print(c.datamanager.list_collection_names())"'
    )
    print("Stop everything with: make rig-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
