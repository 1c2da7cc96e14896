"""Prometheus exposition of the counters, read at scrape time: counting a message touches no metric object."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.state import ConnectionState

PREFIX = "datamanager_consumer"


class ConsumerCollector(Collector):
    def __init__(self, counters: Counters, state: ConnectionState) -> None:
        self._counters = counters
        self._state = state

    def collect(self) -> Iterator[Metric]:
        counters, state = self._counters, self._state
        messages = CounterMetricFamily(
            f"{PREFIX}_messages", "Well-formed messages received, by event type.", labels=["type"]
        )
        for kind, count in counters.messages_by_type.items():
            messages.add_metric([kind], count)
        yield messages
        malformed = CounterMetricFamily(
            f"{PREFIX}_malformed_messages",
            "Messages that could not be counted, by reason.",
            labels=["reason"],
        )
        for reason, count in counters.malformed_by_reason.items():
            malformed.add_metric([reason], count)
        yield malformed
        yield CounterMetricFamily(
            f"{PREFIX}_received_bytes",
            "Payload bytes received, malformed included.",
            value=counters.bytes_total,
        )
        events = CounterMetricFamily(
            f"{PREFIX}_events",
            "Events by symbol; list payloads count each element. Symbols beyond the limit are 'other'.",
            labels=["symbol"],
        )
        last_event = GaugeMetricFamily(
            f"{PREFIX}_last_event_timestamp_seconds",
            "Event time E of the newest event per symbol.",
            labels=["symbol"],
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_lag_seconds",
            "Scrape time minus the event time E of the newest event per symbol.",
            labels=["symbol"],
        )
        now = time.time()
        for symbol, stats in counters.buckets():
            events.add_metric([symbol], stats.events)
            if stats.last_event_ms is not None:
                last_event.add_metric([symbol], stats.last_event_ms / 1000)
            symbol_lag = stats.lag_seconds(now)
            if symbol_lag is not None:
                lag.add_metric([symbol], symbol_lag)
        yield from (events, last_event, lag)
        worst = GaugeMetricFamily(
            f"{PREFIX}_worst_lag_seconds",
            "Per event type: scrape time minus the newest event time E, worst over symbols.",
            labels=["type"],
        )
        for kind, (type_lag, _) in counters.worst_lag_by_type(now).items():
            worst.add_metric([kind], type_lag)
        yield worst
        yield GaugeMetricFamily(
            f"{PREFIX}_nats_connected", "1 while connected to NATS.", value=int(state.connected)
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ready", "1 while connected, subscribed and counting.", value=int(state.ready)
        )
        yield CounterMetricFamily(
            f"{PREFIX}_nats_reconnects", "Connections made after the first one.", value=state.reconnects
        )
        yield CounterMetricFamily(
            f"{PREFIX}_dropped_messages",
            "Messages the NATS client discarded because counting fell behind (slow consumer).",
            value=state.dropped,
        )


def build_registry(counters: Counters, state: ConnectionState) -> CollectorRegistry:
    """A registry of our own (not the global one), with the standard process, platform and GC metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ConsumerCollector(counters, state))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
