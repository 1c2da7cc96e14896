# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Backfill requests through the operator: a DataAudit with backfillSubject and the Secret of its NATS
server runs on the rig and publishes one request per seeded gap to the rig's NATS (the CRD's refusal of a
subject without the Secret: test_invalid_resources.py; the author's right to read it: test_tenancy.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Secret

from datamanager.contract import ENV_NATS_URL
from tests.conftest import wait_for
from tests.e2e.conftest import candle_source, finished_run, resource_manifest
from tests.fixtures.candles import Defects

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
pytestmark = pytest.mark.usefixtures("operator_release")
# (first index, candles removed) per symbol; backfillMinMissing 2 leaves the one-candle gap out
GAPS = {"BTCUSDT": [(20, 1), (100, 4)], "ETHUSDT": [(50, 3)]}
MIN_MISSING = 2


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_dataaudit_publishes_a_backfill_request_per_seeded_gap_to_its_nats_server(
    kube: Client, namespace: str, rig_env: dict[str, str]
) -> None:
    subject = f"e2e.backfill.{uuid.uuid4().hex[:8]}"
    defects = {symbol: Defects(gaps=gaps) for symbol, gaps in GAPS.items()}
    with candle_source(kube, namespace, rig_env, defects=defects) as candles:
        kube.create(
            Secret(metadata=ObjectMeta(name="market-nats"), stringData={"url": rig_env["RIG_NATS_URL"]}),
            namespace=namespace,
        )
        manifest = resource_manifest(
            "DataAudit",
            "backfill",
            candles,
            backfillSubject=subject,
            backfillMinMissing=MIN_MISSING,
            natsUrlSecretRef={"name": "market-nats", "key": "url"},
        )

        async def run_and_listen() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            client = await nats.connect(rig_env["RIG_NATS_URL"])
            try:
                subscription = await client.subscribe(subject)
                await client.flush()  # subscribed on the server before the run starts
                await asyncio.to_thread(kube.create, DataAudit.from_dict(manifest), namespace=namespace)
                status = await asyncio.to_thread(
                    wait_for,
                    lambda: finished_run(kube, DataAudit, "backfill", namespace),
                    180,
                    "the audit to finish",
                )
                received: list[dict[str, Any]] = []
                while True:  # the worker flushed before it exited: whatever comes, came
                    try:
                        message = await subscription.next_msg(timeout=3)
                    except nats.errors.TimeoutError:
                        break
                    received.append(json.loads(message.data))
                return status, received
            finally:
                await client.close()

        status, received = asyncio.run(run_and_listen())
    assert status["lastRun"]["outcome"] == "Succeeded", status
    run_id = status["lastRun"]["jobName"]
    expected = sorted(
        (
            {
                "symbol": symbol,
                "interval": "1h",
                "start": stamp(candles.first_open + timedelta(hours=first)),
                "end": stamp(candles.first_open + timedelta(hours=first + length - 1)),
                "missing": length,
                "run_id": run_id,
                "resource": f"DataAudit/{namespace}/backfill",
            }
            for symbol, gaps in GAPS.items()
            for first, length in gaps
            if length >= MIN_MISSING
        ),
        key=lambda r: (r["symbol"], r["start"]),
    )
    assert len(received) == len(expected) == 2, received
    assert sorted(received, key=lambda r: (r["symbol"], r["start"])) == expected
    # the URL reached the worker by reference only
    (job,) = kube.list(Job, namespace=namespace, labels={"datamanager.petrosa.io/resource": "backfill"})
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert env[ENV_NATS_URL].value is None
    ref = env[ENV_NATS_URL].valueFrom.secretKeyRef
    assert (ref.name, ref.key) == ("market-nats", "url")
    assert all(rig_env["RIG_NATS_URL"] not in (e.value or "") for e in env.values())
