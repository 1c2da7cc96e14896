"""Gaps and bad candles (issue 15, items 7 and 8): every family handles a missing candle the documented way,
and a bad candle is excluded, counted, and changes only the windows that contain it.

The reference is tests/unit/analytics/reference.py: the documented definitions written the plain way
(pandas rolling windows over the existing terms, loops for the smoothers), independent of the kernels.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics import correlation, regime, volatility
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.families import COMPUTE, SERIES
from datamanager_workers.shared.source import Candle
from tests.unit.analytics import reference
from tests.unit.analytics.synthetic import random_walk

WINDOWS = FamilyWindows()
HOUR = Interval.H1
TOLERANCE = 1e-9


def keep(c: CandleArrays, mask: npt.NDArray[np.bool_]) -> CandleArrays:
    return CandleArrays(*(getattr(c, name)[mask] for name in reference.COLUMNS))


def with_gaps(size: int, gaps: list[tuple[int, int]], seed: int = 7) -> CandleArrays:
    full = random_walk(size, seed=seed)
    mask = np.ones(size, dtype=bool)
    for first, length in gaps:
        mask[first : first + length] = False
    return keep(full, mask)


def assert_equals_reference(c: CandleArrays) -> None:
    df = reference.frame(c)
    for family, compute in SERIES.items():
        ours = compute(c, WINDOWS, HOUR)
        theirs = reference.FAMILIES[family](df, WINDOWS, HOUR)
        assert set(ours) == set(theirs), family
        for name, column in ours.items():
            expected = np.asarray(theirs[name], dtype=np.float64)
            if name == "label":
                np.testing.assert_array_equal(column, expected, err_msg=name)
                continue
            error, nan_mismatches = reference.relative_error(column, expected)
            assert nan_mismatches == 0, f"{family.value}/{name}: undefined at other candles"
            assert error <= TOLERANCE, f"{family.value}/{name}: relative error {error:.3g}"


gap_lists = st.lists(st.tuples(st.integers(1, 229), st.integers(1, 30)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(gap_lists, st.integers(0, 1000))
def test_every_family_with_random_gaps_equals_the_gap_aware_definition(
    gaps: list[tuple[int, int]], seed: int
) -> None:
    assert_equals_reference(with_gaps(230, gaps, seed))


def test_every_family_without_gaps_equals_the_same_definition() -> None:
    assert_equals_reference(random_walk(230))


@settings(max_examples=15, deadline=None)
@given(gap_lists, gap_lists)
def test_correlation_with_random_gaps_equals_the_gap_aware_definition(
    first: list[tuple[int, int]], second: list[tuple[int, int]]
) -> None:
    windows = FamilyWindows(correlation=40)
    candles = {"A": with_gaps(230, first, 1), "B": with_gaps(230, second, 2)}
    result = correlation.compute(
        {s: correlation.Closes(c.open_time, c.close) for s, c in candles.items()}, windows, HOUR
    )
    expected = reference.correlation({s: reference.frame(c) for s, c in candles.items()}, windows, HOUR)
    if result.status != "ok":
        assert result.candles < 40  # fewer common returns than the window: the reference has fewer rows too
        return
    matrix = result.values["matrix"]
    assert isinstance(matrix, dict)
    row = matrix["A"]
    assert isinstance(row, dict)
    assert row["B"] == pytest.approx(expected[0, 1], rel=1e-9, abs=1e-12)


# --- item 7: a gap inflated every family's returns -------------------------------------------------------

TRUE_VOLATILITY = 0.60
PER_HOUR = TRUE_VOLATILITY / math.sqrt(8760)


def hourly_walk(size: int, seed: int) -> CandleArrays:
    """Candles whose close-to-close log returns are normal with a true annual volatility of 0.60."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, PER_HOUR, size)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, PER_HOUR / 2, size)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, PER_HOUR / 2, size)))
    volume = rng.lognormal(3.0, 0.3, size)
    times = 1_704_067_200 + 3600 * np.arange(size, dtype=np.int64)
    return CandleArrays(times, open_, high, low, close, volume, volume * close, volume / 2)


def test_24_of_720_candles_missing_no_longer_inflate_the_volatility() -> None:
    """Returns between adjacent rows across a 24-candle gap read one 25-hour move as an hourly one:
    close-to-close sqrt((w + g) / w) too high, Yang-Zhang and ATR likewise, and the regime "volatile"."""
    readings: dict[str, list[float]] = {"ours": [], "rows": [], "clean": []}
    for seed in range(40):
        full = hourly_walk(720, seed)
        mask = np.ones(720, dtype=bool)
        mask[690:714] = False  # 24 candles inside the latest 30-return window
        gapped = keep(full, mask)
        ours = volatility.series(gapped, WINDOWS, HOUR)["close_to_close"][-1]
        row_returns = np.diff(np.log(gapped.close))[-WINDOWS.volatility :]
        readings["ours"].append(ours)
        readings["rows"].append(float(np.std(row_returns, ddof=1)) * math.sqrt(8760))
        adjacent_returns = np.diff(np.log(full.close))[mask[1:] & mask[:-1]][-WINDOWS.volatility :]
        readings["clean"].append(float(np.std(adjacent_returns, ddof=1)) * math.sqrt(8760))
        assert ours == pytest.approx(readings["clean"][-1], rel=1e-12)  # exactly the adjacent returns'
    ours_rms = math.sqrt(np.mean(np.square(readings["ours"])))
    rows_rms = math.sqrt(np.mean(np.square(readings["rows"])))
    assert ours_rms == pytest.approx(TRUE_VOLATILITY, rel=0.05)
    assert rows_rms > 1.25 * TRUE_VOLATILITY  # sqrt((29 + 25) / 29) = 1.36 in expectation


def test_a_gap_does_not_inflate_yang_zhang_or_atr() -> None:
    full = hourly_walk(720, 11)
    mask = np.ones(720, dtype=bool)
    mask[690:714] = False
    gapped = keep(full, mask)
    # The same candles with their times closed up, as the old code saw them: the gap read as one interval.
    closed_up = CandleArrays(
        full.open_time[: gapped.size], *(getattr(gapped, n) for n in reference.COLUMNS[1:])
    )
    ours = volatility.series(gapped, WINDOWS, HOUR)
    old = volatility.series(closed_up, WINDOWS, HOUR)
    clean = volatility.series(full, WINDOWS, HOUR)
    assert ours["yang_zhang"][-1] < old["yang_zhang"][-1]
    assert ours["atr"][-1] < old["atr"][-1]
    # Without the move across the gap, the estimates sit near the clean series' (they hold other candles)
    assert ours["yang_zhang"][-1] == pytest.approx(clean["yang_zhang"][-1], rel=0.35)


# --- item 8: one bad candle poisoned the series ----------------------------------------------------------


def candle_rows(c: CandleArrays) -> list[Candle]:
    def exact(value: float) -> Decimal | None:
        return None if math.isnan(value) else Decimal(float(value))

    rows = []
    for i in range(c.size):
        opened = datetime.fromtimestamp(int(c.open_time[i]), UTC)
        rows.append(
            Candle(
                opened,
                opened + timedelta(minutes=59, seconds=59),
                exact(c.open[i]),
                exact(c.high[i]),
                exact(c.low[i]),
                exact(c.close[i]),
                exact(c.volume[i]),
                exact(c.quote_volume[i]),
                None if i == 3 else 100,  # a NULL trade count: read, never a crash, and not used
                exact(c.taker_buy_volume[i]),
                exact(c.taker_buy_volume[i] * c.close[i]),
            )
        )
    return rows


@pytest.mark.parametrize("bad", ["zero close", "NULL close", "negative volume", "low above the close"])
def test_one_bad_candle_710_back_leaves_the_latest_values_alone(bad: str) -> None:
    """A zero or NULL close 710 candles back made close-to-close, Yang-Zhang and the regime None: the whole
    series' mean was NaN. Now the candle is excluded, counted, and the latest window never saw it."""
    clean = random_walk(720)
    rows = candle_rows(clean)
    spoiled = rows[9]
    rows[9] = {
        "zero close": spoiled._replace(close=Decimal(0)),
        "NULL close": spoiled._replace(close=None),
        "negative volume": spoiled._replace(volume=Decimal(-1)),
        "low above the close": spoiled._replace(low=(spoiled.close or Decimal(0)) + 1),
    }[bad]
    candles, excluded = CandleArrays.from_candles(rows).without_bad()
    assert (candles.size, excluded) == (719, 1)
    for family in (MetricFamily.VOLATILITY, MetricFamily.REGIME, MetricFamily.TREND, MetricFamily.MOMENTUM):
        ours = COMPUTE[family](candles, WINDOWS, HOUR).values
        expected = COMPUTE[family](CandleArrays.from_candles(candle_rows(clean)), WINDOWS, HOUR).values
        assert None not in ours.values(), family
        for name, value in ours.items():
            if isinstance(value, float):
                other = expected[name]
                assert isinstance(other, float)
                # The baseline covers the whole look-back, which lost two of its 719 returns.
                close = 1e-2 if name in ("baseline_volatility", "volatility_ratio") else 1e-9
                assert value == pytest.approx(other, rel=close), f"{family.value}/{name}"


# Outputs computed over a window of the last w candles (or w + 1 for terms spanning two), by how far back
# the window reaches; the others are smoothers (every later value decays from the change) or, like the
# regime's baseline, cover the whole look-back.
V, U, T, M = WINDOWS.volatility, WINDOWS.volume, WINDOWS.trend, WINDOWS.momentum
WINDOWED = {
    "volatility/close_to_close": V + 1,
    "volatility/parkinson": V,
    "volatility/garman_klass": V,
    "volatility/rogers_satchell": V,
    "volatility/yang_zhang": V + 1,
    "volume/total_volume": U,
    "volume/total_quote_volume": U,
    "volume/volume_sma": U,
    "volume/relative_volume": U + 1,
    "volume/taker_buy_ratio": U,
    "trend/sma_fast": 20,
    "trend/sma_slow": 50,
    "trend/sma_spread": 50,
    "trend/slope": T,
    "trend/slope_percent": T,
    "momentum/roc": M + 1,
    "regime/volatility": V + 1,
    "regime/relative_volume": U + 1,
}


def all_series(c: CandleArrays) -> dict[str, F64]:
    return {
        f"{family.value}/{name}": column
        for family, compute in SERIES.items()
        for name, column in compute(c, WINDOWS, HOUR).items()
    }


BAD_VALUES = [
    *(
        (price, value)
        for price in ("open", "high", "low", "close")
        for value in (0.0, -1.0, math.nan, math.inf)
    ),
    *((vol, value) for vol in ("volume", "quote_volume", "taker_buy_volume") for value in (-1.0, math.nan)),
    ("low", 1e9),  # above the open and close
]


@settings(max_examples=30, deadline=None)
@given(st.integers(100, 240), st.sampled_from(BAD_VALUES), st.integers(0, 100))
def test_a_single_bad_value_changes_only_the_windows_that_contain_it(
    j: int, bad: tuple[str, float], seed: int
) -> None:
    column, value = bad
    size = 300
    clean = random_walk(size, seed=seed)
    values = {name: getattr(clean, name).copy() for name in reference.COLUMNS}
    values[column][j] = value
    spoiled, excluded = CandleArrays(*(values[name] for name in reference.COLUMNS)).without_bad()
    assert excluded == 1
    # Bad is missing: the same as the series without that candle, exactly.
    missing = np.ones(size, dtype=bool)
    missing[j] = False
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(
        all_series(spoiled).values(), all_series(keep(clean, missing)).values(), strict=True
    ))  # fmt: skip
    before = all_series(clean)
    after = all_series(spoiled)
    kept = np.flatnonzero(missing)  # candle index in the clean series of each spoiled row
    for name, column_after in after.items():
        column_before = before[name][kept]
        reach = WINDOWED.get(name)
        outside = kept < j if reach is None else (kept < j) | (kept >= j + reach)
        error, nan_mismatches = reference.relative_error(column_after[outside], column_before[outside])
        assert nan_mismatches == 0, name
        assert error <= TOLERANCE, f"{name}: {error:.3g} outside the windows holding candle {j}"
        if name not in ("momentum/roc",) and name != "regime/label":
            # Never undefined where the clean series is defined (past the warm-up): no None from one candle
            defined_before = ~np.isnan(column_before) & (kept > j)
            assert not np.isnan(column_after[defined_before]).any(), name


def test_bad_candles_are_excluded_and_counted() -> None:
    clean = random_walk(120)
    rows = candle_rows(clean)
    rows[50] = rows[50]._replace(high=None)
    rows[60] = rows[60]._replace(open=Decimal(0))
    candles, excluded = CandleArrays.from_candles(rows).without_bad()
    assert (candles.size, excluded) == (118, 2)
    assert 50 * 3600 + int(clean.open_time[0]) not in candles.open_time.tolist()
    assert regime.compute(candles, WINDOWS, HOUR).candles == 118
