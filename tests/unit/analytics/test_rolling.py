"""Trailing-window sums, variances and slopes against direct per-window computations (slopes against exact
rational arithmetic where precision is the point)."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from datamanager_workers.analytics import rolling
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.rolling import (
    rolling_mean,
    rolling_slope,
    rolling_sum,
    rolling_time_slope,
    rolling_var,
)


@pytest.fixture(scope="module")
def prices() -> F64:
    rng = np.random.default_rng(5)
    return 50_000.0 + np.cumsum(rng.normal(0.0, 20.0, 20_003))


@pytest.mark.parametrize("window", [1, 2, 3, 30, 1_000])
def test_sum_and_mean(prices: F64, window: int) -> None:
    windows = sliding_window_view(prices, window)
    sums = rolling_sum(prices, window)
    assert np.isnan(sums[: window - 1]).all()
    np.testing.assert_allclose(sums[window - 1 :], windows.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(rolling_mean(prices, window)[window - 1 :], windows.mean(axis=1), rtol=1e-14)


@pytest.mark.parametrize("window", [5, 30, 500])
def test_sample_variance_of_log_returns(prices: F64, window: int) -> None:
    returns = np.diff(np.log(prices))
    expected = sliding_window_view(returns, window).var(axis=1, ddof=1)
    np.testing.assert_allclose(rolling_var(returns, window)[window - 1 :], expected, rtol=1e-10)


@pytest.mark.parametrize("window", [2, 5, 50, 333])
def test_slope(prices: F64, window: int) -> None:
    windows = sliding_window_view(prices, window)
    k = np.arange(window) - (window - 1) / 2.0
    expected = (windows - windows.mean(axis=1, keepdims=True)) @ k / (k @ k)
    ours = rolling_slope(prices, window)
    assert np.isnan(ours[: window - 1]).all()
    np.testing.assert_allclose(ours[window - 1 :], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_slope_of_a_line_is_exact() -> None:
    line = 3.0 + 0.25 * np.arange(100.0)
    np.testing.assert_allclose(rolling_slope(line, 10)[9:], 0.25, rtol=1e-12)


def test_window_longer_than_the_series_is_all_nan() -> None:
    x = np.ones(5)
    assert np.isnan(rolling_sum(x, 6)).all()
    assert np.isnan(rolling_slope(x, 6)).all()


def test_invalid_windows() -> None:
    with pytest.raises(ValueError, match="window"):
        rolling_sum(np.ones(3), 0)
    with pytest.raises(ValueError, match="ddof"):
        rolling_var(np.ones(3), 1)
    with pytest.raises(ValueError, match="window"):
        rolling_slope(np.ones(3), 1)


def exact_slope(t: F64, y: F64) -> float:
    """The least-squares slope computed exactly (fractions of the floats given), as the reference."""
    times, values = [Fraction(float(v)) for v in t], [Fraction(float(v)) for v in y]
    t_bar, y_bar = sum(times) / len(times), sum(values) / len(values)
    num = sum((a - t_bar) * (b - y_bar) for a, b in zip(times, values, strict=True))
    return float(num / sum((a - t_bar) ** 2 for a in times))


def test_the_slope_of_prices_far_from_zero_keeps_its_digits() -> None:
    """Shifted by the first value, a series around 1e9 moving by a thousandth per step loses nothing."""
    y = 1e9 + 0.001 * np.arange(60.0) + 1e-4 * np.sin(np.arange(60.0))
    ours = rolling_slope(y, 40)
    expected = [exact_slope(np.arange(40.0), y[e - 39 : e + 1]) for e in range(39, 60)]
    np.testing.assert_allclose(ours[39:], expected, rtol=1e-9)


@pytest.mark.parametrize("window", [3, 5])
def test_a_series_exactly_one_window_long_has_one_slope_even_across_a_gap(window: int) -> None:
    steps = np.arange(window, dtype=np.int64)
    steps[-1] += 2  # two intervals missing before the last value
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0][:window])
    out = rolling_time_slope(y, steps, window)
    assert np.isnan(out[:-1]).all()
    assert out[-1] == pytest.approx(exact_slope(steps.astype(np.float64), y), rel=1e-12)


@pytest.mark.parametrize("missing", [1, 2, 3, 7])
@pytest.mark.parametrize("chunk", [None, 8])
def test_windows_across_a_gap_are_regressed_on_time_whatever_the_gap_and_chunk(
    missing: int, chunk: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every window spanning a gap of 1 to 7 missing intervals, computed whole or a few windows at a time;
    two gaps at levels 1e9 apart in one chunk, so each window must be centred on its own mean."""
    if chunk is not None:
        monkeypatch.setattr(rolling, "_CHUNK_VALUES", chunk)
    window = 4
    steps = np.arange(40, dtype=np.int64)
    steps[10:] += missing
    steps[30:] += missing
    y = np.where(np.arange(40) < 20, 1e9, 0.0) + 0.001 * steps + 1e-4 * np.cos(np.arange(40.0))
    out = rolling_time_slope(y, steps, window)
    assert np.isnan(out[: window - 1]).all()
    for end in [*range(10, 10 + window - 1), *range(30, 30 + window - 1)]:
        first = end - window + 1
        expected = exact_slope(steps[first : end + 1].astype(np.float64), y[first : end + 1])
        assert out[end] == pytest.approx(expected, rel=1e-9), end
    consecutive = [e for e in range(window - 1, 40) if steps[e] - steps[e - window + 1] == window - 1]
    np.testing.assert_allclose(out[consecutive], rolling_slope(y, window)[consecutive], rtol=0, atol=0)


def test_a_variance_that_rounding_makes_negative_is_clipped_to_0() -> None:
    """Two constant stretches far apart: sum of squares minus squared sum is -6e-11 on the second, not 0."""
    x = np.array([0.3] * 5 + [1e3] * 5)
    var = rolling_var(x, 3)
    assert np.isnan(var[:2]).all()
    assert (var[[2, 3, 4, 7, 8, 9]] == 0.0).all()
    assert (var[5:7] > 0).all()


def test_an_empty_series_has_an_empty_variance_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rolling_var(np.array([]), 3).size == 0
