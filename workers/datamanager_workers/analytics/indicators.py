"""Classic indicators, vectorised, with TA-Lib's definitions and seeding so TA-Lib can check them.

Every function returns a full-length float64 array, NaN where the indicator is not yet defined (the warm-up).
Those built on terms spanning two candles (RSI's change, the true range, the directional movement) take
``pairs``, where such a term is defined (``gaps.adjacent``): they smooth over the defined terms only, as
``gaps`` describes. Without it every candle but the first has one, which is TA-Lib's series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.gaps import Bool, Defined, pairs_everywhere
from datamanager_workers.analytics.rolling import rolling_mean
from datamanager_workers.analytics.smoothing import ema_from, first_valid, sma_seeded


def sma(x: F64, period: int) -> F64:
    return rolling_mean(x, period)


def ema(x: F64, period: int) -> F64:
    """EMA with alpha = 2 / (period + 1), seeded with the SMA of the first ``period`` values (as TA-Lib)."""
    return sma_seeded(x, period, 2.0 / (period + 1))


def wilder(x: F64, period: int, start: int) -> F64:
    """Wilder's smoothing (alpha = 1 / period) seeded with the mean of ``x[start .. start + period - 1]``."""
    return sma_seeded(x, period, 1.0 / period, seed_end=start + period - 1)


def rsi(close: F64, period: int, pairs: Bool | None = None) -> F64:
    """Wilder's RSI; 50 (neutral) when nothing moved over the smoothing, where the ratio is undefined."""
    change = np.full(close.size, np.nan)
    change[1:] = np.diff(close)
    where = Defined(pairs_everywhere(close.size) if pairs is None else pairs)
    terms = where.take(change)
    if terms.size < period:
        return np.full(close.size, np.nan)
    gain = wilder(np.maximum(terms, 0.0), period, 0)
    loss = wilder(np.maximum(-terms, 0.0), period, 0)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        compact = np.where(total > 0, 100.0 * gain / total, 50.0)
    compact[: period - 1] = np.nan
    return where.spread(compact)


def true_range(high: F64, low: F64, close: F64) -> F64:
    """Wilder's true range; NaN for the first candle, which has no previous close."""
    out = np.full(close.size, np.nan)
    previous = close[:-1]
    out[1:] = np.maximum(high[1:], previous) - np.minimum(low[1:], previous)
    return out


def atr(high: F64, low: F64, close: F64, period: int, pairs: Bool | None = None) -> F64:
    """Average true range: Wilder's smoothing of the true range, first value at index ``period`` (at the
    ``period``-th defined true range)."""
    where = Defined(pairs_everywhere(close.size) if pairs is None else pairs)
    terms = where.take(true_range(high, low, close))
    if terms.size < period:
        return np.full(close.size, np.nan)
    return where.spread(wilder(terms, period, 0))


@dataclass(frozen=True)
class Directional:
    plus_di: F64
    minus_di: F64
    adx: F64


def _wilder_sum(terms: F64, period: int) -> F64:
    """Wilder's running sum as TA-Lib's ADX keeps it, over terms that start at the second candle: the sum of
    the first ``period - 1`` terms, then ``s[t] = s[t-1] - s[t-1] / period + x[t]``; NaN before index
    ``period - 2``."""
    start = period - 2
    out = np.full(terms.size, np.nan)
    if terms.size <= start:
        return out
    seed = float(np.sum(terms[: period - 1]))
    out[start:] = ema_from(terms[start:] * period, 1.0 / period, 0, seed)
    return out


def directional(high: F64, low: F64, close: F64, period: int, pairs: Bool | None = None) -> Directional:
    """+DI, -DI and ADX (Wilder); ADX's first value is at index 2 * period - 1, as in TA-Lib.

    DX counts as 0 where +DI + -DI is 0 (nothing moved): no direction means no trend strength.
    """
    n = close.size
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    up[1:] = high[1:] - high[:-1]
    down[1:] = low[:-1] - low[1:]
    where = Defined(pairs_everywhere(n) if pairs is None else pairs)
    up, down, tr = where.take(up), where.take(down), where.take(true_range(high, low, close))
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    smoothed_tr = _wilder_sum(tr, period)
    with np.errstate(invalid="ignore", divide="ignore"):
        plus_di = np.where(smoothed_tr > 0, 100.0 * _wilder_sum(plus_dm, period) / smoothed_tr, 0.0)
        minus_di = np.where(smoothed_tr > 0, 100.0 * _wilder_sum(minus_dm, period) / smoothed_tr, 0.0)
        di_total = plus_di + minus_di
        dx = np.where(di_total > 0, 100.0 * np.abs(plus_di - minus_di) / di_total, 0.0)
    # The terms start at the second candle: term k is candle k + 1's, so TA-Lib's index ``period`` is k =
    # period - 1, and ADX's first value (index 2 * period - 1) is k = 2 * period - 2.
    plus_di[: period - 1] = np.nan
    minus_di[: period - 1] = np.nan
    dx[: period - 1] = np.nan
    adx = wilder(dx, period, period - 1) if tr.size >= 2 * period - 1 else np.full(tr.size, np.nan)
    return Directional(plus_di=where.spread(plus_di), minus_di=where.spread(minus_di), adx=where.spread(adx))


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
