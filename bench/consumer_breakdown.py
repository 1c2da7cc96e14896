"""Where the consumer's time per message goes, step by step, next to the bare subscriber's.

    python -P bench/consumer_breakdown.py [--messages 20000] [--rounds 30]

bench/consumer.py measures end to end, through a publisher and a nats-server that share the machine with
the subscriber, and its ratio moves by several hundredths from run to run. This replays the same mix in
one process instead, through nats-py's own receive path: MSG frames, cut at message boundaries into reads
of 32 KiB as the socket delivers them, go to the client's protocol parser, its subscription queue and the
callback, exactly as its read loop hands them on. With no publisher or server competing, each variant's
ratio to bare moves by about a hundredth between runs. Each variant adds one step to the one before:

  bare      the end-to-end baseline: a callback that increments an integer
  hand-off  the consumer's own callback (StreamConsumer._on_message), batching payloads; counts them only
  decode    the same, plus msgspec's validating decode of every payload (what counting cannot do without)
  consumer  the real consumer: StreamConsumer._on_message and Counters.observe_all

Variants take turns within every round, each round starting with the next one, so that a busy moment of the
machine hits them alike and none always follows the same one; figures are medians over the rounds. The
last line of output is one JSON object with every figure; the exit code is 1 only if a variant lost messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

import msgspec
import nats
import uvloop
from nats.aio.msg import Msg

# Last on the path, not first: no file of bench/ may shadow a standard library module.
sys.path.append(str(Path(__file__).resolve().parent))
from consumer import message_mix, nats_server  # the end-to-end benchmark's mix and server

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.parsing import decode
from datamanager_workers.consumer.service import StreamConsumer
from datamanager_workers.consumer.settings import load
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.logs import OncePerInterval

READ_BYTES = 32 * 1024  # what nats-py asks the socket for at a time
Callback = Callable[[Msg], Awaitable[None]]


class HandOffOnly(Counters):
    """Takes the batches the consumer's callback hands over and only counts them."""

    handed_over = 0

    def observe_all(self, payloads: Collection[bytes]) -> list[tuple[str, bytes]]:
        self.handed_over += len(payloads)
        return []


class DecodeOnly(HandOffOnly):
    """Adds the validating decode of every payload, and nothing of what counting does with it."""

    def observe_all(self, payloads: Collection[bytes]) -> list[tuple[str, bytes]]:
        for payload in payloads:
            # Not contextlib.suppress: a context manager per message costs a good part of a decode.
            try:  # noqa: SIM105
                decode(payload)
            except msgspec.MsgspecError:
                pass
        return super().observe_all(payloads)


def consumer_callback(counters: Counters) -> Callback:
    """The consumer's own NATS callback, handing batches to ``counters``; its settings are the defaults."""
    defaults = load(argparse.Namespace(), environ={})
    return StreamConsumer(defaults, counters, ConnectionState(), OncePerInterval())._on_message


def reads(payloads: Sequence[bytes], sid: int) -> list[bytes]:
    """The payloads as the server frames them for subscription ``sid``, in reads of about READ_BYTES.

    Reads end on a frame boundary so that a PING the server sends meanwhile cannot land inside a frame.
    """
    chunks: list[bytes] = []
    chunk = bytearray()
    for payload in payloads:
        chunk += b"MSG bench.replay %d %d\r\n%b\r\n" % (sid, len(payload), payload)
        if len(chunk) >= READ_BYTES:
            chunks.append(bytes(chunk))
            chunk.clear()
    return [*chunks, bytes(chunk)] if chunk else chunks


async def replay(url: str, messages: int, rounds: int) -> dict[str, dict[str, float]]:
    mix = message_mix(5000)
    payloads = (mix * (messages // len(mix) + 1))[:messages]
    bare_count = 0

    async def bare(_: Msg) -> None:
        nonlocal bare_count
        bare_count += 1

    hand_off, decode_only, counters = HandOffOnly(), DecodeOnly(), Counters()
    variants: dict[str, tuple[Callback, Callable[[], int]]] = {
        "bare": (bare, lambda: bare_count),
        "hand_off": (consumer_callback(hand_off), lambda: hand_off.handed_over),
        "decode": (consumer_callback(decode_only), lambda: decode_only.handed_over),
        "consumer": (consumer_callback(counters), lambda: counters.messages_total),
    }
    client = await nats.connect(url)
    frames: dict[str, list[bytes]] = {}
    for name, (callback, _) in variants.items():
        subscription = await client.subscribe(f"bench.replay.{name}", cb=callback)
        frames[name] = reads(payloads, subscription._id)
    # The read loop's own parser: feeding it is how the client's receive path is entered without a socket.
    parser = client._ps
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    try:
        names = list(variants)
        for round_ in range(rounds):
            # Each round starts with another variant, so that none always runs after the same one.
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                counted = variants[name][1]
                target = counted() + messages
                start = time.process_time()
                for chunk in frames[name]:
                    await parser.parse(chunk)
                    await asyncio.sleep(0)  # as after every read: the subscription's task runs
                for _ in range(100):  # the last batch is counted at one of the loop's next turns
                    if counted() >= target:
                        break
                    await asyncio.sleep(0)
                else:
                    raise RuntimeError(f"{name} counted {counted() - target + messages} of {messages}")
                cpu[name].append((time.process_time() - start) / messages * 1e6)
    finally:
        await client.close()
    bare_cpu = cpu["bare"]
    return {
        name: {
            "us_per_message": round(statistics.median(times), 3),
            "ratio_vs_bare": round(statistics.median(b / t for b, t in zip(bare_cpu, times, strict=True)), 3),
        }
        for name, times in cpu.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per variant and round")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    with nats_server() as url:
        result = uvloop.run(replay(url, args.messages, args.rounds))
    previous = 0.0
    for name, figures in result.items():
        us, ratio = figures["us_per_message"], figures["ratio_vs_bare"]
        print(f"{name:9} {us:6.2f} us/message ({us - previous:+5.2f})  x{ratio:.3f} of bare")
        previous = us
    budget = 0.25 * result["bare"]["us_per_message"]  # what 0.8x of bare leaves for counting
    decode_cost = result["decode"]["us_per_message"] - result["hand_off"]["us_per_message"]
    print(f"the decode alone takes {decode_cost / budget:.0%} of what 0.8x bare leaves ({budget:.2f} us)")
    print(json.dumps({"variants": result, "decode_share_of_budget": round(decode_cost / budget, 2)}))


if __name__ == "__main__":
    main()
