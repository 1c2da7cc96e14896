"""The real ``datamanager audit`` process: exit codes, the one log line naming the cause, and the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from datamanager.contract import ExitCode
from tests.integration.audit.audit_seed import AS_OF, WINDOW, seed


def _audit(
    *flags: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATAMANAGER_", "JOB_COMPLETION"))}
    return subprocess.run(
        [sys.executable, "-m", "datamanager.cli", "audit", *flags],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "ERROR" in line]


BASE = ("--symbols", "BTCUSDT", "--intervals", "1h", "--window", WINDOW, "--as-of", AS_OF.isoformat())


def test_an_unreachable_mysql_exits_3_naming_it(mongodb_uri: str, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    env = {
        "DATAMANAGER_MYSQL_DSN": "mysql://u:secret@127.0.0.1:1/db",
        "DATAMANAGER_TERMINATION_LOG": str(log),
    }
    result = _audit(*BASE, "--mongodb-uri", mongodb_uri, "--connect-timeout", "2", env=env)
    assert result.returncode == ExitCode.SOURCE_UNAVAILABLE
    [line] = _error_lines(result)
    assert "SourceUnavailable" in line
    assert "MySQL at 127.0.0.1:1/db" in line
    assert "secret" not in result.stderr + result.stdout
    summary = json.loads(log.read_text())
    assert summary["reason"] == "SourceUnavailable"
    assert summary["exitCode"] == 3


def test_a_wrong_mysql_password_exits_3_saying_access_denied(mysql_dsn: str, mongodb_uri: str) -> None:
    parts = urlsplit(mysql_dsn)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:wrong@{parts.hostname}:{parts.port}"))
    result = _audit(*BASE, "--mysql-dsn", wrong, "--mongodb-uri", mongodb_uri)
    assert result.returncode == ExitCode.SOURCE_UNAVAILABLE
    [line] = _error_lines(result)
    assert "access denied" in line


def test_an_unreachable_mongodb_exits_4_naming_it(mysql_dsn: str) -> None:
    result = _audit(
        *BASE, "--mysql-dsn", mysql_dsn, "--mongodb-uri", "mongodb://127.0.0.1:1/", "--connect-timeout", "1"
    )
    assert result.returncode == ExitCode.SINK_UNAVAILABLE
    [line] = _error_lines(result)
    assert "SinkUnavailable" in line
    assert "MongoDB at 127.0.0.1:1" in line
    assert _summary(result)["reason"] == "SinkUnavailable"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--symbols", "btc-usdt"), "symbols.0: String should match pattern"),
        (("--intervals", "7m"), "intervals.0: Input should be"),
        (("--window", "soon"), "window: String should match pattern"),
        (("--healthy", "50", "--degraded", "60"), "thresholds must be ordered"),
        (("--checks", "gaps,vibes"), "checks.1: Input should be"),
        (("--run-id", "has spaces"), "run id 'has spaces' must match"),
        (("--shards", "2"), "needs a shard index"),
    ],
)
def test_invalid_options_exit_2_with_a_precise_message(
    mysql_dsn: str, mongodb_uri: str, flags: tuple[str, ...], message: str
) -> None:
    result = _audit(*BASE, "--mysql-dsn", mysql_dsn, "--mongodb-uri", mongodb_uri, *flags)
    assert result.returncode == ExitCode.INVALID_CONFIG
    [line] = _error_lines(result)
    assert "InvalidConfig" in line
    assert message in line


def test_a_missing_dsn_exits_2() -> None:
    result = _audit(*BASE, "--mongodb-uri", "mongodb://127.0.0.1:1/")
    assert result.returncode == ExitCode.INVALID_CONFIG
    assert "no MySQL DSN: set DATAMANAGER_MYSQL_DSN or --mysql-dsn" in result.stderr


def test_a_manifest_spec_file_runs_and_a_missing_table_is_a_finding(
    mysql_dsn: str, mongodb_uri: str, mongo_database: str, tmp_path: Path
) -> None:
    seed(mysql_dsn)
    manifest = {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": "DataAudit",
        "metadata": {"name": "nightly", "namespace": "markets"},
        "spec": {
            "source": {"dsnSecretRef": {"name": "mysql", "key": "dsn"}},
            "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}, "database": mongo_database},
            "symbols": ["ETHUSDT"],
            "intervals": ["1h", "1d"],
            "window": WINDOW,
        },
    }
    spec_file = tmp_path / "audit.yaml"
    spec_file.write_text(yaml.safe_dump(manifest))
    log = tmp_path / "termination-log"
    env = {
        "DATAMANAGER_SPEC_FILE": str(spec_file),
        "DATAMANAGER_MYSQL_DSN": mysql_dsn,
        "DATAMANAGER_MONGODB_URI": mongodb_uri,
        "DATAMANAGER_RUN_ID": "cli-run",
        "DATAMANAGER_RESOURCE": "DataAudit/markets/nightly",
        "DATAMANAGER_TERMINATION_LOG": str(log),
    }
    result = _audit("--as-of", AS_OF.isoformat(), env=env)
    assert result.returncode == ExitCode.OK, result.stderr
    assert _error_lines(result) == []
    summary = _summary(result)
    assert json.loads(log.read_text()) == summary
    assert summary["runId"] == "cli-run"
    assert summary["resource"] == "DataAudit/markets/nightly"
    assert summary["results"] == {
        "database": mongo_database, "collection": "audit", "runId": "cli-run", "documents": 3,
    }  # fmt: skip
    worst, best = summary["datasets"]
    assert (worst["interval"], worst["score"], worst["level"]) == ("1d", 0.0, "critical")
    assert worst["problems"] == [f"table klines_d1 does not exist in {urlsplit(mysql_dsn).path[1:]}"]
    assert (best["interval"], best["score"], best["level"]) == ("1h", 100.0, "healthy")
    assert summary["healthScore"] == 50.0
