"""Health scores: five sub-scores per dataset, each 0-100, combined by fixed weights.

- completeness = 100 x min(1, present / expected): distinct on-grid candles over the candles the window
  should hold, capped (the old model was not capped, and over-full windows broke it).
- validity = 100 x (1 - invalid rows / rows): rows breaking any OHLC rule.
- uniqueness = 100 x (1 - extra copies / rows): copies of an open time beyond the first.
- freshness = 100 x 0.5 ^ (stale candles / 4): halves for every 4 closed candles missing after the last
  stored one, so it is relative to the interval (the old model used a fixed 300 s and scored every 1h and 1d
  dataset 0).
- continuity = 100 x (1 - min(1, (gaps + spikes) / expected)): how often the series breaks, apart from how
  much is missing.

A sub-score exists only when its check ran (completeness and continuity need ``gaps``, continuity also
counts ``spikes``); the score is the weighted mean of those that exist, with integer weights so that a clean
dataset scores exactly 100. Every defect lowers its sub-score, so each added defect lowers the score. A
missing table or a dataset without one candle in the window scores 0. The overall score is the mean of the
datasets' scores.
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
FRESHNESS_HALF_LIFE = 4  # stale candles that halve the freshness sub-score


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
    score: float
    level: Level
    subscores: dict[str, float]


def _ratio_score(bad: int, total: int) -> float:
    return 100.0 * (1 - min(1.0, bad / total)) if total else 100.0


def subscores(audit: DatasetAudit) -> dict[str, float]:
    """The sub-scores of the checks that ran, each 0-100."""
    checks = audit.checks
    result: dict[str, float] = {}
    expected = audit.window.expected
    if AuditCheck.GAPS in checks:
        result["completeness"] = 100.0 * min(1.0, audit.present / expected) if expected else 100.0
    if AuditCheck.OHLC in checks:
        result["validity"] = _ratio_score(audit.invalid_rows, audit.rows)
    if AuditCheck.DUPLICATES in checks:
        result["uniqueness"] = _ratio_score(audit.duplicate_rows, audit.rows)
    if AuditCheck.FRESHNESS in checks and audit.freshness is not None:
        stale = audit.freshness.stale_candles if audit.freshness.last_open_time else math.inf
        result["freshness"] = 100.0 * 0.5 ** (stale / FRESHNESS_HALF_LIFE)
    if AuditCheck.GAPS in checks or AuditCheck.SPIKES in checks:
        breaks = audit.gap_count + audit.spike_count
        result["continuity"] = _ratio_score(breaks, max(1, expected))
    return result


def score_dataset(audit: DatasetAudit, thresholds: HealthThresholds) -> DatasetScore:
    if audit.status is not DatasetStatus.OK:
        parts = dict.fromkeys(subscores(audit), 0.0)
        return DatasetScore(score=0.0, level=level_of(0.0, thresholds), subscores=parts)
    parts = subscores(audit)
    weight = sum(WEIGHTS[name] for name in parts)
    score = sum(WEIGHTS[name] * value for name, value in parts.items()) / weight
    return DatasetScore(score=score, level=level_of(score, thresholds), subscores=parts)


def overall_score(scores: Sequence[DatasetScore]) -> float:
    """The mean of the datasets' scores; 100 for an audit without datasets (a shard may get none)."""
    return sum(item.score for item in scores) / len(scores) if scores else 100.0
