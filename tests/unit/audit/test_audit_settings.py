"""Settings: spec file, spec from the environment and flags in layers; every bad input a precise error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from datamanager.api import AnalyticsJobSpec, AuditCheck, DataAuditSpec, Interval
from datamanager.api.common import describe_minimum_window
from datamanager.cli import build_parser
from datamanager_workers.audit.cli import load_audit_settings
from datamanager_workers.shared.errors import InvalidConfigError
from datamanager_workers.shared.settings import Shard, WorkerSettings
from datamanager_workers.shared.source import MySqlDsn

CONNECTIONS = {
    "DATAMANAGER_MYSQL_DSN": "mysql://u:p@db:3306/candles",
    "DATAMANAGER_MONGODB_URI": "mongodb://m/",
}
SPEC = {
    "source": {"dsnSecretRef": {"name": "mysql", "key": "dsn"}, "tablePrefix": "klines_"},
    "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}, "database": "results"},
    "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
    "intervals": ["1h"],
    "window": "7d",
    "checks": ["gaps", "ohlc"],
}


def load(*flags: str, **env: str) -> WorkerSettings[DataAuditSpec]:
    args = build_parser().parse_args(["audit", *flags])
    return load_audit_settings(args, environ={**CONNECTIONS, **env})


def test_a_manifest_file_gives_its_spec(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "datamanager.petrosa.io/v1alpha1", "kind": "DataAudit",
                                    "metadata": {"name": "a"}, "spec": SPEC}))  # fmt: skip
    settings = load("--spec", str(path))
    assert settings.spec.symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert settings.spec.checks == [AuditCheck.GAPS, AuditCheck.OHLC]
    assert settings.spec.sink.database == "results"
    assert settings.collection("audit") == "audit"


def test_env_spec_overlays_the_file_and_flags_overlay_both(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    settings = load(
        "--window",
        "2w",
        "--table-prefix",
        "copy_",
        "--spike-sigma",
        "4.5",
        DATAMANAGER_SPEC_FILE=str(path),
        DATAMANAGER_SPEC=json.dumps({"intervals": ["1m", "1d"], "sink": {"retentionDays": 7}}),
    )
    spec = settings.spec
    assert spec.intervals == [Interval.M1, Interval.D1]
    assert spec.window == "2w"
    assert spec.source.table_prefix == "copy_"
    assert spec.source.dsn_secret_ref.name == "mysql"  # merged, not replaced
    assert (spec.sink.database, spec.sink.retention_days) == ("results", 7)
    assert spec.spikes.sigma == 4.5


def test_flags_alone_are_enough_for_a_local_run() -> None:
    settings = load(
        "--symbols", "BTCUSDT", "--intervals", "5m", "--run-id", "r-1", "--resource", "DataAudit/ns/a"
    )
    assert settings.spec.intervals == [Interval.M5]
    assert (settings.run_id, settings.resource) == ("r-1", "DataAudit/ns/a")
    assert settings.mysql_dsn == CONNECTIONS["DATAMANAGER_MYSQL_DSN"]


def test_a_run_id_is_generated_when_none_is_given() -> None:
    settings = load("--symbols", "BTCUSDT", "--intervals", "5m")
    assert settings.run_id.startswith("manual-")


def test_shards_split_the_symbols_by_position() -> None:
    env = {"DATAMANAGER_SPEC": json.dumps(SPEC), "DATAMANAGER_SHARDS": "2"}
    first = load(**env, JOB_COMPLETION_INDEX="0")
    second = load(**env, JOB_COMPLETION_INDEX="1")
    assert first.shard == Shard(index=0, count=2)
    assert first.symbols == ["BTCUSDT", "SOLUSDT"]
    assert second.symbols == ["ETHUSDT"]
    assert Shard(2, 3).select(["A", "B"]) == []


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ((), {}, "invalid spec: symbols: Field required; intervals: Field required"),
        (
            ("--symbols", "BTCUSDT,BTCUSDT", "--intervals", "1h"),
            {},
            "symbols: Value error, entries must be unique",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h", "--max-findings", "0"),
            {},
            "maxFindings: Input should be",
        ),
        (("--symbols", "BTCUSDT", "--intervals", "1h", "--spike-lookback", "2"), {}, "spikes.lookback"),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_SPEC": "{not json"},
            "DATAMANAGER_SPEC is not valid JSON",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_SPEC": json.dumps({"colour": "red"})},
            "colour: Extra inputs are not permitted",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_SPEC": json.dumps({"kind": "AnalyticsJob", "spec": {}})},
            "DATAMANAGER_SPEC is a AnalyticsJob, expected a DataAudit",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_MYSQL_DSN": "postgres://h/db"},
            "the MySQL DSN must start with mysql://",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_MYSQL_DSN": "mysql://u:p@h:3306/"},
            "needs a host and a database",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_MONGODB_URI": "http://m"},
            "must start with mongodb://",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_SHARDS": "two"},
            "DATAMANAGER_SHARDS='two' is not an integer",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h"),
            {"DATAMANAGER_SHARDS": "2", "JOB_COMPLETION_INDEX": "2"},
            "shard index 2 is outside 0..1",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h", "--spec", "/nonexistent/spec.yaml"),
            {},
            "cannot read spec file /nonexistent/spec.yaml",
        ),
        (
            ("--symbols", "BTCUSDT", "--intervals", "1h", "--connect-timeout", "0"),
            {},
            "--connect-timeout must be positive",
        ),
    ],
)
def test_invalid_settings_are_rejected_with_a_precise_message(
    flags: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        load(*flags, **env)
    assert message in str(caught.value)


def test_a_bad_as_of_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["audit", "--as-of", "yesterday"])
    assert caught.value.code == 2
    assert "'yesterday' is not an ISO-8601 time" in capsys.readouterr().err


def test_as_of_is_read_as_utc() -> None:
    args = build_parser().parse_args(["audit", "--as-of", "2024-07-01T12:00:00"])
    assert args.as_of == datetime(2024, 7, 1, 12, tzinfo=UTC)


def test_a_dsn_never_shows_its_password() -> None:
    dsn = MySqlDsn.parse("mysql://reader:s%40cret@db.example:3307/candles")
    assert (dsn.user, dsn.password, dsn.port, dsn.database) == ("reader", "s@cret", 3307, "candles")
    assert "cret" not in str(dsn) + repr(dsn) + dsn.where


@pytest.mark.parametrize("interval", list(Interval))
def test_the_window_must_hold_a_closed_candle_at_any_time_of_day(interval: Interval) -> None:
    """Twice the interval plus the 60 s grace is accepted; a minute less is rejected with the minimum."""
    minimum = describe_minimum_window(interval)
    assert minimum == f"{2 * interval.seconds // 60 + 1}m"
    load("--symbols", "BTCUSDT", "--intervals", interval.value, "--window", minimum)
    shorter = f"{int(minimum[:-1]) - 1}m"
    with pytest.raises(InvalidConfigError) as caught:
        load("--symbols", "BTCUSDT", "--intervals", interval.value, "--window", shorter)
    assert (
        f"window: Value error, window {shorter} is too short for interval {interval.value}: "
        f"it must be at least {minimum}"
    ) in str(caught.value)


def test_the_documented_1d_over_24h_example_is_rejected_by_the_cli_with_the_minimum() -> None:
    """It expected 0 candles at any time of day and scored every dataset 0."""
    with pytest.raises(
        InvalidConfigError, match="window 24h is too short for interval 1d: it must be at least 2881m"
    ):
        load("--symbols", "BTCUSDT", "--intervals", "1h,1d", "--window", "24h")
    assert load("--symbols", "BTCUSDT", "--intervals", "1h,1d", "--window", "49h").spec.window == "49h"


def test_the_analytics_spec_has_the_same_minimum() -> None:
    base = {"source": SPEC["source"], "sink": SPEC["sink"], "symbols": ["BTCUSDT"], "intervals": ["4h"]}
    with pytest.raises(
        ValidationError, match="window 8h is too short for interval 4h: it must be at least 481m"
    ):
        AnalyticsJobSpec.model_validate({**base, "window": "8h"})
    assert AnalyticsJobSpec.model_validate({**base, "window": "481m"}).window == "481m"
