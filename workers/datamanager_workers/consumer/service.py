"""The NATS side: connect, subscribe in the queue group, count every message, reconnect, drain on stop.

One loop owns the connection. It connects with exponential backoff and jitter, subscribes, and waits until
either the connection closes (then it reconnects, and readiness is false meanwhile) or a stop is requested
(then it drains: what was already received is counted before the connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Final

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import DrainTimeoutError, SlowConsumerError
from nats.errors import Error as NatsError

from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.settings import Settings, redact
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.logs import OncePerInterval
from datamanager_workers.shared.urls import nats_login

log = logging.getLogger("datamanager_workers.consumer")

CLIENT_NAME: Final = "datamanager-consumer"
FIRST_RETRY_DELAY: Final = 0.2  # seconds; doubles per failed attempt up to the configured cap
_CONNECT_TIMEOUT: Final = 2
# A silent peer (half-open TCP) is declared dead after about ping interval x (max outstanding + 1).
_PING_INTERVAL: Final = 10
_MAX_OUTSTANDING_PINGS: Final = 2
_EXAMPLE_BYTES: Final = 160
_CONNECT_ERRORS: Final = (OSError, TimeoutError, NatsError)
_MAX_BATCH: Final = 1000  # messages counted in one go at most, so HTTP requests wait a few ms at worst


def backoff_delay(failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failed attempts: exponential, capped, half jittered
    so that many replicas restarted together do not retry in lockstep."""
    ceiling = min(cap, FIRST_RETRY_DELAY * 2.0 ** min(failures - 1, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def example(payload: bytes) -> str:
    """A bounded, printable excerpt of a payload for a log line."""
    text = payload[:_EXAMPLE_BYTES].decode("utf-8", errors="backslashreplace")
    if len(payload) > _EXAMPLE_BYTES:
        text += f"... ({len(payload)} bytes)"
    return text


class StreamConsumer:
    def __init__(
        self, settings: Settings, counters: Counters, state: ConnectionState, once: OncePerInterval
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._state = state
        self._once = once
        self._last_problem: Exception | None = None
        self._pending: list[bytes] = []  # received, to be counted at the event loop's next turn

    async def run(self, stop: asyncio.Event) -> None:
        """Count the stream until ``stop`` is set, then drain and return."""
        failures = 0
        lost_at: float | None = None
        while not stop.is_set():
            closed = asyncio.Event()
            try:
                client = await self._connect(closed)
            except _CONNECT_ERRORS as exc:
                failures += 1
                if failures == 1:
                    # The client reports the underlying failure (refused, timed out) through its error
                    # callback and then raises a generic "no servers"; the former says more.
                    cause = _describe(self._last_problem or exc)
                    log.warning(
                        "cannot reach NATS, retrying with backoff",
                        extra={"fields": {"servers": self._servers(), "cause": cause}},
                    )
                await _wait(stop, backoff_delay(failures, self._settings.reconnect_max_delay))
                continue
            failures = 0
            self._state.connected = self._state.subscribed = True
            self._state.connects += 1
            if lost_at is None:
                log.info("subscribed", extra={"fields": self._where(client)})
            else:
                outage = round(time.monotonic() - lost_at, 1)
                log.info("reconnected", extra={"fields": {**self._where(client), "outage_seconds": outage}})
            await _first_of(stop, closed)
            if not closed.is_set():
                await self._drain(client)
                return
            lost_at = time.monotonic()
            if not stop.is_set():
                cause = _describe(self._last_problem) if self._last_problem else "closed by the server"
                log.warning(
                    "lost the NATS connection, reconnecting with backoff",
                    extra={"fields": {"servers": self._servers(), "cause": cause}},
                )

    async def _connect(self, closed: asyncio.Event) -> Client:
        settings = self._settings

        async def on_disconnected() -> None:
            self._state.connected = self._state.subscribed = False

        async def on_closed() -> None:
            self._state.connected = self._state.subscribed = False
            closed.set()

        login = nats_login(settings.nats_servers)
        client = await nats.connect(
            servers=login.servers,
            user=login.user,
            password=login.password,
            token=login.token,
            name=CLIENT_NAME,
            # This loop, not the client, reconnects: one backoff policy for the first connection and
            # every later one. So each call makes one quick pass over the pool (two tries per server is
            # the client's minimum) and gives up.
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=_CONNECT_TIMEOUT,
            ping_interval=_PING_INTERVAL,
            max_outstanding_pings=_MAX_OUTSTANDING_PINGS,
            drain_timeout=settings.drain_timeout,
            error_cb=self._on_error,
            disconnected_cb=on_disconnected,
            closed_cb=on_closed,
        )
        try:
            await client.subscribe(
                settings.subject,
                queue=settings.queue_group,
                cb=self._on_message,
                pending_bytes_limit=settings.max_pending_bytes,
            )
            await client.flush(timeout=_CONNECT_TIMEOUT)
        except BaseException:
            await client.close()
            raise
        self._last_problem = None
        return client

    async def _on_message(self, msg: Msg) -> None:
        # Payloads are counted together once the client has handed over what it has, at the event loop's
        # next turn (see Counters.observe_all), or at once when that is more than a batch.
        pending = self._pending
        pending.append(msg.data)
        if len(pending) == 1:
            asyncio.get_running_loop().call_soon(self._count_pending)
        elif len(pending) >= _MAX_BATCH:
            self._count_pending()

    def _count_pending(self) -> None:
        batch, self._pending = self._pending, []
        for reason, payload in self._counters.observe_all(batch):
            if self._once.first(reason):
                log.warning(
                    "malformed message (or list element) counted by reason",
                    extra={"fields": {"reason": reason, "example": example(payload)}},
                )

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self._state.dropped += 1
            if self._once.first("slow_consumer"):
                log.warning(
                    "counting falls behind the stream: the NATS client discards messages",
                    extra={"fields": {"max_pending_bytes": self._settings.max_pending_bytes}},
                )
        elif isinstance(exc, DrainTimeoutError):
            log.warning(
                "drain timed out: messages received but not yet counted are lost",
                extra={"fields": {"drain_timeout": self._settings.drain_timeout}},
            )
        else:
            # Every other client error ends in a closed connection, reported once with this as its cause.
            self._last_problem = exc

    async def _drain(self, client: Client) -> None:
        self._state.draining = True
        try:
            await client.drain()
        except _CONNECT_ERRORS as exc:
            log.warning("drain incomplete", extra={"fields": {"cause": _describe(exc)}})
        self._count_pending()

    def _servers(self) -> str:
        return ",".join(redact(server) for server in self._settings.nats_servers)

    def _where(self, client: Client) -> dict[str, object]:
        server = client.connected_url
        return {
            "server": redact(server.geturl()) if server else self._servers(),
            "subject": self._settings.subject,
            "queue_group": self._settings.queue_group,
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
