"""Momentum: RSI (Wilder), MACD (12/26/9) and rate of change.

- rsi: Wilder's RSI over ``w`` changes (default 14), 0-100; a change is defined between adjacent candles
  only (``gaps``)
- macd, macd_signal, macd_histogram: EMA12 - EMA26 of the close, its EMA9, and their difference (TA-Lib's
  seeding, so the first value falls on candle 34)
- roc: 100 x (C_t / C_s - 1) with s the candle ``w`` intervals before t, percent over ``w`` intervals; NaN
  when that candle is missing (or was excluded as bad)
"""

from __future__ import annotations

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64, I64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.gaps import adjacent
from datamanager_workers.analytics.indicators import macd, rsi
from datamanager_workers.analytics.model import FamilyResult, Value, evaluate, last

FAMILY = MetricFamily.MOMENTUM
MACD_FAST = 12
MACD_SLOW = 26
MACD_SIGNAL = 9


def required(windows: FamilyWindows) -> int:
    """RSI and ROC look ``w`` changes back; MACD's signal line starts at candle slow + signal - 1."""
    return max(windows.momentum + 1, MACD_SLOW + MACD_SIGNAL - 1)


def parameters(windows: FamilyWindows, interval: Interval) -> dict[str, Value]:
    return {
        "window": windows.momentum,
        "macd_fast": MACD_FAST,
        "macd_slow": MACD_SLOW,
        "macd_signal": MACD_SIGNAL,
    }


def rate_of_change(close: F64, open_time: I64, period: int, step: int) -> F64:
    """Percent change from the close ``period`` intervals earlier, where that candle exists."""
    out = np.full(close.size, np.nan)
    if close.size == 0:
        return out
    earlier = open_time - period * step
    at = np.searchsorted(open_time, earlier)
    found = (at < close.size) & (open_time[np.minimum(at, close.size - 1)] == earlier)
    out[found] = 100.0 * (close[found] / close[at[found]] - 1.0)
    return out


def series(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    lines = macd(c.close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    return {
        "rsi": rsi(c.close, windows.momentum, adjacent(c.open_time, interval.seconds)),
        "macd": lines.line,
        "macd_signal": lines.signal,
        "macd_histogram": lines.histogram,
        "roc": rate_of_change(c.close, c.open_time, windows.momentum, interval.seconds),
    }


def compute(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> FamilyResult:
    def values() -> dict[str, Value]:
        return {name: last(column) for name, column in series(c, windows, interval).items()}

    return evaluate(
        FAMILY, windows.momentum, parameters(windows, interval), c.size, required(windows), values
    )
