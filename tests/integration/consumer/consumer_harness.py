"""Helpers for the consumer's integration tests: processes, ports, polling and the shared corpus."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import aiohttp
import nats

REPO = Path(__file__).resolve().parents[3]
CORPUS_FILE = REPO / "tests" / "unit" / "consumer" / "corpus.json"


def corpus() -> list[tuple[bytes, dict[str, Any]]]:
    """The unit tier's corpus: each message and what it must count as (its type and events, or its reason)."""
    return [
        (json.dumps(entry["message"]).encode(), entry["expect"])
        for entry in json.loads(CORPUS_FILE.read_text())
    ]


def well_formed() -> list[bytes]:
    """The corpus messages that are well-formed throughout: no malformed message, no bad list element."""
    return [
        payload
        for payload, expect in corpus()
        if "malformed" not in expect and not expect.get("bad_elements")
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> str:
    """The rig's nats-server: on PATH after `source .rig/env`, else in the rig's binary cache."""
    found = shutil.which("nats-server") or next(
        iter(sorted(glob.glob(os.path.expanduser("~/.cache/datamanager-rig/nats-server-*/bin/nats-server")))),
        None,
    )
    if found is None:
        raise RuntimeError("no nats-server binary: run `make rig-build`")
    return found


def start_nats_server(port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )


async def until(condition: Callable[[], Awaitable[bool] | bool], within: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        outcome = condition()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


def start_consumer(
    nats_url: str, subject: str, http_port: int, log: IO[bytes], *extra: str
) -> subprocess.Popen[bytes]:
    """The real `datamanager consume` program in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datamanager.cli",
            "consume",
            "--nats-url",
            nats_url,
            "--subject",
            subject,
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(http_port),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then wait for the exit code (killing only if it never comes)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


class ConsumerHttp:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self._session = session
        self._base = f"http://127.0.0.1:{port}"

    async def ready(self) -> bool:
        try:
            async with self._session.get(f"{self._base}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    async def not_ready(self) -> bool:
        async with self._session.get(f"{self._base}/readyz") as response:
            return response.status == 503

    async def stats(self) -> dict[str, dict[str, object]]:
        async with self._session.get(f"{self._base}/stats") as response:
            document: dict[str, dict[str, object]] = await response.json()
            return document

    async def counted(self) -> int:
        total = (await self.stats())["messages"]["total"]
        assert isinstance(total, int)
        return total


async def publish(url: str, subject: str, payloads: list[bytes]) -> None:
    client = await nats.connect(url)
    try:
        for payload in payloads:
            await client.publish(subject, payload)
        await client.flush()
    finally:
        await client.close()
