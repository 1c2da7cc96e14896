"""The per-interval summary: deltas since the previous line, rate, worst recent lag, totals."""

from __future__ import annotations

import json

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.service import backoff_delay, example
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.consumer.summary import IntervalSummary


def trade(symbol: str, event_ms: int) -> bytes:
    return json.dumps({"data": {"e": "trade", "E": event_ms, "s": symbol}}).encode()


def test_each_line_reports_its_own_interval() -> None:
    counters, state = Counters(), ConnectionState(connected=True, subscribed=True, connects=2)
    summary = IntervalSummary(counters, state, now=100.0)
    counters.observe(trade("BTCUSDT", 109_500))  # 0.5 s behind the line's time
    counters.observe(trade("ETHUSDT", 108_000))  # 2 s behind
    counters.observe(b"nope")
    first = summary.take(now=110.0)
    assert first == {
        "interval_seconds": 10.0,
        "messages": 3,
        "rate_per_second": 0.3,
        "events": 2,
        "malformed": 1,
        "types": {"trade": 2},
        "malformed_by_reason": {"invalid_json": 1},
        "worst_lag_seconds": 2.0,
        "worst_lag_symbol": "ETHUSDT",
        "worst_lag_type": "trade",
        "symbols": 2,
        "total_messages": 3,
        "total_malformed": 1,
        "connected": True,
        "reconnects": 1,
        "dropped": 0,
    }
    counters.observe(trade("BTCUSDT", 119_750))
    second = summary.take(now=120.0)
    assert second["messages"] == 1
    assert second["types"] == {"trade": 1}
    assert "malformed_by_reason" not in second
    # ETHUSDT, not heard from since, is not this interval's worst (its lag would be 12 s by now).
    assert (second["worst_lag_seconds"], second["worst_lag_symbol"]) == (0.25, "BTCUSDT")
    assert second["total_messages"] == 4


def test_the_worst_lag_is_per_stream_and_bad_list_elements_are_not_messages() -> None:
    counters = Counters()
    summary = IntervalSummary(counters, ConnectionState(), now=100.0)
    counters.observe(trade("BTCUSDT", 99_000))  # BTCUSDT's trades: 11 s behind the line
    marks = [
        {"e": "markPriceUpdate", "E": 109_900, "s": "BTCUSDT"},
        {"e": "markPriceUpdate", "E": 1, "s": ""},
    ]
    counters.observe(json.dumps({"stream": "!markPrice@arr@1s", "data": marks}).encode())
    fields = summary.take(now=110.0)
    assert (fields["worst_lag_seconds"], fields["worst_lag_symbol"], fields["worst_lag_type"]) == (
        11.0,
        "BTCUSDT",
        "trade",
    )
    assert (fields["messages"], fields["malformed"], fields["total_messages"]) == (2, 0, 2)
    assert fields["malformed_by_reason"] == {"bad_list_element": 1}


def test_quiet_interval_has_no_lag() -> None:
    summary = IntervalSummary(Counters(), ConnectionState(), now=0.0)
    fields = summary.take(now=60.0)
    assert fields["messages"] == 0
    assert "worst_lag_seconds" not in fields


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    delays = [backoff_delay(failures, cap=5.0) for failures in range(1, 40)]
    assert 0.1 <= delays[0] <= 0.2
    assert 0.2 <= delays[1] <= 0.4
    assert all(2.5 <= delay <= 5.0 for delay in delays[6:])


def test_example_is_bounded() -> None:
    assert example(b"short \xff") == "short \\xff"
    long = example(b"x" * 10_000)
    assert long.startswith("x" * 160)
    assert long.endswith("... (10000 bytes)")
    assert len(long) < 200
