"""One audit run: connect to both ends first (fail fast), audit every dataset of this shard, score, write
the report, apply retention, optionally request backfills, and return the caller's summary."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from datamanager.api import DataAuditSpec, Interval
from datamanager.contract import ResultsLocation, RunSummary
from datamanager_workers.audit import backfill, report
from datamanager_workers.audit.checks import audit_table
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit
from datamanager_workers.audit.scoring import overall_score, score_dataset
from datamanager_workers.shared.settings import WorkerSettings
from datamanager_workers.shared.sink import ResultSink, RetentionMode
from datamanager_workers.shared.source import CandleSource, MySqlDsn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditOptions:
    """Run-time knobs that are not part of the resource's spec."""

    as_of: datetime | None = None  # audit as if it were this moment (reproducible reruns); default: now
    concurrency: int = 2  # MySQL connections in use at once, shared by the tables and their queries
    nats_url: str | None = None  # for backfill requests


async def _audit_all(
    source: CandleSource, settings: WorkerSettings[DataAuditSpec], end: datetime, concurrency: int
) -> list[DatasetAudit]:
    """Every symbol x interval of this shard: the tables (intervals) run concurrently, at most
    ``concurrency`` of them at once."""
    spec = settings.spec
    gate = asyncio.Semaphore(concurrency)

    async def one(interval: Interval) -> list[DatasetAudit]:
        async with gate:
            window = AuditWindow.ending_at(end, spec.window_delta, interval)
            return await audit_table(source, spec, interval, settings.symbols, window)

    tables = await asyncio.gather(*(one(interval) for interval in spec.intervals))
    return [audit for table in tables for audit in table]


async def run_audit(settings: WorkerSettings[DataAuditSpec], options: AuditOptions) -> RunSummary:
    spec = settings.spec
    started = datetime.now(UTC)
    end = options.as_of or started
    collection = settings.collection(report.DEFAULT_COLLECTION)
    where = f" (shard {settings.shard.label})" if settings.shard else ""
    log.info(
        "audit %s%s: %d symbols x %d intervals over %s ending %s",
        settings.run_id,
        where,
        len(settings.symbols),
        len(spec.intervals),
        spec.window,
        end.isoformat(),
    )
    async with AsyncExitStack() as stack:
        source = await stack.enter_async_context(
            CandleSource(
                MySqlDsn.parse(settings.mysql_dsn),
                connect_timeout=settings.connect_timeout,
                pool_size=options.concurrency,
            )
        )
        sink = await stack.enter_async_context(
            ResultSink(settings.mongodb_uri, spec.sink.database, connect_timeout=settings.connect_timeout)
        )
        audits = await _audit_all(source, settings, end, options.concurrency)
        scored = [report.ScoredDataset(audit, score_dataset(audit, spec.thresholds)) for audit in audits]
        run = report.AuditRun(
            settings=settings,
            started_at=started,
            finished_at=datetime.now(UTC),
            datasets=scored,
            overall=overall_score([item.score for item in scored]),
        )
        retention = await sink.ensure_indexes(collection, report.INDEXES)
        written = await sink.replace_run(
            collection, report.documents(run), scope={"run_id": settings.run_id, "shard": run.shard_label}
        )
        swept = await sink.sweep_expired(collection) if retention is RetentionMode.SWEEP else 0

    result = report.summary(
        run,
        ResultsLocation(
            database=spec.sink.database, collection=collection, run_id=settings.run_id, documents=written
        ),
    )
    result.counts["expiredDeleted"] = swept
    if spec.backfill_subject and options.nats_url:
        requests = backfill.backfill_requests(
            audits, spec.backfill_min_missing, settings.run_id, settings.resource
        )
        published = await backfill.publish(
            options.nats_url, spec.backfill_subject, requests, wait=settings.connect_timeout
        )
        result.counts["backfillRequested"] = published
        result.counts["backfillNotSent"] = len(requests) - published
    log.info(
        "audit %s%s finished: health %s (%s), %d documents in %s.%s, retention by %s",
        settings.run_id,
        where,
        result.health_score,
        result.level or "nothing scoreable",
        written,
        spec.sink.database,
        collection,
        retention.value,
    )
    return result
