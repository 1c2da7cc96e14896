"""Counting: by type, by reason, by symbol within bounds, lag, and the /stats document."""

from __future__ import annotations

import json
from collections import Counter as Tally

import pytest

from datamanager_workers.consumer.counters import OTHER_SYMBOLS, Counters
from tests.unit.consumer.consumer_corpus import CORPUS


def trade(symbol: str, event_time: int = 1_720_180_800_000) -> bytes:
    return json.dumps({"stream": "x@trade", "data": {"e": "trade", "E": event_time, "s": symbol}}).encode()


def test_corpus_counts_match_the_expected_types_reasons_and_symbols() -> None:
    counters = Counters()
    for case in CORPUS:
        counters.observe(case.payload)
    types = Tally(case.type for case in CORPUS if case.type)
    reasons = Tally(case.malformed for case in CORPUS if case.malformed)
    symbols = Tally(symbol for case in CORPUS for symbol, _ in case.events)
    assert {k: v for k, v in counters.messages_by_type.items() if v} == dict(types)
    assert {k: v for k, v in counters.malformed_by_reason.items() if v} == dict(reasons)
    assert {name: stats.events for name, stats in counters.symbols.items()} == dict(symbols)
    assert counters.messages_total == len(CORPUS)
    assert counters.events_total == sum(symbols.values())
    assert counters.bytes_total == sum(len(case.payload) for case in CORPUS)


def test_observe_returns_the_malformed_reason() -> None:
    counters = Counters()
    assert counters.observe(trade("BTCUSDT")) is None
    assert counters.observe(b"{") == "invalid_json"
    assert counters.malformed_total == 1


def test_symbols_beyond_the_limit_share_the_other_bucket() -> None:
    counters = Counters(max_symbols=2)
    for symbol in ["AUSDT", "BUSDT", "CUSDT", "DUSDT", "AUSDT", "CUSDT"]:
        counters.observe(trade(symbol))
    assert {name: stats.events for name, stats in counters.buckets()} == {
        "AUSDT": 2,
        "BUSDT": 1,
        OTHER_SYMBOLS: 3,
    }


def test_allow_list_fixes_the_buckets_up_front() -> None:
    counters = Counters(allowed_symbols=["ethusdt", "BTCUSDT"], max_symbols=100)
    assert set(counters.symbols) == {"BTCUSDT", "ETHUSDT"}
    for symbol in ["BTCUSDT", "SOLUSDT", "btcusdt"]:
        counters.observe(trade(symbol))
    assert counters.symbols["BTCUSDT"].events == 2
    assert counters.symbols["ETHUSDT"].events == 0
    assert counters.other.events == 1


def all_market(stream: str, *elements: tuple[str, str, int]) -> bytes:
    data = [{"e": kind, "E": event_time, "s": symbol} for kind, symbol, event_time in elements]
    return json.dumps({"stream": stream, "data": data}).encode()


def test_list_payloads_count_the_same_once_their_routes_are_remembered() -> None:
    """The first list is counted by the general path, which remembers each element's route; the second
    is counted from those routes, and must come to exactly what the general path would."""
    counters = Counters()
    marks = all_market("!markPrice@arr", ("markPriceUpdate", "BTCUSDT", 2), ("markPriceUpdate", "ETHUSDT", 5))
    # A mixed list counts every element under the first one's type, although the second element's route,
    # seen alone, resolves to another type.
    mixed = all_market("!markPrice@arr", ("markPriceUpdate", "SOLUSDT", 1), ("trade", "BTCUSDT", 9))
    counters.observe_all([marks, mixed, marks, mixed, trade("BTCUSDT", 7)])
    assert counters.messages_by_type["markPriceUpdate"] == 4
    assert counters.messages_by_type["trade"] == 1
    assert counters.events_total == 9
    assert {name: stats.events for name, stats in counters.buckets() if stats.events} == {
        "BTCUSDT": 5,
        "ETHUSDT": 2,
        "SOLUSDT": 2,
    }
    assert counters.symbols["BTCUSDT"].last_event_ms == 9


def test_lag_is_the_reading_time_minus_the_newest_event_time() -> None:
    counters = Counters()
    counters.observe(trade("BTCUSDT", 1_720_180_801_000))
    counters.observe(trade("BTCUSDT", 1_720_180_800_000))  # late: not the newest
    depth = json.dumps({"stream": "btcusdt@depth5", "data": {"lastUpdateId": 1, "bids": [], "asks": []}})
    counters.observe(depth.encode())  # another type, no event time
    stats = counters.symbols["BTCUSDT"]
    assert stats.events == 3
    assert stats.last_event_ms == 1_720_180_801_000
    assert stats.lag_seconds(1_720_180_801.1) == pytest.approx(0.1)


def test_events_without_event_time_leave_the_lag_alone() -> None:
    counters = Counters()
    depth = json.dumps({"stream": "btcusdt@depth5", "data": {"lastUpdateId": 1, "bids": [], "asks": []}})
    counters.observe(depth.encode())
    assert counters.symbols["BTCUSDT"].events == 1
    assert counters.symbols["BTCUSDT"].lag_seconds(5.0) is None


def test_snapshot_is_json_with_the_documented_shape() -> None:
    counters = Counters()
    counters.observe(trade("BTCUSDT", 1_720_180_800_000))
    counters.observe(b"\xff")
    document = json.loads(json.dumps(counters.snapshot(now=1_720_180_800.5)))
    assert document["messages"]["total"] == 2
    assert document["messages"]["by_type"]["trade"] == 1
    assert document["malformed"] == {"total": 1, "by_reason": document["malformed"]["by_reason"]}
    assert document["malformed"]["by_reason"]["not_utf8"] == 1
    assert document["events"] == 1
    assert document["bytes"] == len(trade("BTCUSDT")) + 1
    assert document["symbols"]["BTCUSDT"] == {
        "events": 1,
        "last_event_time": "2024-07-05T12:00:00.000Z",
        "lag_seconds": 0.5,
    }
    assert document["symbols"][OTHER_SYMBOLS] == {"events": 0, "last_event_time": None, "lag_seconds": None}
