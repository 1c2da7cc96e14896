"""The audit's rules on real MariaDB (issue 15, items 3 to 6): spikes judged against the rolling mean, a wick
check, the quote/taker/trade-count rules, NULLs as a rule of their own (never a crash), and an empty
dataset as the largest gap, with its backfill request. Each agrees with the reference implementation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from datamanager.api import DataAuditSpec, Interval
from datamanager_workers.audit.backfill import backfill_requests
from datamanager_workers.audit.checks import audit_table, min_spike_returns
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, DatasetStatus
from datamanager_workers.audit.scoring import score_dataset
from datamanager_workers.shared.source import CandleSource, MySqlDsn
from tests.fixtures import candles
from tests.fixtures.mysql import connect
from tests.fixtures.reference_audit import fetch_rows, findings_of, reference_audit

FIRST = datetime(2024, 7, 1, tzinfo=UTC)
COUNT = 300
STEP = timedelta(hours=1)
AS_OF = candles.as_of_for(FIRST, COUNT, "1h")
SPEC = DataAuditSpec.model_validate(
    {
        "source": {"dsnSecretRef": {"name": "s", "key": "k"}},
        "sink": {"uriSecretRef": {"name": "s", "key": "k"}},
        "symbols": ["BTCUSDT"],
        "intervals": ["1h"],
        "window": candles.window_for(COUNT, "1h"),
    }
)
WINDOW = AuditWindow.ending_at(AS_OF, SPEC.window_delta, Interval.H1)


def at(index: int) -> datetime:
    return FIRST + index * STEP


def alternating(count: int = COUNT) -> candles.Series:
    """Log returns alternating 0.010 and 0.012, every candle with trades, wicks of 0.01 %."""
    series = candles.generate("BTCUSDT", "1h", FIRST, count, seed=3)
    returns = np.where(np.arange(count) % 2 == 0, 0.010, 0.012)
    close = np.round(100.0 * np.exp(np.cumsum(returns)), 8)
    series.open = np.concatenate([[100.0], close[:-1]])
    series.close = close
    series.high = np.round(np.maximum(series.open, close) * 1.0001, 8)
    series.low = np.round(np.minimum(series.open, close) * 0.9999, 8)
    series.quote_volume = np.round(series.volume * close, 8)
    series.taker_base = np.round(series.volume / 2, 8)
    series.taker_quote = np.round(series.volume * close / 2, 8)
    return series


def store(dsn: str, table: str, series: candles.Series, *, nullable: bool = False) -> None:
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            cursor.execute(candles.klines_ddl(table, nullable=nullable))
            candles.store(cursor, table, series, create=False)
    finally:
        conn.close()


def execute(dsn: str, *statements: str) -> None:
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


async def audit(dsn: str, prefix: str, symbols: tuple[str, ...] = ("BTCUSDT",)) -> list[DatasetAudit]:
    spec = SPEC.model_copy(update={"source": SPEC.source.model_copy(update={"table_prefix": prefix})})
    async with CandleSource(MySqlDsn.parse(dsn)) as source:
        return await audit_table(source, spec, Interval.H1, list(symbols), WINDOW)


def reference(dsn: str, table: str, symbol: str = "BTCUSDT") -> dict[str, Any]:
    conn = connect(dsn)
    try:
        with conn.cursor() as cursor:
            rows = fetch_rows(cursor, table, symbol)
    finally:
        conn.close()
    return reference_audit(
        rows,
        step=3600,
        first_expected=WINDOW.first_expected,
        last_expected=WINDOW.last_expected,
        end=WINDOW.end,
        sigma=SPEC.spikes.sigma,
        lookback=SPEC.spikes.lookback,
        min_returns=min_spike_returns(SPEC.spikes.lookback),
        limit=SPEC.max_findings,
    )


async def test_returns_alternating_0_010_and_0_012_are_not_spikes(mysql_dsn: str) -> None:
    """The spread of the returns is 0.001 about a mean of 0.011: comparing r^2 with the variance, without the
    mean, flagged every candle."""
    store(mysql_dsn, "alt_h1", alternating())
    [found] = await audit(mysql_dsn, "alt_")
    assert (found.spike_count, found.spikes) == (0, [])
    assert findings_of(found) == reference(mysql_dsn, "alt_h1")


async def test_a_return_far_from_the_rolling_mean_is_a_spike(mysql_dsn: str) -> None:
    series = alternating()
    jump = 200  # a return of 0.019: eight spreads from the mean of 0.011, though less than twice it
    series.close[jump:] = np.round(series.close[jump:] * math.exp(0.009), 8)
    series.open[jump + 1 :] = series.close[jump:-1]
    series.high = np.round(np.maximum(series.open, series.close) * 1.0001, 8)
    series.low = np.round(np.minimum(series.open, series.close) * 0.9999, 8)
    series.quote_volume = np.round(series.volume * series.close, 8)
    series.taker_quote = np.round(series.volume * series.close / 2, 8)
    store(mysql_dsn, "jump_h1", series)
    [found] = await audit(mysql_dsn, "jump_")
    assert [(s.open_time, s.kind) for s in found.spikes] == [(at(jump), "return")]
    spike = found.spikes[0]
    assert spike.mean == pytest.approx(0.011, abs=1e-4)
    assert abs(spike.value - spike.mean) > spike.threshold
    assert findings_of(found) == reference(mysql_dsn, "jump_h1")


async def test_a_wick_that_snaps_back_is_a_spike(mysql_dsn: str) -> None:
    """A +10 % high that closes where it opened moves no close: every other check passed it."""
    series = candles.generate("BTCUSDT", "1h", FIRST, COUNT, seed=4)
    wick = 250
    series.high[wick] = round(max(series.open[wick], series.close[wick]) * 1.10, 8)
    store(mysql_dsn, "wick_h1", series)
    [found] = await audit(mysql_dsn, "wick_")
    assert [(s.open_time, s.kind) for s in found.spikes] == [(at(wick), "wick")]
    assert found.spikes[0].value == pytest.approx(math.log(1.10), abs=1e-6)
    assert found.invalid_rows == 0  # a wick is not an OHLC violation: the wick check is what finds it
    assert findings_of(found) == reference(mysql_dsn, "wick_h1")


async def test_quote_volume_taker_volume_and_trade_count_rules(mysql_dsn: str) -> None:
    broken = {100: "quote_volume", 110: "taker_buy", 120: "volume_without_trades"}
    series = candles.generate(
        "BTCUSDT", "1h", FIRST, COUNT, seed=5, defects=candles.Defects(invalid=tuple(broken.items()))
    )
    # Within the 0.01 tolerance of Binance's rounding of the quote volume: valid.
    series.quote_volume[130] = float(Decimal(str(series.volume[130])) * Decimal(str(series.low[130]))) - 0.005
    store(mysql_dsn, "vols_h1", series)
    [found] = await audit(mysql_dsn, "vols_")
    rules = {v.open_time: v.rules for v in found.violations}
    assert rules == {
        at(100): ("quote_volume_outside_range",),
        at(110): ("taker_buy_above_total",),
        at(120): ("volume_without_trades",),
    }
    assert found.invalid_rows == 3
    assert findings_of(found) == reference(mysql_dsn, "vols_h1")


async def test_nulls_are_a_rule_of_their_own_and_never_crash(mysql_dsn: str) -> None:
    """A NULL volume beside low > high made the mask NULL and the run crash on int(None); a row whose only
    problem was a NULL counted as valid."""
    store(mysql_dsn, "nulls_h1", candles.generate("BTCUSDT", "1h", FIRST, COUNT, seed=6), nullable=True)
    execute(
        mysql_dsn,
        "UPDATE nulls_h1 SET volume = NULL, low_price = high_price + 1"
        " WHERE open_time = '2024-07-03 04:00:00'",
        "UPDATE nulls_h1 SET taker_buy_quote_asset_volume = NULL WHERE open_time = '2024-07-04 00:00:00'",
        "UPDATE nulls_h1 SET number_of_trades = NULL WHERE open_time = '2024-07-05 00:00:00'",
        "UPDATE nulls_h1 SET close_price = NULL WHERE open_time = '2024-07-06 00:00:00'",
        "UPDATE nulls_h1 SET close_time = NULL, high_price = NULL WHERE open_time = '2024-07-07 00:00:00'",
    )
    [found] = await audit(mysql_dsn, "nulls_")
    rules = {v.open_time: v.rules for v in found.violations}
    assert rules == {
        at(52): ("low_above_open_close", "low_above_high", "null_value"),
        at(72): ("null_value",),
        at(96): ("null_value",),
        at(120): ("null_value",),
        at(144): ("null_value",),
    }
    assert found.rule_counts["null_value"] == 5
    assert found.invalid_rows == 5
    assert next(v for v in found.violations if v.open_time == at(52)).volume is None
    assert findings_of(found) == reference(mysql_dsn, "nulls_h1")


async def test_an_empty_dataset_is_one_gap_with_a_backfill_request(mysql_dsn: str) -> None:
    """The largest gap there is got no request: it was not listed."""
    store(mysql_dsn, "empty_h1", candles.generate("ETHUSDT", "1h", FIRST, COUNT, seed=7))
    [btc, eth] = await audit(mysql_dsn, "empty_", ("BTCUSDT", "ETHUSDT"))
    assert btc.status is DatasetStatus.NO_DATA
    assert [(g.position, g.first_missing, g.last_missing, g.missing) for g in btc.gaps] == [
        ("entire", at(0), at(COUNT - 1), COUNT)
    ]
    assert (btc.gap_count, btc.missing_candles) == (1, COUNT)
    assert score_dataset(btc, SPEC.thresholds).score == 0.0
    assert eth.gaps == []
    requests = backfill_requests([btc, eth], min_missing=1, run_id="r", resource=None)
    assert [(r["symbol"], r["start"], r["end"], r["missing"]) for r in requests] == [
        ("BTCUSDT", "2024-07-01T00:00:00Z", "2024-07-13T11:00:00Z", COUNT)
    ]
    expected = reference(mysql_dsn, "empty_h1")
    assert (expected["gaps"], expected["missing_candles"]) == (
        [("entire", at(0), at(COUNT - 1), COUNT, False)],
        COUNT,
    )
    assert findings_of(btc)["gaps"] == expected["gaps"]
