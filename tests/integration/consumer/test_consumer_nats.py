"""The consumer against the rig's real nats-server: exact counts, and a queue group that shares the stream."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter as Tally
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.service import StreamConsumer
from datamanager_workers.consumer.settings import Settings, add_arguments, load
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.logs import OncePerInterval
from tests.integration.consumer.consumer_harness import corpus, publish, until


def settings_for(nats_url: str, subject: str) -> Settings:

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return load(
        parser.parse_args(["--nats-url", nats_url, "--subject", subject, "--max-symbols", "5000"]), {}
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Counters, ConnectionState]]:
    counters, state = Counters(max_symbols=settings.max_symbols), ConnectionState()
    stop = asyncio.Event()
    task = asyncio.create_task(StreamConsumer(settings, counters, state, OncePerInterval()).run(stop))
    try:
        await until(lambda: state.ready or task.done(), 10, "the consumer to subscribe")
        assert state.ready
        yield counters, state
    finally:
        stop.set()
        await task


async def test_every_format_is_counted_exactly_through_nats(nats_url: str, nats_subject: str) -> None:
    entries = corpus()
    rounds = 25
    payloads = [payload for payload, _ in entries] * rounds
    async with running(settings_for(nats_url, nats_subject)) as (counters, state):
        await publish(nats_url, nats_subject, payloads)
        await until(lambda: counters.messages_total >= len(payloads), 20, "every message to be counted")
    types: Tally[str] = Tally()
    reasons: Tally[str] = Tally()
    symbols: Tally[str] = Tally()
    for _, expect in entries:
        if "malformed" in expect:
            reasons[expect["malformed"]] += rounds
        else:
            types[expect["type"]] += rounds
            for symbol, _ in expect["events"]:
                symbols[symbol] += rounds
            if expect.get("bad_elements"):
                reasons["bad_list_element"] += expect["bad_elements"] * rounds
    assert counters.messages_total == len(payloads)
    assert {k: v for k, v in counters.messages_by_type.items() if v} == dict(types)
    assert {k: v for k, v in counters.malformed_by_reason.items() if v} == dict(reasons)
    assert {name: stats.events for name, stats in counters.symbols.items()} == dict(symbols)
    assert state.dropped == 0
    assert not state.ready, "readiness ends with the drain"


async def test_two_consumers_in_one_queue_group_share_without_double_counting(
    nats_url: str, nats_subject: str
) -> None:
    settings = settings_for(nats_url, nats_subject)
    # One distinct symbol per message, so each consumer's buckets say exactly which messages it counted.
    symbols = [f"S{index:04d}USDT" for index in range(2000)]
    payloads = [json.dumps({"data": {"e": "trade", "E": 1, "s": symbol}}).encode() for symbol in symbols]
    async with running(settings) as (first, _), running(settings) as (second, _):

        def total() -> int:
            return first.messages_total + second.messages_total

        await publish(nats_url, nats_subject, payloads)
        await until(lambda: total() >= len(payloads), 20, "both consumers to count everything")
    seen = [set(first.symbols), set(second.symbols)]
    assert first.messages_total + second.messages_total == len(payloads)
    assert first.messages_total > 0, "a queue group spreads messages over its members"
    assert second.messages_total > 0, "a queue group spreads messages over its members"
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(symbols)
    assert all(stats.events == 1 for counters in (first, second) for stats in counters.symbols.values())
