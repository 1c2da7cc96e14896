"""Wires the consumer together: counters, HTTP endpoints, the NATS loop, summaries and signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time

from datamanager import __version__
from datamanager.contract import ExitCode
from datamanager_workers.consumer.counters import Counters
from datamanager_workers.consumer.http import build_app, start_http
from datamanager_workers.consumer.metrics import build_registry
from datamanager_workers.consumer.service import StreamConsumer
from datamanager_workers.consumer.settings import Settings
from datamanager_workers.consumer.state import ConnectionState
from datamanager_workers.consumer.summary import IntervalSummary, log_summaries
from datamanager_workers.logs import OncePerInterval
from datamanager_workers.shared.urls import shown

log = logging.getLogger("datamanager_workers.consumer")


async def consume(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; then drain, log a final summary and return the exit code."""
    counters = Counters(
        max_payload_bytes=settings.max_payload_bytes,
        allowed_symbols=settings.symbols,
        max_symbols=settings.max_symbols,
    )
    state = ConnectionState()
    app = build_app(
        counters,
        state,
        build_registry(counters, state),
        subject=settings.subject,
        queue_group=settings.queue_group,
    )
    try:
        runner, port = await start_http(app, settings.http_host, settings.http_port)
    except OSError as exc:
        log.error(
            "cannot serve HTTP",
            extra={"fields": {"address": f"{settings.http_host}:{settings.http_port}", "cause": str(exc)}},
        )
        return ExitCode.INTERNAL
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "datamanager consumer starting in tracking mode only: it counts the stream and persists nothing",
        extra={"fields": _banner(settings, port)},
    )
    # Everything allocated so far lives as long as the process: keep it out of the garbage collector's
    # full passes, which would otherwise walk it again and again while counting (a measurable share).
    gc.freeze()
    once = OncePerInterval()
    summary = IntervalSummary(counters, state, time.time())
    summaries = asyncio.create_task(log_summaries(summary, settings.summary_interval, once))
    try:
        await StreamConsumer(settings, counters, state, once).run(stop)
    finally:
        summaries.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await summaries
        log.info("final summary", extra={"fields": summary.take(time.time())})
        await runner.cleanup()
    return ExitCode.OK


def _banner(settings: Settings, port: int) -> dict[str, object]:
    if settings.symbols:
        symbols = f"allow-list of {len(settings.symbols)}, others as 'other'"
    else:
        symbols = f"first {settings.max_symbols} seen, others as 'other'"
    return {
        "version": __version__,
        "nats": ",".join(shown(server) for server in settings.nats_servers),
        "subject": settings.subject,
        "queue_group": settings.queue_group,
        "http": f"{settings.http_host}:{port}",
        "summary_interval_seconds": settings.summary_interval,
        "symbols": symbols,
        "max_payload_bytes": settings.max_payload_bytes,
    }
