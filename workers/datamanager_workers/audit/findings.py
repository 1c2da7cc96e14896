"""What an audit finds for one dataset (symbol x interval): the window it looked at, bounded finding lists
and exact totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from datamanager.api import AuditCheck, Interval

# A candle counts as expected once it has been closed this long: the extractor writes a candle shortly after
# it closes, and the old auditor's tolerance was the same 60 s.
GRACE = timedelta(seconds=60)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _floor(moment: datetime, step: int) -> datetime:
    seconds = int((moment - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % step)


@dataclass(frozen=True)
class AuditWindow:
    """The candles a dataset should hold: open times on the interval's grid from the first one at or after
    ``start`` to the last one closed at least ``GRACE`` before ``end`` (both inclusive)."""

    interval: Interval
    start: datetime
    end: datetime
    first_expected: datetime
    last_expected: datetime

    @classmethod
    def ending_at(cls, end: datetime, length: timedelta, interval: Interval) -> AuditWindow:
        step = interval.seconds
        start = end - length
        first = _floor(start, step)
        if first < start:
            first += interval.delta
        last = _floor(end - GRACE, step) - interval.delta
        return cls(interval=interval, start=start, end=end, first_expected=first, last_expected=last)

    @property
    def expected(self) -> int:
        """How many candles the window should hold (0 when it is shorter than one closed interval)."""
        if self.last_expected < self.first_expected:
            return 0
        return (self.last_expected - self.first_expected) // self.interval.delta + 1


class DatasetStatus(StrEnum):
    OK = "ok"  # the table exists and holds candles in the window
    NO_DATA = "no_data"  # the table exists, but not one candle of this symbol is in the window
    MISSING_TABLE = "missing_table"


OHLC_RULES: tuple[str, ...] = (
    "low_above_open_close",  # low > min(open, close)
    "high_below_open_close",  # high < max(open, close)
    "low_above_high",
    "non_positive_price",  # a price <= 0
    "negative_volume",  # a volume or the trade count < 0
    "close_time_mismatch",  # close_time is not open_time + interval (less 1 s or 0 s: DATETIME drops ms)
    "misaligned_open_time",  # open_time is not on the interval's grid
)


@dataclass(frozen=True)
class Gap:
    """Missing candles: open times ``first_missing`` .. ``last_missing`` (both inclusive)."""

    position: Literal["leading", "interior", "trailing"]
    first_missing: datetime
    last_missing: datetime
    missing: int
    # The price did not move across the gap and the candle before it had no trades: the missing period
    # probably had no trades either, so refilling it is of little value.
    flat: bool = False


@dataclass(frozen=True)
class Duplicate:
    open_time: datetime
    copies: int


@dataclass(frozen=True)
class OhlcViolation:
    open_time: datetime
    rules: tuple[str, ...]
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class Spike:
    open_time: datetime
    log_return: float
    threshold: float  # sigma x the rolling standard deviation it exceeded
    close: Decimal


@dataclass(frozen=True)
class Freshness:
    """``stale_candles``: closed candles that should exist after the last stored one."""

    last_open_time: datetime | None
    stale_candles: int

    @property
    def stale(self) -> bool:
        return self.last_open_time is None or self.stale_candles > 0


@dataclass
class DatasetAudit:
    """Findings for one dataset: lists hold at most ``max_findings`` entries, totals are exact."""

    symbol: str
    interval: Interval
    table: str
    window: AuditWindow
    checks: frozenset[AuditCheck]
    status: DatasetStatus = DatasetStatus.OK
    message: str = ""
    rows: int = 0  # rows in the window, duplicates included
    present: int = 0  # distinct expected open times that have a row
    quiet_candles: int = 0  # candles without trades: normal in thin markets, never a defect
    gaps: list[Gap] = field(default_factory=list)
    gap_count: int = 0
    missing_candles: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    duplicate_times: int = 0
    duplicate_rows: int = 0  # copies beyond the first
    violations: list[OhlcViolation] = field(default_factory=list)
    invalid_rows: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    spikes: list[Spike] = field(default_factory=list)
    spike_count: int = 0
    freshness: Freshness | None = None
