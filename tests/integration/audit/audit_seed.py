"""The seeded database the audit's integration tests share: known defects at known positions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datamanager.api import DataAuditSpec
from datamanager.cli import build_parser
from datamanager_workers.audit.cli import load_audit_settings
from datamanager_workers.shared.settings import WorkerSettings
from tests.fixtures import candles
from tests.fixtures.mysql import connect

FIRST = datetime(2024, 7, 1, tzinfo=UTC)
COUNT = 400
INTERVAL = "1h"
STEP = timedelta(hours=1)
AS_OF = candles.as_of_for(FIRST, COUNT, INTERVAL)
WINDOW = candles.window_for(COUNT, INTERVAL)

BTC_DEFECTS = candles.Defects(
    gaps=((0, 3), (50, 1), (100, 5), (200, 24), (232, 2)),  # the last inside a quiet, unmoving stretch
    invalid=(
        (70, "low_above_open_close"),
        (80, "high_below_open_close"),
        (90, "low_above_high"),
        (120, "zero_price"),
        (130, "negative_volume"),
        (140, "close_time"),
        (160, "misaligned"),
        (170, "quote_volume"),
        (180, "taker_buy"),
        (190, "volume_without_trades"),
    ),
    spikes=(260, 330),
    quiet=(60, 61, 62, 230, 231, 232, 233, 234),
    stale=4,
)
DUPLICATED = (10, 11, 300)  # BTCUSDT candles stored twice in the copy table
VIEW_DUPLICATED = (20,)  # and in the view


def at(index: int) -> datetime:
    return FIRST + index * STEP


@dataclass(frozen=True)
class Seed:
    dsn: str


def seed(dsn: str) -> None:
    """klines_h1: BTCUSDT with every defect, ETHUSDT clean; dupes_h1 (a copy without a primary key) and
    dupview_h1 (a view) with duplicates; no 1d table at all."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            btc = candles.generate("BTCUSDT", INTERVAL, FIRST, COUNT, seed=1, defects=BTC_DEFECTS)
            eth = candles.generate("ETHUSDT", INTERVAL, FIRST, COUNT, seed=2, start_price=3000.0)
            candles.store(cursor, "klines_h1", btc)
            candles.store(cursor, "klines_h1", eth, create=False)
            candles.copy_with_duplicates(
                cursor, "klines_h1", "dupes_h1", "BTCUSDT", [at(i) for i in DUPLICATED]
            )
            candles.view_with_duplicates(
                cursor, "klines_h1", "dupview_h1", "BTCUSDT", [at(i) for i in VIEW_DUPLICATED]
            )
    finally:
        conn.close()


def audit_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["audit", *flags])


def settings_for(
    mysql_dsn: str,
    mongodb_uri: str,
    database: str,
    *flags: str,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
    intervals: Sequence[str] = ("1h",),
    environ: dict[str, str] | None = None,
) -> WorkerSettings[DataAuditSpec]:
    args = audit_args(
        "--mysql-dsn",
        mysql_dsn,
        "--mongodb-uri",
        mongodb_uri,
        "--database",
        database,
        "--symbols",
        ",".join(symbols),
        "--intervals",
        ",".join(intervals),
        "--window",
        WINDOW,
        *flags,
    )
    return load_audit_settings(args, environ=environ or {})
