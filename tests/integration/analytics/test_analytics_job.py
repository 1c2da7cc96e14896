"""The analytics job end to end on the rig's MariaDB and FerretDB."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import talib
from pymongo import DESCENDING, MongoClient

from datamanager.contract import ExitCode
from tests.fixtures.candles import klines_ddl
from tests.fixtures.mysql import connect
from tests.integration.analytics.conftest import CANDLES, SYMBOLS, Seeded, run_analytics

FAMILIES = ("volatility", "volume", "trend", "momentum", "regime")


def test_writes_one_document_per_dataset_and_family(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    outcome = run_analytics(tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database)
    assert outcome.code == ExitCode.OK
    collection = mongo[mongo_database]["analytics"]
    # 3 symbols x 5 families + correlation, for each of 1h (data) and 1d (no table).
    expected = 2 * (len(SYMBOLS) * len(FAMILIES) + 1)
    assert collection.count_documents({"run_id": "run-1"}) == expected
    assert outcome.summary["results"] == {
        "database": mongo_database,
        "collection": "analytics",
        "runId": "run-1",
        "documents": expected,
    }
    assert outcome.summary["counts"]["ok"] == len(SYMBOLS) * len(FAMILIES) + 1
    assert outcome.summary["counts"]["insufficientData"] == len(SYMBOLS) * len(FAMILIES) + 1

    hourly = collection.find_one({"symbol": "ETHUSDT", "interval": "1h", "family": "momentum"})
    assert hourly is not None
    assert hourly["status"] == "ok"
    assert hourly["candles"] == CANDLES
    assert isinstance(hourly["computed_at"], datetime)
    assert hourly["last_open_time"].isoformat() == "2024-07-13T11:00:00+00:00"
    # The job read DECIMALs from MariaDB; TA-Lib on the generator's arrays must agree.
    close = seeded.series["ETHUSDT"].close
    assert hourly["values"]["rsi"] == pytest.approx(talib.RSI(close, 14)[-1], rel=1e-9)
    assert hourly["values"]["macd"] == pytest.approx(talib.MACD(close, 12, 26, 9)[0][-1], rel=1e-9)

    correlation = collection.find_one({"interval": "1h", "family": "correlation"})
    assert correlation is not None
    assert correlation["symbol"] is None
    returns = np.diff(np.log(np.array([seeded.series[s].close for s in SYMBOLS])), axis=1)[:, -100:]
    matrix = correlation["values"]["matrix"]
    reported = np.array([[matrix[a][b] for b in SYMBOLS] for a in SYMBOLS])
    np.testing.assert_allclose(reported, np.corrcoef(returns), rtol=1e-9)

    missing = collection.find_one({"symbol": "BTCUSDT", "interval": "1d", "family": "trend"})
    assert missing is not None
    assert missing["status"] == "insufficient_data"
    assert missing["reason"] == "no data: table klines_d1 does not exist"
    assert missing["values"] == {}


def test_latest_result_is_one_indexed_query(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    run_analytics(tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database, run_id="older")
    run_analytics(tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database, run_id="newer")
    collection = mongo[mongo_database]["analytics"]
    names = {index["name"] for index in collection.list_indexes()}
    assert {"latest", "run", "retention"} <= names or {"latest", "run", "retention_ttl"} <= names
    latest = list(
        collection.find({"symbol": "SOLUSDT", "interval": "1h", "family": "volatility"})
        .sort("computed_at", DESCENDING)
        .hint("latest")
        .limit(1)
    )
    assert [document["run_id"] for document in latest] == ["newer"]
    assert all(isinstance(document["expires_at"], datetime) for document in latest)


def test_rerunning_a_run_id_replaces_its_results(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    run_analytics(tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database)
    rerun = run_analytics(
        tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database, "--families", "volatility,correlation"
    )
    assert rerun.code == ExitCode.OK
    collection = mongo[mongo_database]["analytics"]
    families = sorted({document["family"] for document in collection.find({"run_id": "run-1"})})
    assert families == ["correlation", "volatility"]
    assert collection.count_documents({"run_id": "run-1"}) == 2 * (len(SYMBOLS) + 1)


def test_shards_split_symbols_and_only_shard_zero_correlates(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    shards = [
        run_analytics(
            tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database, "--shards", "2", "--shard-index", str(i)
        )
        for i in (0, 1)
    ]
    assert [outcome.summary["shard"] for outcome in shards] == [
        {"index": 0, "count": 2},
        {"index": 1, "count": 2},
    ]
    collection = mongo[mongo_database]["analytics"]
    by_shard = {
        label: sorted({d["symbol"] for d in collection.find({"shard": label, "family": "volatility"})})
        for label in ("0-of-2", "1-of-2")
    }
    assert by_shard == {"0-of-2": ["BTCUSDT", "SOLUSDT"], "1-of-2": ["ETHUSDT"]}
    correlations = list(collection.find({"family": "correlation", "interval": "1h"}))
    assert [document["shard"] for document in correlations] == ["0-of-2"]
    assert correlations[0]["values"]["symbols"] == list(SYMBOLS)


def test_short_window_gives_insufficient_data_with_counts(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    # 40 hours of 1h candles (a 1d dataset needs at least 2881m: the window must hold a closed candle)
    outcome = run_analytics(
        tmp_path, seeded.mysql_dsn, mongodb_uri, mongo_database, "--intervals", "1h", "--window", "40h"
    )
    assert outcome.code == ExitCode.OK
    trend = mongo[mongo_database]["analytics"].find_one(
        {"symbol": "BTCUSDT", "interval": "1h", "family": "trend"}
    )
    assert trend is not None
    assert (trend["status"], trend["candles"], trend["required"]) == ("insufficient_data", 40, 51)
    assert trend["reason"] == "insufficient data: 40 candles, trend needs at least 51"
    problems = {(d["symbol"], d["interval"]): d["problems"] for d in outcome.summary["datasets"]}
    assert "trend: insufficient data: 40 candles, trend needs at least 51" in problems[("BTCUSDT", "1h")]


def test_nulls_and_bad_candles_in_a_copy_are_excluded_and_counted_never_a_crash(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    """A NULL trade count crashed reading the candles (int(None), exit 1); a zero close made close-to-close,
    Yang-Zhang and the regime null for the latest window, however far back it was."""
    conn = connect(seeded.mysql_dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute(klines_ddl("copy_h1", nullable=True))
            cursor.execute("INSERT INTO copy_h1 SELECT * FROM klines_h1")
            cursor.execute(
                "UPDATE copy_h1 SET number_of_trades = NULL WHERE open_time = '2024-07-02 00:00:00'"
            )
            btc = "WHERE symbol = 'BTCUSDT' AND open_time"
            cursor.execute(f"UPDATE copy_h1 SET close_price = 0 {btc} = '2024-07-03 00:00:00'")
            cursor.execute(f"UPDATE copy_h1 SET high_price = NULL {btc} = '2024-07-04 00:00:00'")
    finally:
        conn.close()
    outcome = run_analytics(
        tmp_path,
        seeded.mysql_dsn,
        mongodb_uri,
        mongo_database,
        "--table-prefix",
        "copy_",
        "--intervals",
        "1h",
    )
    assert outcome.code == ExitCode.OK, outcome.summary
    collection = mongo[mongo_database]["analytics"]
    for family in FAMILIES:
        document = collection.find_one({"symbol": "BTCUSDT", "interval": "1h", "family": family})
        assert document is not None
        assert (document["status"], document["candles"], document["excluded_candles"]) == (
            "ok",
            CANDLES - 2,
            2,
        )
        assert None not in document["values"].values(), family
    clean = collection.find_one({"symbol": "ETHUSDT", "interval": "1h", "family": "volatility"})
    assert clean is not None
    assert clean["excluded_candles"] == 0
    correlation = collection.find_one({"interval": "1h", "family": "correlation"})
    assert correlation is not None
    assert correlation["excluded_candles"] == 2
