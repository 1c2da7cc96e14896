"""One analytics run: connect to both ends first (fail fast), compute every family for every dataset of
this shard, write the documents, apply retention, and return the caller's summary.

Sharding: per-symbol families follow the shard's symbols. Correlation needs every symbol of an interval, so
only shard 0 (or an unsharded run) computes it, reading the closes of all the spec's symbols; other shards
skip it. Candles are read one symbol at a time, so memory holds one symbol's candles plus, for correlation,
the closes of the interval's symbols.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from datamanager.api.analyticsjob import AnalyticsJobSpec, MetricFamily
from datamanager.api.common import Interval
from datamanager.contract import ResultsLocation, RunSummary
from datamanager_workers.analytics import correlation, results
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.families import COMPUTE, compute
from datamanager_workers.analytics.model import FamilyResult
from datamanager_workers.shared.settings import WorkerSettings
from datamanager_workers.shared.sink import ResultSink, RetentionMode
from datamanager_workers.shared.source import CandleSource, MySqlDsn, table_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyticsOptions:
    """Run-time knobs that are not part of the resource's spec."""

    as_of: datetime | None = None  # analyse as if it were this moment (reproducible reruns); default: now


def _span(candles: CandleArrays) -> tuple[datetime | None, datetime | None]:
    if candles.size == 0:
        return None, None
    first, last = (datetime.fromtimestamp(int(t), UTC) for t in (candles.open_time[0], candles.open_time[-1]))
    return first, last


def _missing_table(result: FamilyResult, table: str) -> FamilyResult:
    return dataclasses.replace(result, reason=f"no data: table {table} does not exist")


async def _interval_results(
    source: CandleSource,
    settings: WorkerSettings[AnalyticsJobSpec],
    interval: Interval,
    window: tuple[datetime, datetime],
    correlate: bool,
) -> list[results.DatasetResult]:
    spec = settings.spec
    table = table_name(spec.source.table_prefix, interval)
    exists = await source.table_exists(table)
    mine = set(settings.symbols)
    families = [family for family in dict.fromkeys(spec.families) if family in COMPUTE]
    out: list[results.DatasetResult] = []
    closes: dict[str, correlation.Closes] = {}
    bad = 0  # bad candles left out of the correlation's closes
    for symbol in spec.symbols if correlate else settings.symbols:
        rows = await source.fetch_candles(table, symbol, *window) if exists else []
        candles, excluded = CandleArrays.from_candles(rows).without_bad()
        if correlate:
            closes[symbol] = correlation.Closes(candles.open_time, candles.close)
            bad += excluded
        if symbol not in mine:
            continue
        first, last = _span(candles)
        for family in families:
            result = dataclasses.replace(compute(family, candles, spec, interval), excluded=excluded)
            if not exists:
                result = _missing_table(result, table)
            out.append(results.DatasetResult(symbol, interval, result, first, last))
    if correlate:
        result = dataclasses.replace(correlation.compute(closes, spec.windows, interval), excluded=bad)
        if not exists:
            result = _missing_table(result, table)
        out.append(results.DatasetResult(None, interval, result, None, None))
    return out


async def run_analytics(settings: WorkerSettings[AnalyticsJobSpec], options: AnalyticsOptions) -> RunSummary:
    spec = settings.spec
    started = datetime.now(UTC)
    end = options.as_of or started
    window = (end - spec.window_delta, end)
    collection = settings.collection(results.DEFAULT_COLLECTION)
    shard = settings.shard
    where = f" (shard {shard.label})" if shard else ""
    correlate = MetricFamily.CORRELATION in spec.families and (shard is None or shard.index == 0)
    log.info(
        "analytics %s%s: %s for %d symbols x %d intervals over %s ending %s",
        settings.run_id,
        where,
        ",".join(dict.fromkeys(spec.families)),
        len(settings.symbols),
        len(spec.intervals),
        spec.window,
        end.isoformat(),
    )
    async with AsyncExitStack() as stack:
        source = await stack.enter_async_context(
            CandleSource(MySqlDsn.parse(settings.mysql_dsn), connect_timeout=settings.connect_timeout)
        )
        sink = await stack.enter_async_context(
            ResultSink(settings.mongodb_uri, spec.sink.database, connect_timeout=settings.connect_timeout)
        )
        computed: list[results.DatasetResult] = []
        for interval in spec.intervals:
            computed += await _interval_results(source, settings, interval, window, correlate)
        run = results.AnalyticsRun(
            settings=settings,
            started_at=started,
            window_start=window[0],
            window_end=window[1],
            computed_at=datetime.now(UTC),
            results=computed,
        )
        retention = await sink.ensure_indexes(collection, results.INDEXES)
        written = await sink.replace_run(
            collection, results.documents(run), scope={"run_id": settings.run_id, "shard": run.shard_label}
        )
        swept = await sink.sweep_expired(collection) if retention is RetentionMode.SWEEP else 0

    location = ResultsLocation(
        database=spec.sink.database, collection=collection, run_id=settings.run_id, documents=written
    )
    summary = results.summary(run, location, datetime.now(UTC))
    summary.counts["expiredDeleted"] = swept
    log.info(
        "analytics %s%s finished: %s; %d documents in %s.%s, retention by %s",
        settings.run_id,
        where,
        summary.message,
        written,
        spec.sink.database,
        collection,
        retention.value,
    )
    return summary
