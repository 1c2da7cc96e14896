"""The audit's SQL. Every query returns findings or aggregates, never every candle.

One query of each kind covers all the symbols of one table (``PARTITION BY symbol`` / ``GROUP BY symbol``),
so a table is scanned a fixed number of times however many symbols are audited.

Portable to MariaDB 10.11 and MySQL 8: window functions with a named window and ROWS frames, ``TO_SECONDS``
(seconds since year 0, independent of the session time zone; a multiple of 86400 at every UTC midnight, so
``MOD(TO_SECONDS(t), step) = 0`` is the interval's grid for every interval up to a day), ``DIV``, ``LN`` and
``STDDEV_SAMP``. Table names are validated identifiers and the interval, limits and sigma are numbers, so
they are formatted in; values go through parameters: every query takes ``range_params`` (the symbols, then
first and last expected open time) except ``last_open_times``. Comparisons with NULL are unknown and count
as no violation: the extractor's columns are NOT NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from datamanager_workers.audit.findings import OHLC_RULES


def _in(count: int) -> str:
    return "symbol IN (" + ", ".join(["%s"] * count) + ")"


def _range(count: int) -> str:
    return f"{_in(count)} AND open_time >= %s AND open_time <= %s"


def range_params(symbols: Sequence[str], first: datetime, last: datetime) -> tuple[object, ...]:
    """Parameters for every query but ``last_open_times``; times naive UTC."""
    return (*symbols, first, last)


def _rule_sql(rule: str, step: int) -> str:
    """The predicate that is true when a row breaks ``rule``."""
    return {
        "low_above_open_close": "low_price > LEAST(open_price, close_price)",
        "high_below_open_close": "high_price < GREATEST(open_price, close_price)",
        "low_above_high": "low_price > high_price",
        "non_positive_price": "LEAST(open_price, high_price, low_price, close_price) <= 0",
        "negative_volume": "LEAST(volume, quote_asset_volume, taker_buy_base_asset_volume,"
        " taker_buy_quote_asset_volume, number_of_trades) < 0",
        "close_time_mismatch": (
            f"TO_SECONDS(close_time) - TO_SECONDS(open_time) NOT BETWEEN {step - 1} AND {step}"
        ),
        "misaligned_open_time": f"MOD(TO_SECONDS(open_time), {step}) <> 0",
    }[rule]


def stats(table: str, step: int, symbols: int) -> str:
    """One scan with conditional aggregates, per symbol: symbol, rows, distinct on-grid open times, first and
    last open time, candles without trades, then one count per ``OHLC_RULES``."""
    per_rule = ",\n  ".join(f"SUM({_rule_sql(rule, step)})" for rule in OHLC_RULES)
    return f"""
SELECT symbol, COUNT(*),
  COUNT(DISTINCT CASE WHEN MOD(TO_SECONDS(open_time), {step}) = 0 THEN open_time END),
  MIN(open_time), MAX(open_time),
  SUM(number_of_trades = 0),
  {per_rule}
FROM {table} WHERE {_range(symbols)}
GROUP BY symbol"""


def violations(table: str, step: int, symbols: int, limit: int) -> str:
    """The first ``limit`` rows per symbol breaking any rule: symbol, open_time, open, high, low, close,
    volume, one 0/1 per rule, and the symbol's total number of such rows."""
    flags = ", ".join(f"{_rule_sql(rule, step)} AS rule_{i}" for i, rule in enumerate(OHLC_RULES))
    any_rule = " OR ".join(f"({_rule_sql(rule, step)})" for rule in OHLC_RULES)
    columns = ", ".join(f"rule_{i}" for i in range(len(OHLC_RULES)))
    return f"""
SELECT symbol, open_time, open_price, high_price, low_price, close_price, volume, {columns}, total
FROM (
  SELECT symbol, open_time, open_price, high_price, low_price, close_price, volume, {flags},
         COUNT(*) OVER (PARTITION BY symbol) AS total,
         ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY open_time) AS nth
  FROM {table} WHERE {_range(symbols)} AND ({any_rule})
) broken
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def series(
    table: str,
    step: int,
    symbols: int,
    *,
    gaps: bool,
    spikes: bool,
    sigma: float,
    lookback: int,
    min_returns: int,
    limit: int,
) -> str:
    """Gaps and spikes (each when asked for) in one pass over each symbol's ordered candles.

    A gap: consecutive stored candles further apart than one interval (duplicates are 0 apart, never a
    gap); missing = ceil(distance / interval) - 1. A spike: a log return between adjacent candles (the later
    with trades, both prices positive) whose magnitude exceeds ``sigma`` sample standard deviations of the
    returns of the previous ``lookback`` candles, at least ``min_returns`` of which exist.

    The first ``limit`` of each kind per symbol come back. Columns: symbol, is_gap, open_time, distance in
    seconds from the previous candle, flat (the price did not move across a gap and the candle before it had
    no trades), close, log return, threshold, then the symbol's exact totals: gaps, missing candles, spikes.
    """
    frame = f"PARTITION BY symbol ORDER BY open_time ROWS BETWEEN {int(lookback)} PRECEDING AND 1 PRECEDING"
    # Each LAG and LN costs a pass of work per row, so the base takes the logarithm once and folds "close of
    # a candle without trades" into one column; the materialised inner pass keeps few, narrow columns (a
    # wide temporary table spills to disk far sooner).
    return f"""
SELECT symbol, is_gap, open_time, distance, flat, close_price, r, threshold, n_gaps, n_missing, n_spikes
FROM (
  SELECT found.*,
         SUM(is_gap) OVER (PARTITION BY symbol) AS n_gaps,
         SUM(missing) OVER (PARTITION BY symbol) AS n_missing,
         SUM(1 - is_gap) OVER (PARTITION BY symbol) AS n_spikes,
         ROW_NUMBER() OVER (PARTITION BY symbol, is_gap ORDER BY open_time) AS nth
  FROM (
    SELECT symbol, open_time, distance, flat, close_price, r, threshold,
           CASE WHEN distance > {step} THEN 1 ELSE 0 END AS is_gap,
           CASE WHEN distance > {step} THEN (distance + {step - 1}) DIV {step} - 1 ELSE 0 END AS missing
    FROM (
      SELECT candle.*,
             {float(sigma)!r} * STDDEV_SAMP(r) OVER ({frame}) AS threshold,
             COUNT(r) OVER ({frame}) AS n
      FROM (
        SELECT symbol, open_time, close_price,
               TO_SECONDS(open_time) - LAG(TO_SECONDS(open_time)) OVER w AS distance,
               LAG(quiet_close) OVER w = open_price AS flat,
               CASE WHEN TO_SECONDS(open_time) - LAG(TO_SECONDS(open_time)) OVER w = {step}
                         AND number_of_trades > 0
                    THEN log_close - LAG(log_close) OVER w END AS r
        FROM (
          SELECT symbol, open_time, open_price, close_price, number_of_trades,
                 CASE WHEN close_price > 0 THEN LN(close_price) END AS log_close,
                 CASE WHEN number_of_trades = 0 THEN close_price END AS quiet_close
          FROM {table} WHERE {_range(symbols)}
        ) base
        WINDOW w AS (PARTITION BY symbol ORDER BY open_time)
      ) candle
    ) scored
    WHERE ({int(gaps)} = 1 AND distance > {step})
       OR ({int(spikes)} = 1 AND n >= {int(min_returns)} AND threshold > 0 AND ABS(r) > threshold)
  ) found
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def duplicates(table: str, symbols: int, limit: int) -> str:
    """Open times stored more than once, the first ``limit`` per symbol: symbol, open_time, copies, and the
    symbol's totals: such times, extra copies."""
    return f"""
SELECT symbol, open_time, copies, times, extra
FROM (
  SELECT symbol, open_time, copies,
         COUNT(*) OVER (PARTITION BY symbol) AS times,
         SUM(copies - 1) OVER (PARTITION BY symbol) AS extra,
         ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY open_time) AS nth
  FROM (
    SELECT symbol, open_time, COUNT(*) AS copies FROM {table} WHERE {_range(symbols)}
    GROUP BY symbol, open_time HAVING COUNT(*) > 1
  ) repeated
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def last_open_times(table: str, symbols: int) -> str:
    """Per symbol, the newest candle before the audit's end, in or before the window: takes the symbols,
    then the end."""
    return (
        f"SELECT symbol, MAX(open_time) FROM {table} WHERE {_in(symbols)} AND open_time < %s GROUP BY symbol"
    )
