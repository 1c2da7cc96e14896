"""Too few candles give an explicit result with the counts, never a number from too few points."""

from __future__ import annotations

import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics import momentum, regime, trend, volatility, volume
from datamanager_workers.analytics.model import INSUFFICIENT_DATA, OK
from tests.unit.analytics.synthetic import random_walk

FAMILIES = [volatility, volume, trend, momentum, regime]
WINDOWS = FamilyWindows(volatility=30, volume=20, trend=60, momentum=14)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda module: module.FAMILY.value)
def test_one_candle_short(family: object) -> None:
    needed = family.required(WINDOWS)  # type: ignore[attr-defined]
    result = family.compute(random_walk(needed - 1), WINDOWS, Interval.H1)  # type: ignore[attr-defined]
    assert result.status == INSUFFICIENT_DATA
    assert (result.candles, result.required) == (needed - 1, needed)
    assert result.values == {}
    assert f"{needed - 1} candles, {result.family.value} needs at least {needed}" in result.reason


@pytest.mark.parametrize("family", FAMILIES, ids=lambda module: module.FAMILY.value)
def test_exactly_enough_gives_every_value(family: object) -> None:
    needed = family.required(WINDOWS)  # type: ignore[attr-defined]
    result = family.compute(random_walk(needed), WINDOWS, Interval.H1)  # type: ignore[attr-defined]
    assert result.status == OK
    assert result.values
    assert all(value is not None for value in result.values.values())


def test_required_counts_follow_the_windows() -> None:
    assert volatility.required(WINDOWS) == 31  # 30 returns
    assert volume.required(WINDOWS) == 21  # relative volume looks at the 20 before
    assert trend.required(WINDOWS) == 60  # the slope window beats SMA50 + 1
    assert momentum.required(FamilyWindows(momentum=50)) == 51
    assert momentum.required(WINDOWS) == 34  # MACD's signal line
    assert regime.required(WINDOWS) == 31
