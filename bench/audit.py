"""Benchmark: the SQL audit vs the old approach (every row into Python, checked there), same data, same run.

One year of one-minute candles for one symbol (525,600 rows) with injected defects is loaded into a fresh
database on the rig's MariaDB; both audits run over it and their findings must be identical. Then the data
is copied server-side to ``--symbols`` symbols in the same table and both run again over all of them.

    source .rig/env && .venv/bin/python bench/audit.py [--rows N] [--symbols N]

The last line is one JSON object: ``rows``, ``audit_seconds``, ``naive_seconds``, ``ratio_vs_naive``,
``findings_equal`` for one symbol, and the same under ``multi_symbol``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamanager.api import DataAuditSpec, Interval
from datamanager_workers.audit.checks import audit_table, min_spike_returns
from datamanager_workers.audit.findings import AuditWindow
from datamanager_workers.shared.source import CandleSource, MySqlDsn
from tests.fixtures import candles
from tests.fixtures.mysql import connect
from tests.fixtures.reference_audit import fetch_rows, findings_of, reference_audit

FIRST = datetime(2023, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def defects(rows: int) -> candles.Defects:
    """Defects at fixed fractions of the series, so a quick run with fewer rows has the same shapes."""

    def at(fraction: float) -> int:
        return int(rows * fraction)

    return candles.Defects(
        gaps=((0, 10), (at(0.002), 1), (at(0.1), 30), (at(0.4), 1440), (at(0.75), 5), (at(0.9), 2)),
        invalid=tuple(
            (at(0.05 + 0.9 * i / (3 * len(candles.INVALID_KINDS))), kind)
            for i, kind in enumerate(candles.INVALID_KINDS * 3)
        ),
        spikes=(at(0.2), at(0.55), at(0.62), at(0.81), at(0.97)),
        quiet=tuple(range(at(0.3), at(0.3) + 120)),
        stale=15,
    )


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def load(dsn: str, rows: int, symbol: str) -> None:
    """One symbol's year of candles, written through the fixture generator with multi-row INSERTs."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            candles.store(
                cursor,
                "klines_m1",
                candles.generate(symbol, "1m", FIRST, rows, seed=7, defects=defects(rows)),
            )
            cursor.execute("ANALYZE TABLE klines_m1")
            cursor.fetchall()
    finally:
        conn.close()


def copy_symbol(dsn: str, source: str, targets: list[str]) -> None:
    """The same candles (defects included) under other symbols, copied on the server."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            for symbol in targets:
                cursor.execute(
                    f"INSERT INTO klines_m1 ({candles.COLUMNS})"
                    " SELECT CONCAT(%s, '_', SUBSTRING_INDEX(id, '_', -1)), %s, `timestamp`, open_time,"
                    " close_time, `interval`, open_price, high_price, low_price, close_price, volume,"
                    " quote_asset_volume, number_of_trades, taker_buy_base_asset_volume,"
                    " taker_buy_quote_asset_volume, price_change, price_change_percent, extracted_at,"
                    " extractor_version, source FROM klines_m1 WHERE symbol = %s",
                    (symbol, symbol, source),
                )
            cursor.execute("ANALYZE TABLE klines_m1")
            cursor.fetchall()
    finally:
        conn.close()


def run_sql_audit(
    dsn: str, spec: DataAuditSpec, window: AuditWindow, symbols: list[str]
) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with CandleSource(MySqlDsn.parse(dsn), pool_size=2) as source:
            return [
                findings_of(audit) for audit in await audit_table(source, spec, Interval.M1, symbols, window)
            ]

    return asyncio.run(main())


def run_naive(dsn: str, spec: DataAuditSpec, window: AuditWindow, symbols: list[str]) -> list[dict[str, Any]]:
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            return [
                reference_audit(
                    fetch_rows(cursor, "klines_m1", symbol),
                    step=60,
                    first_expected=window.first_expected,
                    last_expected=window.last_expected,
                    end=window.end,
                    sigma=spec.spikes.sigma,
                    lookback=spec.spikes.lookback,
                    min_returns=min_spike_returns(spec.spikes.lookback),
                    limit=spec.max_findings,
                )
                for symbol in symbols
            ]
    finally:
        conn.close()


def compare(dsn: str, spec: DataAuditSpec, window: AuditWindow, symbols: list[str]) -> dict[str, Any]:
    sql, sql_seconds = timed(lambda: run_sql_audit(dsn, spec, window, symbols))
    naive, naive_seconds = timed(lambda: run_naive(dsn, spec, window, symbols))
    return {
        "symbols": len(symbols),
        "rows": sum(item["rows"] for item in naive),
        "audit_seconds": round(sql_seconds, 3),
        "naive_seconds": round(naive_seconds, 3),
        "ratio_vs_naive": round(naive_seconds / sql_seconds, 2),
        "findings_equal": sql == naive,
        "findings": {
            key: sql[0][key]
            for key in ("gap_count", "missing_candles", "invalid_rows", "spike_count", "stale_candles")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=525_600, help="one-minute candles per symbol (one year)")
    parser.add_argument("--symbols", type=int, default=10, help="symbols in the second round")
    args = parser.parse_args()
    server = os.environ.get("RIG_MYSQL_DSN")
    if not server:
        sys.exit("RIG_MYSQL_DSN is not set: run `source .rig/env` (the rig must be up)")

    database = f"bench_audit_{uuid.uuid4().hex[:8]}"
    admin = connect(server)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}`")
    dsn = urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
    symbols = [f"SYM{i:02d}USDT" for i in range(max(1, args.symbols))]
    spec = DataAuditSpec.model_validate(
        {
            "source": {"dsnSecretRef": {"name": "bench", "key": "dsn"}},
            "sink": {"uriSecretRef": {"name": "bench", "key": "uri"}},
            "symbols": symbols,
            "intervals": ["1m"],
            "window": candles.window_for(args.rows, "1m"),
        }
    )
    window = AuditWindow.ending_at(candles.as_of_for(FIRST, args.rows, "1m"), spec.window_delta, Interval.M1)
    try:
        _, load_seconds = timed(lambda: load(dsn, args.rows, symbols[0]))
        print(f"loaded {args.rows} candles of {symbols[0]} in {load_seconds:.1f}s", flush=True)
        single = compare(dsn, spec, window, symbols[:1])
        print(f"one symbol: {json.dumps(single)}", flush=True)
        multi = single
        if len(symbols) > 1:
            _, copy_seconds = timed(lambda: copy_symbol(dsn, symbols[0], symbols[1:]))
            print(f"copied them to {len(symbols) - 1} more symbols in {copy_seconds:.1f}s", flush=True)
            multi = compare(dsn, spec, window, symbols)
            print(f"{len(symbols)} symbols: {json.dumps(multi)}", flush=True)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
    print(
        json.dumps(
            {
                "rows": single["rows"],
                "audit_seconds": single["audit_seconds"],
                "naive_seconds": single["naive_seconds"],
                "ratio_vs_naive": single["ratio_vs_naive"],
                "findings_equal": single["findings_equal"] and multi["findings_equal"],
                "multi_symbol": {
                    key: multi[key]
                    for key in (
                        "symbols",
                        "rows",
                        "audit_seconds",
                        "naive_seconds",
                        "ratio_vs_naive",
                        "findings_equal",
                    )
                },
            }
        )
    )


if __name__ == "__main__":
    main()
