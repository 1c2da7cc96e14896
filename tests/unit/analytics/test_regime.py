"""Every regime label is reachable, with the documented precedence and thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics import regime
from tests.unit.analytics.synthetic import from_prices

# (annualised volatility, relative volume, ADX, +DI, -DI) -> label
CASES = [
    ((1.00, 1.0, 10.0, 20.0, 20.0), "volatile"),
    ((1.50, 5.0, 40.0, 30.0, 10.0), "volatile"),  # volatility outranks everything
    ((0.50, 3.0, 40.0, 30.0, 10.0), "volume_surge"),  # then volume
    ((0.50, 1.0, 25.0, 30.0, 10.0), "trending_up"),
    ((0.50, 1.0, 25.0, 20.0, 20.0), "trending_up"),  # a tie in direction counts as up
    ((0.50, 1.0, 30.0, 10.0, 30.0), "trending_down"),
    ((0.10, 0.5, 30.0, 10.0, 30.0), "trending_down"),  # trend outranks quiet
    ((0.25, 0.75, 10.0, 20.0, 20.0), "quiet"),
    ((0.20, 0.80, 10.0, 20.0, 20.0), "ranging"),  # calm prices but ordinary volume
    ((0.50, 1.0, 24.9, 30.0, 10.0), "ranging"),
]


def test_every_label_is_reachable() -> None:
    assert {label for _, label in CASES} == set(regime.LABELS)


@pytest.mark.parametrize(("features", "label"), CASES)
def test_classify(features: tuple[float, ...], label: str) -> None:
    codes = regime.classify(*(np.array([value]) for value in features))
    assert regime.LABELS[int(codes[0])] == label


def test_undefined_features_give_no_label() -> None:
    nan, one = np.array([np.nan]), np.array([1.0])
    assert np.isnan(regime.classify(nan, one, one, one, one)).all()
    assert np.isnan(regime.classify(one, nan, one, one, one)).all()
    assert np.isnan(regime.classify(one, one, nan, one, one)).all()


def test_labels_from_candles() -> None:
    size = 60
    rng = np.random.default_rng(2)
    calm = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, size)))
    wild = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.1, size)))
    volume = np.ones(size)
    volume[-1] = 0.5
    for close, label in ((calm, "quiet"), (wild, "volatile")):
        candles = from_prices(close, close * 1.0001, close * 0.9999, close, volume)
        result = regime.compute(candles, FamilyWindows(), Interval.D1)
        assert result.values["label"] == label
        assert result.parameters["labels"] == list(regime.LABELS)
