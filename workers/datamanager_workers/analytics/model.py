"""What a family computes for one dataset (symbol x interval): values, or an explicit lack of data."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

import numpy as np

from datamanager.api.analyticsjob import MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64

Value: TypeAlias = float | int | str | bool | datetime | list["Value"] | dict[str, "Value"] | None

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"

SECONDS_PER_DAY = 86_400
DAYS_PER_YEAR = 365  # crypto trades 24/7: no 252-trading-day year


def periods_per_year(interval: Interval) -> float:
    """Candles in a 365-day year of round-the-clock trading: 365 x candles per day."""
    return DAYS_PER_YEAR * SECONDS_PER_DAY / interval.seconds


@dataclass(frozen=True)
class FamilyResult:
    family: MetricFamily
    window: int
    parameters: dict[str, Value]
    candles: int  # candles available
    required: int  # candles the family needs before it reports a number
    values: dict[str, Value] = field(default_factory=dict)
    reason: str | None = None  # why there are no values
    excluded: int = 0  # bad candles left out before computing (see candles.py); ``candles`` counts the rest

    @property
    def status(self) -> str:
        return OK if self.reason is None else INSUFFICIENT_DATA


def evaluate(
    family: MetricFamily,
    window: int,
    parameters: dict[str, Value],
    candles: int,
    required: int,
    values: Callable[[], dict[str, Value]],
) -> FamilyResult:
    """Compute ``values`` only when there are enough candles; otherwise say how many are missing."""
    if candles < required:
        return FamilyResult(
            family,
            window,
            parameters,
            candles,
            required,
            reason=f"insufficient data: {candles} candles, {family.value} needs at least {required}",
        )
    # Bad candles are excluded before (candles.py); what is still undefined (a ratio over a silent window)
    # yields NaN, reported as null below, so numpy's warnings would only repeat it in the log.
    with np.errstate(divide="ignore", invalid="ignore"):
        computed = values()
    return FamilyResult(family, window, parameters, candles, required, computed)


def last(series: F64) -> float | None:
    """The latest value of a series; None where it is undefined (NaN, or inf from invalid candles)."""
    value = float(series[-1])
    return value if math.isfinite(value) else None
