"""The HTTP endpoints on a real (loopback) aiohttp server."""

from __future__ import annotations

import json
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.http import build_app, start_http
from datamanager_workers.consumer.metrics import build_registry
from datamanager_workers.consumer.state import ConnectionState


async def test_endpoints_follow_the_counters_and_the_connection() -> None:
    counters, state = Counters(), ConnectionState()
    app = build_app(counters, state, build_registry(counters, state), subject="s.t", queue_group="q")
    runner, port = await start_http(app, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert "not connected to NATS" in await response.text()
            state.connected = state.subscribed = True
            state.connects = 3
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            state.draining = True
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert "draining" in await response.text()

            event_ms = int(time.time() * 1000) - 1000  # a second old
            payload = json.dumps({"data": {"e": "kline", "E": event_ms, "k": {"s": "BTCUSDT"}}})
            counters.observe(payload.encode())
            counters.observe(b"[]")
            async with http.get(f"{base}/stats") as response:
                stats = await response.json()
            assert stats["subject"] == "s.t"
            assert stats["queue_group"] == "q"
            assert stats["nats"] == {
                "connected": True,
                "subscribed": True,
                "ready": False,
                "reconnects": 2,
                "dropped": 0,
            }
            assert stats["messages"]["by_type"]["kline"] == 1
            assert stats["malformed"]["by_reason"]["wrong_type"] == 1
            assert 1.0 <= stats["symbols"]["BTCUSDT"]["lag_seconds"] < 30

            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                text = await response.text()
    finally:
        await runner.cleanup()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("datamanager_consumer_messages_total", (("type", "kline"),))] == 1
    assert samples[("datamanager_consumer_malformed_messages_total", (("reason", "wrong_type"),))] == 1
    assert samples[("datamanager_consumer_events_total", (("symbol", "BTCUSDT"),))] == 1
    assert samples[("datamanager_consumer_events_total", (("symbol", "other"),))] == 0
    assert 1.0 <= samples[("datamanager_consumer_lag_seconds", (("symbol", "BTCUSDT"),))] < 30
    assert 1.0 <= samples[("datamanager_consumer_worst_lag_seconds", (("type", "kline"),))] < 30
    assert [key for key in samples if key[0] == "datamanager_consumer_worst_lag_seconds"] == [
        ("datamanager_consumer_worst_lag_seconds", (("type", "kline"),))
    ]  # one series per type with an event time, none for the others
    assert samples[("datamanager_consumer_last_event_timestamp_seconds", (("symbol", "BTCUSDT"),))] == (
        event_ms / 1000
    )
    assert samples[("datamanager_consumer_received_bytes_total", ())] == len(payload) + 2
    assert samples[("datamanager_consumer_nats_reconnects_total", ())] == 2
    assert samples[("datamanager_consumer_ready", ())] == 0
    assert samples[("datamanager_consumer_nats_connected", ())] == 1
    assert samples[("datamanager_consumer_dropped_messages_total", ())] == 0
    assert ("process_resident_memory_bytes", ()) in samples
