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
    reasons["bad_list_element"] = sum(case.bad_elements for case in CORPUS)
    symbols = Tally(symbol for case in CORPUS for symbol, _ in case.events)
    assert {k: v for k, v in counters.messages_by_type.items() if v} == dict(types)
    assert {k: v for k, v in counters.malformed_by_reason.items() if v} == dict(reasons)
    assert {name: stats.events for name, stats in counters.symbols.items()} == dict(symbols)
    assert counters.messages_total == len(CORPUS)
    assert counters.malformed_messages == sum(1 for case in CORPUS if case.malformed)
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
    newest = {"events": 1, "last_event_time": "2024-07-05T12:00:00.000Z", "lag_seconds": 0.5}
    assert document["symbols"]["BTCUSDT"] == {**newest, "types": {"trade": newest}}
    assert document["symbols"][OTHER_SYMBOLS] == {
        "events": 0,
        "last_event_time": None,
        "lag_seconds": None,
        "types": {},
    }
    assert document["worst_lag_by_type"] == {"trade": {"lag_seconds": 0.5, "symbol": "BTCUSDT"}}


def message(stream: str, data: object) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def test_usd_m_partial_depth_counts_by_its_stream_name_not_its_e() -> None:
    """btcusdt@depth20@100ms carries "e":"depthUpdate" on futures and counted as the diff stream."""
    counters = Counters()
    update = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "b": [], "a": []}
    counters.observe_all(
        [message("btcusdt@depth20@100ms", update), message("btcusdt@depth@100ms", update)] * 2
    )
    assert (counters.messages_by_type["partialDepth"], counters.messages_by_type["depthUpdate"]) == (2, 2)


def test_continuous_klines_of_each_contract_type_are_counted_apart() -> None:
    """PERPETUAL, CURRENT_QUARTER and NEXT_QUARTER of BTCUSDT all counted as one series."""
    counters = Counters()
    for contract in ("perpetual", "current_quarter", "next_quarter", "perpetual"):
        data = {"e": "continuous_kline", "E": 1, "ps": "BTCUSDT", "ct": contract.upper(), "k": {"i": "1m"}}
        counters.observe(message(f"btcusdt_{contract}@continuousKline_1m", data))
    by_type = {kind: n for kind, n in counters.messages_by_type.items() if n}
    assert by_type == {
        "continuous_kline_perpetual": 2,
        "continuous_kline_current_quarter": 1,
        "continuous_kline_next_quarter": 1,
    }
    assert counters.symbols["BTCUSDT"].events == 4  # one symbol: the types, not the symbols, keep them apart


def test_a_stalled_type_shows_although_the_symbols_other_streams_are_live() -> None:
    """With !markPrice@arr@1s live and BTCUSDT's trades stopped ten minutes ago, BTCUSDT's lag read 1 s."""
    counters = Counters()
    now = 1_720_181_400.0
    counters.observe(trade("BTCUSDT", int((now - 600) * 1000)))
    counters.observe(trade("ETHUSDT", int((now - 0.2) * 1000)))
    marks = [{"e": "markPriceUpdate", "E": int((now - 1) * 1000), "s": s} for s in ("BTCUSDT", "ETHUSDT")]
    counters.observe(message("!markPrice@arr@1s", marks))
    assert counters.symbols["BTCUSDT"].lag_seconds(now) == pytest.approx(1.0)  # the symbol looks live
    worst = {kind: (round(lag, 6), symbol) for kind, (lag, symbol) in counters.worst_lag_by_type(now).items()}
    assert worst == {"trade": (600.0, "BTCUSDT"), "markPriceUpdate": (1.0, "BTCUSDT")}
    document = counters.snapshot(now)
    symbols = document["symbols"]
    assert isinstance(symbols, dict)
    assert symbols["BTCUSDT"]["types"]["trade"]["lag_seconds"] == 600.0
    assert symbols["BTCUSDT"]["types"]["markPriceUpdate"]["lag_seconds"] == 1.0
    assert document["worst_lag_by_type"] == {
        "markPriceUpdate": {"lag_seconds": 1.0, "symbol": "BTCUSDT"},
        "trade": {"lag_seconds": 600.0, "symbol": "BTCUSDT"},
    }


def test_the_worst_lag_by_type_is_bounded_by_the_types() -> None:
    counters = Counters(max_symbols=10_000)
    counters.observe_all([trade(f"S{i}USDT", 1_000 * i) for i in range(2_000)])
    assert counters.worst_lag_by_type(10_000.0) == {"trade": (10_000.0, "S0USDT")}


def test_one_bad_element_is_counted_without_dropping_the_list() -> None:
    """A 300-element !markPrice@arr@1s with one "s":"" counted 0 events."""
    counters = Counters()
    marks = [{"e": "markPriceUpdate", "E": 1, "s": f"S{i}USDT"} for i in range(300)]
    marks[123]["s"] = ""
    for _ in range(2):
        assert counters.observe(message("!markPrice@arr@1s", marks)) == "bad_list_element"
    assert counters.messages_by_type["markPriceUpdate"] == 2
    assert counters.events_total == 2 * 299
    assert counters.malformed_by_reason["bad_list_element"] == 2
    assert (counters.messages_total, counters.malformed_messages, counters.malformed_total) == (2, 0, 2)
    document = counters.snapshot()
    assert document["messages"] == {"total": 2, "by_type": counters.messages_by_type}
    assert document["malformed"] == {"total": 2, "by_reason": counters.malformed_by_reason}
