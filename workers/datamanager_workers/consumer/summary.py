"""One summary line per interval: what was counted since the previous line, the totals, the worst lag."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.logs import OncePerInterval

log = logging.getLogger("datamanager_workers.consumer")


class IntervalSummary:
    """Remembers the totals at the start of the interval, so each line reports that interval's share."""

    def __init__(self, counters: Counters, state: ConnectionState, now: float) -> None:
        self._counters = counters
        self._state = state
        self._restart(now)

    def _restart(self, now: float) -> None:
        counters = self._counters
        self._since = now
        self._by_type = dict(counters.messages_by_type)
        self._by_reason = dict(counters.malformed_by_reason)
        self._events_by_symbol = {name: stats.events for name, stats in counters.buckets()}

    def take(self, now: float) -> dict[str, object]:
        """Fields of one summary line for the interval ending at ``now``, where the next one starts."""
        counters, state = self._counters, self._state
        by_type = _delta(counters.messages_by_type, self._by_type)
        by_reason = _delta(counters.malformed_by_reason, self._by_reason)
        buckets = dict(counters.buckets())
        events_now = {name: stats.events for name, stats in buckets.items()}
        events_by_symbol = _delta(events_now, self._events_by_symbol)
        seconds = max(now - self._since, 1e-9)
        messages = sum(by_type.values()) + sum(by_reason.values())
        fields: dict[str, object] = {
            "interval_seconds": round(seconds, 1),
            "messages": messages,
            "rate_per_second": round(messages / seconds, 1),
            "events": sum(events_by_symbol.values()),
            "malformed": sum(by_reason.values()),
            "types": by_type,
        }
        if by_reason:
            fields["malformed_by_reason"] = by_reason
        # Among the symbols heard from in this interval: one that went quiet would always be the worst.
        lags = ((buckets[symbol].lag_seconds(now), symbol) for symbol in events_by_symbol)
        recent = ((lag, symbol) for lag, symbol in lags if lag is not None)
        worst = max(recent, default=None)
        if worst is not None:
            fields["worst_lag_seconds"] = round(worst[0], 3)
            fields["worst_lag_symbol"] = worst[1]
        fields.update(
            symbols=len(buckets) - 1,  # the named ones: `other` is not a symbol
            total_messages=counters.messages_total,
            total_malformed=counters.malformed_total,
            connected=state.connected,
            reconnects=state.reconnects,
            dropped=state.dropped,
        )
        self._restart(now)
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
