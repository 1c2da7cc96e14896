"""Health scores: exactly 100 when clean, strictly lower with every added defect, levels from thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from datamanager.api import AuditCheck, HealthThresholds, Interval
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, DatasetStatus, Freshness
from datamanager_workers.audit.scoring import (
    CEILINGS,
    DatasetScore,
    Level,
    display,
    freshness_score,
    level_of,
    overall_score,
    score_dataset,
    subscores,
)

END = datetime(2024, 7, 2, 0, 1, tzinfo=UTC)
WINDOW = AuditWindow.ending_at(END, timedelta(hours=24), Interval.H1)
THRESHOLDS = HealthThresholds()


def clean(**changes: object) -> DatasetAudit:
    audit = DatasetAudit(
        symbol="BTCUSDT",
        interval=Interval.H1,
        table="klines_h1",
        window=WINDOW,
        checks=frozenset(AuditCheck),
        rows=WINDOW.expected,
        present=WINDOW.expected,
        freshness=Freshness(last_open_time=WINDOW.last_expected, stale_candles=0),
    )
    return replace(audit, **changes)  # type: ignore[arg-type]


def score(audit: DatasetAudit) -> float:
    result = score_dataset(audit, THRESHOLDS).score
    assert result is not None
    return result


def test_the_window_expects_the_closed_candles_of_the_last_24_hours() -> None:
    assert WINDOW.first_expected == datetime(2024, 7, 1, 1, tzinfo=UTC)
    assert WINDOW.last_expected == datetime(2024, 7, 1, 23, tzinfo=UTC)
    assert WINDOW.expected == 23


def test_a_clean_dataset_scores_exactly_100() -> None:
    result = score_dataset(clean(), THRESHOLDS)
    assert result.score == 100.0
    assert result.level is Level.HEALTHY
    assert set(result.subscores) == {"completeness", "validity", "uniqueness", "freshness", "continuity"}


def test_completeness_is_capped_at_100_when_the_window_is_over_full() -> None:
    over_full = clean(rows=WINDOW.expected * 2, present=WINDOW.expected * 2)
    assert subscores(over_full)["completeness"] == 100.0


DEFECTS: dict[str, dict[str, object]] = {
    "gap": {
        "present": WINDOW.expected - 3,
        "rows": WINDOW.expected - 3,
        "gap_count": 1,
        "missing_candles": 3,
    },
    "invalid row": {"invalid_rows": 1},
    "duplicate": {"rows": WINDOW.expected + 1, "copies": 1, "duplicate_rows": 1, "duplicate_times": 1},
    "spike": {"spike_count": 1},
    "stale": {
        "freshness": Freshness(last_open_time=WINDOW.last_expected - timedelta(hours=1), stale_candles=1)
    },
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_every_kind_of_defect_lowers_the_score(defect: str) -> None:
    assert score(clean(**DEFECTS[defect])) < 100.0


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("invalid_rows", [0, 1, 2, 5, 23]),
        ("spike_count", [0, 1, 2, 3]),
        ("duplicate_rows", [0, 1, 2, 10]),
    ],
)
def test_more_defects_give_a_strictly_lower_score(field: str, values: list[int]) -> None:
    scores = [score(clean(**{field: value})) for value in values]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


def test_more_stale_candles_give_a_strictly_lower_score() -> None:
    def stale(count: int) -> DatasetAudit:
        last = WINDOW.last_expected - count * timedelta(hours=1)
        return clean(freshness=Freshness(last_open_time=last, stale_candles=count))

    scores = [score(stale(count)) for count in range(6)]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == 6
    assert subscores(stale(3))["freshness"] == 50.0


def test_adding_one_defect_of_each_kind_never_raises_the_score() -> None:
    """Each lowers it, unless a ceiling (here completeness after the gap) already holds the score lower."""
    changes: dict[str, object] = {}
    previous = score(clean())
    for name, defect in DEFECTS.items():
        changes.update(defect)
        audit = clean(**changes)
        current = score(audit)
        parts = subscores(audit)
        held = current == min(parts[c] for c in CEILINGS)
        assert current < previous or (current == previous and held), name
        previous = current
    assert previous < 100.0


def test_a_ceiling_holds_the_score_at_the_worst_of_its_sub_scores() -> None:
    audit = clean(invalid_rows=12)  # validity 47.8: mostly fine, but this decides
    assert score(audit) == subscores(audit)["validity"]
    assert level_of(score(audit), THRESHOLDS) is Level.CRITICAL


def test_a_tiny_defect_never_displays_as_100() -> None:
    big = AuditWindow.ending_at(END, timedelta(days=365), Interval.M1)
    audit = clean(window=big, rows=big.expected + 1, present=big.expected, copies=1, duplicate_rows=1)
    assert score(audit) < 100.0
    assert display(score(audit)) == 99.99


def test_missing_tables_and_empty_datasets_score_0() -> None:
    assert score(clean(status=DatasetStatus.MISSING_TABLE, rows=0, present=0)) == 0.0
    assert score(clean(status=DatasetStatus.NO_DATA, rows=0, present=0)) == 0.0


def test_only_the_checks_that_ran_contribute() -> None:
    audit = clean(checks=frozenset({AuditCheck.OHLC}), invalid_rows=23, duplicate_rows=5)
    result = score_dataset(audit, THRESHOLDS)
    assert result.subscores == {"validity": 0.0}
    assert result.score == 0.0


@pytest.mark.parametrize(
    ("value", "level"),
    [(100, Level.HEALTHY), (90, Level.HEALTHY), (89.99, Level.DEGRADED), (70, Level.DEGRADED),
     (69.9, Level.UNHEALTHY), (50, Level.UNHEALTHY), (49.9, Level.CRITICAL), (0, Level.CRITICAL)],
)  # fmt: skip
def test_levels_follow_the_default_thresholds(value: float, level: Level) -> None:
    assert level_of(value, THRESHOLDS) is level


def test_levels_follow_configured_thresholds() -> None:
    strict = HealthThresholds(healthy=99, degraded=95, unhealthy=80)
    assert level_of(98, strict) is Level.DEGRADED
    assert level_of(90, strict) is Level.UNHEALTHY


def test_the_overall_score_is_the_mean_of_the_datasets() -> None:
    scores = [
        score_dataset(clean(), THRESHOLDS),
        score_dataset(clean(status=DatasetStatus.NO_DATA), THRESHOLDS),
    ]
    assert overall_score(scores) == 50.0
    assert overall_score([]) == 100.0


ONE_CANDLE = AuditWindow.ending_at(END, timedelta(hours=2), Interval.H1)  # expects only 23:00
NO_CANDLE = AuditWindow.ending_at(END, timedelta(minutes=30), Interval.H1)  # below the API's minimum


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # 20 of 23 candles, one gap: 100 x 20/23, and continuity 100 x (1 - 1/23)
        ({"present": 20, "rows": 20, "gap_count": 1, "missing_candles": 3},
         {"completeness": 100 * 20 / 23, "continuity": 100 * 22 / 23}),
        # 23 distinct candles, 2 of them broken, 3 stored twice
        ({"invalid_rows": 2}, {"validity": 100 * 21 / 23}),
        ({"rows": 26, "copies": 3, "duplicate_rows": 3}, {"uniqueness": 100 * 20 / 23}),
        # continuity counts gaps and spikes together
        ({"gap_count": 2, "spike_count": 3}, {"continuity": 100 * 18 / 23}),
        # a freshness check whose table has no candle at all: infinitely stale
        ({"freshness": Freshness(last_open_time=None, stale_candles=0)}, {"freshness": 0.0}),
        # a window expecting one candle: one break is all of it (never divided by more than expected)
        ({"window": ONE_CANDLE, "present": 1, "rows": 1, "gap_count": 1},
         {"completeness": 100.0, "continuity": 0.0}),
        # a window expecting none: completeness 100, not a division by zero; breaks over at least 1
        ({"window": NO_CANDLE, "present": 0, "rows": 0, "spike_count": 1},
         {"completeness": 100.0, "continuity": 0.0}),
        # no distinct candle: validity and uniqueness have nothing to divide, so nothing is wrong
        ({"rows": 0, "present": 23}, {"validity": 100.0, "uniqueness": 100.0}),
    ],
)  # fmt: skip
def test_sub_scores_are_the_documented_ratios(changes: dict[str, object], expected: dict[str, float]) -> None:
    parts = subscores(clean(**changes))
    assert {name: parts[name] for name in expected} == pytest.approx(expected, rel=1e-12, abs=0)
    assert all(parts[name] == 100.0 for name in set(parts) - set(expected)), parts


@pytest.mark.parametrize(
    ("stale", "documented"), [(0, 100.0), (1, 92.6), (2, 73.5), (3, 50.0), (4, 29.2), (6, 6.2), (9, 0.2)]
)
def test_freshness_halves_at_three_stale_candles_as_documented(stale: int, documented: float) -> None:
    assert round(freshness_score(stale), 1) == documented


@pytest.mark.parametrize(
    ("checks", "names"),
    [
        ({AuditCheck.GAPS}, {"completeness", "continuity"}),
        ({AuditCheck.SPIKES}, {"continuity"}),
        ({AuditCheck.OHLC, AuditCheck.DUPLICATES}, {"validity", "uniqueness"}),
        ({AuditCheck.FRESHNESS}, {"freshness"}),
    ],
)
def test_continuity_exists_when_either_gaps_or_spikes_ran(checks: set[AuditCheck], names: set[str]) -> None:
    audit = clean(checks=frozenset(checks), spike_count=2)
    assert set(subscores(audit)) == names
    if "continuity" in names:
        assert subscores(audit)["continuity"] == pytest.approx(100 * 21 / 23)


@pytest.mark.parametrize("status", [DatasetStatus.MISSING_TABLE, DatasetStatus.NO_DATA])
def test_a_dataset_without_candles_scores_0_in_every_check_that_ran(status: DatasetStatus) -> None:
    lenient = HealthThresholds(healthy=3, degraded=2, unhealthy=0.5)  # 1.0 would be unhealthy here
    audit = clean(status=status, rows=0, present=0, checks=frozenset({AuditCheck.GAPS, AuditCheck.OHLC}))
    result = score_dataset(audit, lenient)
    assert result == DatasetScore(
        score=0.0,
        level=Level.CRITICAL,
        subscores={"completeness": 0.0, "continuity": 0.0, "validity": 0.0},
    )
    assert all(type(value) is float for value in result.subscores.values())


def test_a_window_expecting_no_candle_is_not_scoreable() -> None:
    audit = clean(window=NO_CANDLE, status=DatasetStatus.NOT_SCOREABLE, rows=0, present=0)
    assert score_dataset(audit, THRESHOLDS) == DatasetScore(score=None, level=None, subscores={})
    assert overall_score([score_dataset(audit, THRESHOLDS)]) is None
    assert overall_score([score_dataset(audit, THRESHOLDS), score_dataset(clean(), THRESHOLDS)]) == 100.0


@pytest.mark.parametrize(
    ("end", "length", "first", "last", "expected", "text"),
    [
        # a start on the grid is itself expected; the candle closing at the end is not (within the grace)
        (datetime(2024, 7, 2, tzinfo=UTC), timedelta(hours=24), datetime(2024, 7, 1, tzinfo=UTC),
         datetime(2024, 7, 1, 22, tzinfo=UTC), 23, "1d"),
        # a start between grid points: the next grid point; 61 s past the close, the last candle is expected
        (datetime(2024, 7, 2, 0, 1, 1, tzinfo=UTC), timedelta(minutes=90),
         datetime(2024, 7, 1, 23, tzinfo=UTC), datetime(2024, 7, 1, 23, tzinfo=UTC), 1, "90m"),
        (datetime(2024, 7, 8, tzinfo=UTC), timedelta(days=7), datetime(2024, 7, 1, tzinfo=UTC),
         datetime(2024, 7, 7, 22, tzinfo=UTC), 167, "7d"),
    ],
)  # fmt: skip
def test_a_window_expects_the_grid_points_from_its_start_to_the_last_closed_candle(
    end: datetime, length: timedelta, first: datetime, last: datetime, expected: int, text: str
) -> None:
    window = AuditWindow.ending_at(end, length, Interval.H1)
    assert window == AuditWindow(Interval.H1, end - length, end, first, last)
    assert (window.expected, window.length_text) == (expected, text)
