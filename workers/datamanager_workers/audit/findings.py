"""What an audit finds for one dataset (symbol x interval): the window it looked at, bounded finding lists
and exact totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from datamanager.api import AuditCheck, Interval
from datamanager.api.common import CANDLE_GRACE

# A candle counts as expected once it has been closed this long: the extractor writes a candle shortly after
# it closes, and the old auditor's tolerance was the same 60 s. The API rejects windows shorter than twice the
# interval plus this grace, the shortest that always expect a candle.
GRACE = CANDLE_GRACE
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
    def length_text(self) -> str:
        """The window's length for messages: ``90m``, ``24h``, ``7d``."""
        minutes = (self.end - self.start) // timedelta(minutes=1)
        for unit, size in (("d", 1440), ("h", 60)):
            if minutes % size == 0:
                return f"{minutes // size}{unit}"
        return f"{minutes}m"

    @property
    def expected(self) -> int:
        """How many candles the window should hold; 0 only for a window shorter than the API's minimum
        (twice the interval plus the grace), and then at some times of day only."""
        if self.last_expected < self.first_expected:
            return 0
        return (self.last_expected - self.first_expected) // self.interval.delta + 1


class DatasetStatus(StrEnum):
    OK = "ok"  # the table exists and holds candles in the window
    NO_DATA = "no_data"  # the table exists, but not one candle of this symbol is in the window
    MISSING_TABLE = "missing_table"
    NOT_SCOREABLE = "not_scoreable"  # the window expects no closed candle at this moment: nothing to judge


# A rule is broken when its condition holds for the row's non-NULL values; a NULL in a column the rules read
# breaks `null_value` and nothing else. New rules go at the end: a rule's position is its bit in the masks.
OHLC_RULES: tuple[str, ...] = (
    "low_above_open_close",  # low > min(open, close)
    "high_below_open_close",  # high < max(open, close)
    "low_above_high",
    "non_positive_price",  # a price <= 0
    "negative_volume",  # a volume or the trade count < 0
    "close_time_mismatch",  # close_time is not open_time + interval (less 1 s or 0 s: DATETIME drops ms)
    "misaligned_open_time",  # open_time is not on the interval's grid
    "null_value",  # a price, volume, trade count or close time is NULL (copies and views may have them)
    "quote_volume_outside_range",  # quote volume outside volume x [low, high], beyond QUOTE_TOLERANCE
    "taker_buy_above_total",  # taker-buy base volume > volume, or taker-buy quote volume > quote volume
    "volume_without_trades",  # no trades but a volume other than 0
)
# Binance rounds the quote volume (a sum of price x quantity over the trades) to the quote asset's precision,
# at least cents; volume x low and volume x high are exact. Taker-buy volumes are sums over a subset of the
# same trades, rounded the same way, and rounding is monotone: they need no tolerance.
QUOTE_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True)
class Gap:
    """Missing candles: open times ``first_missing`` .. ``last_missing`` (both inclusive)."""

    position: Literal["leading", "interior", "trailing", "entire"]  # entire: the window holds no candle
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
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal | None


SpikeKind = Literal["return", "wick"]


@dataclass(frozen=True)
class Spike:
    """A candle whose close-to-close log return lies further than ``threshold`` from the rolling ``mean``
    (``|value - mean| > threshold``), or whose longer wick exceeds ``threshold`` (a move that snapped back
    within the candle). A candle that is both is a ``return`` spike."""

    open_time: datetime
    kind: SpikeKind
    value: float  # the log return, or the wick: ln(high / max(open, close)) or ln(min(open, close) / low)
    mean: float  # the rolling mean of the returns over the look-back
    threshold: float  # sigma x the rolling standard deviation of the returns
    close: Decimal | None


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
    copies: int = 0  # extra copies of an open time among them, counted whichever checks ran
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

    @property
    def stored(self) -> int:
        """Distinct open times stored in the window: rows less the extra copies."""
        return self.rows - self.copies
