"""Trend crossovers, slope and momentum on series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics import momentum, trend
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from tests.unit.analytics.synthetic import from_prices, random_walk


def line(close: F64) -> CandleArrays:
    return from_prices(close, close + 1.0, close - 1.0, close)


def test_crossover_states() -> None:
    spread = np.array([np.nan, -2.0, -1.0, 1.0])
    assert trend.crossover(spread) == {"state": "golden_cross", "candles_since_cross": 1}
    assert trend.crossover(-spread) == {"state": "death_cross", "candles_since_cross": 1}
    assert trend.crossover(np.array([-1.0, 1.0, 2.0, 3.0])) == {"state": "above", "candles_since_cross": 3}
    assert trend.crossover(np.array([-1.0, -2.0])) == {"state": "below", "candles_since_cross": None}
    assert trend.crossover(np.array([1.0, 0.0, 0.0])) == {"state": "equal", "candles_since_cross": 2}


def test_a_rise_after_a_fall_is_a_golden_cross_on_the_day_it_happens() -> None:
    falling = 200.0 - 100.0 * np.arange(80) / 79
    close = np.concatenate((falling, 100.0 + 4.0 * np.arange(1, 200)))
    spreads = trend.series(line(close), FamilyWindows(), Interval.H1)["sma_spread"]
    first_above = int(np.flatnonzero(spreads > 0)[0])
    result = trend.compute(line(close[: first_above + 1]), FamilyWindows(), Interval.H1)
    assert result.values["sma_cross"] == {"state": "golden_cross", "candles_since_cross": 1}
    later = trend.compute(line(close), FamilyWindows(), Interval.H1)
    assert later.values["sma_cross"] == {"state": "above", "candles_since_cross": close.size - first_above}


def test_slope_of_a_straight_line() -> None:
    close = 1_000.0 + 2.5 * np.arange(120, dtype=np.float64)
    result = trend.compute(line(close), FamilyWindows(trend=40), Interval.H1)
    assert result.values["slope"] == pytest.approx(2.5)
    assert result.values["slope_percent"] == pytest.approx(100.0 * 2.5 / np.mean(close[-40:]))
    assert result.values["adx"] == pytest.approx(100.0)  # only upward movement
    assert result.values["minus_di"] == 0.0


def test_rate_of_change() -> None:
    close = np.array([100.0, 110.0, 121.0, 133.1])
    hours = 3600 * np.arange(4, dtype=np.int64)
    np.testing.assert_allclose(momentum.rate_of_change(close, hours, 2, 3600)[2:], [21.0, 21.0])
    assert np.isnan(momentum.rate_of_change(close, hours, 2, 3600)[:2]).all()


def test_rate_of_change_compares_with_the_close_w_intervals_earlier_in_time() -> None:
    """Across a gap, w candles back is more than w intervals back: the change is taken from the candle w
    intervals earlier, and is undefined where that candle is missing."""
    close = np.array([100.0, 110.0, 121.0, 133.1, 146.41])
    hours = 3600 * np.array([0, 1, 3, 4, 5], dtype=np.int64)  # the candle at 2h is missing
    roc = momentum.rate_of_change(close, hours, 2, 3600)
    assert np.isnan(roc[[0, 1, 3]]).all()  # 1h, 2h (missing) before 3h
    np.testing.assert_allclose(roc[[2, 4]], [100.0 * (121.0 / 110.0 - 1), 100.0 * (146.41 / 121.0 - 1)])


def test_momentum_values() -> None:
    result = momentum.compute(random_walk(200), FamilyWindows(), Interval.H1)
    assert result.status == "ok"
    assert set(result.values) == {"rsi", "macd", "macd_signal", "macd_histogram", "roc"}
    line_, signal, histogram = (result.values[name] for name in ("macd", "macd_signal", "macd_histogram"))
    assert isinstance(line_, float)
    assert isinstance(signal, float)
    assert histogram == pytest.approx(line_ - signal)
    assert all(isinstance(value, float) for value in result.values.values())
