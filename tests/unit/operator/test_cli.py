"""`datamanager operator` answers bad settings with the setting's name and exit code 2, before connecting."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamanager.cli", "operator", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--lease-seconds", "1"], {}, "--lease-seconds must be at least 5, got 1"),
        (["--workers", "0"], {}, "--workers must be at least 1, got 0"),
        ([], {"DATAMANAGER_LEASE_SECONDS": "abc"}, "argument --lease-seconds: invalid int value: 'abc'"),
        (
            [],
            {"DATAMANAGER_LOG_LEVEL": "LOUD"},
            "--log-level [env DATAMANAGER_LOG_LEVEL] must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'",
        ),
    ],
)
def test_bad_settings_exit_2_naming_the_setting(args: list[str], env: dict[str, str], message: str) -> None:
    result = run(*args, env=env)
    assert result.returncode == 2
    assert message in result.stdout + result.stderr


def test_a_bad_operator_environment_does_not_break_other_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datamanager.cli", "--help"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATAMANAGER_LEASE_SECONDS": "abc"},
        timeout=60,
    )
    assert result.returncode == 0
    assert "operator" in result.stdout
