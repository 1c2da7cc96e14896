"""Regime: one label per candle from fixed, documented thresholds on volatility, volume and trend.

Features: the annualised close-to-close volatility (volatility window), the relative volume (volume window)
and ADX with +DI / -DI (period 14). The first rule that matches wins:

1. ``volatile``       annualised volatility >= 1.00 (100 %/year)
2. ``volume_surge``   relative volume >= 3.0
3. ``trending_up``    ADX >= 25 and +DI >= -DI
4. ``trending_down``  ADX >= 25 and -DI > +DI
5. ``quiet``          annualised volatility <= 0.25 and relative volume <= 0.75
6. ``ranging``        everything else
"""

from __future__ import annotations

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics import trend, volatility, volume
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.indicators import directional
from datamanager_workers.analytics.model import FamilyResult, Value, evaluate, last

FAMILY = MetricFamily.REGIME
LABELS = ("volatile", "volume_surge", "trending_up", "trending_down", "quiet", "ranging")
VOLATILE_AT = 1.00
VOLUME_SURGE_AT = 3.0
TRENDING_ADX_AT = 25.0
QUIET_VOLATILITY_AT = 0.25
QUIET_VOLUME_AT = 0.75


def required(windows: FamilyWindows) -> int:
    return max(volatility.required(windows), volume.required(windows), 2 * trend.ADX_PERIOD)


def parameters(windows: FamilyWindows, interval: Interval) -> dict[str, Value]:
    return {
        "volatility_window": windows.volatility,
        "volume_window": windows.volume,
        "adx_period": trend.ADX_PERIOD,
        "volatile_at": VOLATILE_AT,
        "volume_surge_at": VOLUME_SURGE_AT,
        "trending_adx_at": TRENDING_ADX_AT,
        "quiet_volatility_at": QUIET_VOLATILITY_AT,
        "quiet_volume_at": QUIET_VOLUME_AT,
        "labels": list(LABELS),
    }


def classify(vol: F64, relative_volume: F64, adx: F64, plus_di: F64, minus_di: F64) -> F64:
    """Index into ``LABELS`` per candle; NaN where a feature is undefined."""
    trending = adx >= TRENDING_ADX_AT
    code = np.select(
        [
            vol >= VOLATILE_AT,
            relative_volume >= VOLUME_SURGE_AT,
            trending & (plus_di >= minus_di),
            trending,
            (vol <= QUIET_VOLATILITY_AT) & (relative_volume <= QUIET_VOLUME_AT),
        ],
        [0.0, 1.0, 2.0, 3.0, 4.0],
        default=5.0,
    )
    undefined = np.isnan(vol) | np.isnan(relative_volume) | np.isnan(adx)
    labelled: F64 = np.where(undefined, np.nan, code)
    return labelled


def series(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    vol = volatility.close_to_close(c.close, windows.volatility, interval)
    relative = volume.relative_volume(c.volume, windows.volume)
    movement = directional(c.high, c.low, c.close, trend.ADX_PERIOD)
    return {
        "label": classify(vol, relative, movement.adx, movement.plus_di, movement.minus_di),
        "volatility": vol,
        "relative_volume": relative,
        "adx": movement.adx,
        "plus_di": movement.plus_di,
        "minus_di": movement.minus_di,
    }


def compute(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> FamilyResult:
    def values() -> dict[str, Value]:
        columns = series(c, windows, interval)
        code = last(columns.pop("label"))
        features: dict[str, Value] = {name: last(column) for name, column in columns.items()}
        return {"label": None if code is None else LABELS[int(code)], **features}

    return evaluate(
        FAMILY, windows.volatility, parameters(windows, interval), c.size, required(windows), values
    )
