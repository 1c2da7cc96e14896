"""Benchmark of the stream consumer: parse-only against two baselines, end to end against a bare subscriber.

    python bench/consumer.py [--messages 1000000] [--parse-messages 300000]

Parse only, on one realistic mix of the stream's formats (mostly partial depth and trades, some mark
prices, klines, tickers and the odd all-market list):
  ours      datamanager_workers.consumer.parsing.parse (msgspec, typed, strict)
  json      json.loads plus the dict lookups that find the same type, symbols and event times
  pydantic  the old service's way as it decoded market data: json.loads, its generic pydantic v2 event
            model, then the typed pydantic model with Decimal prices its handler built for the type
            (ratio_vs_pydantic); also reported: the generic event model alone, as in its last version
            (ratio_vs_pydantic_envelope)

End to end through a real nats-server on loopback (the rig's, from RIG_NATS_URL, or one started here
from the rig's binary): the same publisher sends the same mix to the real `datamanager consume` program,
then to a bare nats-py subscriber whose callback only increments an integer, each in its own process and
on the same event loop (uvloop, as the consumer).
The publisher stays at most a window ahead of what the subscriber has counted, so the subscriber is
always busy and never overrun; the rate is messages counted per second. RSS growth is the consumer's
resident memory after the run minus before the first message.

The last line of output is one JSON object with every figure. The exit code is 1 only when a run lost
messages (counted != published, or slow-consumer drops); targets missed on a busy machine are reported in
the JSON (``targets_met``) rather than failing the run.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import nats
import psutil
from nats.aio.client import Client
from pydantic import BaseModel

from datamanager_workers.consumer.parsing import events, parse

REPO = Path(__file__).resolve().parents[1]
WINDOW = 30_000  # messages the publisher may run ahead of the subscriber's count
POLL_SECONDS = 0.1

# ---------------------------------------------------------------------------------------------- the mix


def message_mix(count: int, seed: int = 7) -> list[bytes]:
    """``count`` distinct envelopes in production proportions over 200 symbols."""
    rng = random.Random(seed)
    symbols = [f"{name}USDT" for name in ("BTC", "ETH", "SOL", "BNB", "XRP")] + [
        f"C{index:03d}USDT" for index in range(195)
    ]
    now = 1_720_180_800_000

    def levels(base: float, n: int) -> list[list[str]]:
        return [[f"{base + i * 0.1:.2f}", f"{rng.uniform(0.001, 50):.3f}"] for i in range(n)]

    def envelope(stream: str, data: object) -> bytes:
        return json.dumps(
            {
                "stream": stream,
                "data": data,
                "timestamp": "2024-07-05T12:00:00.125431Z",
                "message_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "source": "binance-websocket",
                "version": "1.0",
            },
            separators=(",", ":"),
        ).encode()

    def one(symbol: str, event_time: int) -> bytes:
        low = symbol.lower()
        kind = rng.choices(
            ["depth", "fdepth", "trade", "aggTrade", "markPrice", "kline", "ticker", "all"],
            weights=[35, 10, 25, 15, 6, 5, 4, 0.05],
        )[0]
        price = rng.uniform(0.01, 60000)
        if kind == "depth":
            data: object = {"lastUpdateId": event_time, "bids": levels(price, 20), "asks": levels(price, 20)}
            return envelope(f"{low}@depth20@100ms", data)
        if kind == "fdepth":
            data = {
                "e": "depthUpdate",
                "E": event_time,
                "T": event_time - 2,
                "s": symbol,
                "U": 1,
                "u": 9,
                "pu": 0,
                "b": levels(price, 5),
                "a": levels(price, 5),
            }
            return envelope(f"{low}@depth@100ms", data)
        if kind in ("trade", "aggTrade"):
            data = {
                "e": kind,
                "E": event_time,
                "T": event_time - 3,
                "s": symbol,
                "t": rng.getrandbits(32),
                "p": f"{price:.2f}",
                "q": "0.015",
                "X": "MARKET",
                "m": rng.random() < 0.5,
            }
            return envelope(f"{low}@{kind}", data)
        if kind == "markPrice":
            data = {
                "e": "markPriceUpdate",
                "E": event_time,
                "s": symbol,
                "p": f"{price:.2f}",
                "i": f"{price:.2f}",
                "P": f"{price:.2f}",
                "r": "0.00010000",
                "T": event_time + 3600000,
            }
            return envelope(f"{low}@markPrice@1s", data)
        if kind == "kline":
            k = {
                "t": event_time - 500,
                "T": event_time + 3599499,
                "s": symbol,
                "i": "1h",
                "f": 1,
                "L": 9,
                "o": f"{price:.2f}",
                "c": f"{price:.2f}",
                "h": f"{price:.2f}",
                "l": f"{price:.2f}",
                "v": "152.330",
                "n": 890,
                "x": False,
                "q": "8683001.22",
                "V": "80.1",
                "Q": "4565770.1",
                "B": "0",
            }
            return envelope(f"{low}@kline_1h", {"e": "kline", "E": event_time, "s": symbol, "k": k})
        ticker = {
            "e": "24hrTicker",
            "E": event_time,
            "s": symbol,
            "p": "-412.10",
            "P": "-0.717",
            "w": f"{price:.2f}",
            "c": f"{price:.2f}",
            "Q": "0.015",
            "o": f"{price:.2f}",
            "h": f"{price:.2f}",
            "l": f"{price:.2f}",
            "v": "182345.120",
            "q": "10439218877.31",
            "O": event_time - 86400000,
            "C": event_time,
            "F": 1,
            "L": 9,
            "n": 4456790,
        }
        if kind == "ticker":
            return envelope(f"{low}@ticker", ticker)
        return envelope("!ticker@arr", [{**ticker, "s": other} for other in symbols])

    return [one(rng.choice(symbols), now + index) for index in range(count)]


# ------------------------------------------------------------------------------------ parse baselines


def json_baseline(payload: bytes) -> tuple[object, list[tuple[str, object]]]:
    """The same answers as ``parse`` from json.loads and dict lookups, without its strict validation."""
    message = json.loads(payload)
    stream = message.get("stream") or ""
    data = message["data"]
    items = data if isinstance(data, list) else [data]
    events = []
    for item in items:
        symbol = item.get("s")
        if symbol is None:
            nested = item.get("k") or item.get("o")
            symbol = nested.get("s") if isinstance(nested, dict) else item.get("ps")
        if symbol is None:
            symbol = stream.partition("@")[0]
        events.append((symbol.upper(), item.get("E")))
    return items[0].get("e"), events


class OldMarketDataEvent(BaseModel):
    """The old service's generic event: one per message, the payload kept as a dict."""

    event_type: str
    symbol: str
    timestamp: datetime
    data: dict[str, Any]
    exchange: str = "binance"
    stream: str | None = None


class OldTrade(BaseModel):
    symbol: str
    trade_id: int
    timestamp: datetime
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    is_buyer_maker: bool
    side: str


class OldLevel(BaseModel):
    price: Decimal
    quantity: Decimal


class OldDepth(BaseModel):
    symbol: str
    timestamp: datetime
    bids: list[OldLevel]
    asks: list[OldLevel]
    last_update_id: int | None = None


class OldMarkPrice(BaseModel):
    symbol: str
    timestamp: datetime
    mark_price: Decimal
    index_price: Decimal | None = None
    last_funding_rate: Decimal | None = None


class OldCandle(BaseModel):
    symbol: str
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    timeframe: str


class OldTicker(BaseModel):
    symbol: str
    timestamp: datetime
    open_price: Decimal
    close_price: Decimal
    volume: Decimal
    price_change: Decimal
    trades_count: int


def _old_events(payload: bytes) -> list[OldMarketDataEvent]:
    message = json.loads(payload.decode())
    stream = message.get("stream") or ""
    data = message.get("data", message)
    events = []
    for item in data if isinstance(data, list) else [data]:
        symbol = item.get("s")
        if symbol is None:
            nested = item.get("k") or item.get("o")
            symbol = nested.get("s") if isinstance(nested, dict) else item.get("ps")
        if symbol is None:
            symbol = stream.partition("@")[0].upper()
        event_ms = item.get("E")
        moment = datetime.fromtimestamp(event_ms / 1000, UTC) if event_ms else datetime.now(UTC)
        kind = item.get("e") or ("depth" if "@depth" in stream else "unknown")
        events.append(
            OldMarketDataEvent(event_type=kind, symbol=symbol, timestamp=moment, data=item, stream=stream)
        )
    return events


def pydantic_envelope_baseline(payload: bytes) -> list[OldMarketDataEvent]:
    """The old service's last version: json.loads and its generic pydantic event model per message."""
    return _old_events(payload)


def pydantic_baseline(payload: bytes) -> list[BaseModel]:
    """The old service's per-message path as it decoded market data: json.loads, the generic event model,
    then the typed pydantic model with Decimal prices that its handler built for the event's type."""
    typed: list[BaseModel] = []
    for event in _old_events(payload):
        d, at, symbol = event.data, event.timestamp, event.symbol
        kind = event.event_type
        if kind in ("trade", "aggTrade"):
            price, quantity = Decimal(str(d["p"])), Decimal(str(d["q"]))
            typed.append(
                OldTrade(
                    symbol=symbol,
                    trade_id=d.get("t", d.get("a", 0)),
                    timestamp=at,
                    price=price,
                    quantity=quantity,
                    quote_quantity=price * quantity,
                    is_buyer_maker=d["m"],
                    side="sell" if d["m"] else "buy",
                )
            )
        elif kind in ("depth", "depthUpdate"):
            levels = [
                [OldLevel(price=Decimal(str(p)), quantity=Decimal(str(q))) for p, q in side[:20]]
                for side in (d.get("b", d.get("bids", [])), d.get("a", d.get("asks", [])))
            ]
            typed.append(
                OldDepth(
                    symbol=symbol,
                    timestamp=at,
                    bids=levels[0],
                    asks=levels[1],
                    last_update_id=d.get("u", d.get("lastUpdateId")),
                )
            )
        elif kind == "markPriceUpdate":
            typed.append(
                OldMarkPrice(
                    symbol=symbol,
                    timestamp=at,
                    mark_price=Decimal(str(d["p"])),
                    index_price=Decimal(str(d["i"])),
                    last_funding_rate=Decimal(str(d["r"])),
                )
            )
        elif kind == "kline":
            k = d["k"]
            typed.append(
                OldCandle(
                    symbol=symbol,
                    timestamp=at,
                    open=Decimal(str(k["o"])),
                    high=Decimal(str(k["h"])),
                    low=Decimal(str(k["l"])),
                    close=Decimal(str(k["c"])),
                    volume=Decimal(str(k["v"])),
                    timeframe=k["i"],
                )
            )
        elif kind == "24hrTicker":
            typed.append(
                OldTicker(
                    symbol=symbol,
                    timestamp=at,
                    open_price=Decimal(str(d["o"])),
                    close_price=Decimal(str(d["c"])),
                    volume=Decimal(str(d["v"])),
                    price_change=Decimal(str(d["p"])),
                    trades_count=int(d["n"]),
                )
            )
    return typed


def rates(
    functions: dict[str, Callable[[bytes], object]], payloads: Sequence[bytes], total: int
) -> dict[str, float]:
    """Messages per second of each function over ``total`` messages cycled from ``payloads``: the best of
    three rounds, the functions taking turns so that a busy moment of the machine hits them all alike."""
    rounds, rest = divmod(total, len(payloads))
    batches = [payloads] * rounds + [payloads[:rest]]
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(3):
        for name, function in functions.items():
            start = time.perf_counter()
            for batch in batches:
                for payload in batch:
                    function(payload)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: total / seconds for name, seconds in best.items()}


# ---------------------------------------------------------------------------------------- end to end


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def nats_server() -> Iterator[str]:
    """The rig's NATS if RIG_NATS_URL is set, else a nats-server of our own from the rig's binary."""
    if url := os.environ.get("RIG_NATS_URL"):
        yield url
        return
    binary = shutil.which("nats-server") or next(
        iter(sorted(glob.glob(os.path.expanduser("~/.cache/datamanager-rig/nats-server-*/bin/nats-server")))),
        None,
    )
    if binary is None:
        sys.exit("no nats-server: set RIG_NATS_URL (source .rig/env) or run `make rig-build`")
    port = free_port()
    server = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


async def bare_subscriber(url: str, subject: str, port: int) -> None:
    """The baseline: a nats-py callback that only increments an integer; /count serves it for pacing."""
    from aiohttp import web

    count = 0
    dropped = 0

    async def on_message(_: object) -> None:
        nonlocal count
        count += 1

    async def on_error(exc: Exception) -> None:
        nonlocal dropped
        dropped += isinstance(exc, nats.errors.SlowConsumerError)

    async def serve_count(_: web.Request) -> web.Response:
        return web.json_response({"count": count, "dropped": dropped})

    app = web.Application()
    app.router.add_get("/count", serve_count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = await nats.connect(url, error_cb=on_error)
    await client.subscribe(subject, cb=on_message)
    await client.flush()
    await asyncio.Event().wait()


class Subscriber:
    """One subscriber process under test, with how to read its count."""

    def __init__(self, name: str, command: list[str], port: int, count_path: str, subject: str) -> None:
        self.name = name
        self.port = port
        self.subject = subject
        self._count_path = count_path
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def counts(self, session: aiohttp.ClientSession) -> tuple[int, int]:
        """(counted, dropped)."""
        async with session.get(f"http://127.0.0.1:{self.port}{self._count_path}") as response:
            document = await response.json()
        if "count" in document:
            return document["count"], document["dropped"]
        return document["messages"]["total"], document["nats"]["dropped"]

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{self.port}{self._count_path}") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def drive(
    subscriber: Subscriber,
    session: aiohttp.ClientSession,
    client: Client,
    payloads: Sequence[bytes],
    count: int,
) -> float:
    """Publish ``count`` more messages no more than WINDOW ahead of the subscriber; its counted messages/s."""
    already, _ = await subscriber.counts(session)
    target = already + count
    published, counted = 0, already
    last_poll = 0.0
    start = time.perf_counter()
    while counted < target:
        now = time.perf_counter()
        if published < count and already + published - counted < WINDOW:
            offset = (already + published) % len(payloads)
            for payload in payloads[offset : offset + min(1000, count - published)]:
                await client.publish(subscriber.subject, payload)
                published += 1
            await client.flush()
            if now - last_poll < POLL_SECONDS:
                continue
        elif now - last_poll < POLL_SECONDS:
            await asyncio.sleep(POLL_SECONDS / 5)
            continue
        counted, dropped = await subscriber.counts(session)
        last_poll = time.perf_counter()
        if dropped or counted > target:
            raise RuntimeError(
                f"{subscriber.name} lost or duplicated messages: {counted} of {target}, {dropped} dropped"
            )
    return count / (time.perf_counter() - start)


async def alternate(url: str, payloads: Sequence[bytes], total: int, segments: int) -> dict[str, float]:
    """Both subscribers run side by side; the publisher feeds them in alternating segments, so each pair of
    segments meets the same background load, and the ratio is the median of the pairs' ratios."""
    bare_port, consumer_port = free_port(), free_port()
    bare_subject, consumer_subject = (f"bench.consumer.{uuid.uuid4().hex}" for _ in range(2))
    bare = Subscriber(
        "bare",
        [sys.executable, "-P", __file__, "--bare-subscriber", url, bare_subject, str(bare_port)],
        bare_port,
        "/count",
        bare_subject,
    )
    consumer = Subscriber(
        "consumer",
        [
            sys.executable,
            "-m",
            "datamanager.cli",
            "consume",
            "--nats-url",
            url,
            "--subject",
            consumer_subject,
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(consumer_port),
            "--summary-interval",
            "3600",
            "--log-level",
            "warning",
        ],
        consumer_port,
        "/stats",
        consumer_subject,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await bare.wait_ready(session)
            await consumer.wait_ready(session)
            await _until_subscribed(session, consumer_port)
            rss_before = psutil.Process(consumer.process.pid).memory_info().rss
            client = await nats.connect(url)
            rates: dict[str, list[float]] = {"bare": [], "consumer": []}
            try:
                for _ in range(segments):
                    for subscriber in (bare, consumer):
                        rates[subscriber.name].append(
                            await drive(subscriber, session, client, payloads, total // segments)
                        )
                    print(
                        f"  segment: bare {rates['bare'][-1]:,.0f}/s, consumer {rates['consumer'][-1]:,.0f}/s"
                    )
            finally:
                await client.close()
            rss_after = psutil.Process(consumer.process.pid).memory_info().rss
            counted = {s.name: (await s.counts(session)) for s in (bare, consumer)}
    finally:
        bare.stop()
        consumer.stop()
    pair_ratios = sorted(c / b for c, b in zip(rates["consumer"], rates["bare"], strict=True))
    return {
        "bare_rate": statistics.median(rates["bare"]),
        "consumer_rate": statistics.median(rates["consumer"]),
        "ratio": statistics.median(pair_ratios),
        "consumer_counted": counted["consumer"][0],
        "consumer_dropped": counted["consumer"][1],
        "bare_counted": counted["bare"][0],
        "bare_dropped": counted["bare"][1],
        "rss_growth_mb": (rss_after - rss_before) / 2**20,
    }


async def _until_subscribed(session: aiohttp.ClientSession, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the consumer never became ready")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000, help="end-to-end messages per subscriber")
    parser.add_argument("--parse-messages", type=int, default=100_000, help="messages per parse-only round")
    parser.add_argument("--segments", type=int, default=10, help="alternating end-to-end segments")
    parser.add_argument(
        "--bare-subscriber", nargs=3, metavar=("URL", "SUBJECT", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.bare_subscriber:
        url, subject, port = args.bare_subscriber
        import uvloop

        # the same event loop the consumer runs on: the comparison isolates what the consumer adds
        uvloop.run(bare_subscriber(url, subject, int(port)))
        return 0

    payloads = message_mix(5_000)
    assert all(not isinstance(parse(p), str) for p in payloads), "the mix must be well-formed"
    assert all(json_baseline(p)[1] == list(events(parse(p))) for p in payloads), "baselines must agree"  # type: ignore[arg-type]
    parse_only = rates(
        {
            "ours": parse,
            "json": json_baseline,
            "pydantic": pydantic_baseline,
            "pydantic_envelope": pydantic_envelope_baseline,
        },
        payloads,
        args.parse_messages,
    )
    print("parse only, messages/s:", {name: round(value) for name, value in parse_only.items()}, flush=True)

    with nats_server() as url:
        e2e = asyncio.run(alternate(url, payloads, args.messages, args.segments))
    ours = parse_only["ours"]
    figures: dict[str, object] = {
        "messages_e2e": args.messages,
        "messages_parse": args.parse_messages,
        "mix_bytes_mean": round(sum(map(len, payloads)) / len(payloads)),
        "parse_rate": round(ours),
        "json_rate": round(parse_only["json"]),
        "pydantic_rate": round(parse_only["pydantic"]),
        "pydantic_envelope_rate": round(parse_only["pydantic_envelope"]),
        "ratio_vs_json": round(ours / parse_only["json"], 2),
        "ratio_vs_pydantic": round(ours / parse_only["pydantic"], 2),
        "ratio_vs_pydantic_envelope": round(ours / parse_only["pydantic_envelope"], 2),
        "consumer_rate": round(e2e["consumer_rate"]),
        "bare_rate": round(e2e["bare_rate"]),
        "ratio_e2e_vs_bare": round(e2e["ratio"], 2),
        "consumer_dropped": int(e2e["consumer_dropped"]),
        "bare_dropped": int(e2e["bare_dropped"]),
        "rss_growth_mb": round(e2e["rss_growth_mb"], 1),
    }
    figures["targets_met"] = {
        "ratio_vs_json>=2": ours / parse_only["json"] >= 2,
        "ratio_vs_pydantic>=10": ours / parse_only["pydantic"] >= 10,
        "ratio_e2e_vs_bare>=0.8": e2e["ratio"] >= 0.8,
        "no_drops": not e2e["consumer_dropped"],
        "rss_growth_mb<20": e2e["rss_growth_mb"] < 20,
    }
    print(json.dumps(figures))
    sent = args.messages // args.segments * args.segments
    lost = e2e["consumer_counted"] != sent or e2e["bare_counted"] != sent
    return 1 if lost or e2e["consumer_dropped"] or e2e["bare_dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
