"""The `datamanager consume` subcommand: help naming every environment variable, exit 2 on bad settings."""

from __future__ import annotations

import pytest

from datamanager.cli import build_parser, main
from datamanager.contract import ExitCode
from datamanager_workers.consumer.settings import OPTIONS


def test_help_names_every_flag_and_environment_variable() -> None:
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    assert isinstance(subparsers.choices, dict)
    text = subparsers.choices["consume"].format_help()
    for option in OPTIONS:
        assert option.flag in text
        assert option.env in text.replace("\n", "").replace(" ", "")


def test_invalid_settings_exit_2_with_a_message_per_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMANAGER_CONSUMER_MAX_SYMBOLS", "many")
    code = main(["consume", "--http-port", "-1", "--summary-interval", "soon"])
    assert code == ExitCode.INVALID_CONFIG
    assert int(code) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "datamanager consume: invalid settings:"
    assert len(lines) == 4
    assert any("DATAMANAGER_CONSUMER_MAX_SYMBOLS='many'" in line for line in lines)
