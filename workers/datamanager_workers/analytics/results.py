"""The analytics documents in MongoDB and the caller's summary.

One collection (``sink.collection``, default ``analytics``) holds one document per symbol x interval x family
of a run, plus one correlation document per interval (``symbol`` null; its symbols are in ``parameters``).
``_id`` is ``<run id>/<interval>/<symbol or *>/<family>``, so a rerun of the same run id upserts the same
documents and the sink deletes whatever an earlier attempt wrote that this one did not.

Indexes: ``symbol, interval, family, computed_at desc`` makes "the latest result for this symbol, interval and
family" one indexed query; ``run_id`` finds a run. Every document carries ``expires_at`` for retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from datamanager.api.analyticsjob import AnalyticsJobSpec
from datamanager.api.common import Interval
from datamanager.contract import DatasetSummary, ExitCode, ResultsLocation, RunSummary, ShardRef
from datamanager_workers.analytics.model import OK, FamilyResult
from datamanager_workers.shared.settings import WorkerSettings
from datamanager_workers.shared.sink import EXPIRES_FIELD, expiry

DEFAULT_COLLECTION = "analytics"
SUMMARY_DATASETS = 20  # the summary lists datasets lacking data; the full picture is in MongoDB
ALL_SYMBOLS = "*"

INDEXES = [
    IndexModel(
        [("symbol", ASCENDING), ("interval", ASCENDING), ("family", ASCENDING), ("computed_at", DESCENDING)],
        name="latest",
    ),
    IndexModel([("run_id", ASCENDING)], name="run"),
]


@dataclass(frozen=True)
class DatasetResult:
    """One family's result for one symbol (``None``: across the interval's symbols) and interval."""

    symbol: str | None
    interval: Interval
    result: FamilyResult
    first_open_time: datetime | None  # the candles the result was computed from
    last_open_time: datetime | None


@dataclass(frozen=True)
class AnalyticsRun:
    """One finished run (or shard), before it is written."""

    settings: WorkerSettings[AnalyticsJobSpec]
    started_at: datetime
    window_start: datetime
    window_end: datetime
    computed_at: datetime
    results: list[DatasetResult]

    @property
    def shard_label(self) -> str | None:
        return self.settings.shard.label if self.settings.shard else None


def document(run: AnalyticsRun, item: DatasetResult) -> dict[str, Any]:
    settings, result = run.settings, item.result
    symbol_key = item.symbol or ALL_SYMBOLS
    return {
        "_id": f"{settings.run_id}/{item.interval.value}/{symbol_key}/{result.family.value}",
        "run_id": settings.run_id,
        "resource": settings.resource,
        "shard": run.shard_label,
        "symbol": item.symbol,
        "interval": item.interval.value,
        "family": result.family.value,
        "window": result.window,
        "parameters": result.parameters,
        "status": result.status,
        "reason": result.reason,
        "candles": result.candles,
        "excluded_candles": result.excluded,
        "required": result.required,
        "values": result.values,
        "first_open_time": item.first_open_time,
        "last_open_time": item.last_open_time,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "computed_at": run.computed_at,
        EXPIRES_FIELD: expiry(run.computed_at, settings.spec.sink.retention_days),
    }


def documents(run: AnalyticsRun) -> list[dict[str, Any]]:
    return [document(run, item) for item in run.results]


def counts(results: Sequence[DatasetResult]) -> dict[str, int]:
    ok = sum(item.result.status == OK for item in results)
    return {
        "datasets": len({(item.symbol, item.interval) for item in results if item.symbol is not None}),
        "results": len(results),
        "ok": ok,
        "insufficientData": len(results) - ok,
    }


def _lacking(run: AnalyticsRun) -> list[DatasetSummary]:
    """Datasets with at least one family short of data, most families short first."""
    problems: dict[tuple[str, str], list[str]] = {}
    for item in run.results:
        if item.result.reason is not None:
            key = (item.symbol or ALL_SYMBOLS, item.interval.value)
            problems.setdefault(key, []).append(f"{item.result.family.value}: {item.result.reason}")
    ordered = sorted(problems.items(), key=lambda entry: (-len(entry[1]), entry[0]))
    return [
        DatasetSummary(symbol=symbol, interval=interval, problems=reasons)
        for (symbol, interval), reasons in ordered[:SUMMARY_DATASETS]
    ]


def summary(run: AnalyticsRun, location: ResultsLocation, finished_at: datetime) -> RunSummary:
    settings = run.settings
    shard = settings.shard
    totals = counts(run.results)
    return RunSummary(
        job="analytics",
        outcome="Succeeded",
        exit_code=int(ExitCode.OK),
        reason="Completed",
        message=(
            f"computed {totals['results']} results for {totals['datasets']} datasets: {totals['ok']} ok, "
            f"{totals['insufficientData']} with insufficient data"
        ),
        run_id=settings.run_id,
        resource=settings.resource,
        started_at=run.started_at,
        finished_at=finished_at,
        shard=ShardRef(index=shard.index, count=shard.count) if shard else None,
        results=location,
        counts=totals,
        datasets=_lacking(run),
    )
