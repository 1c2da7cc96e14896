"""Correlation of log returns aligned by timestamp, against numpy.corrcoef."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from datamanager.api.analyticsjob import FamilyWindows
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64, I64
from datamanager_workers.analytics.correlation import Closes, compute
from datamanager_workers.analytics.model import FamilyResult
from tests.unit.analytics.synthetic import START

HOUR = 3600


def as_array(result: FamilyResult) -> F64:
    """The reported ``{symbol: {symbol: r}}`` matrix as an array in the reported symbol order."""
    symbols, matrix = result.values["symbols"], result.values["matrix"]
    assert isinstance(symbols, list)
    assert isinstance(matrix, dict)
    rows = [matrix[str(a)] for a in symbols]
    return np.array([[row[str(b)] for b in symbols] for row in rows if isinstance(row, dict)], dtype=float)


def correlated_closes(size: int, seed: int = 1) -> dict[str, F64]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.01, size)
    return {
        "AAAUSDT": 100.0 * np.exp(np.cumsum(market + rng.normal(0.0, 0.002, size))),
        "BBBUSDT": 50.0 * np.exp(np.cumsum(0.5 * market + rng.normal(0.0, 0.003, size))),
        "CCCUSDT": 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, size))),
    }


def hourly(close: F64, keep: slice | I64 | None = None) -> Closes:
    times = START + HOUR * np.arange(close.size, dtype=np.int64)
    if keep is None:
        return Closes(times, close)
    return Closes(times[keep], close[keep])


def test_matches_corrcoef_of_returns() -> None:
    closes = correlated_closes(300)
    result = compute({s: hourly(c) for s, c in closes.items()}, FamilyWindows(correlation=100), Interval.H1)
    returns = pd.DataFrame(closes).apply(np.log).diff().iloc[-100:]
    expected = np.corrcoef(returns.to_numpy().T)
    assert result.status == "ok"
    assert result.candles == 100
    np.testing.assert_allclose(as_array(result), expected, rtol=1e-12)
    assert result.values["symbols"] == list(closes)
    assert expected[0, 1] > 0.5  # the fixture really is correlated


def test_aligns_by_timestamp_and_skips_returns_across_gaps() -> None:
    closes = correlated_closes(200)
    missing = np.ones(200, dtype=bool)
    missing[[50, 120, 121]] = False  # B lacks three candles
    series = {
        "AAAUSDT": hourly(closes["AAAUSDT"]),
        "BBBUSDT": hourly(closes["BBBUSDT"], np.flatnonzero(missing)),
        "CCCUSDT": hourly(closes["CCCUSDT"]),
    }
    result = compute(series, FamilyWindows(correlation=150), Interval.H1)
    # Returns exist at t where both t and t-1 are present; B loses returns at 50, 51, 120, 121, 122.
    returns = pd.DataFrame(closes).apply(np.log).diff()
    returns.loc[[50, 51, 120, 121, 122], "BBBUSDT"] = np.nan
    aligned = returns.dropna().iloc[-150:]
    np.testing.assert_allclose(as_array(result), np.corrcoef(aligned.to_numpy().T), rtol=1e-12)
    assert result.candles == 150


def test_price_levels_are_not_what_is_correlated() -> None:
    # Two trending series with independent moves: levels correlate strongly, returns do not.
    rng = np.random.default_rng(4)
    trend = np.arange(500) * 0.01
    a = np.exp(trend + rng.normal(0.0, 0.01, 500).cumsum() * 0.1)
    b = np.exp(trend + rng.normal(0.0, 0.01, 500).cumsum() * 0.1)
    result = compute({"AAUSDT": hourly(a), "BBUSDT": hourly(b)}, FamilyWindows(correlation=400), Interval.H1)
    assert np.corrcoef(a[-400:], b[-400:])[0, 1] > 0.9
    assert abs(as_array(result)[0, 1]) < 0.3


def test_a_constant_symbol_has_no_correlation() -> None:
    closes = correlated_closes(50)
    series = {"AAAUSDT": hourly(closes["AAAUSDT"]), "FLATUSDT": hourly(np.full(50, 3.0))}
    result = compute(series, FamilyWindows(correlation=20), Interval.H1)
    assert result.values["matrix"] == {
        "AAAUSDT": {"AAAUSDT": 1.0, "FLATUSDT": None},
        "FLATUSDT": {"AAAUSDT": None, "FLATUSDT": None},
    }


@pytest.mark.parametrize(
    ("sizes", "message"),
    [((300, 10, 5), "1 of 3 symbols have the 101 candles"), ((300,), "1 of 1 symbols")],
)
def test_too_few_symbols_with_data(sizes: tuple[int, ...], message: str) -> None:
    closes = correlated_closes(300)
    series = {s: hourly(c[:size]) for (s, c), size in zip(closes.items(), sizes, strict=False)}
    result = compute(series, FamilyWindows(correlation=100), Interval.H1)
    assert result.status == "insufficient_data"
    assert result.reason is not None
    assert message in result.reason
    assert result.values == {}


def test_too_few_common_returns() -> None:
    closes = correlated_closes(200)
    series = {
        "AAAUSDT": hourly(closes["AAAUSDT"], slice(0, 120)),
        "BBBUSDT": hourly(closes["BBBUSDT"], slice(80, 200)),
    }
    result = compute(series, FamilyWindows(correlation=100), Interval.H1)
    assert result.status == "insufficient_data"
    assert result.candles == 39  # returns at hours 81..119
    assert "39 common returns" in (result.reason or "")
