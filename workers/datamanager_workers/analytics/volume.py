"""Volume: totals, SMA and EMA, relative volume, VWAP anchored on the UTC day, taker-buy ratio.

Over a trailing window of ``w`` candles:

- total_volume, total_quote_volume: sums of base and quote volume
- volume_sma, volume_ema: SMA and EMA (alpha = 2 / (w + 1), SMA-seeded) of base volume
- relative_volume: this candle's volume / the mean volume of the ``w`` candles before it
- taker_buy_ratio: taker-buy base volume / base volume over the window (0.5 = balanced)
- vwap: quote volume / base volume accumulated since 00:00 UTC of the candle's day. Quote volume is the exact
  traded value, so this is the true VWAP, not the typical-price approximation.
"""

from __future__ import annotations

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64, I64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.indicators import ema
from datamanager_workers.analytics.model import (
    SECONDS_PER_DAY,
    FamilyResult,
    Value,
    evaluate,
    last,
)
from datamanager_workers.analytics.rolling import rolling_mean, rolling_sum

FAMILY = MetricFamily.VOLUME


def required(windows: FamilyWindows) -> int:
    """Relative volume compares a candle with the ``w`` before it."""
    return windows.volume + 1


def parameters(windows: FamilyWindows, interval: Interval) -> dict[str, Value]:
    return {"window": windows.volume, "vwap_anchor": "UTC day"}


def day_cumsum(x: F64, open_time: I64) -> F64:
    """Running sum of ``x`` that restarts at each UTC day (candles ordered by time).

    Each day becomes one row of a (days, candles per day) grid and is summed along its row. Subtracting a
    global running sum instead would cost the first candles of a day most of their digits once the running
    sum is months of volume. The grid is no larger than days x the most candles in a day (1,440 for 1m).
    """
    if x.size == 0:
        return np.empty(0)
    day = open_time // SECONDS_PER_DAY
    is_start = np.empty(x.size, dtype=bool)
    is_start[0] = True
    is_start[1:] = day[1:] != day[:-1]
    day_number = np.cumsum(is_start) - 1
    position = np.arange(x.size) - np.flatnonzero(is_start)[day_number]
    grid = np.zeros((int(day_number[-1]) + 1, int(position.max()) + 1))
    grid[day_number, position] = x
    out: F64 = np.cumsum(grid, axis=1)[day_number, position]
    return out


def relative_volume(volume: F64, window: int) -> F64:
    """Each candle's volume over the mean of the ``window`` candles before it; NaN where that mean is 0."""
    previous_mean = np.full(volume.size, np.nan)
    previous_mean[1:] = rolling_mean(volume[:-1], window)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F64 = np.where(previous_mean > 0, volume / previous_mean, np.nan)
    return out


def series(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    w = windows.volume
    with np.errstate(invalid="ignore", divide="ignore"):
        window_volume = rolling_sum(c.volume, w)
        taker_ratio = rolling_sum(c.taker_buy_volume, w) / window_volume
        vwap = day_cumsum(c.quote_volume, c.open_time) / day_cumsum(c.volume, c.open_time)
    return {
        "total_volume": window_volume,
        "total_quote_volume": rolling_sum(c.quote_volume, w),
        "volume_sma": window_volume / w,
        "volume_ema": ema(c.volume, w),
        "relative_volume": relative_volume(c.volume, w),
        "taker_buy_ratio": taker_ratio,
        "vwap": vwap,
    }


def compute(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> FamilyResult:
    def values() -> dict[str, Value]:
        return {name: last(column) for name, column in series(c, windows, interval).items()}

    return evaluate(FAMILY, windows.volume, parameters(windows, interval), c.size, required(windows), values)
