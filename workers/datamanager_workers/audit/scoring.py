"""Health scores: five sub-scores per dataset, each 0-100, a weighted mean, and ceilings that make the level
mean what an operator would page on.

- completeness = 100 x min(1, present / expected): distinct on-grid candles over the candles the window
  should hold, capped (the old model was not capped, and over-full windows broke it).
- validity = 100 x (1 - min(1, invalid rows / distinct candles)): rows breaking any OHLC rule, per open time
  stored (per row, a valid copy would dilute the invalid ones and raise the score).
- uniqueness = 100 x (1 - min(1, extra copies / distinct candles)): copies of an open time beyond the first,
  per open time stored; every candle stored twice is 0.
- freshness = 100 x 2 ^ -((stale candles / 3) ^ 2): 92.6 one closed candle behind, 73.5 two, 50 three, 29.2
  four, 6.25 six, 0.2 nine, so a feed stale by more than three intervals is critical whatever the interval or
  window (the old model used a fixed 300 s and scored every 1h and 1d dataset 0).
- continuity = 100 x (1 - min(1, (gaps + spikes) / expected)): how often the series breaks, apart from how
  much is missing.

Distinct candles are the open times stored in the window (rows less the extra copies: ``stored``).

A sub-score exists only when its check ran (completeness and continuity need ``gaps``, continuity also
counts ``spikes``). The score is the weighted mean of those that exist, with integer weights so that a clean
dataset scores exactly 100, capped by each of completeness, validity, uniqueness and freshness: a dataset is
never healthier than its worst of those. So with the default thresholds a dataset more than half empty,
mostly invalid or mostly duplicated, or stale by more than three intervals, is critical, however good the
rest. Adding a defect never raises the score, and it lowers it unless a ceiling already holds the score below
what the defect takes from the mean. A missing table or a dataset without one candle in the window scores 0;
a window that expects no closed candle (only possible below the API's minimum window) is not scoreable: no
score, and the overall score leaves it out. The overall score is the mean of the scored datasets' scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from datamanager.api import AuditCheck, HealthThresholds
from datamanager_workers.audit.findings import DatasetAudit, DatasetStatus

WEIGHTS: dict[str, int] = {
    "completeness": 30,
    "validity": 20,
    "uniqueness": 10,
    "freshness": 25,
    "continuity": 15,
}
# Sub-scores that also cap the score: each names a defect that alone decides how usable the data is.
CEILINGS = ("completeness", "validity", "uniqueness", "freshness")
FRESHNESS_HALF_AT = 3  # stale candles at which the freshness sub-score is 50


class Level(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    CRITICAL = "critical"


def level_of(score: float, thresholds: HealthThresholds) -> Level:
    if score >= thresholds.healthy:
        return Level.HEALTHY
    if score >= thresholds.degraded:
        return Level.DEGRADED
    if score >= thresholds.unhealthy:
        return Level.UNHEALTHY
    return Level.CRITICAL


def display(score: float) -> float:
    """Two decimals, rounded down, so a dataset with any defect never displays as 100."""
    return math.floor(score * 100) / 100


@dataclass(frozen=True)
class DatasetScore:
    score: float | None  # None: not scoreable (the window expects no candle)
    level: Level | None
    subscores: dict[str, float]


def _ratio_score(bad: int, total: int) -> float:
    return 100.0 * (1 - min(1.0, bad / total)) if total else 100.0


def freshness_score(stale_candles: float) -> float:
    return 100.0 * math.pow(2.0, -((stale_candles / FRESHNESS_HALF_AT) ** 2))


def subscores(audit: DatasetAudit) -> dict[str, float]:
    """The sub-scores of the checks that ran, each 0-100."""
    checks = audit.checks
    result: dict[str, float] = {}
    expected = audit.window.expected
    if AuditCheck.GAPS in checks:
        result["completeness"] = 100.0 * min(1.0, audit.present / expected) if expected else 100.0
    if AuditCheck.OHLC in checks:
        result["validity"] = _ratio_score(audit.invalid_rows, audit.stored)
    if AuditCheck.DUPLICATES in checks:
        result["uniqueness"] = _ratio_score(audit.duplicate_rows, audit.stored)
    if AuditCheck.FRESHNESS in checks and audit.freshness is not None:
        stale = audit.freshness.stale_candles if audit.freshness.last_open_time else math.inf
        result["freshness"] = freshness_score(stale)
    if AuditCheck.GAPS in checks or AuditCheck.SPIKES in checks:
        breaks = audit.gap_count + audit.spike_count
        result["continuity"] = _ratio_score(breaks, max(1, expected))
    return result


def score_dataset(audit: DatasetAudit, thresholds: HealthThresholds) -> DatasetScore:
    if audit.status is DatasetStatus.NOT_SCOREABLE:
        return DatasetScore(score=None, level=None, subscores={})
    if audit.status is not DatasetStatus.OK:
        parts = dict.fromkeys(subscores(audit), 0.0)
        return DatasetScore(score=0.0, level=level_of(0.0, thresholds), subscores=parts)
    parts = subscores(audit)
    weight = sum(WEIGHTS[name] for name in parts)
    mean = sum(WEIGHTS[name] * value for name, value in parts.items()) / weight
    score = min(mean, *(parts[name] for name in CEILINGS if name in parts))
    return DatasetScore(score=score, level=level_of(score, thresholds), subscores=parts)


def overall_score(scores: Sequence[DatasetScore]) -> float | None:
    """The mean of the scored datasets' scores; 100 for an audit without datasets (a shard may get none),
    None when there are datasets but none is scoreable."""
    scored = [item.score for item in scores if item.score is not None]
    if not scores:
        return 100.0
    return sum(scored) / len(scored) if scored else None
