"""Property tests over well over 100k random and mutated payloads.

Whatever arrives, no exception escapes and every message is counted exactly once: under one event type or
under one malformed reason. Each example is a batch of payloads, so the volume stays high and the run short.
"""

from __future__ import annotations

import json
import random
import string
from collections import Counter as Tally

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamanager_workers.consumer.counters import OTHER_SYMBOLS, Counters
from datamanager_workers.consumer.parsing import (
    EVENT_TYPES,
    MALFORMED_REASONS,
    MAX_SYMBOL_LENGTH,
    events,
    parse,
)
from tests.unit.consumer.consumer_corpus import CORPUS

EXAMPLES = 150
BATCH = 250  # random byte strings and random envelopes: 2 x 150 x 250 = 75,000 payloads
MUTATED_BATCH = 400  # mutated corpus messages: 150 x 400 = 60,000 payloads
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def assert_each_counted_once(payloads: list[bytes]) -> None:
    """Counted once each, and exactly as parse() reads every message on its own, although the counters
    remember routes: the second pass over the same payloads finds every route already known."""
    counters = Counters(max_symbols=50)
    types: Tally[str] = Tally()
    reasons: Tally[str] = Tally()
    symbols: Tally[str] = Tally()
    results = [parse(payload) for payload in payloads]
    for result in results:
        if isinstance(result, str):
            assert result in MALFORMED_REASONS
            reasons[result] += 1
        else:
            assert result[0] in EVENT_TYPES
            types[result[0]] += 1
            reasons["bad_list_element"] += result[4]
            for symbol, event_time in events(result):
                assert 0 < len(symbol) <= MAX_SYMBOL_LENGTH
                assert symbol == symbol.upper()
                assert event_time is None or event_time >= 0
                symbols[symbol] += 1
    for payload, result in [*zip(payloads, results, strict=True)] * 2:
        before = counters.messages_total
        reason = counters.observe(payload)
        if isinstance(result, str):
            assert reason == result
        else:
            assert reason == ("bad_list_element" if result[4] else None)
        assert counters.messages_total == before + 1
    assert counters.messages_total == 2 * len(payloads)
    assert {k: v for k, v in counters.messages_by_type.items() if v} == {k: 2 * n for k, n in types.items()}
    malformed = {k: v for k, v in counters.malformed_by_reason.items() if v}
    assert malformed == {k: 2 * n for k, n in reasons.items() if n}
    assert len(counters.symbols) <= 50
    counted = {name: stats.events for name, stats in counters.buckets() if stats.events}
    kept = {symbol: 2 * n for symbol, n in symbols.items() if symbol in counters.symbols}
    other = 2 * sum(n for symbol, n in symbols.items() if symbol not in counters.symbols)
    assert counted == {**kept, **({OTHER_SYMBOLS: other} if other else {})}
    counters.snapshot()  # renders whatever was counted


@fuzz
@given(st.lists(st.binary(max_size=200), min_size=BATCH, max_size=BATCH))
def test_random_bytes(payloads: list[bytes]) -> None:
    assert_each_counted_once(payloads)


SEEDS = [case.payload for case in CORPUS]


def mutate(payload: bytes, rng: random.Random) -> bytes:
    """A few byte edits: bit flips, deletions, random insertions, truncation, splicing another message."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(data))
        edit = rng.randrange(5)
        if edit == 0 and position < len(data):
            data[position] ^= 1 << rng.randrange(8)
        elif edit == 1:
            del data[position : position + rng.randint(1, 8)]
        elif edit == 2:
            data[position:position] = rng.randbytes(rng.randint(1, 8))
        elif edit == 3:
            del data[position:]
        else:
            data[position:] = rng.choice(SEEDS)[position:]
    return bytes(data)


# Hypothesis picks each batch's seed: drawing every edit through it would cost ten times the run time.
@fuzz
@given(st.integers(min_value=0))
def test_mutated_corpus_messages(seed: int) -> None:
    rng = random.Random(seed)
    assert_each_counted_once([mutate(rng.choice(SEEDS), rng) for _ in range(MUTATED_BATCH)])


# JSON made of the envelope's own vocabulary, so most of it gets past the decoder to the checks behind it.
KEYS = ["stream", "data", "e", "E", "s", "k", "o", "ps", "lastUpdateId", "b", "a", "x"]
STRINGS = ["", " ", "BTCUSDT", "btcusdt", "btcusdt@trade", "!ticker@arr", "x@depth20@100ms", "trade", "kline"]


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**70), 2**70)
    if kind == 3:
        return rng.uniform(-1e300, 1e300)
    if kind in (4, 5):
        return rng.choice(STRINGS)
    if kind == 6:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 12)))
    if kind == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def random_envelope(rng: random.Random) -> bytes:
    envelope = {rng.choice(KEYS): random_json(rng) for _ in range(rng.randint(0, 3))}
    if rng.random() < 0.8:
        data = {rng.choice(KEYS): random_json(rng, 1) for _ in range(rng.randint(0, 6))}
        envelope["data"] = data if rng.random() < 0.7 else [data, random_json(rng, 1)]
    return json.dumps(envelope).encode()


@fuzz
@given(st.integers(min_value=0))
def test_random_envelopes(seed: int) -> None:
    rng = random.Random(seed)
    assert_each_counted_once([random_envelope(rng) for _ in range(BATCH)])


SYMBOLS = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=MAX_SYMBOL_LENGTH)
PLACES = st.sampled_from(["s", "k.s", "o.s", "ps"])
EVENTS = st.lists(st.tuples(SYMBOLS, PLACES, st.integers(0, 2**40)), min_size=1, max_size=20)


def event(symbol: str, place: str, event_time: int) -> dict[str, object]:
    data: dict[str, object] = {"E": event_time}
    if place in ("s", "ps"):
        data[place] = symbol
    else:
        data[place[0]] = {"s": symbol}
    return data


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_symbol_is_found_wherever_the_format_puts_it(generated: list[tuple[str, str, int]]) -> None:
    expected = tuple((symbol.upper(), event_time) for symbol, _, event_time in generated)
    for (symbol, place, event_time), resolved in zip(generated, expected, strict=True):
        single = {"stream": "x@y", "data": event(symbol, place, event_time)}
        assert parse(json.dumps(single).encode()) == ("other", *resolved, (), 0)
        depth = {"stream": f"{symbol.lower()}@depth20@100ms", "data": {"lastUpdateId": 1, "bids": []}}
        assert parse(json.dumps(depth).encode()) == ("partialDepth", symbol.upper(), None, (), 0)
    # An all-market list counts every element under its own symbol, in order.
    all_market = {"stream": "!markPrice@arr@1s", "data": [event(*item) for item in generated]}
    all_market_result = parse(json.dumps(all_market).encode())
    assert not isinstance(all_market_result, str)
    assert (all_market_result[0], events(all_market_result)) == ("markPriceUpdate", expected)


BAD_SYMBOLS = st.sampled_from([None, "", " ", "BTC USDT", "X" * (MAX_SYMBOL_LENGTH + 1), "a\nb"])


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.lists(st.tuples(st.integers(0, 20), BAD_SYMBOLS), min_size=1, max_size=5))
def test_bad_elements_of_a_list_never_drop_the_good_ones(
    generated: list[tuple[str, str, int]], bad: list[tuple[int, str | None]]
) -> None:
    """A 300-element !markPrice@arr@1s with one "s": "" counted 0 events: now every good element counts and
    each bad one is one bad_list_element, wherever it is in the list."""
    elements: list[dict[str, object]] = [{"e": "markPriceUpdate", **event(*item)} for item in generated]
    for position, symbol in bad:
        spoiled: dict[str, object] = {"e": "markPriceUpdate", "E": 1}
        if symbol is not None:
            spoiled["s"] = symbol
        elements.insert(min(position, len(elements)), spoiled)
    payload = json.dumps({"stream": "!markPrice@arr@1s", "data": elements}).encode()
    result = parse(payload)
    assert not isinstance(result, str)
    expected = tuple((symbol.upper(), event_time) for symbol, _, event_time in generated)
    assert (result[0], events(result), result[4]) == ("markPriceUpdate", expected, len(bad))
    counters = Counters()
    for _ in range(2):  # the second time from the remembered routes of the good elements
        assert counters.observe(payload) == "bad_list_element"
    assert counters.messages_by_type["markPriceUpdate"] == 2
    assert counters.malformed_by_reason["bad_list_element"] == 2 * len(bad)
    assert counters.events_total == 2 * len(generated)
    assert counters.messages_total == 2
