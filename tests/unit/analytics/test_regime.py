"""Every regime label is reachable, with the documented precedence and thresholds; volatility is judged
against the symbol's own (issue 15, item 9), and the thresholds are configurable."""

from __future__ import annotations

import numpy as np
import pytest

from datamanager.api.analyticsjob import FamilyWindows, RegimeThresholds
from datamanager.api.common import Interval
from datamanager_workers.analytics import regime
from tests.unit.analytics.synthetic import from_prices

# (annualised volatility, baseline, relative volume, ADX, +DI, -DI) -> label, with the default thresholds
CASES = [
    ((0.90, 0.60, 1.0, 10.0, 20.0, 20.0), "volatile"),  # 1.5 x its own volatility
    ((1.50, 0.60, 5.0, 40.0, 30.0, 10.0), "volatile"),  # volatility outranks everything
    ((0.89, 0.60, 3.0, 40.0, 30.0, 10.0), "volume_surge"),  # then volume
    ((0.50, 0.60, 1.0, 25.0, 30.0, 10.0), "trending_up"),
    ((0.50, 0.60, 1.0, 25.0, 20.0, 20.0), "trending_up"),  # a tie in direction counts as up
    ((0.50, 0.60, 1.0, 30.0, 10.0, 30.0), "trending_down"),
    ((0.10, 0.60, 0.5, 30.0, 10.0, 30.0), "trending_down"),  # trend outranks quiet
    ((0.30, 0.60, 0.75, 10.0, 20.0, 20.0), "quiet"),  # half its own volatility, low volume
    ((0.20, 0.60, 0.80, 10.0, 20.0, 20.0), "ranging"),  # calm prices but ordinary volume
    ((0.50, 0.60, 1.0, 24.9, 30.0, 10.0), "ranging"),
]


def label(features: tuple[float, ...], thresholds: RegimeThresholds = regime.DEFAULTS) -> str:
    vol, baseline, relative, adx, plus_di, minus_di = (np.array([value]) for value in features)
    codes = regime.classify(vol, baseline, relative, adx, plus_di, minus_di, thresholds)
    return regime.LABELS[int(codes[0])]


def test_every_label_is_reachable() -> None:
    assert {label for _, label in CASES} == set(regime.LABELS)


@pytest.mark.parametrize(("features", "expected"), CASES)
def test_classify(features: tuple[float, ...], expected: str) -> None:
    assert label(features) == expected


@pytest.mark.parametrize(("features", "expected"), CASES)
@pytest.mark.parametrize("scale", [0.25, 4.0])
def test_labels_do_not_depend_on_how_volatile_the_symbol_usually_is(
    features: tuple[float, ...], expected: str, scale: float
) -> None:
    """An alt that runs at 60-120 % a year and a major at 30 % are judged alike against themselves: the
    absolute 100 % threshold called the alt "volatile" nearly always."""
    vol, baseline, *rest = features
    assert label((vol * scale, baseline * scale, *rest)) == expected


def test_an_alt_at_its_usual_90_percent_a_year_is_not_volatile() -> None:
    assert label((0.90, 0.90, 1.0, 10.0, 20.0, 20.0)) == "ranging"
    assert label((1.40, 0.90, 1.0, 10.0, 20.0, 20.0)) == "volatile"


def test_the_thresholds_are_configurable() -> None:
    strict = RegimeThresholds(volatile_ratio=1.2, quiet_ratio=0.9, volume_surge=2.0, quiet_volume=0.9,
                              trending_adx=40.0)  # fmt: skip
    assert label((0.75, 0.60, 1.0, 10.0, 20.0, 20.0), strict) == "volatile"
    assert label((0.50, 0.60, 2.0, 10.0, 20.0, 20.0), strict) == "volume_surge"
    assert label((0.50, 0.60, 1.0, 30.0, 30.0, 10.0), strict) == "ranging"  # ADX 30 < 40
    assert label((0.50, 0.60, 0.9, 30.0, 30.0, 10.0), strict) == "quiet"


def test_undefined_features_give_no_label() -> None:
    nan, one = np.array([np.nan]), np.array([1.0])
    for undefined in range(4):
        features = [one] * 6
        features[undefined] = nan
        vol, baseline, relative, adx, plus_di, minus_di = features
        assert np.isnan(regime.classify(vol, baseline, relative, adx, plus_di, minus_di)).all()


def test_the_baseline_is_the_volatility_of_every_return_so_far() -> None:
    size = 200
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, size)))
    candles = from_prices(close, close, close, close, step_seconds=86_400)
    baseline = regime.baseline_volatility(candles, 30, Interval.D1)
    returns = np.diff(np.log(close))
    assert np.isnan(baseline[:30]).all()
    for i in (30, 31, 100, size - 1):
        assert baseline[i] == pytest.approx(np.std(returns[:i], ddof=1) * np.sqrt(365), rel=1e-12)


def test_labels_from_candles() -> None:
    """A calm spell after a normal stretch is quiet; a wild one is volatile."""
    size = 200
    rng = np.random.default_rng(2)
    normal = rng.normal(0.0, 0.01, size)
    volume = np.ones(size)
    volume[-1] = 0.5
    for scale, expected in ((0.1, "quiet"), (5.0, "volatile")):
        returns = normal.copy()
        returns[-30:] *= scale
        close = 100.0 * np.exp(np.cumsum(returns))
        candles = from_prices(close, close * 1.0001, close * 0.9999, close, volume, step_seconds=86_400)
        result = regime.compute(candles, FamilyWindows(), Interval.D1)
        assert result.values["label"] == expected
        assert result.parameters["labels"] == list(regime.LABELS)
        assert result.parameters["volatileRatio"] == 1.5
