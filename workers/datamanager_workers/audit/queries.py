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
RULE_COLUMNS = (*_PRICES, *_VOLUMES, "number_of_trades", "close_time")


def _any(template: str, columns: Sequence[str]) -> str:
    return " OR ".join(template.format(column) for column in columns)


def _rule_sql(rule: str, step: int, nullable: Sequence[str] = RULE_COLUMNS) -> str:
    """The predicate that is true when a row breaks ``rule`` (NULL or false when it does not). ``nullable``:
    the rule columns the table lets be NULL, the only ones ``null_value`` has to test (the extractor's
    tables have none, and ten IS NULL tests per row cost a sixth of the scan)."""
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
        "null_value": _any("{} IS NULL", nullable) if nullable else "FALSE",
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


def violations(
    table: str, step: int, symbols: int, limit: int, hint: str = "", nullable: Sequence[str] = RULE_COLUMNS
) -> str:
    """Rows breaking any of ``OHLC_RULES``, the first ``limit`` per symbol: symbol, open_time, open, high,
    low, close, volume, the rules broken as a bit mask (bit i for rule i); then the symbol's exact totals:
    such rows, then the rows breaking each rule in ``OHLC_RULES`` order. No row comes back for a symbol
    without one."""
    any_rule = " OR ".join(f"({_rule_sql(rule, step, nullable)})" for rule in OHLC_RULES)
    mask = " + ".join(
        f"COALESCE({_rule_sql(rule, step, nullable)}, 0) * {1 << i}" for i, rule in enumerate(OHLC_RULES)
    )
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
    """Spikes, judged against the log returns of the previous ``lookback`` candles of the symbol (at least
    ``min_returns`` of them): their sample mean and standard deviation sd.

    - a return spike: a log return r between adjacent candles (the later with trades, both closes positive)
      with ``|r - mean| > sigma x sd``;
    - a wick spike: a candle with trades, positive prices and its body within its range (low <= open, close
      <= high) whose longer wick, ``ln(high / max(open, close))`` or ``ln(min(open, close) / low)``, exceeds
      ``sigma x sd``: a move that snapped back within the candle, which moves no close. A wick is a move out
      and back, so no mean applies. Where copies share an open time, the longest wick among them counts.

    A spread below 1e-9 (a variance below 1e-18) counts as none: rolling sums leave rounding residue of that
    order where the returns were all equal. The first ``limit`` spikes per symbol: symbol, open_time, close,
    kind (``return``, or ``wick`` for a candle that is only a wick spike), its value (the log return or the
    wick), the rolling mean of the returns, the threshold (sigma x sd), then the symbol's exact total. No row
    comes back for a symbol without one.
    """
    frame = f"PARTITION BY symbol ORDER BY open_time ROWS BETWEEN {int(lookback)} PRECEDING AND 1 PRECEDING"
    squared = f"{float(sigma) ** 2!r}"
    wick = (
        "GREATEST(LN(high_price) - LN(GREATEST(open_price, close_price)),"
        " LN(LEAST(open_price, close_price)) - LN(low_price))"
    )
    far = f"(r - mean) * (r - mean) > {squared} * variance"
    wide = f"hl * hl > {squared} * variance AND hl > 0"
    # The three rolling aggregates share one named frame, so the server computes them in one pass; the
    # variance comes from the sums (n * s2 - s1^2 ...), which is what lets them share it. Only doubles go
    # through the passes: the close price is looked up for the few rows found, and so is the wick, for the
    # rows whose range ln(high / low), which bounds it, exceeds the threshold. Computing the wick of every row
    # cost a third more than the whole pass without it; the range costs a tenth.
    return f"""
SELECT symbol, open_time,
       (SELECT MIN(close_price) FROM {table} AS candle
        WHERE candle.symbol = numbered.symbol AND candle.open_time = numbered.open_time) AS close_price,
       kind, value, mean, threshold, total
FROM (
  SELECT symbol, open_time, mean, {float(sigma)!r} * SQRT(variance) AS threshold,
         CASE WHEN return_spike THEN 'return' ELSE 'wick' END AS kind,
         CASE WHEN return_spike THEN r ELSE wick END AS value,
         COUNT(*) OVER (PARTITION BY symbol) AS total,
         ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY open_time) AS nth
  FROM (
    SELECT judged.*,
           CASE WHEN wide THEN (
             SELECT MAX({wick}) FROM {table} AS candle
             WHERE candle.symbol = judged.symbol AND candle.open_time = judged.open_time
               AND candle.number_of_trades > 0 AND candle.low_price > 0
               AND candle.low_price <= LEAST(candle.open_price, candle.close_price)
               AND candle.high_price >= GREATEST(candle.open_price, candle.close_price)
           ) END AS wick
    FROM (
      SELECT symbol, open_time, r, mean, variance,
             COALESCE({far}, 0) AS return_spike, COALESCE({wide}, 0) AS wide
      FROM (
        SELECT symbol, open_time, r, hl, s1 / n AS mean,
               CASE WHEN n >= {int(min_returns)} THEN (s2 - s1 * s1 / n) / (n - 1) END AS variance
        FROM (
          SELECT returns.*, SUM(r) OVER recent AS s1, SUM(r * r) OVER recent AS s2, COUNT(r) OVER recent AS n
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
      WHERE variance > 1e-18 AND ({far} OR {wide})
    ) judged
  ) candidates
  WHERE return_spike OR (wick * wick > {squared} * variance AND wick > 0)
) numbered
WHERE nth <= {int(limit)}
ORDER BY symbol, open_time"""


NULLABLE_COLUMNS = """
SELECT LOWER(column_name) FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = %s AND is_nullable = 'YES'"""


def last_open_times(table: str, symbols: int, hint: str = "") -> str:
    """Per symbol, the newest candle before the audit's end, in or before the window: takes the symbols,
    then the end."""
    return f"""
SELECT symbol, MAX(open_time) FROM {table} {hint} WHERE {_in(symbols)} AND open_time < %s GROUP BY symbol"""
