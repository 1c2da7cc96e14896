"""Benchmark: the analytics kernels against a naive baseline, on the same candles in the same run.

The baseline is written the way common reference implementations are (e.g. the volatility-estimator code
that circulates with Sinclair's books, TA tutorials): pandas ``rolling().apply`` with Python functions for
windowed statistics, Python loops for Wilder/EMA smoothing, and a row-wise ``apply`` for the regime label.
Both sides compute every per-symbol family as full series (a value at every candle) and the correlation
matrix; the outputs are compared element by element.

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
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics import correlation, regime, trend
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.families import SERIES
from datamanager_workers.analytics.model import periods_per_year

F64 = npt.NDArray[np.float64]
INTERVAL = Interval.M1
WINDOWS = FamilyWindows()
TOLERANCE = 1e-9
LN2 = math.log(2.0)


# --- the naive baseline --------------------------------------------------------------------------------


def _loop_ema(x: F64, period: int, alpha: float, seed_end: int) -> F64:
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


def _first_valid(x: F64) -> int:
    for i, value in enumerate(x):
        if not math.isnan(value):
            return i
    return x.size


def _ema(x: F64, period: int) -> F64:
    return _loop_ema(x, period, 2.0 / (period + 1), _first_valid(x) + period - 1)


def _rolling(values: F64 | pd.Series, window: int, func: Callable[[F64], float]) -> F64:
    return np.asarray(pd.Series(values).rolling(window).apply(func, raw=True), dtype=np.float64)


def _sample_std(a: F64) -> float:
    return float(np.std(a, ddof=1))


def _sample_var(a: F64) -> float:
    return float(np.var(a, ddof=1))


def _mean(a: F64) -> float:
    return float(np.mean(a))


def _sum(a: F64) -> float:
    return float(np.sum(a))


def _atr(df: pd.DataFrame, period: int) -> F64:
    high, low, close = (df[c].to_numpy() for c in ("high", "low", "close"))
    tr = np.full(close.size, np.nan)
    for i in range(1, close.size):
        tr[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    return _loop_ema(tr, period, 1.0 / period, period)


def _adx(df: pd.DataFrame, period: int) -> tuple[F64, F64, F64]:
    """Wilder's ADX the textbook way: running sums of TR and DM, DX, then the smoothed DX."""
    high, low, close = (df[c].to_numpy() for c in ("high", "low", "close"))
    n = close.size
    plus_di, minus_di, dx, adx = (np.full(n, np.nan) for _ in range(4))
    tr_sum = plus_sum = minus_sum = 0.0
    for i in range(1, n):
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        plus_dm = up if up > down and up > 0 else 0.0
        minus_dm = down if down > up and down > 0 else 0.0
        tr = max(high[i], close[i - 1]) - min(low[i], close[i - 1])
        if i < period:
            tr_sum, plus_sum, minus_sum = tr_sum + tr, plus_sum + plus_dm, minus_sum + minus_dm
            continue
        tr_sum = tr_sum - tr_sum / period + tr
        plus_sum = plus_sum - plus_sum / period + plus_dm
        minus_sum = minus_sum - minus_sum / period + minus_dm
        plus_di[i] = 100.0 * plus_sum / tr_sum if tr_sum > 0 else 0.0
        minus_di[i] = 100.0 * minus_sum / tr_sum if tr_sum > 0 else 0.0
        total = plus_di[i] + minus_di[i]
        dx[i] = 100.0 * abs(plus_di[i] - minus_di[i]) / total if total > 0 else 0.0
        if i == 2 * period - 1:
            adx[i] = sum(dx[period : 2 * period]) / period
        elif i > 2 * period - 1:
            adx[i] = (adx[i - 1] * (period - 1) + dx[i]) / period
    return adx, plus_di, minus_di


def _rsi(close: F64, period: int) -> F64:
    out = np.full(close.size, np.nan)
    gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, close.size)]
    losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, close.size)]
    if len(gains) < period:
        return out
    gain, loss = sum(gains[:period]) / period, sum(losses[:period]) / period
    for i in range(period, close.size):
        if i > period:
            gain = (gain * (period - 1) + gains[i - 1]) / period
            loss = (loss * (period - 1) + losses[i - 1]) / period
        out[i] = 100.0 * gain / (gain + loss) if gain + loss > 0 else 50.0
    return out


def _close_to_close(df: pd.DataFrame, window: int) -> F64:
    returns = np.log(df["close"] / df["close"].shift(1))
    return _rolling(returns, window, _sample_std) * math.sqrt(periods_per_year(INTERVAL))


def _relative_volume(df: pd.DataFrame, window: int) -> F64:
    previous = _rolling(df["volume"].shift(1), window, _mean)
    return np.where(previous > 0, df["volume"].to_numpy() / previous, np.nan)


def naive_volatility(df: pd.DataFrame) -> dict[str, F64]:
    w, scale = WINDOWS.volatility, math.sqrt(periods_per_year(INTERVAL))
    log_hl = np.log(df["high"] / df["low"])
    log_co = np.log(df["close"] / df["open"])
    rs = np.log(df["high"] / df["close"]) * np.log(df["high"] / df["open"]) + np.log(
        df["low"] / df["close"]
    ) * np.log(df["low"] / df["open"])
    overnight = np.log(df["open"] / df["close"].shift(1))
    k = 0.34 / (1.34 + (w + 1) / (w - 1))
    yang_zhang = (
        _rolling(overnight, w, _sample_var)
        + k * _rolling(log_co, w, _sample_var)
        + (1 - k) * _rolling(rs, w, _mean)
    )
    atr = _atr(df, 14)
    return {
        "close_to_close": _close_to_close(df, w),
        "parkinson": _rolling(log_hl, w, lambda a: math.sqrt(np.mean(a * a) / (4 * LN2))) * scale,
        "garman_klass": _rolling(
            pd.Series(0.5 * log_hl**2 - (2 * LN2 - 1) * log_co**2),
            w,
            lambda a: math.sqrt(max(float(np.mean(a)), 0.0)),
        )
        * scale,
        "rogers_satchell": _rolling(rs, w, lambda a: math.sqrt(max(float(np.mean(a)), 0.0))) * scale,
        "yang_zhang": np.sqrt(np.maximum(yang_zhang, 0.0)) * scale,
        "atr": atr,
        "atr_percent": 100.0 * atr / df["close"].to_numpy(),
    }


def naive_volume(df: pd.DataFrame) -> dict[str, F64]:
    w = WINDOWS.volume
    total = _rolling(df["volume"], w, _sum)
    day = df["open_time"] // 86_400
    vwap = df.groupby(day)["quote_volume"].cumsum() / df.groupby(day)["volume"].cumsum()
    return {
        "total_volume": total,
        "total_quote_volume": _rolling(df["quote_volume"], w, _sum),
        "volume_sma": _rolling(df["volume"], w, _mean),
        "volume_ema": _ema(df["volume"].to_numpy(), w),
        "relative_volume": _relative_volume(df, w),
        "taker_buy_ratio": _rolling(df["taker_buy_volume"], w, _sum) / total,
        "vwap": vwap.to_numpy(),
    }


def naive_trend(df: pd.DataFrame) -> dict[str, F64]:
    close = df["close"].to_numpy()
    w = WINDOWS.trend
    positions = np.arange(w, dtype=np.float64)
    slope = _rolling(close, w, lambda a: float(np.polyfit(positions, a, 1)[0]))
    sma_fast, sma_slow = _rolling(close, trend.FAST, _mean), _rolling(close, trend.SLOW, _mean)
    ema_fast, ema_slow = _ema(close, trend.FAST), _ema(close, trend.SLOW)
    adx, plus_di, minus_di = _adx(df, trend.ADX_PERIOD)
    return {
        "sma_fast": sma_fast,
        "sma_slow": sma_slow,
        "sma_spread": sma_fast - sma_slow,
        "ema_fast": ema_fast,
        "ema_slow": ema_slow,
        "ema_spread": ema_fast - ema_slow,
        "slope": slope,
        "slope_percent": 100.0 * slope / _rolling(close, w, _mean),
        "adx": adx,
        "plus_di": plus_di,
        "minus_di": minus_di,
    }


def naive_momentum(df: pd.DataFrame) -> dict[str, F64]:
    close = df["close"].to_numpy()
    fast = _loop_ema(close, 12, 2.0 / 13, 25)
    slow = _loop_ema(close, 26, 2.0 / 27, 25)
    line = fast - slow
    signal = _ema(line, 9)
    line[: _first_valid(signal)] = np.nan
    w = WINDOWS.momentum
    return {
        "rsi": _rsi(close, w),
        "macd": line,
        "macd_signal": signal,
        "macd_histogram": line - signal,
        "roc": (100.0 * (df["close"] / df["close"].shift(w) - 1.0)).to_numpy(),
    }


def _label(row: pd.Series) -> float:
    vol, relative, adx, plus_di, minus_di = row
    if math.isnan(vol) or math.isnan(relative) or math.isnan(adx):
        return math.nan
    if vol >= regime.VOLATILE_AT:
        return 0.0
    if relative >= regime.VOLUME_SURGE_AT:
        return 1.0
    if adx >= regime.TRENDING_ADX_AT:
        return 2.0 if plus_di >= minus_di else 3.0
    if vol <= regime.QUIET_VOLATILITY_AT and relative <= regime.QUIET_VOLUME_AT:
        return 4.0
    return 5.0


def naive_regime(df: pd.DataFrame) -> dict[str, F64]:
    adx, plus_di, minus_di = _adx(df, trend.ADX_PERIOD)
    features = pd.DataFrame(
        {
            "volatility": _close_to_close(df, WINDOWS.volatility),
            "relative_volume": _relative_volume(df, WINDOWS.volume),
            "adx": adx,
            "plus_di": plus_di,
            "minus_di": minus_di,
        }
    )
    return {"label": features.apply(_label, axis=1).to_numpy(), **features.to_dict("series")}


NAIVE: dict[MetricFamily, Callable[[pd.DataFrame], dict[str, Any]]] = {
    MetricFamily.VOLATILITY: naive_volatility,
    MetricFamily.VOLUME: naive_volume,
    MetricFamily.TREND: naive_trend,
    MetricFamily.MOMENTUM: naive_momentum,
    MetricFamily.REGIME: naive_regime,
}


def naive_correlation(frames: dict[str, pd.DataFrame]) -> F64:
    """Pairwise Pearson of aligned one-interval log returns over the last ``window`` common timestamps."""
    returns = {}
    for symbol, df in frames.items():
        consecutive = df["open_time"].diff() == INTERVAL.seconds
        r = np.log(df["close"] / df["close"].shift(1))[consecutive]
        returns[symbol] = pd.Series(r.to_numpy(), index=df["open_time"][consecutive].to_numpy())
    aligned = pd.DataFrame(returns).dropna().tail(WINDOWS.correlation)
    matrix: F64 = aligned.corr().to_numpy()
    return matrix


# --- data, timing, comparison --------------------------------------------------------------------------


def make_candles(symbols: int, per_symbol: int, seed: int) -> dict[str, CandleArrays]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fixtures.candles import generate

    first_open = datetime(2023, 1, 1, tzinfo=UTC)
    out = {}
    for index in range(symbols):
        s = generate(f"SYM{index}USDT", INTERVAL.value, first_open, per_symbol, seed=seed + index)
        out[s.symbol] = CandleArrays(
            s.open_time, s.open, s.high, s.low, s.close, s.volume, s.quote_volume, s.taker_base
        )
    return out


def frame(c: CandleArrays, rows: int) -> pd.DataFrame:
    columns = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume")
    return pd.DataFrame({name: getattr(c, name)[:rows] for name in columns})


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


def relative_error(a: F64, b: F64) -> tuple[float, int]:
    """Worst floored relative error where both are defined, and the count of NaN positions that differ."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    both = ~nan_a & ~nan_b
    if not both.any():
        return 0.0, int(np.count_nonzero(nan_a != nan_b))
    floor = float(np.sqrt(np.mean(b[both] ** 2)))
    error = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), floor)
    return float(np.max(error, initial=0.0)), int(np.count_nonzero(nan_a != nan_b))


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
    naive_rows = min(args.naive_rows or per_symbol, per_symbol)
    candles = make_candles(args.symbols, per_symbol, args.seed)
    print(
        f"{args.symbols} symbols x {per_symbol:,} {INTERVAL.value} candles "
        f"= {args.symbols * per_symbol:,} rows"
    )

    started = time.perf_counter()
    mine, my_matrix = ours(candles)
    ours_seconds = time.perf_counter() - started
    print(f"vectorised: {ours_seconds:.3f} s")

    frames = {symbol: frame(c, naive_rows) for symbol, c in candles.items()}
    started = time.perf_counter()
    theirs, their_matrix = naive(frames)
    naive_measured = time.perf_counter() - started
    extrapolated = naive_rows < per_symbol
    naive_seconds = naive_measured * per_symbol / naive_rows
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
        "rows": args.symbols * per_symbol,
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
