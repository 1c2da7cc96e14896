"""One summary line per interval: what was counted since the previous line, the totals, the worst lag."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from datamanager_workers.consumer.counters import Counters, SymbolStats
from datamanager_workers.consumer.parsing import BAD_LIST_ELEMENT
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.logs import OncePerInterval

log = logging.getLogger("datamanager_workers.consumer")
_NONE = SymbolStats(0, None)


class _Totals(NamedTuple):
    """The counters' totals at one moment."""

    by_type: dict[str, int]
    by_reason: dict[str, int]
    buckets: dict[str, SymbolStats]
    cells: dict[tuple[str, str], SymbolStats]  # by (event type, symbol bucket)

    @classmethod
    def read(cls, counters: Counters) -> _Totals:
        cells = {(kind, symbol): stats for kind, symbol, stats in counters.cells()}
        return cls(
            counters.messages_by_type, dict(counters.malformed_by_reason), dict(counters.buckets()), cells
        )

    @property
    def events_by_symbol(self) -> dict[str, int]:
        return {name: stats.events for name, stats in self.buckets.items()}


class IntervalSummary:
    """Remembers the totals at the start of the interval, so each line reports that interval's share."""

    def __init__(self, counters: Counters, state: ConnectionState, now: float) -> None:
        self._counters = counters
        self._state = state
        self._since = now
        self._start = _Totals.read(counters)

    def take(self, now: float) -> dict[str, object]:
        """Fields of one summary line for the interval ending at ``now``, where the next one starts."""
        start, current = self._start, _Totals.read(self._counters)
        by_type = _delta(current.by_type, start.by_type)
        by_reason = _delta(current.by_reason, start.by_reason)
        events_by_symbol = _delta(current.events_by_symbol, start.events_by_symbol)
        seconds = max(now - self._since, 1e-9)
        malformed_messages = sum(n for reason, n in by_reason.items() if reason != BAD_LIST_ELEMENT)
        messages = sum(by_type.values()) + malformed_messages
        fields: dict[str, object] = {
            "interval_seconds": round(seconds, 1),
            "messages": messages,
            "rate_per_second": round(messages / seconds, 1),
            "events": sum(events_by_symbol.values()),
            "malformed": malformed_messages,
            "types": by_type,
        }
        if by_reason:
            fields["malformed_by_reason"] = by_reason
        # Among the streams (symbol and type) heard from in this interval: one that went quiet would always
        # be the worst, and the metric datamanager_consumer_worst_lag_seconds shows those.
        lags = (
            (stats.lag_seconds(now), symbol, kind)
            for (kind, symbol), stats in current.cells.items()
            if stats.events != start.cells.get((kind, symbol), _NONE).events
        )
        worst = max(((lag, symbol, kind) for lag, symbol, kind in lags if lag is not None), default=None)
        if worst is not None:
            fields["worst_lag_seconds"] = round(worst[0], 3)
            fields["worst_lag_symbol"] = worst[1]
            fields["worst_lag_type"] = worst[2]
        total_malformed = sum(n for reason, n in current.by_reason.items() if reason != BAD_LIST_ELEMENT)
        state = self._state
        fields.update(
            symbols=len(current.buckets) - 1,  # the named ones: `other` is not a symbol
            total_messages=sum(current.by_type.values()) + total_malformed,
            total_malformed=total_malformed,
            connected=state.connected,
            reconnects=state.reconnects,
            dropped=state.dropped,
        )
        self._since, self._start = now, current
        return fields


def _delta(current: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Only the keys that moved, so a line lists the types actually seen."""
    moved = {key: value - before.get(key, 0) for key, value in current.items()}
    return {key: value for key, value in moved.items() if value}


async def log_summaries(
    summary: IntervalSummary,
    interval: float,
    once: OncePerInterval,
    clock: Callable[[], float] = time.time,
) -> None:
    """Log one summary line every ``interval`` seconds until cancelled; each line also opens a new window
    for the rate-limited problem logs."""
    while True:
        await asyncio.sleep(interval)
        log.info("summary", extra={"fields": summary.take(clock())})
        once.reset()
