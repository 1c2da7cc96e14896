"""Regime: one label per candle from documented, configurable thresholds on volatility, volume and trend.

Features: the annualised close-to-close volatility (volatility window) and the symbol's baseline, the same
volatility over every return of the look-back up to that candle (so a symbol is judged against itself: an alt
that runs at 90 % a year is not always "volatile", and a major at 40 % can be); the relative volume (volume
window); ADX with +DI / -DI (period 14). Returns, true ranges and directional movements are taken between
adjacent candles only (``gaps``). The first rule that matches wins (``spec.regime``, defaults shown):

1. ``volatile``       volatility >= volatileRatio (1.5) x baseline
2. ``volume_surge``   relative volume >= volumeSurge (3.0)
3. ``trending_up``    ADX >= trendingAdx (25) and +DI >= -DI
4. ``trending_down``  ADX >= trendingAdx and -DI > +DI
5. ``quiet``          volatility <= quietRatio (0.5) x baseline and relative volume <= quietVolume (0.75)
6. ``ranging``        everything else
"""

from __future__ import annotations

import math

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily, RegimeThresholds
from datamanager.api.common import Interval
from datamanager_workers.analytics import trend, volatility, volume
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.gaps import Defined, adjacent
from datamanager_workers.analytics.indicators import directional
from datamanager_workers.analytics.model import FamilyResult, Value, evaluate, last, periods_per_year

FAMILY = MetricFamily.REGIME
LABELS = ("volatile", "volume_surge", "trending_up", "trending_down", "quiet", "ranging")
DEFAULTS = RegimeThresholds()


def required(windows: FamilyWindows) -> int:
    return max(volatility.required(windows), volume.required(windows), 2 * trend.ADX_PERIOD)


def parameters(windows: FamilyWindows, thresholds: RegimeThresholds) -> dict[str, Value]:
    return {
        "volatility_window": windows.volatility,
        "volume_window": windows.volume,
        "adx_period": trend.ADX_PERIOD,
        "baseline": "close-to-close volatility over the look-back up to the candle",
        **thresholds.model_dump(by_alias=True),
        "labels": list(LABELS),
    }


def expanding_std(x: F64, minimum: int) -> F64:
    """Sample standard deviation of ``x[0 .. i]`` at every i, NaN where fewer than ``minimum`` values. The
    values are centred on their mean first: the prefix sums of returns then stay near 0, and the variance
    from them loses nothing to cancellation."""
    out = np.full(x.size, np.nan)
    if x.size < max(minimum, 2):
        return out
    centred = x - x.mean()
    count = np.arange(1, x.size + 1, dtype=np.float64)
    s1, s2 = np.cumsum(centred), np.cumsum(centred * centred)
    start = max(minimum, 2) - 1
    variance = (s2[start:] - s1[start:] * s1[start:] / count[start:]) / (count[start:] - 1)
    out[start:] = np.sqrt(np.maximum(variance, 0.0))
    return out


def baseline_volatility(c: CandleArrays, window: int, interval: Interval) -> F64:
    """Annualised volatility of every return between adjacent candles up to each candle, from the
    ``window``-th return on (no baseline is shorter than the volatility it judges)."""
    returns = Defined(adjacent(c.open_time, interval.seconds))
    std = returns.spread(expanding_std(returns.take(volatility.log_returns(c.close)), window))
    out: F64 = std * math.sqrt(periods_per_year(interval))
    return out


def classify(
    vol: F64,
    baseline: F64,
    relative_volume: F64,
    adx: F64,
    plus_di: F64,
    minus_di: F64,
    thresholds: RegimeThresholds = DEFAULTS,
) -> F64:
    """Index into ``LABELS`` per candle; NaN where a feature is undefined."""
    trending = adx >= thresholds.trending_adx
    with np.errstate(invalid="ignore"):
        code = np.select(
            [
                vol >= thresholds.volatile_ratio * baseline,
                relative_volume >= thresholds.volume_surge,
                trending & (plus_di >= minus_di),
                trending,
                (vol <= thresholds.quiet_ratio * baseline) & (relative_volume <= thresholds.quiet_volume),
            ],
            [0.0, 1.0, 2.0, 3.0, 4.0],
            default=5.0,
        )
    undefined = np.isnan(vol) | np.isnan(baseline) | np.isnan(relative_volume) | np.isnan(adx)
    labelled: F64 = np.where(undefined, np.nan, code)
    return labelled


def series(
    c: CandleArrays, windows: FamilyWindows, interval: Interval, thresholds: RegimeThresholds = DEFAULTS
) -> dict[str, F64]:
    vol = volatility.close_to_close(c, windows.volatility, interval)
    baseline = baseline_volatility(c, windows.volatility, interval)
    relative = volume.relative_volume(c.volume, windows.volume)
    movement = directional(c.high, c.low, c.close, trend.ADX_PERIOD, adjacent(c.open_time, interval.seconds))
    labels = classify(vol, baseline, relative, movement.adx, movement.plus_di, movement.minus_di, thresholds)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = vol / baseline
    return {
        "label": labels,
        "volatility": vol,
        "baseline_volatility": baseline,
        "volatility_ratio": ratio,
        "relative_volume": relative,
        "adx": movement.adx,
        "plus_di": movement.plus_di,
        "minus_di": movement.minus_di,
    }


def compute(
    c: CandleArrays, windows: FamilyWindows, interval: Interval, thresholds: RegimeThresholds = DEFAULTS
) -> FamilyResult:
    def values() -> dict[str, Value]:
        columns = series(c, windows, interval, thresholds)
        code = last(columns.pop("label"))
        features: dict[str, Value] = {name: last(column) for name, column in columns.items()}
        return {"label": None if code is None else LABELS[int(code)], **features}

    return evaluate(
        FAMILY, windows.volatility, parameters(windows, thresholds), c.size, required(windows), values
    )
