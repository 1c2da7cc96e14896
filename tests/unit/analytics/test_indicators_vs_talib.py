"""TA-Lib, an independent C implementation, as the reference for every classic indicator."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from datamanager_workers.analytics import indicators
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.rolling import rolling_time_slope

RTOL = 1e-6


def assert_matches(ours: F64, reference: F64) -> None:
    """Same warm-up (NaN positions) and, after it, equal within 1e-6 relative. Series that cross zero are
    compared relative to their own scale, since a relative error at a zero crossing means nothing."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    valid = ~np.isnan(reference)
    assert valid.sum() > 100
    scale = np.max(np.abs(reference[valid])) if np.any(reference[valid] <= 0) else 0.0
    np.testing.assert_allclose(ours[valid], reference[valid], rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("period", [2, 20, 50, 200])
def test_sma_and_ema(candles: CandleArrays, period: int) -> None:
    assert_matches(indicators.sma(candles.close, period), talib.SMA(candles.close, period))
    assert_matches(indicators.ema(candles.close, period), talib.EMA(candles.close, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi(candles: CandleArrays, period: int) -> None:
    assert_matches(indicators.rsi(candles.close, period), talib.RSI(candles.close, period))


@pytest.mark.parametrize("period", [5, 14])
def test_atr(candles: CandleArrays, period: int) -> None:
    c = candles
    assert_matches(indicators.atr(c.high, c.low, c.close, period), talib.ATR(c.high, c.low, c.close, period))


@pytest.mark.parametrize("period", [7, 14])
def test_adx_and_directional_indicators(candles: CandleArrays, period: int) -> None:
    c = candles
    ours = indicators.directional(c.high, c.low, c.close, period)
    assert_matches(ours.adx, talib.ADX(c.high, c.low, c.close, period))
    assert_matches(ours.plus_di, talib.PLUS_DI(c.high, c.low, c.close, period))
    assert_matches(ours.minus_di, talib.MINUS_DI(c.high, c.low, c.close, period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5)])
def test_macd(candles: CandleArrays, fast: int, slow: int, signal: int) -> None:
    line, signal_line, histogram = talib.MACD(candles.close, fast, slow, signal)
    ours = indicators.macd(candles.close, fast, slow, signal)
    assert_matches(ours.line, line)
    assert_matches(ours.signal, signal_line)
    assert_matches(ours.histogram, histogram)


@pytest.mark.parametrize("period", [5, 50])
def test_linear_regression_slope(candles: CandleArrays, period: int) -> None:
    """Against time in intervals: without gaps, TA-Lib's slope against the position."""
    steps = (candles.open_time - candles.open_time[0]) // 3600
    assert_matches(
        rolling_time_slope(candles.close, steps, period), talib.LINEARREG_SLOPE(candles.close, period)
    )


def test_too_short_series_are_all_warm_up() -> None:
    short = np.linspace(1.0, 2.0, 10)
    assert np.isnan(indicators.ema(short, 20)).all()
    assert np.isnan(indicators.rsi(short, 14)).all()
    assert np.isnan(indicators.atr(short, short, short, 14)).all()
    assert np.isnan(indicators.directional(short, short, short, 14).adx).all()
    assert np.isnan(indicators.macd(short, 12, 26, 9).histogram).all()


def test_rsi_extremes() -> None:
    rising = np.arange(1.0, 40.0)
    assert indicators.rsi(rising, 14)[-1] == pytest.approx(100.0)
    assert indicators.rsi(rising[::-1], 14)[-1] == pytest.approx(0.0)
    assert indicators.rsi(np.full(30, 5.0), 14)[-1] == 50.0  # nothing moved: neutral, not a division by zero
