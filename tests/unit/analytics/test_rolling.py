"""Trailing-window sums, variances and slopes against direct per-window computations."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.rolling import rolling_mean, rolling_slope, rolling_sum, rolling_var


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
