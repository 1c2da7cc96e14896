"""In-memory counters of what the consumer has seen: messages by type, malformed by reason, events by symbol.

Memory is bounded whatever arrives: types and reasons are fixed sets, and symbols get their own bucket only
while there is room (the allow-list's symbols, or the first ``max_symbols`` distinct ones); every other
symbol is counted in one ``other`` bucket. First come, first kept, because a Prometheus counter must never
move from one label to another.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from datamanager_workers.consumer.parsing import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_TYPES,
    MALFORMED_REASONS,
    parse,
)
from datamanager_workers.logs import iso_utc

OTHER_SYMBOLS: Final = "other"  # lower case, so no real (upper-cased) symbol can collide with it
DEFAULT_MAX_SYMBOLS: Final = 1000


class SymbolStats:
    """Counts for one symbol bucket; the time fields describe the newest event that carried ``E``."""

    __slots__ = ("events", "last_event_ms", "received_at")

    def __init__(self) -> None:
        self.events = 0
        self.last_event_ms: int | None = None
        self.received_at: float | None = None  # epoch seconds at which that event arrived

    @property
    def lag_seconds(self) -> float | None:
        """How far behind its own event time the newest event arrived (receipt time minus ``E``)."""
        if self.last_event_ms is None or self.received_at is None:
            return None
        return self.received_at - self.last_event_ms / 1000

    def as_dict(self) -> dict[str, object]:
        last = self.last_event_ms
        lag = self.lag_seconds
        return {
            "events": self.events,
            "last_event_time": None if last is None else iso_utc(last / 1000),
            "lag_seconds": None if lag is None else round(lag, 3),
        }


class Counters:
    """Everything the consumer counts. Single-threaded by design: only the event loop touches it."""

    def __init__(
        self,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        allowed_symbols: Iterable[str] = (),
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.messages_by_type: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)
        self.malformed_by_reason: dict[str, int] = dict.fromkeys(MALFORMED_REASONS, 0)
        self.bytes_total = 0
        allowed = {symbol.upper() for symbol in allowed_symbols}
        self.symbols: dict[str, SymbolStats] = {symbol: SymbolStats() for symbol in sorted(allowed)}
        self.other = SymbolStats()
        # An allow-list fixes the buckets up front; otherwise new symbols get one while there is room.
        self._max_symbols = 0 if allowed else max_symbols

    @property
    def messages_total(self) -> int:
        """Every message received: each is counted exactly once, under its type or its malformed reason."""
        return sum(self.messages_by_type.values()) + self.malformed_total

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed_by_reason.values())

    @property
    def events_total(self) -> int:
        """Events counted (one per message, or one per element of a list payload): each is in one bucket."""
        return self.other.events + sum(stats.events for stats in self.symbols.values())

    def observe(self, payload: bytes, received_at: float) -> str | None:
        """Count one message that arrived at ``received_at`` (epoch s); return why it is malformed, if so."""
        self.bytes_total += len(payload)
        result = parse(payload, self.max_payload_bytes)
        if isinstance(result, str):
            self.malformed_by_reason[result] += 1
            return result
        kind, symbol, event_time, rest = result
        self.messages_by_type[kind] += 1
        # The first event is counted outside the loop: nearly every message has no other, and building a
        # sequence to loop over one event costs more than these few lines twice.
        stats = self.symbols.get(symbol) or self._new_bucket(symbol)
        stats.events += 1
        if event_time is not None:
            stats.last_event_ms = event_time
            stats.received_at = received_at
        for symbol, event_time in rest:
            stats = self.symbols.get(symbol) or self._new_bucket(symbol)
            stats.events += 1
            if event_time is not None:
                stats.last_event_ms = event_time
                stats.received_at = received_at
        return None

    def _new_bucket(self, symbol: str) -> SymbolStats:
        if len(self.symbols) >= self._max_symbols:
            return self.other
        stats = self.symbols[symbol] = SymbolStats()
        return stats

    def buckets(self) -> Iterable[tuple[str, SymbolStats]]:
        """Every symbol bucket, the ``other`` bucket last."""
        yield from self.symbols.items()
        yield OTHER_SYMBOLS, self.other

    def snapshot(self) -> dict[str, object]:
        """The counters as a JSON-ready document (the body of ``/stats``)."""
        return {
            "messages": {
                "total": self.messages_total,
                "by_type": dict(self.messages_by_type),
            },
            "malformed": {
                "total": self.malformed_total,
                "by_reason": dict(self.malformed_by_reason),
            },
            "events": self.events_total,
            "bytes": self.bytes_total,
            "symbols": {name: stats.as_dict() for name, stats in self.buckets()},
        }
