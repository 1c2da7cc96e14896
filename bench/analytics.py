"""Benchmark: the analytics kernels against a naive baseline, on the same candles in the same run.

The baseline (tests/unit/analytics/reference.py, also the unit tests' reference) is written the way common
reference implementations are (e.g. the volatility-estimator code that circulates with Sinclair's books, TA
tutorials): pandas ``rolling().apply`` with Python functions for windowed statistics, Python loops for
Wilder/EMA smoothing, and a row-wise ``apply`` for the regime label, each following the documented gap rule.
Both sides compute every per-symbol family as full series (a value at every candle) and the correlation
matrix; the outputs are compared element by element. The candles have a few gaps (as real tables do), at the
same fractions of each series, so both sides take their gap paths.

    .venv/bin/python bench/analytics.py                 # 1,000,000 candles (4 symbols x 250,000 1m candles)
    .venv/bin/python bench/analytics.py --rows 20000    # a quick run

The last line is one JSON object: rows, timings, ratio_vs_naive, max_rel_err, and whether the outputs agree
within 1e-9. Relative errors are |ours - naive| / max(|naive|, rms) with rms the series' root-mean-square
magnitude: for series that stay away from zero (prices, volatilities, volumes) that is the plain relative
error; a series that crosses zero (MACD histogram, slope, rate of change) is judged against its typical size
rather than at its zero crossings, where both sides' last-bit rounding of the inputs (prices ~5e4, so ~1e-11)
is all that differs. With ``--naive-rows`` the baseline runs on the first N candles of each symbol only and
its time is extrapolated linearly (every baseline step is O(rows)); the output then says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics import correlation
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.families import SERIES
from tests.fixtures.candles import Defects, generate
from tests.unit.analytics import reference
from tests.unit.analytics.reference import frame, relative_error

F64 = npt.NDArray[np.float64]
INTERVAL = Interval.M1
WINDOWS = FamilyWindows()
TOLERANCE = 1e-9


# --- the naive baseline: tests/unit/analytics/reference.py -----------------------------------------------


def naive_family(family: MetricFamily) -> Callable[[pd.DataFrame], dict[str, F64]]:
    compute = reference.FAMILIES[family]
    return lambda df: compute(df, WINDOWS, INTERVAL)


NAIVE: dict[MetricFamily, Callable[[pd.DataFrame], dict[str, Any]]] = {
    family: naive_family(family) for family in reference.FAMILIES
}


def naive_correlation(frames: dict[str, pd.DataFrame]) -> F64:
    return reference.correlation(frames, WINDOWS, INTERVAL)


# --- data, timing, comparison --------------------------------------------------------------------------


def gaps(rows: int) -> Defects:
    """A few gaps at fixed fractions of the series: one candle, a quarter of an hour, a day."""
    return Defects(gaps=((int(rows * 0.2), 1), (int(rows * 0.5), 15), (int(rows * 0.8), 1440)))


def make_candles(symbols: int, per_symbol: int, seed: int) -> dict[str, CandleArrays]:
    first_open = datetime(2023, 1, 1, tzinfo=UTC)
    out = {}
    for index in range(symbols):
        s = generate(
            f"SYM{index}USDT",
            INTERVAL.value,
            first_open,
            per_symbol,
            seed=seed + index,
            defects=gaps(per_symbol),
        )
        out[s.symbol] = CandleArrays(
            s.open_time, s.open, s.high, s.low, s.close, s.volume, s.quote_volume, s.taker_base
        )
    return out


def ours(candles: dict[str, CandleArrays]) -> tuple[dict[str, dict[str, F64]], F64]:
    series = {
        f"{symbol}/{family.value}/{name}": column
        for symbol, c in candles.items()
        for family, compute in SERIES.items()
        for name, column in compute(c, WINDOWS, INTERVAL).items()
    }
    closes = {symbol: correlation.Closes(c.open_time, c.close) for symbol, c in candles.items()}
    result = correlation.compute(closes, WINDOWS, INTERVAL)
    matrix = result.values["matrix"]
    assert isinstance(matrix, dict)
    values = [[row[b] for b in closes] for row in (matrix[a] for a in closes) if isinstance(row, dict)]
    return {"series": series}, np.array(values, dtype=np.float64)


def naive(frames: dict[str, pd.DataFrame]) -> tuple[dict[str, dict[str, F64]], F64]:
    series = {
        f"{symbol}/{family.value}/{name}": np.asarray(column, dtype=np.float64)
        for symbol, df in frames.items()
        for family, compute in NAIVE.items()
        for name, column in compute(df).items()
    }
    return {"series": series}, naive_correlation(frames)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="candles in total (default %(default)s)")
    parser.add_argument(
        "--symbols", type=int, default=4, help="symbols sharing the rows (default %(default)s)"
    )
    parser.add_argument(
        "--naive-rows", type=int, help="baseline on this many candles per symbol, extrapolated"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.symbols < 2:
        parser.error("correlation needs at least 2 symbols")
    per_symbol = args.rows // args.symbols
    candles = make_candles(args.symbols, per_symbol, args.seed)
    stored = min(c.size for c in candles.values())
    naive_rows = min(args.naive_rows or stored, stored)
    print(
        f"{args.symbols} symbols x {stored:,} {INTERVAL.value} candles (of {per_symbol:,} intervals, with "
        f"gaps) = {sum(c.size for c in candles.values()):,} rows"
    )

    started = time.perf_counter()
    mine, my_matrix = ours(candles)
    ours_seconds = time.perf_counter() - started
    print(f"vectorised: {ours_seconds:.3f} s")

    frames = {symbol: frame(c, naive_rows) for symbol, c in candles.items()}
    started = time.perf_counter()
    theirs, their_matrix = naive(frames)
    naive_measured = time.perf_counter() - started
    extrapolated = naive_rows < stored
    naive_seconds = naive_measured * stored / naive_rows
    note = (
        f" (measured {naive_measured:.1f} s on {naive_rows:,} rows/symbol, extrapolated)"
        if extrapolated
        else ""
    )
    print(f"naive: {naive_seconds:.3f} s{note}")

    worst, worst_name, nan_mismatches, label_mismatches = 0.0, "", 0, 0
    for name, column in mine["series"].items():
        reference = theirs["series"][name]
        if name.endswith("/label"):
            label_mismatches += int(
                np.count_nonzero(~np.isclose(column[:naive_rows], reference, equal_nan=True))
            )
            continue
        error, mismatched = relative_error(column[:naive_rows], reference)
        nan_mismatches += mismatched
        if error > worst:
            worst, worst_name = error, name
    if not extrapolated:
        error, _ = relative_error(my_matrix, their_matrix)
        if error > worst:
            worst, worst_name = error, "correlation/matrix"
    print(
        f"worst relative error {worst:.3g} in {worst_name}; NaN mismatches {nan_mismatches}; "
        f"regime label mismatches {label_mismatches}"
    )
    ratio = naive_seconds / ours_seconds
    result = {
        "benchmark": "analytics",
        "rows": sum(c.size for c in candles.values()),
        "symbols": args.symbols,
        "interval": INTERVAL.value,
        "families": [family.value for family in MetricFamily],
        "series_compared": len(mine["series"]),
        "ours_seconds": round(ours_seconds, 4),
        "naive_seconds": round(naive_seconds, 3),
        "naive_extrapolated": extrapolated,
        "naive_rows_per_symbol": naive_rows,
        "ratio_vs_naive": round(ratio, 1),
        "max_rel_err": worst,
        "rel_err_floor": "series RMS",
        "nan_mismatches": nan_mismatches,
        "label_mismatches": label_mismatches,
        "equal_within_1e-9": worst <= TOLERANCE and nan_mismatches == 0 and label_mismatches == 0,
        "target_met": ratio >= 20 and worst <= TOLERANCE,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
