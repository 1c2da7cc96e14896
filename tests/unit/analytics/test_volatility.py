"""Volatility estimators against closed forms on series built so each one is computable by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics import volatility
from datamanager_workers.analytics.model import periods_per_year
from tests.unit.analytics.synthetic import from_prices

W = 10
WINDOWS = FamilyWindows(volatility=W)
HOURLY = math.sqrt(24 * 365)
DAY = 86_400


@pytest.mark.parametrize(
    ("interval", "periods"),
    [
        (Interval.M1, 525_600),
        (Interval.M5, 105_120),
        (Interval.H1, 8_760),
        (Interval.H4, 2_190),
        (Interval.D1, 365),
    ],
)
def test_annualisation_is_24_7(interval: Interval, periods: int) -> None:
    assert periods_per_year(interval) == periods


def test_close_to_close_of_alternating_returns() -> None:
    # log returns +a, -a, +a, ...: mean 0 over an even window, sample variance W a^2 / (W - 1).
    a = 0.01
    close = 100.0 * np.exp(a * (np.arange(41) % 2))
    flat = from_prices(close, close, close, close)
    out = volatility.series(flat, WINDOWS, Interval.H1)["close_to_close"]
    assert np.isnan(out[:W]).all()
    np.testing.assert_allclose(out[W:], a * math.sqrt(W / (W - 1)) * HOURLY, rtol=1e-12)


def test_range_estimators_of_identical_candles() -> None:
    # Every candle opens at 1, closes at e^c, high e^h, low e^-l; consecutive candles join without a gap.
    h, low_, c, size = 0.03, 0.02, 0.01, 40
    levels = np.exp(c * np.arange(size))
    candles = from_prices(levels, levels * math.exp(h), levels * math.exp(-low_), levels * math.exp(c))
    out = volatility.series(candles, WINDOWS, Interval.H1)
    hl = h + low_
    parkinson = hl / math.sqrt(4.0 * math.log(2.0))
    garman_klass = math.sqrt(0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * c**2)
    rs = h * (h - c) + low_ * (low_ + c)
    k = 0.34 / (1.34 + (W + 1) / (W - 1))
    np.testing.assert_allclose(out["parkinson"][W - 1 :], parkinson * HOURLY, rtol=1e-12)
    np.testing.assert_allclose(out["garman_klass"][W - 1 :], garman_klass * HOURLY, rtol=1e-12)
    np.testing.assert_allclose(out["rogers_satchell"][W - 1 :], math.sqrt(rs) * HOURLY, rtol=1e-12)
    # No overnight jumps and a constant open-to-close return: Yang-Zhang reduces to (1 - k) RS.
    np.testing.assert_allclose(out["yang_zhang"][W:], math.sqrt((1.0 - k) * rs) * HOURLY, rtol=1e-10)
    np.testing.assert_allclose(out["close_to_close"][W:], 0.0, atol=1e-12)  # constant returns


def test_yang_zhang_with_alternating_overnight_jumps() -> None:
    # Opens jump +g/-g from the previous close; each candle is flat-bodied (close = open), high/low +-r.
    g, r, size = 0.004, 0.01, 41
    jumps = g * np.where(np.arange(size) % 2 == 1, 1.0, -1.0)
    jumps[0] = 0.0
    opens = 100.0 * np.exp(np.cumsum(jumps))
    candles = from_prices(opens, opens * math.exp(r), opens * math.exp(-r), opens, step_seconds=DAY)
    out = volatility.series(candles, WINDOWS, Interval.D1)
    rs = 2.0 * r * r
    k = 0.34 / (1.34 + (W + 1) / (W - 1))
    overnight = g * g * W / (W - 1)
    expected = math.sqrt(overnight + (1.0 - k) * rs) * math.sqrt(365)
    np.testing.assert_allclose(out["yang_zhang"][W + 1 :], expected, rtol=1e-10)


def test_atr_of_constant_range() -> None:
    close = np.full(30, 100.0)
    candles = from_prices(close, close + 2.0, close - 1.0, close)
    out = volatility.series(candles, WINDOWS, Interval.H1)
    assert np.isnan(out["atr"][: volatility.ATR_PERIOD]).all()
    np.testing.assert_allclose(out["atr"][volatility.ATR_PERIOD :], 3.0)
    np.testing.assert_allclose(out["atr_percent"][volatility.ATR_PERIOD :], 3.0)


def test_latest_values_and_parameters() -> None:
    a = 0.01
    close = 100.0 * np.exp(a * (np.arange(41) % 2))
    daily = from_prices(close, close, close, close, step_seconds=DAY)
    result = volatility.compute(daily, WINDOWS, Interval.D1)
    assert result.status == "ok"
    assert result.values["close_to_close"] == pytest.approx(a * math.sqrt(W / (W - 1)) * math.sqrt(365))
    assert result.parameters["periods_per_year"] == 365


def test_an_invalid_candle_gives_null_not_inf_and_no_warnings() -> None:
    close = 100.0 * np.exp(0.01 * (np.arange(41) % 2))
    low = close * 0.99
    low[-1] = 0.0  # a zero price: the audit's finding, not a crash or an infinite volatility here
    candles = from_prices(close, close * 1.01, low, close)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = volatility.compute(candles, WINDOWS, Interval.H1)
    assert result.values["parkinson"] is None
    assert result.values["close_to_close"] is not None


@pytest.mark.parametrize(("window", "required"), [(2, 15), (13, 15), (14, 15), (15, 16), (30, 31)])
def test_the_family_needs_w_returns_and_atrs_period_plus_one_candles(window: int, required: int) -> None:
    assert volatility.required(FamilyWindows(volatility=window)) == required


def test_the_result_names_its_window_and_parameters_exactly() -> None:
    close = 100.0 * np.exp(0.01 * (np.arange(41) % 2))
    result = volatility.compute(from_prices(close, close, close, close), WINDOWS, Interval.H1)
    assert (result.window, result.candles, result.required) == (W, 41, 15)
    assert result.parameters == {"window": W, "atr_period": 14, "periods_per_year": 8_760, "annualised": True}
    short = volatility.compute(
        from_prices(close[:14], close[:14], close[:14], close[:14]), WINDOWS, Interval.H1
    )
    assert (short.window, short.values, short.reason) == (
        W,
        {},
        "insufficient data: 14 candles, volatility needs at least 15",
    )
