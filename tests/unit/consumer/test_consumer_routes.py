"""Continuous klines' contract types (from the payload's ``ct`` or the stream name's
``<pair>_<contract>``) and the parser's two route caches: what they remember, that parsing reads them, and
their 10,000-entry bound."""

from __future__ import annotations

import json

import pytest

from datamanager_workers.consumer import parsing
from datamanager_workers.consumer.parsing import parse


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with empty caches, whatever ran before, and leaves the module's own untouched."""
    monkeypatch.setattr(parsing, "_symbols", {})
    monkeypatch.setattr(parsing, "_streams", {})


def message(stream: str | None, **data: object) -> bytes:
    return json.dumps({"stream": stream, "data": {"E": 7, **data}}).encode()


@pytest.mark.parametrize(
    ("stream", "data", "expected"),
    [
        # the payload's contract type decides, in any case, over the stream name's
        ("btcusdt_perpetual@continuousKline_1m",
         {"e": "continuous_kline", "ps": "BTCUSDT", "ct": "current_quarter"},
         ("continuous_kline_current_quarter", "BTCUSDT")),
        (None, {"e": "continuous_kline", "ps": "BTCUSDT", "ct": "NEXT_QUARTER"},
         ("continuous_kline_next_quarter", "BTCUSDT")),
        (None, {"e": "continuous_kline", "ps": "BTCUSDT", "ct": "WEEKLY"},
         ("continuous_kline_other", "BTCUSDT")),
        # without one, the stream name's; without either, "other"
        ("btcusdt_perpetual@continuousKline_1m", {"e": "continuous_kline", "ps": "BTCUSDT"},
         ("continuous_kline_perpetual", "BTCUSDT")),
        (None, {"e": "continuous_kline", "ps": "BTCUSDT"}, ("continuous_kline_other", "BTCUSDT")),
        # a payload naming neither type nor symbol: the stream name gives both, the pair as the symbol
        ("ethusdt_perpetual@continuousKline_1m", {}, ("continuous_kline_perpetual", "ETHUSDT")),
        ("ethusdt_next_quarter@continuousKline_5m", {}, ("continuous_kline_next_quarter", "ETHUSDT")),
        ("ethusdt_weekly@continuousKline_1m", {}, ("continuous_kline_other", "ETHUSDT")),
        ("ethusdt@continuousKline_1m", {}, ("continuous_kline_other", "ETHUSDT")),
    ],
)  # fmt: skip
def test_a_continuous_klines_contract_type_is_part_of_its_type(
    stream: str | None, data: dict[str, object], expected: tuple[str, str]
) -> None:
    result = parse(message(stream, **data))
    assert not isinstance(result, str), result
    assert (result[0], result[1]) == expected


def test_a_continuous_kline_stream_with_an_empty_pair_names_no_symbol() -> None:
    assert parse(message("_perpetual@continuousKline_1m")) == "missing_symbol"


def test_symbols_and_stream_names_are_remembered_as_they_resolve() -> None:
    parse(message("btcusdt@kline_1m", e="kline", k={"s": "btcUSDT"}))
    parse(message("ethusdt_perpetual@continuousKline_1m"))
    assert parsing._symbols == {"btcUSDT": "BTCUSDT", "ethusdt": "ETHUSDT"}
    assert parsing._streams == {
        "btcusdt@kline_1m": ("kline", "btcusdt"),
        "ethusdt_perpetual@continuousKline_1m": ("continuous_kline_perpetual", "ethusdt"),
    }


def test_parsing_reads_the_caches_before_resolving_again() -> None:
    """What a cache holds is what parsing returns: it is consulted, not bypassed (the hot path's speed-up)."""
    parsing._streams["x@trade"] = ("kline", "remembered")
    parsing._symbols["remembered"] = "FROM-CACHE"
    assert parse(message("x@trade")) == ("kline", "FROM-CACHE", 7, (), 0)


def test_the_caches_stop_growing_at_their_bound() -> None:
    limit = parsing._CACHE_LIMIT
    for n in range(limit + 5):
        result = parse(message(f"s{n}@trade"))
        assert not isinstance(result, str)
        assert result[1] == f"S{n}", "past the bound, still resolved, only not remembered"
    assert (len(parsing._symbols), len(parsing._streams)) == (limit, limit)
    assert f"s{limit}" not in parsing._symbols
    assert f"s{limit}@trade" not in parsing._streams


def test_a_symbol_of_exactly_the_maximum_length_is_accepted_and_one_longer_is_not() -> None:
    longest = "a" * parsing.MAX_SYMBOL_LENGTH
    assert parse(message(None, e="trade", s=longest)) == ("trade", longest.upper(), 7, (), 0)
    assert parse(message(None, e="trade", s=longest + "a")) == "bad_symbol"
    assert parse(message(None, e="trade", s="")) == "bad_symbol"
