"""The per-symbol families by name: what the job runs and what the benchmark times."""

from __future__ import annotations

from collections.abc import Callable

from datamanager.api.analyticsjob import AnalyticsJobSpec, FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics import momentum, regime, trend, volatility, volume
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.model import FamilyResult

Compute = Callable[[CandleArrays, FamilyWindows, Interval], FamilyResult]
Series = Callable[[CandleArrays, FamilyWindows, Interval], dict[str, F64]]

# Correlation is not here: it needs every symbol of an interval at once (see correlation.py).
COMPUTE: dict[MetricFamily, Compute] = {
    MetricFamily.VOLATILITY: volatility.compute,
    MetricFamily.VOLUME: volume.compute,
    MetricFamily.TREND: trend.compute,
    MetricFamily.MOMENTUM: momentum.compute,
    MetricFamily.REGIME: regime.compute,
}

SERIES: dict[MetricFamily, Series] = {
    MetricFamily.VOLATILITY: volatility.series,
    MetricFamily.VOLUME: volume.series,
    MetricFamily.TREND: trend.series,
    MetricFamily.MOMENTUM: momentum.series,
    MetricFamily.REGIME: regime.series,
}


def compute(
    family: MetricFamily, c: CandleArrays, spec: AnalyticsJobSpec, interval: Interval
) -> FamilyResult:
    """One family's result as the spec configures it (the regime's thresholds come from ``spec.regime``)."""
    if family is MetricFamily.REGIME:
        return regime.compute(c, spec.windows, interval, spec.regime)
    return COMPUTE[family](c, spec.windows, interval)
