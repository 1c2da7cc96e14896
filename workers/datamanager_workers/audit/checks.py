"""Runs the selected checks for one table (one interval, all of this run's symbols) and collects the
findings per dataset.

The queries are independent, so they run concurrently, each on its own pooled connection, the longest
first: the spike pass, the gap-and-copy pass (always: the completeness score needs its count of copies),
the broken-row listing, the count scan and the freshness lookup. Each covers every symbol at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from datamanager.api import AuditCheck, DataAuditSpec, Interval
from datamanager.api.common import describe_minimum_window
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
from datamanager_workers.shared.errors import InvalidConfigError
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
    if window.expected == 0:
        # Only a window shorter than the API's minimum gets here (at some times of day): judging a dataset
        # that should hold nothing would score an empty window as a dead feed.
        for audit in audits.values():
            audit.status = DatasetStatus.NOT_SCOREABLE
            minimum = describe_minimum_window(interval)
            audit.message = (
                f"the {window.length_text} window ending {window.end:%Y-%m-%dT%H:%M:%SZ} expects no closed "
                f"{interval.value} candle: a window of at least {minimum} always does"
            )
        return list(audits.values())
    if not await source.table_exists(table):
        for audit in audits.values():
            audit.status = DatasetStatus.MISSING_TABLE
            audit.message = f"table {table} does not exist in {source.dsn.database}"
            audit.missing_candles = window.expected
        return list(audits.values())

    run = _TableQueries(source, spec, audits, table, interval, window)
    run.hint = await index_hint(source, table, interval.seconds, len(symbols), run.params)
    wanted: list[Coroutine[Any, Any, None]] = []
    if AuditCheck.SPIKES in checks:
        wanted.append(run.spikes())
    wanted += [run.sequence(), run.stats(), run.last_open_times()]
    if AuditCheck.OHLC in checks:
        wanted.append(run.violations())
    await asyncio.gather(*wanted)

    for audit in audits.values():
        audit.present = run.on_grid.get(audit.symbol, 0) - run.copies_on_grid.get(audit.symbol, 0)
        audit.copies = run.copies.get(audit.symbol, 0)
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
            if AuditCheck.GAPS in checks:
                # The largest gap there is: listed, so that it gets a backfill request like any other.
                audit.gaps = [Gap("entire", window.first_expected, window.last_expected, window.expected)]
                audit.gap_count = 1
        elif AuditCheck.GAPS in checks:
            run.add_edge_gaps(audit)
    return list(audits.values())


# Read the table in full rather than through an index when the range would cover more than this share of
# it: each row found through a secondary index costs a random primary-key lookup, several times a row read in
# a sequential scan.
_SCAN_SHARE = 0.1


async def index_hint(
    source: CandleSource, table: str, step: int, symbols: int, params: Sequence[object]
) -> str:
    """``IGNORE INDEX (k)`` when the server would read most of ``table`` through index ``k`` for the audit's
    counts (``params`` as ``queries.range_params``), else "".

    MariaDB 10's cost model underrates random lookups: to group several symbols that make up most of a table
    it reads them through the ``(symbol, timestamp)`` index, one primary-key lookup per row, which made an
    audit of ten symbols as slow as selecting every candle into Python. The ordered passes sort anyway and
    scan; the hint steers the grouping queries (counts, freshness) to a scan too."""
    total = await source.table_rows(table)
    if not total:
        return ""
    plan = await source.explain(queries.stats(quote(table), step, symbols), params)
    if len(plan) != 1 or plan[0].get("key") is None:
        return ""
    key, rows = str(plan[0]["key"]), int(plan[0].get("rows") or 0)
    if rows < _SCAN_SHARE * total:
        return ""
    try:
        return f"IGNORE INDEX ({quote(key)})"
    except InvalidConfigError:  # an index name we would have to escape: leave the plan to the server
        return ""


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
        self.name = table
        self.table = quote(table)
        self.step = interval.seconds
        self.window = window
        self.count = len(audits)
        self.params = queries.range_params(
            list(audits), to_naive_utc(window.first_expected), to_naive_utc(window.last_expected)
        )
        self.hint = ""  # an index hint for the table's scans
        self.first_open: dict[str, datetime] = {}
        self.final_open: dict[str, datetime] = {}
        self.last_open: dict[str, datetime] = {}
        self.on_grid: dict[str, int] = {}  # rows on the interval's grid, copies included
        self.copies_on_grid: dict[str, int] = {}  # of which extra copies of an open time
        self.copies: dict[str, int] = {}  # extra copies of an open time, on the grid or off it

    def _audit(self, symbol: str) -> DatasetAudit | None:
        # MySQL compares symbols without regard to case; the spec's are upper case.
        return self.audits.get(symbol.upper())

    async def last_open_times(self) -> None:
        sql = queries.last_open_times(self.table, self.count, self.hint)
        for symbol, last in await self.source.fetch_all(sql, (*self.audits, to_naive_utc(self.window.end))):
            if last is not None:
                self.last_open[symbol.upper()] = to_utc(last)

    async def stats(self) -> None:
        sql = queries.stats(self.table, self.step, self.count, self.hint)
        for row in await self.source.fetch_all(sql, self.params):
            symbol, rows, on_grid, first, final, quiet = row
            audit = self._audit(symbol)
            if audit is not None:
                audit.rows, audit.quiet_candles = int(rows), int(quiet or 0)
                self.on_grid[audit.symbol] = int(on_grid or 0)
                self.first_open[audit.symbol], self.final_open[audit.symbol] = to_utc(first), to_utc(final)

    async def violations(self) -> None:
        for clean in self.audits.values():
            clean.rule_counts = dict.fromkeys(OHLC_RULES, 0)
        found = {row[0] for row in await self.source.fetch_all(queries.NULLABLE_COLUMNS, (self.name,))}
        nullable = [column for column in queries.RULE_COLUMNS if column in found]
        sql = queries.violations(
            self.table, self.step, self.count, self.spec.max_findings, self.hint, nullable
        )
        for row in await self.source.fetch_all(sql, self.params):
            audit = self._audit(row[0])
            if audit is not None:
                audit.violations.append(_violation(row))
                audit.invalid_rows = int(row[8])
                audit.rule_counts = {rule: int(n) for rule, n in zip(OHLC_RULES, row[9:], strict=True)}

    async def sequence(self) -> None:
        sql = queries.sequence(self.table, self.step, self.count, self.spec.max_findings, self.hint)
        checks = self.spec.checks
        list_gaps, list_copies = AuditCheck.GAPS in checks, AuditCheck.DUPLICATES in checks
        delta = timedelta(seconds=self.step)
        for row in await self.source.fetch_all(sql, self.params):
            symbol, is_copy, open_time, distance, flat, extra, gaps, missing, copied, copies, on_grid = row
            audit = self._audit(symbol)
            if audit is None:
                continue
            self.copies_on_grid[audit.symbol] = int(on_grid)
            self.copies[audit.symbol] = int(copies)
            moment = to_utc(open_time)
            if list_copies:
                audit.duplicate_times, audit.duplicate_rows = int(copied), int(copies)
                if is_copy:
                    audit.duplicates.append(Duplicate(open_time=moment, copies=int(extra) + 1))
            if list_gaps:
                audit.gap_count, audit.missing_candles = int(gaps), int(missing)
                if not is_copy:
                    count = -(-int(distance) // self.step) - 1
                    first = moment - timedelta(seconds=int(distance)) + delta
                    audit.gaps.append(Gap("interior", first, first + (count - 1) * delta, count, bool(flat)))

    async def spikes(self) -> None:
        settings = self.spec.spikes
        sql = queries.spikes(
            self.table,
            self.step,
            self.count,
            sigma=settings.sigma,
            lookback=settings.lookback,
            min_returns=min_spike_returns(settings.lookback),
            limit=self.spec.max_findings,
            hint=self.hint,
        )
        for row in await self.source.fetch_all(sql, self.params):
            symbol, open_time, close, kind, value, mean, threshold, total = row
            audit = self._audit(symbol)
            if audit is not None:
                audit.spikes.append(
                    Spike(to_utc(open_time), kind, float(value), float(mean), float(threshold), close=close)
                )
                audit.spike_count = int(total)

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
    broken = int(row[7])
    return OhlcViolation(
        open_time=to_utc(row[1]),
        open=row[2],
        high=row[3],
        low=row[4],
        close=row[5],
        volume=row[6],
        rules=tuple(rule for i, rule in enumerate(OHLC_RULES) if broken & (1 << i)),
    )
