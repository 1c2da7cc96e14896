"""Every stream format resolves to its type and symbols; every kind of bad input to its reason."""

from __future__ import annotations

import json

import pytest

from datamanager_workers.consumer.parsing import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_TYPES,
    MALFORMED_REASONS,
    EventRef,
    events,
    parse,
)
from tests.unit.consumer.consumer_corpus import CORPUS, WELL_FORMED, Case


def parsed(
    payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> tuple[str, tuple[EventRef, ...]] | str:
    """parse() in the shape the expectations are written in: the type and every event, or the reason."""
    result = parse(payload, max_bytes)
    return result if isinstance(result, str) else (result[0], events(result))


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus_message_parses_as_expected(case: Case) -> None:
    expected = case.malformed if case.malformed is not None else (case.type, case.events)
    assert parsed(case.payload) == expected
    result = parse(case.payload)
    assert isinstance(result, str) or result[4] == case.bad_elements


def test_corpus_covers_every_reason_that_json_can_express() -> None:
    covered = {case.malformed for case in CORPUS}
    assert covered >= set(MALFORMED_REASONS) - {
        "oversized",
        "not_utf8",
        "invalid_json",
        "too_deep",
        "bad_list_element",  # an element's reason, not a message's: cases with bad_elements cover it
    }
    assert any(case.bad_elements for case in CORPUS)
    assert {case.type for case in WELL_FORMED} >= {
        "trade",
        "aggTrade",
        "depthUpdate",
        "partialDepth",
        "24hrTicker",
        "markPriceUpdate",
        "kline",
    }


TRADE = {"e": "trade", "E": 1720180800123, "s": "BTCUSDT"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", "invalid_json", id="empty"),
        pytest.param(b"{not json", "invalid_json", id="broken JSON"),
        pytest.param(b'{"data": {"s": "BTCUSDT"}} trailing', "invalid_json", id="trailing garbage"),
        pytest.param(b'{"data": {"E": NaN, "s": "X"}}', "invalid_json", id="NaN"),
        pytest.param(b'{"data": {"s": "\\ud800"}}', "invalid_json", id="lone surrogate escape"),
        pytest.param(b"\xff\xfe{}", "not_utf8", id="not UTF-8 at all"),
        pytest.param(b'{"data": {"s": "BTC\xc3"}}', "not_utf8", id="broken UTF-8 in a read field"),
        pytest.param(
            b'{"junk": "\xff", "data": {"s": "BTCUSDT"}}', "not_utf8", id="broken UTF-8 in a skipped field"
        ),
        pytest.param(
            b'{"data": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "too_deep", id="deep nesting"
        ),
        pytest.param(b"null", "wrong_type", id="JSON null"),
        pytest.param(b'"a string"', "wrong_type", id="JSON string"),
        pytest.param(b"{}", "missing_data", id="empty object"),
        pytest.param(b'{"data": {"E": 1e400, "s": "X"}}', "wrong_type", id="event time out of range"),
        pytest.param(
            b'{"data": {"E": 99999999999999999999999, "s": "X"}}', "wrong_type", id="huge event time"
        ),
        pytest.param(b'{"data": {"E": 1.5, "s": "X"}}', "wrong_type", id="fractional event time"),
    ],
)
def test_bad_input_is_classified(payload: bytes, reason: str) -> None:
    assert parsed(payload) == reason


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = json.dumps({"stream": "btcusdt@trade", "data": TRADE}).encode()
    assert parsed(payload, max_bytes=len(payload)) == ("trade", (("BTCUSDT", 1720180800123),))
    assert parsed(payload, max_bytes=len(payload) - 1) == "oversized"


def test_valid_utf8_beyond_ascii_is_accepted() -> None:
    payload = json.dumps({"note": "prix en €", "data": {**TRADE, "s": "币安人生USDT"}}, ensure_ascii=False)
    assert parsed(payload.encode()) == ("trade", (("币安人生USDT", 1720180800123),))


@pytest.mark.parametrize(
    ("stream", "expected_type"),
    [
        ("btcusdt@depth", "depthUpdate"),  # the diff stream, spot-shaped or not
        ("btcusdt@depth@100ms", "depthUpdate"),
        ("btcusdt@depth5@100ms", "partialDepth"),
        ("BTCUSDT@DEPTH20@100MS", "partialDepth"),
        ("btcusdt@kline_1m", "kline"),
        ("btcusdt@kline", "kline"),
        ("btcusdt@markPrice@1s", "markPriceUpdate"),
        ("btcusdt@ticker", "24hrTicker"),
        ("btcusdt@miniTicker", "24hrMiniTicker"),
        ("btcusdt@bookTicker", "bookTicker"),
        ("btcusdt@forceOrder", "forceOrder"),
        ("btcusdt@aggTrade", "aggTrade"),
        ("btcusdt@unheardOf", "other"),
        ("btcusdt", "other"),
    ],
)
def test_type_comes_from_the_stream_when_the_payload_has_no_e(stream: str, expected_type: str) -> None:
    payload = json.dumps({"stream": stream, "data": {"s": "BTCUSDT", "E": 1}}).encode()
    assert parsed(payload) == (expected_type, (("BTCUSDT", 1),))


def test_all_market_stream_names_no_symbol() -> None:
    payload = json.dumps({"stream": "!bookTicker", "data": {"e": "bookTicker"}}).encode()
    assert parsed(payload) == "missing_symbol"


def test_payload_symbol_wins_over_the_stream_prefix() -> None:
    payload = json.dumps({"stream": "ethusdt@trade", "data": TRADE}).encode()
    assert parsed(payload) == ("trade", (("BTCUSDT", 1720180800123),))


def test_a_single_event_carries_no_further_events() -> None:
    payload = json.dumps({"stream": "btcusdt@trade", "data": TRADE}).encode()
    assert parse(payload) == ("trade", "BTCUSDT", 1720180800123, (), 0)


def test_every_type_label_is_in_the_bounded_set() -> None:
    labels = {parse(case.payload)[0] for case in WELL_FORMED}
    assert labels <= set(EVENT_TYPES)
