"""Classic indicators, vectorised, with TA-Lib's definitions and seeding so TA-Lib can check them.

Every function returns a full-length float64 array, NaN where the indicator is not yet defined (the warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.rolling import rolling_mean, rolling_slope
from datamanager_workers.analytics.smoothing import ema_from, first_valid, sma_seeded


def sma(x: F64, period: int) -> F64:
    return rolling_mean(x, period)


def ema(x: F64, period: int) -> F64:
    """EMA with alpha = 2 / (period + 1), seeded with the SMA of the first ``period`` values (as TA-Lib)."""
    return sma_seeded(x, period, 2.0 / (period + 1))


def wilder(x: F64, period: int, start: int) -> F64:
    """Wilder's smoothing (alpha = 1 / period) seeded with the mean of ``x[start .. start + period - 1]``."""
    return sma_seeded(x, period, 1.0 / period, seed_end=start + period - 1)


def rsi(close: F64, period: int) -> F64:
    """Wilder's RSI; 50 (neutral) when nothing moved over the smoothing, where the ratio is undefined."""
    out = np.full(close.size, np.nan)
    if close.size <= period:
        return out
    change = np.diff(close)
    gain = wilder(np.maximum(change, 0.0), period, 0)
    loss = wilder(np.maximum(-change, 0.0), period, 0)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.where(total > 0, 100.0 * gain / total, 50.0)
    out[:period] = np.nan
    return out


def true_range(high: F64, low: F64, close: F64) -> F64:
    """Wilder's true range; NaN for the first candle, which has no previous close."""
    out = np.full(close.size, np.nan)
    previous = close[:-1]
    out[1:] = np.maximum(high[1:], previous) - np.minimum(low[1:], previous)
    return out


def atr(high: F64, low: F64, close: F64, period: int) -> F64:
    """Average true range: Wilder's smoothing of the true range, first value at index ``period``."""
    if close.size <= period:
        return np.full(close.size, np.nan)
    return wilder(true_range(high, low, close), period, 1)


@dataclass(frozen=True)
class Directional:
    plus_di: F64
    minus_di: F64
    adx: F64


def _wilder_sum(x: F64, period: int) -> F64:
    """Wilder's running sum as TA-Lib's ADX keeps it: the sum of ``period - 1`` values from index 1, then
    ``s[t] = s[t-1] - s[t-1] / period + x[t]``; NaN before index ``period - 1``."""
    start = period - 1
    out = np.full(x.size, np.nan)
    if x.size <= start:
        return out
    seed = float(np.sum(x[1:period]))
    out[start:] = ema_from(x[start:] * period, 1.0 / period, 0, seed)
    return out


def directional(high: F64, low: F64, close: F64, period: int) -> Directional:
    """+DI, -DI and ADX (Wilder); ADX's first value is at index 2 * period - 1, as in TA-Lib.

    DX counts as 0 where +DI + -DI is 0 (nothing moved): no direction means no trend strength.
    """
    n = close.size
    up = np.zeros(n)
    down = np.zeros(n)
    up[1:] = high[1:] - high[:-1]
    down[1:] = low[:-1] - low[1:]
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = np.nan_to_num(true_range(high, low, close))
    smoothed_tr = _wilder_sum(tr, period)
    with np.errstate(invalid="ignore", divide="ignore"):
        plus_di = np.where(smoothed_tr > 0, 100.0 * _wilder_sum(plus_dm, period) / smoothed_tr, 0.0)
        minus_di = np.where(smoothed_tr > 0, 100.0 * _wilder_sum(minus_dm, period) / smoothed_tr, 0.0)
        di_total = plus_di + minus_di
        dx = np.where(di_total > 0, 100.0 * np.abs(plus_di - minus_di) / di_total, 0.0)
    plus_di[:period] = np.nan
    minus_di[:period] = np.nan
    dx[:period] = np.nan
    adx = wilder(dx, period, period) if n >= 2 * period else np.full(n, np.nan)
    return Directional(plus_di=plus_di, minus_di=minus_di, adx=adx)


@dataclass(frozen=True)
class Macd:
    line: F64
    signal: F64
    histogram: F64


def macd(close: F64, fast: int, slow: int, signal: int) -> Macd:
    """MACD as TA-Lib computes it: both EMAs seeded so their first value falls at index ``slow - 1``."""
    nan = np.full(close.size, np.nan)
    if close.size < slow:
        return Macd(line=nan, signal=nan.copy(), histogram=nan.copy())
    fast_ema = sma_seeded(close, fast, 2.0 / (fast + 1), seed_end=slow - 1)
    slow_ema = sma_seeded(close, slow, 2.0 / (slow + 1), seed_end=slow - 1)
    line = fast_ema - slow_ema
    signal_line = sma_seeded(line, signal, 2.0 / (signal + 1))
    line[: first_valid(signal_line)] = np.nan  # TA-Lib reports the three lines from the same candle
    return Macd(line=line, signal=signal_line, histogram=line - signal_line)


def linreg_slope(x: F64, period: int) -> F64:
    """Least-squares slope over each trailing window (TA-Lib LINEARREG_SLOPE), units of x per candle."""
    return rolling_slope(x, period)
