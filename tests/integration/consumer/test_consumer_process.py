"""The real `datamanager consume` program: it survives a nats-server restart, and it is quiet when healthy."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.consumer.consumer_harness import (
    ConsumerHttp,
    free_port,
    publish,
    start_consumer,
    start_nats_server,
    stop_process,
    until,
    well_formed,
)


async def test_nats_server_restart_mid_stream(tmp_path: Path) -> None:
    """Readiness goes false while the server is down and true once the consumer is back; counting goes on."""
    nats_port, http_port = free_port(), free_port()
    url = f"nats://127.0.0.1:{nats_port}"
    subject = "restart.test"
    batch = [json.dumps({"data": {"e": "trade", "E": 1, "s": "BTCUSDT"}}).encode()] * 500
    with (tmp_path / "nats.log").open("wb") as nats_log, (tmp_path / "consumer.log").open("wb") as log:
        server = start_nats_server(nats_port, nats_log)
        consumer = start_consumer(url, subject, http_port, log, "--reconnect-max-delay", "0.5")
        try:
            async with aiohttp.ClientSession() as session:
                http = ConsumerHttp(session, http_port)
                await until(http.ready, 20, "the consumer to be ready")
                await publish(url, subject, batch)
                await until(lambda: _counted(http, 500), 20, "the first batch to be counted")

                server.terminate()
                server.wait(10)
                await until(http.not_ready, 10, "readiness to drop with the server")
                assert (await http.stats())["nats"]["connected"] is False

                server = start_nats_server(nats_port, nats_log)
                await until(http.ready, 20, "the consumer to reconnect")
                await publish(url, subject, batch)
                await until(lambda: _counted(http, 1000), 20, "the second batch to be counted")
                assert (await http.stats())["nats"]["reconnects"] == 1
        finally:
            assert stop_process(consumer) == 0
            server.terminate()
            server.wait(10)
    text = (tmp_path / "consumer.log").read_text()
    assert "lost the NATS connection" in text
    assert "reconnected" in text


async def _counted(http: ConsumerHttp, expected: int) -> bool:
    counted = await http.counted()
    assert counted <= expected, "nothing may be counted twice"
    return bool(counted == expected)


NOISE = re.compile("error|warn|skip", re.IGNORECASE)


async def _steady_traffic(
    nats_url: str, subject: str, log_path: Path, seconds: int, copies: int, *flags: str
) -> tuple[int, dict[str, Any], list[str]]:
    """Runs the real consumer under steady traffic in every well-formed format (``copies`` of each format
    every 100 ms) for ``seconds``; returns its exit code, its final /stats and its log lines."""
    formats = well_formed()
    http_port = free_port()
    published = 0
    with log_path.open("wb") as log:
        consumer = start_consumer(nats_url, subject, http_port, log, *flags)
        try:
            async with aiohttp.ClientSession() as session:
                http = ConsumerHttp(session, http_port)
                await until(http.ready, 20, "the consumer to be ready")
                start = time.monotonic()
                for tick in range(seconds * 10):
                    await publish(nats_url, subject, formats * copies)
                    published += len(formats) * copies
                    await asyncio.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))  # pacing
                await until(lambda: _counted(http, published), 20, "all traffic to be counted")
                stats = await http.stats()
        finally:
            code = stop_process(consumer)
    return code, stats, (await asyncio.to_thread(log_path.read_text)).splitlines()


async def test_steady_traffic_in_every_format_logs_only_banner_and_summaries(
    nats_url: str, nats_subject: str, tmp_path: Path
) -> None:
    """The incident report's own check on a short run with 1 s summaries: nothing per message."""
    seconds = 6
    code, stats, lines = await _steady_traffic(
        nats_url, nats_subject, tmp_path / "consumer.log", seconds, 20, "--summary-interval", "1"
    )
    assert code == 0
    assert stats["malformed"]["total"] == 0
    assert stats["nats"]["dropped"] == 0
    assert [line for line in lines if NOISE.search(line)] == []
    assert "tracking mode only" in lines[0]
    assert "final summary" in lines[-1]
    summaries = [line for line in lines if " summary " in line]
    assert len(summaries) >= seconds - 1
    # Banner, "subscribed", one summary a second and the final one: nothing per message.
    assert len(lines) <= seconds + 6


async def test_the_incident_reports_verification_holds_after_two_minutes(
    nats_url: str, nats_subject: str, tmp_path: Path
) -> None:
    """As the seed verified it: two minutes of steady traffic, default settings, then zero lines matching
    error|warn|skip and fewer than 60 lines in all."""
    code, stats, lines = await _steady_traffic(nats_url, nats_subject, tmp_path / "consumer.log", 120, 2)
    assert code == 0
    assert stats["messages"]["total"] > 0
    assert [line for line in lines if NOISE.search(line)] == []
    assert len(lines) < 60
    assert "tracking mode only" in lines[0]
