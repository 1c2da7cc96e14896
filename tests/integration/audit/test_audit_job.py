"""A whole audit run on MariaDB and FerretDB: documents, indexes, replacement by run id, retention without
TTL, the summary, shards and backfill requests."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from pymongo import AsyncMongoClient

from datamanager_workers.audit.job import AuditOptions, run_audit
from datamanager_workers.shared.errors import SinkUnavailableError
from datamanager_workers.shared.sink import ResultSink, RetentionMode
from tests.integration.audit.audit_seed import AS_OF, seed, settings_for


@pytest.fixture
def seeded(mysql_dsn: str) -> str:
    seed(mysql_dsn)
    return mysql_dsn


async def _documents(mongodb_uri: str, database: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        return await client[database]["audit"].find(query).sort("_id").to_list()
    finally:
        await client.close()


async def test_a_run_writes_one_run_document_and_one_per_dataset(
    seeded: str, mongodb_uri: str, mongo_database: str
) -> None:
    settings = settings_for(
        seeded, mongodb_uri, mongo_database, "--run-id", "r1", symbols=("BTCUSDT", "ETHUSDT", "XRPUSDT"),
        intervals=("1h", "1d"),
    )  # fmt: skip
    summary = await run_audit(settings, AuditOptions(as_of=AS_OF))

    docs = await _documents(mongodb_uri, mongo_database, {"run_id": "r1"})
    assert sorted(doc["_id"] for doc in docs) == sorted(
        ["r1"] + [f"r1/{s}/{i}" for s in ("BTCUSDT", "ETHUSDT", "XRPUSDT") for i in ("1h", "1d")]
    )
    by_id = {doc["_id"]: doc for doc in docs}
    assert by_id["r1/ETHUSDT/1h"]["health_score"] == 100.0
    assert by_id["r1/BTCUSDT/1d"]["status"] == "missing_table"
    assert by_id["r1/XRPUSDT/1h"]["status"] == "no_data"
    btc = by_id["r1/BTCUSDT/1h"]
    assert btc["finished_at"].tzinfo is not None
    assert isinstance(btc["gaps"][0]["first_missing"], datetime)
    # FerretDB has no Decimal128: the codec stores the exact decimal text.
    violation = btc["violations"][0]
    assert isinstance(violation["open"], str)
    assert len(violation["open"].split(".")[1]) == 8
    assert by_id["r1"]["kind"] == "run"
    assert by_id["r1"]["counts"]["datasets"] == 6

    assert summary.outcome == "Succeeded"
    assert summary.results is not None
    assert summary.results.model_dump() == {
        "database": mongo_database, "collection": "audit", "run_id": "r1", "documents": 7,
    }  # fmt: skip
    assert summary.datasets[0].score == 0.0
    assert summary.datasets[-1].symbol == "ETHUSDT"
    assert summary.datasets[-1].interval == "1h"
    assert 0 < (summary.health_score or 0) < 100

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        indexes = await client[mongo_database]["audit"].index_information()
    finally:
        await client.close()
    assert {"run", "latest_dataset", "latest_run", "retention"} <= set(indexes)


async def test_rerunning_a_run_id_replaces_its_documents(
    seeded: str, mongodb_uri: str, mongo_database: str
) -> None:
    first = settings_for(
        seeded, mongodb_uri, mongo_database, "--run-id", "same", symbols=("BTCUSDT", "ETHUSDT")
    )
    await run_audit(first, AuditOptions(as_of=AS_OF))
    again = settings_for(seeded, mongodb_uri, mongo_database, "--run-id", "same", symbols=("ETHUSDT",))
    await run_audit(again, AuditOptions(as_of=AS_OF + timedelta(hours=1)))
    docs = await _documents(mongodb_uri, mongo_database, {"run_id": "same"})
    assert [doc["_id"] for doc in docs] == ["same", "same/ETHUSDT/1h"]
    assert docs[0]["finished_at"] > docs[1]["window"]["start"]
    assert docs[1]["window"]["end"] == AS_OF + timedelta(hours=1)


async def test_without_ttl_indexes_each_run_deletes_expired_results(
    seeded: str, mongodb_uri: str, mongo_database: str
) -> None:
    async with ResultSink(mongodb_uri, mongo_database) as sink:
        assert await sink.ensure_indexes("audit", []) is RetentionMode.SWEEP  # FerretDB v1
        past = datetime.now(UTC) - timedelta(seconds=1)
        await sink.replace_run(
            "audit",
            [{"_id": "old", "run_id": "old", "expires_at": past}],
            scope={"run_id": "old"},
        )
    settings = settings_for(seeded, mongodb_uri, mongo_database, "--run-id", "new", symbols=("ETHUSDT",))
    summary = await run_audit(settings, AuditOptions(as_of=AS_OF))
    assert summary.counts["expiredDeleted"] == 1
    ids = [doc["_id"] for doc in await _documents(mongodb_uri, mongo_database, {})]
    assert ids == ["new", "new/ETHUSDT/1h"]
    kept = await _documents(mongodb_uri, mongo_database, {"_id": "new"})
    assert kept[0]["expires_at"] - kept[0]["finished_at"] == timedelta(days=30)


async def test_a_rejected_write_is_sink_unavailable_with_what_was_written(
    mongodb_uri: str, mongo_database: str
) -> None:
    async with ResultSink(mongodb_uri, mongo_database) as sink:
        with pytest.raises(
            SinkUnavailableError, match=r"rejected the write of 1 result document\(s\) to 'audit'"
        ):
            await sink.replace_run("audit", [{"_id": "bad", "$field": 1}], scope={"run_id": "bad"})


async def test_a_shard_audits_its_symbols_and_says_which_shard(
    seeded: str, mongodb_uri: str, mongo_database: str
) -> None:
    env = {"DATAMANAGER_SHARDS": "2", "JOB_COMPLETION_INDEX": "1"}
    settings = settings_for(
        seeded, mongodb_uri, mongo_database, "--run-id", "sh", symbols=("BTCUSDT", "ETHUSDT", "XRPUSDT"),
        environ=env,
    )  # fmt: skip
    summary = await run_audit(settings, AuditOptions(as_of=AS_OF))
    assert summary.shard is not None
    assert (summary.shard.index, summary.shard.count) == (1, 2)
    assert [d.symbol for d in summary.datasets] == ["ETHUSDT"]
    ids = [doc["_id"] for doc in await _documents(mongodb_uri, mongo_database, {"run_id": "sh"})]
    assert ids == ["sh/ETHUSDT/1h", "sh/shard-1-of-2"]


async def test_large_gaps_become_backfill_requests_on_nats(
    seeded: str, mongodb_uri: str, mongo_database: str, nats_url: str, nats_subject: str
) -> None:
    received: list[dict[str, Any]] = []
    client = await nats.connect(nats_url)
    try:

        async def collect(msg: Msg) -> None:
            received.append(json.loads(msg.data))

        await client.subscribe(nats_subject, cb=collect)
        await client.flush()
        settings = settings_for(
            seeded, mongodb_uri, mongo_database, "--backfill-subject", nats_subject, "--backfill-min-missing",
            "5", symbols=("BTCUSDT",),
        )  # fmt: skip
        summary = await run_audit(settings, AuditOptions(as_of=AS_OF, nats_url=nats_url))
        for _ in range(50):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    assert summary.counts["backfillRequested"] == 2
    assert sorted((r["start"], r["missing"]) for r in received) == [
        ("2024-07-05T04:00:00Z", 5),
        ("2024-07-09T08:00:00Z", 24),
    ]
