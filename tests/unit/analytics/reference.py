"""The analytics families written the plain way, as the reference the kernels must equal and the benchmark's
baseline (bench/analytics.py): pandas ``rolling().apply`` with Python functions for windowed statistics,
Python loops for Wilder/EMA smoothing, a row-wise ``apply`` for the regime label.

Gaps follow docs/analytics.md literally: a term spanning two candles (a return, an overnight return, a change,
a true range, a directional movement) exists only between candles one interval apart; a window holds the last
``w`` existing terms; a smoother runs over the existing terms in order; a candle without a term of its own
shows the value at the last candle that had one. Candles are good ones: bad ones are excluded before.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily, RegimeThresholds
from datamanager.api.common import Interval
from datamanager_workers.analytics import regime, trend
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.model import periods_per_year

F64 = npt.NDArray[np.float64]
LN2 = math.log(2.0)
COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume")


def frame(c: CandleArrays, rows: int | None = None) -> pd.DataFrame:
    return pd.DataFrame({name: getattr(c, name)[:rows] for name in COLUMNS})


# --- gaps ------------------------------------------------------------------------------------------------


def adjacent(df: pd.DataFrame, interval: Interval) -> npt.NDArray[np.bool_]:
    """Whether each candle opens one interval after the one before it."""
    return np.asarray(df["open_time"].diff() == interval.seconds)


def on_terms(values: F64 | pd.Series, exists: npt.NDArray[np.bool_], compute: Callable[[F64], F64]) -> F64:
    """``compute`` over the existing terms in order; each candle shows the result at the last candle at or
    before it that had a term."""
    values = np.asarray(values, dtype=np.float64)
    positions = np.flatnonzero(exists)
    results = np.full(values.size, np.nan)
    results[positions] = compute(values[positions])
    last_with_term = pd.Series(np.where(exists, np.arange(values.size), np.nan)).ffill()
    out = np.full(values.size, np.nan)
    for i, last in enumerate(last_with_term):
        if not math.isnan(last):
            out[i] = results[int(last)]
    return out


# --- building blocks -------------------------------------------------------------------------------------


def loop_ema(x: F64, period: int, alpha: float, seed_end: int) -> F64:
    """Seeded with the SMA of ``period`` values ending at ``seed_end``, then one row at a time."""
    out = np.full(x.size, np.nan)
    if seed_end >= x.size:
        return out
    value = sum(x[seed_end - period + 1 : seed_end + 1]) / period
    out[seed_end] = value
    for i in range(seed_end + 1, x.size):
        value = value + alpha * (x[i] - value)
        out[i] = value
    return out


def first_valid(x: F64) -> int:
    for i, value in enumerate(x):
        if not math.isnan(value):
            return i
    return x.size


def ema(x: F64, period: int) -> F64:
    return loop_ema(x, period, 2.0 / (period + 1), first_valid(x) + period - 1)


def rolling(values: F64 | pd.Series, window: int, func: Callable[[F64], float]) -> F64:
    return np.asarray(pd.Series(values).rolling(window).apply(func, raw=True), dtype=np.float64)


def sample_std(a: F64) -> float:
    return float(np.std(a, ddof=1))


def sample_var(a: F64) -> float:
    return float(np.var(a, ddof=1))


def mean(a: F64) -> float:
    return float(np.mean(a))


def total(a: F64) -> float:
    return float(np.sum(a))


def log_returns(df: pd.DataFrame) -> F64:
    return np.asarray(np.log(df["close"] / df["close"].shift(1)), dtype=np.float64)


def atr(df: pd.DataFrame, period: int, interval: Interval) -> F64:
    """Wilder's smoothing of the true ranges between adjacent candles."""
    high, low, close = (df[c].to_numpy() for c in ("high", "low", "close"))
    tr = np.full(close.size, np.nan)
    for i in range(1, close.size):
        tr[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    return on_terms(tr, adjacent(df, interval), lambda t: loop_ema(t, period, 1.0 / period, period - 1))


def adx(df: pd.DataFrame, period: int, interval: Interval) -> tuple[F64, F64, F64]:
    """Wilder's ADX the textbook way: running sums of TR and DM over adjacent pairs, DX, the smoothed DX."""
    high, low, close = (df[c].to_numpy() for c in ("high", "low", "close"))
    n = close.size
    pairs = adjacent(df, interval)
    plus_di, minus_di, dx, smoothed = (np.full(n, np.nan) for _ in range(4))
    tr_sum = plus_sum = minus_sum = 0.0
    k = 0  # pairs seen so far, this one included
    dx_seen: list[float] = []
    adx_value = math.nan
    for i in range(1, n):
        if not pairs[i]:
            continue
        k += 1
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        plus_dm = up if up > down and up > 0 else 0.0
        minus_dm = down if down > up and down > 0 else 0.0
        tr = max(high[i], close[i - 1]) - min(low[i], close[i - 1])
        if k < period:
            tr_sum, plus_sum, minus_sum = tr_sum + tr, plus_sum + plus_dm, minus_sum + minus_dm
            continue
        tr_sum = tr_sum - tr_sum / period + tr
        plus_sum = plus_sum - plus_sum / period + plus_dm
        minus_sum = minus_sum - minus_sum / period + minus_dm
        plus_di[i] = 100.0 * plus_sum / tr_sum if tr_sum > 0 else 0.0
        minus_di[i] = 100.0 * minus_sum / tr_sum if tr_sum > 0 else 0.0
        di_total = plus_di[i] + minus_di[i]
        dx[i] = 100.0 * abs(plus_di[i] - minus_di[i]) / di_total if di_total > 0 else 0.0
        dx_seen.append(dx[i])
        if len(dx_seen) == period:
            adx_value = sum(dx_seen) / period
        elif len(dx_seen) > period:
            adx_value = (adx_value * (period - 1) + dx[i]) / period
        smoothed[i] = adx_value
    carried = [on_terms(values, pairs, lambda x: x) for values in (smoothed, plus_di, minus_di)]
    return carried[0], carried[1], carried[2]


def rsi(df: pd.DataFrame, period: int, interval: Interval) -> F64:
    def over_changes(changes: F64) -> F64:
        out = np.full(changes.size, np.nan)
        gains = [max(c, 0.0) for c in changes]
        losses = [max(-c, 0.0) for c in changes]
        if len(gains) < period:
            return out
        gain, loss = sum(gains[:period]) / period, sum(losses[:period]) / period
        for i in range(period - 1, changes.size):
            if i > period - 1:
                gain = (gain * (period - 1) + gains[i]) / period
                loss = (loss * (period - 1) + losses[i]) / period
            out[i] = 100.0 * gain / (gain + loss) if gain + loss > 0 else 50.0
        return out

    return on_terms(df["close"].diff(), adjacent(df, interval), over_changes)


def close_to_close(df: pd.DataFrame, window: int, interval: Interval) -> F64:
    std = on_terms(log_returns(df), adjacent(df, interval), lambda r: rolling(r, window, sample_std))
    return std * math.sqrt(periods_per_year(interval))


def baseline(df: pd.DataFrame, window: int, interval: Interval) -> F64:
    def expanding(r: F64) -> F64:
        return np.asarray(pd.Series(r).expanding(min_periods=window).std(), dtype=np.float64)

    return on_terms(log_returns(df), adjacent(df, interval), expanding) * math.sqrt(
        periods_per_year(interval)
    )


def relative_volume(df: pd.DataFrame, window: int) -> F64:
    previous = rolling(df["volume"].shift(1), window, mean)
    return np.where(previous > 0, df["volume"].to_numpy() / previous, np.nan)


# --- the families ----------------------------------------------------------------------------------------


def volatility(df: pd.DataFrame, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    w, scale = windows.volatility, math.sqrt(periods_per_year(interval))
    log_hl = np.log(df["high"] / df["low"])
    log_co = np.log(df["close"] / df["open"])
    rs = np.log(df["high"] / df["close"]) * np.log(df["high"] / df["open"]) + np.log(
        df["low"] / df["close"]
    ) * np.log(df["low"] / df["open"])
    overnight = np.log(df["open"] / df["close"].shift(1))
    pairs = adjacent(df, interval)
    k = 0.34 / (1.34 + (w + 1) / (w - 1))
    yang_zhang = (
        on_terms(overnight, pairs, lambda x: rolling(x, w, sample_var))
        + k * on_terms(log_co, pairs, lambda x: rolling(x, w, sample_var))
        + (1 - k) * on_terms(rs, pairs, lambda x: rolling(x, w, mean))
    )
    price_atr = atr(df, 14, interval)
    return {
        "close_to_close": close_to_close(df, w, interval),
        "parkinson": rolling(log_hl, w, lambda a: math.sqrt(np.mean(a * a) / (4 * LN2))) * scale,
        "garman_klass": rolling(
            pd.Series(0.5 * log_hl**2 - (2 * LN2 - 1) * log_co**2),
            w,
            lambda a: math.sqrt(max(float(np.mean(a)), 0.0)),
        )
        * scale,
        "rogers_satchell": rolling(rs, w, lambda a: math.sqrt(max(float(np.mean(a)), 0.0))) * scale,
        "yang_zhang": np.sqrt(np.maximum(yang_zhang, 0.0)) * scale,
        "atr": price_atr,
        "atr_percent": 100.0 * price_atr / df["close"].to_numpy(),
    }


def volume(df: pd.DataFrame, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    w = windows.volume
    window_total = rolling(df["volume"], w, total)
    day = df["open_time"] // 86_400
    vwap = df.groupby(day)["quote_volume"].cumsum() / df.groupby(day)["volume"].cumsum()
    return {
        "total_volume": window_total,
        "total_quote_volume": rolling(df["quote_volume"], w, total),
        "volume_sma": rolling(df["volume"], w, mean),
        "volume_ema": ema(df["volume"].to_numpy(), w),
        "relative_volume": relative_volume(df, w),
        "taker_buy_ratio": rolling(df["taker_buy_volume"], w, total) / window_total,
        "vwap": vwap.to_numpy(),
    }


def trend_family(df: pd.DataFrame, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    close = df["close"].to_numpy()
    hours = (df["open_time"].to_numpy() // interval.seconds).astype(np.float64)
    w = windows.trend

    def slope_at(positions: F64) -> float:
        chosen = positions.astype(np.int64)
        return float(np.polyfit(hours[chosen] - hours[chosen[-1]], close[chosen], 1)[0])

    slope = rolling(np.arange(close.size, dtype=np.float64), w, slope_at)
    sma_fast, sma_slow = rolling(close, trend.FAST, mean), rolling(close, trend.SLOW, mean)
    ema_fast, ema_slow = ema(close, trend.FAST), ema(close, trend.SLOW)
    strength, plus_di, minus_di = adx(df, trend.ADX_PERIOD, interval)
    return {
        "sma_fast": sma_fast,
        "sma_slow": sma_slow,
        "sma_spread": sma_fast - sma_slow,
        "ema_fast": ema_fast,
        "ema_slow": ema_slow,
        "ema_spread": ema_fast - ema_slow,
        "slope": slope,
        "slope_percent": 100.0 * slope / rolling(close, w, mean),
        "adx": strength,
        "plus_di": plus_di,
        "minus_di": minus_di,
    }


def momentum(df: pd.DataFrame, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    close = df["close"].to_numpy()
    fast = loop_ema(close, 12, 2.0 / 13, 25)
    slow = loop_ema(close, 26, 2.0 / 27, 25)
    line = fast - slow
    signal = ema(line, 9)
    line[: first_valid(signal)] = np.nan
    w = windows.momentum
    by_time = dict(zip(df["open_time"].tolist(), close.tolist(), strict=True))
    roc = [
        100.0 * (c / by_time[t - w * interval.seconds] - 1.0)
        if t - w * interval.seconds in by_time
        else math.nan
        for t, c in zip(df["open_time"].tolist(), close.tolist(), strict=True)
    ]
    return {
        "rsi": rsi(df, w, interval),
        "macd": line,
        "macd_signal": signal,
        "macd_histogram": line - signal,
        "roc": np.array(roc),
    }


def regime_family(
    df: pd.DataFrame,
    windows: FamilyWindows,
    interval: Interval,
    thresholds: RegimeThresholds = regime.DEFAULTS,
) -> dict[str, F64]:
    strength, plus_di, minus_di = adx(df, trend.ADX_PERIOD, interval)
    features = pd.DataFrame(
        {
            "volatility": close_to_close(df, windows.volatility, interval),
            "baseline_volatility": baseline(df, windows.volatility, interval),
            "relative_volume": relative_volume(df, windows.volume),
            "adx": strength,
            "plus_di": plus_di,
            "minus_di": minus_di,
        }
    )

    def label(row: pd.Series) -> float:
        vol, base, relative, strength, plus, minus = row
        if math.isnan(vol) or math.isnan(base) or math.isnan(relative) or math.isnan(strength):
            return math.nan
        if vol >= thresholds.volatile_ratio * base:
            return 0.0
        if relative >= thresholds.volume_surge:
            return 1.0
        if strength >= thresholds.trending_adx:
            return 2.0 if plus >= minus else 3.0
        if vol <= thresholds.quiet_ratio * base and relative <= thresholds.quiet_volume:
            return 4.0
        return 5.0

    columns = features.to_dict("series")
    columns["volatility_ratio"] = features["volatility"] / features["baseline_volatility"]
    return {"label": features.apply(label, axis=1).to_numpy(), **columns}


FAMILIES: dict[MetricFamily, Callable[[pd.DataFrame, FamilyWindows, Interval], dict[str, F64]]] = {
    MetricFamily.VOLATILITY: volatility,
    MetricFamily.VOLUME: volume,
    MetricFamily.TREND: trend_family,
    MetricFamily.MOMENTUM: momentum,
    MetricFamily.REGIME: regime_family,
}


def correlation(frames: dict[str, pd.DataFrame], windows: FamilyWindows, interval: Interval) -> F64:
    """Pairwise Pearson of aligned one-interval log returns over the last ``window`` common timestamps."""
    returns = {}
    for symbol, df in frames.items():
        consecutive = df["open_time"].diff() == interval.seconds
        r = np.log(df["close"] / df["close"].shift(1))[consecutive]
        returns[symbol] = pd.Series(r.to_numpy(), index=df["open_time"][consecutive].to_numpy())
    aligned = pd.DataFrame(returns).dropna().tail(windows.correlation)
    matrix: F64 = aligned.corr().to_numpy()
    return matrix


def relative_error(a: F64, b: F64) -> tuple[float, int]:
    """Worst floored relative error where both are defined, and the count of NaN positions that differ.

    |a - b| / max(|b|, rms(b)): the plain relative error for series that stay away from zero, and for
    series that cross zero (MACD histogram, slope, rate of change) relative to their typical size rather than
    at the crossings, where only the last-bit rounding of the inputs differs."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    both = ~nan_a & ~nan_b
    if not both.any():
        return 0.0, int(np.count_nonzero(nan_a != nan_b))
    floor = float(np.sqrt(np.mean(b[both] ** 2)))
    error = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), floor)
    return float(np.max(error, initial=0.0)), int(np.count_nonzero(nan_a != nan_b))
