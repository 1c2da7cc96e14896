"""Bad inputs: each gives its documented exit code, one log line naming the cause, and a summary."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from datamanager.contract import ExitCode
from tests.integration.analytics.conftest import Seeded, run_analytics

DATAMANAGER = Path(sys.executable).parent / "datamanager"


def closed_port() -> int:
    """A local port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """The real ``datamanager analytics`` program in a subprocess: exit code, summary, stderr."""
    log = tmp_path / "termination-log"
    completed = subprocess.run(
        [str(DATAMANAGER), "analytics", "--termination-log", str(log), "--connect-timeout", "2", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return completed.returncode, json.loads(log.read_text()), completed.stderr


def test_unreachable_mysql_is_source_unavailable(tmp_path: Path, mongodb_uri: str) -> None:
    dsn = f"mysql://root:pw@127.0.0.1:{closed_port()}/candles"
    code, summary, stderr = cli(
        tmp_path,
        "--mysql-dsn",
        dsn,
        "--mongodb-uri",
        mongodb_uri,
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1h",
    )
    assert code == ExitCode.SOURCE_UNAVAILABLE
    assert summary["reason"] == "SourceUnavailable"
    assert f"MySQL at 127.0.0.1:{urlsplit(dsn).port}/candles" in summary["message"]
    assert [line for line in stderr.splitlines() if "ERROR" in line] == [stderr.strip().splitlines()[-1]]
    assert "pw" not in stderr


def test_wrong_password_is_source_unavailable(tmp_path: Path, seeded: Seeded, mongodb_uri: str) -> None:
    code, summary, stderr = cli(
        tmp_path,
        "--mysql-dsn",
        with_password(seeded.mysql_dsn, "not-the-password"),
        "--mongodb-uri",
        mongodb_uri,
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1h",
    )
    assert code == ExitCode.SOURCE_UNAVAILABLE
    assert "access denied" in summary["message"]
    assert "not-the-password" not in stderr + json.dumps(summary)


def test_unreachable_mongodb_is_sink_unavailable(tmp_path: Path, seeded: Seeded) -> None:
    code, summary, _ = cli(
        tmp_path,
        "--mysql-dsn",
        seeded.mysql_dsn,
        "--mongodb-uri",
        f"mongodb://127.0.0.1:{closed_port()}/",
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1h",
    )
    assert code == ExitCode.SINK_UNAVAILABLE
    assert summary["reason"] == "SinkUnavailable"
    assert "MongoDB at 127.0.0.1:" in summary["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--families", "volatility,astrology"), "families.1: Input should be"),
        (("--volatility-window", "1"), "windows.volatility: Input should be greater than or equal to 2"),
        (("--intervals", "7m"), "intervals.0: Input should be"),
        (("--window", "yesterday"), "window: String should match pattern"),
        (("--symbols", "btc-usdt"), "symbols.0: String should match pattern"),
        (("--shards", "2", "--shard-index", "2"), "shard index 2 is outside 0..1"),
    ],
)
def test_invalid_options_are_invalid_config(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    code, summary, stderr = cli(
        tmp_path,
        "--mysql-dsn",
        "mysql://u:p@127.0.0.1:1/db",
        "--mongodb-uri",
        "mongodb://127.0.0.1:1/",
        "--symbols",
        "BTCUSDT",
        "--intervals",
        "1h",
        *args,
    )
    assert code == ExitCode.INVALID_CONFIG
    assert summary["reason"] == "InvalidConfig"
    assert message in summary["message"]
    assert message in stderr


def test_missing_connection_settings_are_invalid_config(tmp_path: Path) -> None:
    code, summary, _ = cli(
        tmp_path, "--symbols", "BTCUSDT", "--intervals", "1h", env={"DATAMANAGER_MYSQL_DSN": ""}
    )
    assert code == ExitCode.INVALID_CONFIG
    assert "no MySQL DSN: set DATAMANAGER_MYSQL_DSN or --mysql-dsn" in summary["message"]


def test_spec_from_the_environment(
    tmp_path: Path, seeded: Seeded, mongodb_uri: str, mongo_database: str
) -> None:
    spec = {
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "intervals": ["1h"],
        "window": "300h",
        "families": ["momentum", "correlation"],
        "windows": {"momentum": 7},
        "sink": {"database": mongo_database, "collection": "metrics"},
    }
    code, summary, _ = cli(
        tmp_path,
        "--as-of",
        "2024-07-13T12:00:00Z",
        env={
            "DATAMANAGER_SPEC": json.dumps(spec),
            "DATAMANAGER_MYSQL_DSN": seeded.mysql_dsn,
            "DATAMANAGER_MONGODB_URI": mongodb_uri,
            "DATAMANAGER_RUN_ID": "from-env",
        },
    )
    assert code == ExitCode.OK
    assert summary["results"] == {
        "database": mongo_database,
        "collection": "metrics",
        "runId": "from-env",
        "documents": 3,
    }
    assert summary["counts"]["ok"] == 3


def test_missing_table_is_a_result_not_a_failure(
    tmp_path: Path, mysql_dsn: str, mongodb_uri: str, mongo_database: str
) -> None:
    outcome = run_analytics(tmp_path, mysql_dsn, mongodb_uri, mongo_database, "--families", "trend")
    assert outcome.code == ExitCode.OK
    assert outcome.summary["counts"]["insufficientData"] == outcome.summary["counts"]["results"] == 6
    assert outcome.summary["datasets"][:2] == [
        {
            "symbol": "BTCUSDT",
            "interval": "1d",
            "problems": ["trend: no data: table klines_d1 does not exist"],
        },
        {
            "symbol": "BTCUSDT",
            "interval": "1h",
            "problems": ["trend: no data: table klines_h1 does not exist"],
        },
    ]
