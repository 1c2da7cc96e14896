"""Candles in the rig's MariaDB for the analytics job, and a way to run the job as the CLI does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from datamanager.cli import main
from tests.fixtures.candles import Series, generate, store
from tests.fixtures.mysql import connect

FIRST_OPEN = datetime(2024, 7, 1, tzinfo=UTC)
CANDLES = 300
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
AS_OF = FIRST_OPEN + timedelta(hours=CANDLES)  # the window [AS_OF - 300h, AS_OF) holds every candle


@dataclass(frozen=True)
class Seeded:
    mysql_dsn: str
    series: dict[str, Series]


@pytest.fixture
def seeded(mysql_dsn: str) -> Iterator[Seeded]:
    """``klines_h1`` with 300 hourly candles of three symbols; ``klines_d1`` does not exist."""
    conn = connect(mysql_dsn)
    series = {
        symbol: generate(symbol, "1h", FIRST_OPEN, CANDLES, seed=index, start_price=100.0 * (index + 1))
        for index, symbol in enumerate(SYMBOLS)
    }
    try:
        with conn.cursor() as cursor:
            for index, item in enumerate(series.values()):
                store(cursor, "klines_h1", item, create=index == 0)
        yield Seeded(mysql_dsn, series)
    finally:
        conn.close()


@dataclass(frozen=True)
class Outcome:
    code: int
    summary: dict[str, Any]


def run_analytics(
    tmp_path: Path, mysql_dsn: str, mongodb_uri: str, database: str, *extra: str, run_id: str = "run-1"
) -> Outcome:
    """``datamanager analytics`` in this process, as the container runs it; the summary read back."""
    log = tmp_path / "termination-log"
    code = main(
        [
            "analytics",
            "--mysql-dsn",
            mysql_dsn,
            "--mongodb-uri",
            mongodb_uri,
            "--database",
            database,
            "--symbols",
            ",".join(SYMBOLS),
            "--intervals",
            "1h,1d",
            "--window",
            f"{CANDLES}h",
            "--as-of",
            AS_OF.isoformat(),
            "--run-id",
            run_id,
            "--termination-log",
            str(log),
            "--connect-timeout",
            "3",
            *extra,
        ]
    )
    text = log.read_text()
    assert len(text.encode()) <= 4096
    return Outcome(code, json.loads(text))


@pytest.fixture
def mongo(mongodb_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, tz_aware=True)
    try:
        yield client
    finally:
        client.close()
