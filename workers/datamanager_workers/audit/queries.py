"""The audit's SQL. Every query returns findings or aggregates, never every candle.

One query of each kind covers all the symbols of one table (``PARTITION BY symbol`` / ``GROUP BY symbol``),
so a table is read a fixed number of times however many symbols are audited: a plain scan for the counts
(``stats``), a filtered scan for broken rows (``violations``), and two ordered passes, one for gaps and
copies (``sequence``), one for spikes (``spikes``), which the job runs side by side.

What makes the ordered passes cheap: each materialises only narrow columns (the DECIMAL prices it needs are
compared inside the pass or looked up afterwards for the few rows found), window functions over the same
ordering share one named window (the server computes functions over one window in one pass, but a repeated
inline spelling of it in separate passes), and the rolling spread comes from rolling sums rather than
``STDDEV_SAMP``, so that it shares the frame with the count.

Portable to MariaDB 10.11 and MySQL 8: window functions with named windows and ROWS frames, ``TO_SECONDS``
(seconds since year 0, independent of the session time zone; a multiple of 86400 at every UTC midnight, so
``MOD(TO_SECONDS(t), step) = 0`` is the interval's grid for every interval up to a day), ``DIV``, ``LN``,
``SQRT`` and bit operations. Table names are validated identifiers and the interval, limits and sigma are
numbers, so they are formatted in; values go through parameters: every query takes ``range_params`` (the
symbols, then first and last expected open time) except ``last_open_times``. ``hint`` is an index hint
(``IGNORE INDEX (...)``) for the table's scans, or empty.

NULLs: the extractor's columns are NOT NULL, but a copy or a view may hold NULLs. A rule is written as an OR
of comparisons, so it holds when any comparison over non-NULL values holds, and a NULL alone breaks only the
``null_value`` rule; every rule's bit is ``COALESCE``d, so one NULL never makes the mask NULL. A row without
an open time or a symbol cannot be placed in a window: the range conditions leave it out of every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from datamanager_workers.audit.findings import OHLC_RULES, QUOTE_TOLERANCE


def _in(count: int) -> str:
    return "symbol IN (" + ", ".join(["%s"] * count) + ")"


def _range(count: int) -> str:
    return f"{_in(count)} AND open_time >= %s AND open_time <= %s"


def range_params(symbols: Sequence[str], first: datetime, last: datetime) -> tuple[object, ...]:
    """Parameters for every query but ``last_open_times``; times naive UTC."""
    return (*symbols, first, last)


_PRICES = ("open_price", "high_price", "low_price", "close_price")
_VOLUMES = ("volume", "quote_asset_volume", "taker_buy_base_asset_volume", "taker_buy_quote_asset_volume")
# Every column a rule reads besides the open time (a row without one is in no window).
_RULE_COLUMNS = (*_PRICES, *_VOLUMES, "number_of_trades", "close_time")


def _any(template: str, columns: Sequence[str]) -> str:
    return " OR ".join(template.format(column) for column in columns)


def _rule_sql(rule: str, step: int) -> str:
    """The predicate that is true when a row breaks ``rule`` (NULL or false when it does not)."""
    tolerance = str(QUOTE_TOLERANCE)
    return {
        "low_above_open_close": "low_price > open_price OR low_price > close_price",
        "high_below_open_close": "high_price < open_price OR high_price < close_price",
        "low_above_high": "low_price > high_price",
        "non_positive_price": _any("{} <= 0", _PRICES),
        "negative_volume": _any("{} < 0", (*_VOLUMES, "number_of_trades")),
        "close_time_mismatch": (
            f"TO_SECONDS(close_time) - TO_SECONDS(open_time) NOT BETWEEN {step - 1} AND {step}"
        ),
        "misaligned_open_time": f"MOD(TO_SECONDS(open_time), {step}) <> 0",
        "null_value": _any("{} IS NULL", _RULE_COLUMNS),
        "quote_volume_outside_range": (
            f"quote_asset_volume < volume * low_price - {tolerance}"
            f" OR quote_asset_volume > volume * high_price + {tolerance}"
        ),
        "taker_buy_above_total": (
            "taker_buy_base_asset_volume > volume OR taker_buy_quote_asset_volume > quote_asset_volume"
        ),
        "volume_without_trades": "number_of_trades = 0 AND volume <> 0",
    }[rule]


def stats(table: str, step: int, symbols: int, hint: str = "") -> str:
    """One plain scan, per symbol: symbol, rows, rows on the grid, first and last open time, candles without
    trades."""
    return f"""
SELECT symbol, COUNT(*), SUM(MOD(TO_SECONDS(open_time), {step}) = 0), MIN(open_time), MAX(open_time),
  SUM(number_of_trades = 0)
FROM {table} {hint} WHERE {_range(symbols)}
GROUP BY symbol"""


def violations(table: str, step: int, symbols: int, limit: int, hint: str = "") -> str:
    """Rows breaking any of ``OHLC_RULES``, the first ``limit`` per symbol: symbol, open_time, open, high,
    low, close, volume, the rules broken as a bit mask (bit i for rule i); then the symbol's exact totals:
    such rows, then the rows breaking each rule in ``OHLC_RULES`` order. No row comes back for a symbol
    without one."""
    any_rule = " OR ".join(f"({_rule_sql(rule, step)})" for rule in OHLC_RULES)
    mask = " + ".join(f"COALESCE({_rule_sql(rule, step)}, 0) * {1 << i}" for i, rule in enumerate(OHLC_RULES))
    rules = range(len(OHLC_RULES))
    rule_totals = ", ".join(f"SUM((broken & {1 << i}) > 0) OVER totals AS rule_{i}" for i in rules)
    rule_columns = ", ".join(f"rule_{i}" for i in rules)
    return f"""
SELECT symbol, open_time, open_price, high_price, low_price, close_price, volume, broken, total,
       {rule_columns}
FROM (
  SELECT found.*, COUNT(*) OVER totals AS total, {rule_totals},
         ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY open_time) AS nth
  FROM (
    SELECT symbol, open_time, open_price, high_price, low_price, close_price, volume, {mask} AS broken
    FROM {table} {hint} WHERE {_range(symbols)} AND ({any_rule})
  ) found
  WINDOW totals AS (PARTITION BY symbol)
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def sequence(table: str, step: int, symbols: int, limit: int, hint: str = "") -> str:
    """Gaps and stored copies, from each stored candle's distance to the one before it, the first ``limit``
    of each per symbol.

    A gap: consecutive stored candles further apart than one interval; missing = ceil(distance / interval)
    - 1. A copy: a candle at the same open time as the one before it (distance 0); the extra copies of one
    open time come back as one row.

    Columns: symbol, is_copy, open_time, distance in seconds from the previous candle, flat (the price did
    not move across a gap and the candle before it had no trades), extra copies; then the symbol's exact
    totals: gaps, missing candles, open times stored more than once, extra copies, extra copies on the grid.
    No row comes back for a symbol without gaps or copies.
    """
    # Only small columns leave the ordered pass: materialising its wide DECIMAL ones costs more than the
    # pass itself, and so does comparing prices across every pair of neighbours; flat is looked up for the
    # few gaps listed (any pair of copies at its edges that qualifies makes it flat).
    return f"""
SELECT symbol, is_copy, open_time, distance,
       CASE WHEN is_copy = 0 THEN (
         SELECT MAX(last_seen.number_of_trades = 0 AND last_seen.close_price = seen_again.open_price)
         FROM {table} AS last_seen JOIN {table} AS seen_again ON seen_again.symbol = last_seen.symbol
         WHERE last_seen.symbol = numbered.symbol
           AND last_seen.open_time = numbered.open_time - INTERVAL numbered.distance SECOND
           AND seen_again.open_time = numbered.open_time
       ) END AS flat,
       extra, gaps, missing, copied, copies, copies_on_grid
FROM (
  SELECT found.*,
         SUM(1 - is_copy) OVER totals AS gaps,
         SUM(CASE WHEN is_copy = 0 THEN (distance + {step - 1}) DIV {step} - 1 ELSE 0 END)
           OVER totals AS missing,
         SUM(is_copy) OVER totals AS copied,
         SUM(is_copy * extra) OVER totals AS copies,
         SUM(CASE WHEN is_copy = 1 AND MOD(TO_SECONDS(open_time), {step}) = 0 THEN extra ELSE 0 END)
           OVER totals AS copies_on_grid,
         ROW_NUMBER() OVER (PARTITION BY symbol, is_copy ORDER BY open_time) AS nth
  FROM (
    SELECT symbol, distance = 0 AS is_copy, open_time, MAX(distance) AS distance, COUNT(*) AS extra
    FROM (
      SELECT symbol, open_time, TO_SECONDS(open_time) - LAG(TO_SECONDS(open_time)) OVER ordered AS distance
      FROM {table} {hint} WHERE {_range(symbols)}
      WINDOW ordered AS (PARTITION BY symbol ORDER BY open_time)
    ) steps
    WHERE distance > {step} OR distance = 0
    GROUP BY symbol, is_copy, open_time
  ) found
  WINDOW totals AS (PARTITION BY symbol)
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def spikes(
    table: str,
    step: int,
    symbols: int,
    *,
    sigma: float,
    lookback: int,
    min_returns: int,
    limit: int,
    hint: str = "",
) -> str:
    """Spikes, judged against the previous ``lookback`` candles of the symbol:

    - a return spike: a log return between adjacent candles (the later with trades, both closes positive)
      with ``|r - mean| > sigma x sd``, mean and sd the sample mean and standard deviation of the returns in
      the look-back, at least ``min_returns`` of which exist;
    - a range spike: a log range ln(high / low) (a candle with trades, 0 < low <= high) with
      ``range - mean > sigma x sd`` over the ranges in the look-back, at least ``min_returns`` of them: a
      wick that snaps back moves no close but widens the range.

    A spread below 1e-9 (a variance below 1e-18) counts as none: rolling sums leave rounding residue of that
    order where the values were all equal. The first ``limit`` spikes per symbol: symbol, open_time, close,
    kind (``return``, or ``range`` for a candle that is only a range spike), its value (log return or log
    range), the rolling mean and the threshold (sigma x the rolling standard deviation) it is judged
    against, then the symbol's exact total. No row comes back for a symbol without one.
    """
    frame = f"PARTITION BY symbol ORDER BY open_time ROWS BETWEEN {int(lookback)} PRECEDING AND 1 PRECEDING"
    squared = f"{float(sigma) ** 2!r}"
    enough = int(min_returns)
    # The six rolling aggregates share one named frame, so the server computes them in one pass; each
    # variance comes from its sums (n * s2 - s1^2 ...), which is what lets them share it. Only doubles go
    # through the passes; the close price is looked up for the few rows found: carrying a DECIMAL through
    # the passes doubles their cost.
    return f"""
SELECT symbol, open_time,
       (SELECT MIN(close_price) FROM {table} AS candle
        WHERE candle.symbol = numbered.symbol AND candle.open_time = numbered.open_time) AS close_price,
       kind, value, mean, threshold, total
FROM (
  SELECT symbol, open_time,
         CASE WHEN return_spike THEN 'return' ELSE 'range' END AS kind,
         CASE WHEN return_spike THEN r ELSE hl END AS value,
         CASE WHEN return_spike THEN r_mean ELSE hl_mean END AS mean,
         {float(sigma)!r} * SQRT(CASE WHEN return_spike THEN r_var ELSE hl_var END) AS threshold,
         COUNT(*) OVER (PARTITION BY symbol) AS total,
         ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY open_time) AS nth
  FROM (
    SELECT symbol, open_time, r, hl, r_mean, r_var, hl_mean, hl_var,
           COALESCE(r_var > 1e-18 AND (r - r_mean) * (r - r_mean) > {squared} * r_var, 0) AS return_spike,
           COALESCE(hl_var > 1e-18 AND hl > hl_mean AND (hl - hl_mean) * (hl - hl_mean) > {squared} * hl_var,
                    0) AS range_spike
    FROM (
      SELECT symbol, open_time, r, hl,
             s1 / n AS r_mean, CASE WHEN n >= {enough} THEN (s2 - s1 * s1 / n) / (n - 1) END AS r_var,
             h1 / m AS hl_mean, CASE WHEN m >= {enough} THEN (h2 - h1 * h1 / m) / (m - 1) END AS hl_var
      FROM (
        SELECT returns.*,
               SUM(r) OVER recent AS s1, SUM(r * r) OVER recent AS s2, COUNT(r) OVER recent AS n,
               SUM(hl) OVER recent AS h1, SUM(hl * hl) OVER recent AS h2, COUNT(hl) OVER recent AS m
        FROM (
          SELECT symbol, open_time,
                 CASE WHEN TO_SECONDS(open_time) - LAG(TO_SECONDS(open_time)) OVER ordered = {step}
                           AND number_of_trades > 0 AND close_price > 0
                      THEN LN(close_price)
                           - LAG(CASE WHEN close_price > 0 THEN LN(close_price) END) OVER ordered
                 END AS r,
                 CASE WHEN number_of_trades > 0 AND low_price > 0 AND high_price >= low_price
                      THEN LN(high_price) - LN(low_price)
                 END AS hl
          FROM {table} {hint} WHERE {_range(symbols)}
          WINDOW ordered AS (PARTITION BY symbol ORDER BY open_time)
        ) returns
        WINDOW recent AS ({frame})
      ) framed
    ) centred
  ) judged
  WHERE return_spike OR range_spike
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


def last_open_times(table: str, symbols: int, hint: str = "") -> str:
    """Per symbol, the newest candle before the audit's end, in or before the window: takes the symbols,
    then the end."""
    return f"""
SELECT symbol, MAX(open_time) FROM {table} {hint} WHERE {_in(symbols)} AND open_time < %s GROUP BY symbol"""
