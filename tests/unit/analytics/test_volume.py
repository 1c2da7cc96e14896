"""Volume family on hand-made candles."""

from __future__ import annotations

import numpy as np
import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics import volume
from datamanager_workers.analytics.candles import CandleArrays
from tests.unit.analytics.synthetic import START

WINDOWS = FamilyWindows(volume=3)


def six_hour_candles() -> CandleArrays:
    """Eight 6-hour candles: four on day one, four on day two."""
    base = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0])
    price = np.array([10.0, 20.0, 30.0, 40.0, 100.0, 100.0, 200.0, 200.0])
    return CandleArrays(
        open_time=START + 6 * 3600 * np.arange(8, dtype=np.int64),
        open=price,
        high=price,
        low=price,
        close=price,
        volume=base,
        quote_volume=base * price,
        taker_buy_volume=base * np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5]),
    )


def test_vwap_restarts_at_the_utc_day() -> None:
    out = volume.series(six_hour_candles(), WINDOWS, Interval.H1)["vwap"]
    day_one = np.cumsum([10.0, 40.0, 90.0, 160.0]) / np.cumsum([1.0, 2.0, 3.0, 4.0])
    day_two = np.cumsum([1000.0, 2000.0, 6000.0, 8000.0]) / np.cumsum([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_allclose(out, np.concatenate((day_one, day_two)), rtol=1e-14)


def test_totals_averages_ratio_and_relative_volume() -> None:
    out = volume.series(six_hour_candles(), WINDOWS, Interval.H1)
    np.testing.assert_allclose(out["total_volume"][2:], [6.0, 9.0, 17.0, 34.0, 60.0, 90.0])
    np.testing.assert_allclose(out["volume_sma"][-1], 30.0)
    # EMA(3): alpha 0.5, seeded with the mean of the first three volumes (2.0).
    np.testing.assert_allclose(out["volume_ema"][2:5], [2.0, 3.0, 6.5])
    np.testing.assert_allclose(out["taker_buy_ratio"][2], (1.0 + 3.0) / 6.0)
    np.testing.assert_allclose(out["relative_volume"][3], 4.0 / 2.0)  # against the three candles before
    assert np.isnan(out["relative_volume"][:3]).all()


def test_relative_volume_undefined_after_silence() -> None:
    assert np.isnan(volume.relative_volume(np.array([0.0, 0.0, 0.0, 5.0]), 3)[-1])


def test_compute_reports_the_latest_candle() -> None:
    result = volume.compute(six_hour_candles(), WINDOWS, Interval.H1)
    assert result.status == "ok"
    assert result.values["total_volume"] == 90.0
    assert result.values["vwap"] == pytest.approx(17_000.0 / 100.0)
    assert result.values["relative_volume"] == pytest.approx(40.0 / 20.0)
