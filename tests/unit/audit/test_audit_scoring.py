"""Health scores: exactly 100 when clean, strictly lower with every added defect, levels from thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from datamanager.api import AuditCheck, HealthThresholds, Interval
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, DatasetStatus, Freshness
from datamanager_workers.audit.scoring import (
    CEILINGS,
    Level,
    display,
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
