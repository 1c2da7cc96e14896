"""Trend: SMA and EMA 20/50 crossover state, linear-regression slope, ADX with +DI and -DI.

- sma/ema fast (20) and slow (50) of the close; the crossover state of each pair at the latest candle is
  ``golden_cross`` / ``death_cross`` when the fast average crossed above / below the slow one on that
  candle, otherwise ``above`` / ``below`` (``equal`` when they coincide), with the candles since the last
  cross.
- slope: least-squares slope of the close against time over the trailing ``w`` candles, in price per
  interval, and as a percentage of the window's mean close per interval (comparable across symbols). Across
  a gap the candles keep their times, so a missing hour is not read as no time passing.
- ADX, +DI, -DI: Wilder, period 14, over the directional movements and true ranges between adjacent candles
  (``gaps``).
"""

from __future__ import annotations

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.gaps import adjacent
from datamanager_workers.analytics.indicators import directional, ema, sma
from datamanager_workers.analytics.model import FamilyResult, Value, evaluate, last
from datamanager_workers.analytics.rolling import rolling_mean, rolling_time_slope

FAMILY = MetricFamily.TREND
FAST = 20
SLOW = 50
ADX_PERIOD = 14


def required(windows: FamilyWindows) -> int:
    """A cross needs the slow average on the latest candle and the one before; ADX needs two periods."""
    return max(SLOW + 1, 2 * ADX_PERIOD, windows.trend)


def parameters(windows: FamilyWindows, interval: Interval) -> dict[str, Value]:
    return {"window": windows.trend, "fast": FAST, "slow": SLOW, "adx_period": ADX_PERIOD}


def series(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    steps = (c.open_time - (c.open_time[0] if c.size else 0)) // interval.seconds
    slope = rolling_time_slope(c.close, steps, windows.trend)
    movement = directional(c.high, c.low, c.close, ADX_PERIOD, adjacent(c.open_time, interval.seconds))
    sma_fast, sma_slow = sma(c.close, FAST), sma(c.close, SLOW)
    ema_fast, ema_slow = ema(c.close, FAST), ema(c.close, SLOW)
    return {
        "sma_fast": sma_fast,
        "sma_slow": sma_slow,
        "sma_spread": sma_fast - sma_slow,
        "ema_fast": ema_fast,
        "ema_slow": ema_slow,
        "ema_spread": ema_fast - ema_slow,
        "slope": slope,
        "slope_percent": 100.0 * slope / rolling_mean(c.close, windows.trend),
        "adx": movement.adx,
        "plus_di": movement.plus_di,
        "minus_di": movement.minus_di,
    }


def crossover(spread: F64) -> dict[str, Value]:
    """State of a fast-minus-slow spread at its latest value, and the candles since its sign last changed."""
    valid = spread[~np.isnan(spread)]
    sign = np.sign(valid)
    changed = np.flatnonzero(sign != sign[-1])
    since = int(valid.size - 1 - changed[-1]) if changed.size else None
    if since == 1:
        state = "golden_cross" if sign[-1] > 0 else "death_cross" if sign[-1] < 0 else "equal"
    else:
        state = {1.0: "above", -1.0: "below", 0.0: "equal"}[float(sign[-1])]
    return {"state": state, "candles_since_cross": since}


def compute(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> FamilyResult:
    def values() -> dict[str, Value]:
        columns = series(c, windows, interval)
        latest: dict[str, Value] = {name: last(column) for name, column in columns.items()}
        latest["sma_cross"] = crossover(columns["sma_spread"])
        latest["ema_cross"] = crossover(columns["ema_spread"])
        return latest

    return evaluate(FAMILY, windows.trend, parameters(windows, interval), c.size, required(windows), values)
