"""Correlation: Pearson's r between the symbols' log returns, aligned by timestamp (a matrix).

A return is ln(C_t / C_t-1) between two consecutive candles exactly one interval apart, stamped with the
later candle's open time; a return across a gap would span more time than its peers and is left out. The
matrix uses the last ``w`` timestamps at which every included symbol has a return (complete cases, so the
matrix is a true correlation matrix: symmetric, unit diagonal, positive semi-definite). Symbols with fewer
than ``w + 1`` candles are listed as excluded; fewer than two symbols left, or fewer than ``w`` common
returns, is insufficient data. Price levels are never correlated: that was the old job's mistake.

The matrix is reported as ``{symbol: {symbol: r}}`` (None where r is undefined: a constant series), with
``symbols`` giving the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64, I64
from datamanager_workers.analytics.model import FamilyResult, Value

FAMILY = MetricFamily.CORRELATION


@dataclass(frozen=True)
class Closes:
    open_time: I64  # seconds since the epoch, ascending
    close: F64


def log_returns(closes: Closes, interval: Interval) -> tuple[I64, F64]:
    """Returns between candles exactly one interval apart, keyed by the later candle's open time."""
    consecutive = np.diff(closes.open_time) == interval.seconds
    returns = np.log(closes.close[1:] / closes.close[:-1])
    times: I64 = closes.open_time[1:][consecutive]
    values: F64 = returns[consecutive]
    return times, values


def aligned_returns(series: Mapping[str, Closes], interval: Interval, window: int) -> tuple[I64, F64]:
    """The last ``window`` (or fewer) timestamps where every symbol has a return, and a (time, symbol)
    matrix of those returns in the mapping's order."""
    per_symbol = [log_returns(closes, interval) for closes in series.values()]
    common: I64 = reduce(np.intersect1d, [times for times, _ in per_symbol])[-window:]
    columns = [values[np.searchsorted(times, common)] for times, values in per_symbol]
    return common, np.column_stack(columns) if columns else np.empty((0, 0))


def pearson_matrix(returns: F64) -> F64:
    """Pearson's r between the columns of a (samples, variables) matrix; NaN for a constant column."""
    centred = returns - returns.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = centred / norms
    matrix: F64 = np.clip(unit.T @ unit, -1.0, 1.0)
    return matrix


def required(windows: FamilyWindows) -> int:
    """Common returns needed (candles per symbol: one more)."""
    return windows.correlation


def compute(series: Mapping[str, Closes], windows: FamilyWindows, interval: Interval) -> FamilyResult:
    """The correlation matrix of ``series`` (symbol -> closes); symbols keep the mapping's order."""
    w = windows.correlation
    included = {symbol: closes for symbol, closes in series.items() if closes.close.size >= w + 1}
    excluded: dict[str, Value] = {
        symbol: closes.close.size for symbol, closes in series.items() if symbol not in included
    }
    parameters: dict[str, Value] = {
        "window": w,
        "returns": "log, consecutive candles only",
        "alignment": "complete cases by open time",
        "symbols": list(series),
        "excluded_candles": excluded,
    }
    if len(included) < 2:
        reason = (
            f"insufficient data: {len(included)} of {len(series)} symbols have the {w + 1} candles "
            "correlation needs, and it needs two"
        )
        return FamilyResult(FAMILY, w, parameters, 0, w, reason=reason)
    times, returns = aligned_returns(included, interval, w)
    if times.size < w:
        reason = f"insufficient data: {times.size} common returns across the symbols, correlation needs {w}"
        return FamilyResult(FAMILY, w, parameters, int(times.size), w, reason=reason)
    matrix = pearson_matrix(returns)
    symbols = list(included)
    values: dict[str, Value] = {
        "symbols": [*symbols],
        # A mapping of mappings, not nested arrays: FerretDB v1 cannot store arrays of arrays.
        "matrix": {
            row_symbol: {
                column_symbol: None if np.isnan(r) else float(r)
                for column_symbol, r in zip(symbols, row, strict=True)
            }
            for row_symbol, row in zip(symbols, matrix, strict=True)
        },
        "first_return_at": datetime.fromtimestamp(int(times[0]), UTC),
        "last_return_at": datetime.fromtimestamp(int(times[-1]), UTC),
    }
    return FamilyResult(FAMILY, w, parameters, int(times.size), w, values)
