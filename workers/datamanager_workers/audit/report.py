"""The audit's MongoDB documents and the caller's summary.

One collection (``sink.collection``, default ``audit``) holds two kinds of document, told apart by ``kind``:

- ``run``: one per run (per shard of a sharded run), ``_id`` = run id (+ ``/shard-<i>-of-<n>``): resource,
  spec, window, start, finish, overall score, level and counts.
- ``dataset``: one per symbol x interval, ``_id`` = ``<run id>/<symbol>/<interval>``: status, score,
  sub-scores, exact totals and the first ``maxFindings`` findings of each check.

Indexes: ``run_id`` (everything of one run), ``symbol, interval, finished_at`` (the latest audit of a
dataset) and ``kind, finished_at`` (the latest run). Every document carries ``expires_at`` for retention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from datamanager.api import DataAuditSpec
from datamanager.contract import DatasetSummary, ExitCode, ResultsLocation, RunSummary, ShardRef
from datamanager_workers.audit.findings import DatasetAudit, DatasetStatus
from datamanager_workers.audit.scoring import DatasetScore, Level, display, level_of
from datamanager_workers.shared.settings import WorkerSettings
from datamanager_workers.shared.sink import EXPIRES_FIELD, expiry

DEFAULT_COLLECTION = "audit"
SUMMARY_DATASETS = 20  # the summary lists the worst datasets; the full list is in MongoDB

INDEXES = [
    IndexModel([("run_id", ASCENDING)], name="run"),
    IndexModel(
        [("symbol", ASCENDING), ("interval", ASCENDING), ("finished_at", DESCENDING)], name="latest_dataset"
    ),
    IndexModel([("kind", ASCENDING), ("finished_at", DESCENDING)], name="latest_run"),
]


@dataclass(frozen=True)
class ScoredDataset:
    audit: DatasetAudit
    score: DatasetScore


@dataclass(frozen=True)
class AuditRun:
    """One finished run (or shard), before it is written."""

    settings: WorkerSettings[DataAuditSpec]
    started_at: datetime
    finished_at: datetime
    datasets: list[ScoredDataset]
    overall: float | None  # None: no dataset was scoreable

    @property
    def level(self) -> Level | None:
        return None if self.overall is None else level_of(self.overall, self.settings.spec.thresholds)

    @property
    def shard_label(self) -> str | None:
        return self.settings.shard.label if self.settings.shard else None

    def worst_first(self) -> list[ScoredDataset]:
        """Scored datasets worst first, then the ones that are not scoreable."""

        def key(item: ScoredDataset) -> tuple[bool, float, str, str]:
            score = item.score.score
            return (score is None, score or 0.0, item.audit.symbol, item.audit.interval)

        return sorted(self.datasets, key=key)


def counts(datasets: Sequence[ScoredDataset]) -> dict[str, int]:
    """Totals over the datasets: by level, by status and by kind of finding."""
    audits = [item.audit for item in datasets]
    result = {"datasets": len(datasets)}
    result.update({level.value: sum(1 for item in datasets if item.score.level is level) for level in Level})
    result["missingTables"] = sum(1 for a in audits if a.status is DatasetStatus.MISSING_TABLE)
    result["emptyDatasets"] = sum(1 for a in audits if a.status is DatasetStatus.NO_DATA)
    result["notScoreable"] = sum(1 for a in audits if a.status is DatasetStatus.NOT_SCOREABLE)
    result["gaps"] = sum(a.gap_count for a in audits)
    result["missingCandles"] = sum(a.missing_candles for a in audits)
    result["duplicateRows"] = sum(a.duplicate_rows for a in audits)
    result["invalidRows"] = sum(a.invalid_rows for a in audits)
    result["spikes"] = sum(a.spike_count for a in audits)
    result["staleDatasets"] = sum(1 for a in audits if a.freshness is not None and a.freshness.stale)
    return result


def problems(audit: DatasetAudit) -> list[str]:
    """Short phrases for the summary: what is wrong with a dataset, most important first."""
    if audit.status is not DatasetStatus.OK:
        return [audit.message]
    found = []
    if audit.freshness is not None and audit.freshness.stale:
        found.append(f"stale by {audit.freshness.stale_candles} candles")
    if audit.gap_count:
        found.append(f"{audit.gap_count} gaps ({audit.missing_candles} candles missing)")
    if audit.invalid_rows:
        found.append(f"{audit.invalid_rows} invalid rows")
    if audit.duplicate_rows:
        found.append(f"{audit.duplicate_rows} duplicate rows")
    if audit.spike_count:
        found.append(f"{audit.spike_count} spikes")
    return found


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and tuples to lists; Decimals and datetimes stay for the BSON codec."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def run_document_id(run: AuditRun) -> str:
    run_id = run.settings.run_id
    return f"{run_id}/shard-{run.shard_label}" if run.shard_label else run_id


def documents(run: AuditRun) -> list[dict[str, Any]]:
    """The run document followed by one document per dataset."""
    settings = run.settings
    expires = expiry(run.finished_at, settings.spec.sink.retention_days)
    common = {
        "run_id": settings.run_id,
        "resource": settings.resource,
        "shard": run.shard_label,
        "finished_at": run.finished_at,
        EXPIRES_FIELD: expires,
    }
    run_doc = {
        "_id": run_document_id(run),
        "kind": "run",
        **common,
        "job": "audit",
        "started_at": run.started_at,
        "spec": settings.spec.model_dump(mode="json", by_alias=True),
        "symbols": settings.symbols,
        "health_score": run.overall,
        "level": None if run.level is None else run.level.value,
        "counts": counts(run.datasets),
    }
    docs: list[dict[str, Any]] = [run_doc]
    for item in run.datasets:
        audit, score = item.audit, item.score
        docs.append(
            {
                "_id": f"{settings.run_id}/{audit.symbol}/{audit.interval.value}",
                "kind": "dataset",
                **common,
                "symbol": audit.symbol,
                "interval": audit.interval.value,
                "table": audit.table,
                "status": audit.status.value,
                "message": audit.message,
                "checks": sorted(check.value for check in audit.checks),
                "window": {
                    "start": audit.window.start,
                    "end": audit.window.end,
                    "first_expected": audit.window.first_expected,
                    "last_expected": audit.window.last_expected,
                },
                "health_score": score.score,
                "level": None if score.level is None else score.level.value,
                "subscores": score.subscores,
                "totals": {
                    "expected": audit.window.expected,
                    "present": audit.present,
                    "rows": audit.rows,
                    "quiet_candles": audit.quiet_candles,
                    "gaps": audit.gap_count,
                    "missing_candles": audit.missing_candles,
                    "duplicate_times": audit.duplicate_times,
                    "duplicate_rows": audit.duplicate_rows,
                    "invalid_rows": audit.invalid_rows,
                    "spikes": audit.spike_count,
                },
                "rule_counts": audit.rule_counts,
                "freshness": _plain(audit.freshness),
                "gaps": _plain(audit.gaps),
                "duplicates": _plain(audit.duplicates),
                "violations": _plain(audit.violations),
                "spikes": _plain(audit.spikes),
            }
        )
    return docs


def summary(run: AuditRun, location: ResultsLocation) -> RunSummary:
    settings = run.settings
    shard = settings.shard
    totals = counts(run.datasets)
    worst = run.worst_first()[:SUMMARY_DATASETS]
    overall = None if run.overall is None else display(run.overall)
    level = None if run.level is None else run.level.value
    return RunSummary(
        job="audit",
        outcome="Succeeded",
        exit_code=int(ExitCode.OK),
        reason="Completed",
        message=(
            f"audited {totals['datasets']} datasets: health {overall} ({level or 'nothing scoreable'}); "
            f"{totals['gaps']} gaps, {totals['duplicateRows']} duplicate rows, {totals['invalidRows']} "
            f"invalid rows, {totals['spikes']} spikes, {totals['staleDatasets']} stale datasets"
        ),
        run_id=settings.run_id,
        resource=settings.resource,
        started_at=run.started_at,
        finished_at=run.finished_at,
        shard=ShardRef(index=shard.index, count=shard.count) if shard else None,
        results=location,
        health_score=overall,
        level=level,
        counts=totals,
        datasets=[
            DatasetSummary(
                symbol=item.audit.symbol,
                interval=item.audit.interval.value,
                score=None if item.score.score is None else display(item.score.score),
                level=None if item.score.level is None else item.score.level.value,
                problems=problems(item.audit),
            )
            for item in worst
        ],
    )
