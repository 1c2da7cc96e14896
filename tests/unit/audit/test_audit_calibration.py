"""Calibrated levels (issue 15, items 1 and 2): a dead feed, a mostly invalid or mostly duplicated dataset is
critical whatever the window, a window that expects no candle is not scoreable (never 0), and the score and
level are monotone in every defect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamanager.api import AuditCheck, HealthThresholds, Interval
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, DatasetStatus, Freshness
from datamanager_workers.audit.scoring import Level, overall_score, score_dataset

THRESHOLDS = HealthThresholds()
END = datetime(2024, 7, 8, 0, 1, tzinfo=UTC)
LEVELS = [Level.HEALTHY, Level.DEGRADED, Level.UNHEALTHY, Level.CRITICAL]


def dataset(interval: Interval, window: timedelta, **changes: object) -> DatasetAudit:
    """A complete, fresh, clean dataset of ``interval`` over ``window`` ending at END, then ``changes``."""
    frame = AuditWindow.ending_at(END, window, interval)
    audit = DatasetAudit(
        symbol="BTCUSDT",
        interval=interval,
        table=f"klines_{interval.table_suffix}",
        window=frame,
        checks=frozenset(AuditCheck),
        rows=frame.expected,
        present=frame.expected,
        freshness=Freshness(last_open_time=frame.last_expected, stale_candles=0),
    )
    return replace(audit, **changes)  # type: ignore[arg-type]


def dead_for(interval: Interval, window: timedelta, dead: timedelta) -> DatasetAudit:
    """Nothing stored for the last ``dead``: a trailing gap and as many stale candles."""
    audit = dataset(interval, window)
    stale = dead // interval.delta
    last = audit.window.last_expected - stale * interval.delta
    return replace(
        audit,
        rows=audit.rows - stale,
        present=audit.present - stale,
        gap_count=1,
        missing_candles=stale,
        freshness=Freshness(last_open_time=last, stale_candles=stale),
    )


def level(audit: DatasetAudit) -> Level | None:
    return score_dataset(audit, THRESHOLDS).level


def test_a_1h_feed_dead_for_24h_of_7d_is_critical() -> None:
    """It scored 71 (degraded): validity, uniqueness and continuity stayed 100 while nothing arrived."""
    result = score_dataset(dead_for(Interval.H1, timedelta(days=7), timedelta(hours=24)), THRESHOLDS)
    assert result.level is Level.CRITICAL
    assert result.score is not None
    assert result.score < 1.0


def test_a_1m_feed_dead_for_2h_of_24h_is_critical() -> None:
    """It scored 72.5 (degraded)."""
    result = score_dataset(dead_for(Interval.M1, timedelta(hours=24), timedelta(hours=2)), THRESHOLDS)
    assert result.level is Level.CRITICAL


def test_a_dataset_whose_every_row_breaks_an_ohlc_rule_is_critical() -> None:
    """It scored 80 (degraded)."""
    audit = dataset(Interval.H1, timedelta(days=7))
    assert level(replace(audit, invalid_rows=audit.rows)) is Level.CRITICAL
    assert level(replace(audit, invalid_rows=audit.rows // 2 + 1)) is Level.CRITICAL  # mostly invalid


def test_a_dataset_whose_every_candle_is_stored_twice_is_critical() -> None:
    """It scored 95 (healthy)."""
    audit = dataset(Interval.H1, timedelta(days=7))
    n = audit.rows
    twice = replace(audit, rows=2 * n, copies=n, duplicate_rows=n, duplicate_times=n)
    assert level(twice) is Level.CRITICAL
    most = audit.rows // 2 + 1  # mostly duplicated: more than half the candles have a copy
    assert level(replace(audit, rows=n + most, copies=most, duplicate_rows=most, duplicate_times=most)) is (
        Level.CRITICAL
    )


@pytest.mark.parametrize(
    ("stale", "expected"),
    [(0, Level.HEALTHY), (1, Level.HEALTHY), (2, Level.DEGRADED), (3, Level.UNHEALTHY), (4, Level.CRITICAL)],
)
@pytest.mark.parametrize(
    ("interval", "window"),
    [(Interval.M1, timedelta(hours=24)), (Interval.H1, timedelta(days=7)), (Interval.D1, timedelta(days=90))],
)
def test_staleness_sets_the_level_whatever_the_interval_and_window(
    stale: int, expected: Level, interval: Interval, window: timedelta
) -> None:
    """A feed stale by more than three intervals is critical; one late candle keeps it healthy."""
    audit = dataset(interval, window)
    last = audit.window.last_expected - stale * interval.delta
    behind = replace(
        audit,
        rows=audit.rows - stale,
        present=audit.present - stale,
        gap_count=1 if stale else 0,
        missing_candles=stale,
        freshness=Freshness(last_open_time=last, stale_candles=stale),
    )
    assert level(behind) is expected


def test_a_large_share_missing_caps_the_level() -> None:
    audit = dataset(Interval.H1, timedelta(days=7))  # 168 candles, fresh, one interior gap

    def missing(count: int) -> DatasetAudit:
        return replace(audit, rows=audit.rows - count, present=audit.present - count, gap_count=1,
                       missing_candles=count)  # fmt: skip

    assert level(missing(8)) is Level.HEALTHY  # 95 % present
    assert level(missing(24)) is Level.DEGRADED  # 86 %: a day of a week
    assert level(missing(85)) is Level.CRITICAL  # less than half present


def test_a_window_that_expects_no_candle_is_not_scoreable_never_0() -> None:
    """1h over 90 minutes at hh:00:30 expected no candle and scored 0 (critical) on complete data."""
    short = AuditWindow.ending_at(
        datetime(2024, 7, 1, 12, 0, 30, tzinfo=UTC), timedelta(minutes=90), Interval.H1
    )
    assert short.expected == 0
    audit = replace(dataset(Interval.H1, timedelta(days=1)), window=short, status=DatasetStatus.NOT_SCOREABLE)
    result = score_dataset(audit, THRESHOLDS)
    assert (result.score, result.level, result.subscores) == (None, None, {})
    fine = score_dataset(dataset(Interval.H1, timedelta(days=1)), THRESHOLDS)
    assert overall_score([result, fine]) == 100.0  # left out of the mean, not counted as 0
    assert overall_score([result]) is None


@pytest.mark.parametrize("interval", list(Interval))
def test_the_minimum_window_expects_a_candle_at_every_moment(interval: Interval) -> None:
    """Twice the interval plus the grace: every end time of a whole day, second by second for the short
    intervals, and every minute of two days for the long ones."""
    minimum = 2 * interval.delta + timedelta(seconds=60)
    step = timedelta(seconds=1) if interval.seconds <= 3600 else timedelta(minutes=1)
    start = datetime(2024, 7, 1, tzinfo=UTC)
    span = max(timedelta(days=2), 3 * interval.delta) if step.seconds == 60 else 3 * interval.delta
    moment = start
    while moment < start + span:
        assert AuditWindow.ending_at(moment, minimum, interval).expected >= 1, moment
        moment += step
    shorter = minimum - timedelta(minutes=1)  # the next duration down: they are whole minutes
    assert any(
        AuditWindow.ending_at(start + k * timedelta(seconds=1), shorter, interval).expected == 0
        for k in range(interval.seconds + 120)
    )


DEFECT_FIELDS = ("missing", "stale", "invalid", "copies", "spikes", "gaps")


def with_defects(counts: dict[str, int]) -> DatasetAudit:
    """A 1h/7d dataset with the given defects; each count moves only its own totals."""
    audit = dataset(Interval.H1, timedelta(days=7))
    expected = audit.window.expected
    missing = min(counts["missing"] + counts["stale"], expected)
    stale = min(counts["stale"], expected)
    rows = expected - missing + counts["copies"]
    return replace(
        audit,
        rows=rows,
        present=expected - missing,
        gap_count=counts["gaps"] + (1 if missing else 0),
        missing_candles=missing,
        invalid_rows=min(counts["invalid"], rows),
        copies=counts["copies"],
        duplicate_rows=counts["copies"],
        duplicate_times=counts["copies"],
        spike_count=counts["spikes"],
        freshness=Freshness(
            last_open_time=audit.window.last_expected - stale * Interval.H1.delta, stale_candles=stale
        ),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries({name: st.integers(0, 200) for name in DEFECT_FIELDS}),
    st.sampled_from(DEFECT_FIELDS),
    st.integers(1, 50),
)
def test_the_score_and_level_are_monotone_in_every_defect(
    counts: dict[str, int], defect: str, more: int
) -> None:
    """Adding defects of any one kind never raises the score or improves the level."""
    before = score_dataset(with_defects(counts), THRESHOLDS)
    after = score_dataset(with_defects({**counts, defect: counts[defect] + more}), THRESHOLDS)
    assert before.score is not None
    assert after.score is not None
    assert after.score <= before.score
    assert before.level is not None
    assert after.level is not None
    assert LEVELS.index(after.level) >= LEVELS.index(before.level)
