"""Runs the selected checks for one table (one interval, all of this run's symbols) and collects the
findings per dataset.

The queries are independent, so they run concurrently, each on its own pooled connection: the validity
scan (followed by the violation listing only when a rule was broken), the gap-and-spike pass, the duplicate
grouping and the freshness lookup. Each covers every symbol at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from datamanager.api import AuditCheck, DataAuditSpec, Interval
from datamanager_workers.audit import queries
from datamanager_workers.audit.findings import (
    OHLC_RULES,
    AuditWindow,
    DatasetAudit,
    DatasetStatus,
    Duplicate,
    Freshness,
    Gap,
    OhlcViolation,
    Spike,
)
from datamanager_workers.shared.source import CandleSource, quote, table_name, to_naive_utc, to_utc


def min_spike_returns(lookback: int) -> int:
    """Returns a rolling window needs before it judges a spike: half the look-back, so that a gap (across
    which no return is computed) blinds the check for a few candles, not for a whole look-back."""
    return max(2, lookback // 2)


def _ceil_intervals(span: timedelta, interval: Interval) -> int:
    return -(-span // interval.delta)  # a partial interval is a missing candle


async def audit_table(
    source: CandleSource,
    spec: DataAuditSpec,
    interval: Interval,
    symbols: Sequence[str],
    window: AuditWindow,
) -> list[DatasetAudit]:
    """Findings for each of ``symbols`` x ``interval``, in the order given. A missing table, an empty
    dataset or an unknown symbol is a finding, not an error. Only findings and aggregates are read."""
    table = table_name(spec.source.table_prefix, interval)
    checks = frozenset(spec.checks)
    audits = {
        symbol: DatasetAudit(symbol=symbol, interval=interval, table=table, window=window, checks=checks)
        for symbol in symbols
    }
    if not symbols:
        return []
    if not await source.table_exists(table):
        for audit in audits.values():
            audit.status = DatasetStatus.MISSING_TABLE
            audit.message = f"table {table} does not exist in {source.dsn.database}"
            audit.missing_candles = window.expected
        return list(audits.values())

    run = _TableQueries(source, spec, audits, quote(table), interval, window)
    wanted: list[Coroutine[Any, Any, None]] = [run.validity(), run.last_open_times()]
    if AuditCheck.GAPS in checks or AuditCheck.SPIKES in checks:
        wanted.append(run.series())
    if AuditCheck.DUPLICATES in checks:
        wanted.append(run.duplicates())
    await asyncio.gather(*wanted)

    for audit in audits.values():
        last = run.last_open.get(audit.symbol)
        if AuditCheck.FRESHNESS in checks:
            stale = (
                window.expected
                if last is None
                else max(0, _ceil_intervals(window.last_expected - last, interval))
            )
            audit.freshness = Freshness(last_open_time=last, stale_candles=stale)
        if audit.rows == 0:
            audit.status = DatasetStatus.NO_DATA
            audit.missing_candles = window.expected
            if last is None:
                audit.message = f"no candles for {audit.symbol} in {table} at all (unknown symbol?)"
            else:
                opened = f"{last:%Y-%m-%dT%H:%M:%SZ}"
                audit.message = (
                    f"no candles for {audit.symbol} in {table} in the window; the last opened {opened}"
                )
        elif AuditCheck.GAPS in checks:
            run.add_edge_gaps(audit)
    return list(audits.values())


class _TableQueries:
    """The queries of one table, each filling its part of the symbols' ``DatasetAudit``."""

    def __init__(
        self,
        source: CandleSource,
        spec: DataAuditSpec,
        audits: dict[str, DatasetAudit],
        table: str,
        interval: Interval,
        window: AuditWindow,
    ) -> None:
        self.source = source
        self.spec = spec
        self.audits = audits
        self.table = table
        self.step = interval.seconds
        self.window = window
        self.count = len(audits)
        self.params = queries.range_params(
            list(audits), to_naive_utc(window.first_expected), to_naive_utc(window.last_expected)
        )
        self.first_open: dict[str, datetime] = {}
        self.final_open: dict[str, datetime] = {}
        self.last_open: dict[str, datetime] = {}

    def _audit(self, symbol: str) -> DatasetAudit | None:
        # MySQL compares symbols without regard to case; the spec's are upper case.
        return self.audits.get(symbol.upper())

    async def last_open_times(self) -> None:
        sql = queries.last_open_times(self.table, self.count)
        for symbol, last in await self.source.fetch_all(sql, (*self.audits, to_naive_utc(self.window.end))):
            if last is not None:
                self.last_open[symbol.upper()] = to_utc(last)

    async def validity(self) -> None:
        broken = False
        for row in await self.source.fetch_all(queries.stats(self.table, self.step, self.count), self.params):
            audit = self._audit(row[0])
            if audit is None:
                continue
            audit.rows, audit.present, audit.quiet_candles = int(row[1]), int(row[2]), int(row[5] or 0)
            self.first_open[audit.symbol], self.final_open[audit.symbol] = to_utc(row[3]), to_utc(row[4])
            if AuditCheck.OHLC in audit.checks:
                audit.rule_counts = {rule: int(n or 0) for rule, n in zip(OHLC_RULES, row[6:], strict=True)}
                broken = broken or any(audit.rule_counts.values())
        if broken:
            sql = queries.violations(self.table, self.step, self.count, self.spec.max_findings)
            for row in await self.source.fetch_all(sql, self.params):
                audit = self._audit(row[0])
                if audit is not None:
                    audit.violations.append(_violation(row))
                    audit.invalid_rows = int(row[-1])

    async def series(self) -> None:
        checks, spikes = self.spec.checks, self.spec.spikes
        sql = queries.series(
            self.table,
            self.step,
            self.count,
            gaps=AuditCheck.GAPS in checks,
            spikes=AuditCheck.SPIKES in checks,
            sigma=spikes.sigma,
            lookback=spikes.lookback,
            min_returns=min_spike_returns(spikes.lookback),
            limit=self.spec.max_findings,
        )
        delta = timedelta(seconds=self.step)
        for row in await self.source.fetch_all(sql, self.params):
            symbol, is_gap, open_time, distance, flat, close, r, threshold, gaps, missed, found = row
            audit = self._audit(symbol)
            if audit is None:
                continue
            moment = to_utc(open_time)
            if is_gap:
                missing = -(-int(distance) // self.step) - 1
                first = moment - timedelta(seconds=int(distance)) + delta
                audit.gaps.append(Gap("interior", first, first + (missing - 1) * delta, missing, bool(flat)))
            else:
                audit.spikes.append(Spike(moment, float(r), float(threshold), close=close))
            audit.gap_count, audit.missing_candles = int(gaps or 0), int(missed or 0)
            audit.spike_count = int(found or 0)

    async def duplicates(self) -> None:
        sql = queries.duplicates(self.table, self.count, self.spec.max_findings)
        for symbol, open_time, copies, times, extra in await self.source.fetch_all(sql, self.params):
            audit = self._audit(symbol)
            if audit is not None:
                audit.duplicates.append(Duplicate(open_time=to_utc(open_time), copies=int(copies)))
                audit.duplicate_times, audit.duplicate_rows = int(times), int(extra)

    def add_edge_gaps(self, audit: DatasetAudit) -> None:
        """Leading and trailing gaps around the interior ones; the list keeps at most ``max_findings``."""
        window, delta = self.window, audit.interval.delta
        first, final = self.first_open.get(audit.symbol), self.final_open.get(audit.symbol)
        if first is None or final is None:
            return
        gaps = list(audit.gaps)
        if first > window.first_expected:
            lead = _ceil_intervals(first - window.first_expected, audit.interval)
            gaps.insert(
                0, Gap("leading", window.first_expected, window.first_expected + (lead - 1) * delta, lead)
            )
            audit.gap_count, audit.missing_candles = audit.gap_count + 1, audit.missing_candles + lead
        if final < window.last_expected:
            trail = _ceil_intervals(window.last_expected - final, audit.interval)
            gaps.append(
                Gap("trailing", window.last_expected - (trail - 1) * delta, window.last_expected, trail)
            )
            audit.gap_count, audit.missing_candles = audit.gap_count + 1, audit.missing_candles + trail
        audit.gaps = gaps[: self.spec.max_findings]


def _violation(row: tuple[Any, ...]) -> OhlcViolation:
    return OhlcViolation(
        open_time=to_utc(row[1]),
        open=row[2],
        high=row[3],
        low=row[4],
        close=row[5],
        volume=row[6],
        rules=tuple(rule for rule, flag in zip(OHLC_RULES, row[7:-1], strict=True) if flag),
    )
