"""The caller's summary: at most 4 KB, lists cut from the end (worst first stays), then the message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamanager.contract import DEFAULT_TERMINATION_LOG, SUMMARY_MAX_BYTES, DatasetSummary, RunSummary
from datamanager_workers.shared.summary import fit_summary, write_summary


def _many_datasets(count: int) -> RunSummary:
    return RunSummary(
        job="audit",
        outcome="Succeeded",
        exit_code=0,
        reason="Completed",
        message="many datasets",
        datasets=[
            DatasetSummary(symbol=f"S{i:04d}USDT", interval="1m", score=1.5, problems=["x" * 40])
            for i in range(count)
        ],
    )


def test_a_big_summary_is_cut_to_fit_and_written(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    text = write_summary(_many_datasets(200), path)
    assert path.read_text() == text
    assert len(text.encode()) <= SUMMARY_MAX_BYTES
    parsed = RunSummary.model_validate_json(text)
    assert parsed.truncated
    assert 0 < len(parsed.datasets) < 200
    assert parsed.datasets[0].symbol == "S0000USDT"


def test_a_small_summary_is_whole() -> None:
    parsed = RunSummary.model_validate_json(fit_summary(_many_datasets(3)))
    assert not parsed.truncated
    assert len(parsed.datasets) == 3


def test_a_message_is_shortened_when_nothing_else_is_left() -> None:
    summary = RunSummary(
        job="audit", outcome="Failed", exit_code=3, reason="SourceUnavailable", message="m" * 9000
    )
    text = fit_summary(summary)
    assert len(text.encode()) <= SUMMARY_MAX_BYTES
    assert json.loads(text)["message"].endswith("...")
    assert json.loads(text)["truncated"] is True


def test_a_missing_directory_means_print_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent" / "termination-log"
    text = write_summary(_many_datasets(1), path)
    assert not path.exists()
    assert capsys.readouterr().out == text + "\n"


def test_the_default_path_is_written_only_where_kubernetes_created_it() -> None:
    default = Path(DEFAULT_TERMINATION_LOG)
    existed = default.exists()
    write_summary(_many_datasets(1), default)
    assert default.exists() == existed
