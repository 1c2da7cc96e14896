"""Settings: flags over environment over defaults, and one clear message per bad value."""

from __future__ import annotations

import argparse

import pytest

from datamanager_workers.consumer.settings import SettingsError, add_arguments, load, redact


def parse_flags(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


def test_defaults() -> None:
    settings = load(parse_flags(), {})
    assert settings.nats_servers == ("nats://127.0.0.1:4222",)
    assert settings.subject == "binance.futures.websocket.data"
    assert settings.queue_group == "datamanager-consumer"
    assert settings.summary_interval == 60.0
    assert settings.http_port == 8080
    assert settings.symbols == ()
    assert settings.log_format == "text"


def test_environment_is_read_and_flags_override_it() -> None:
    environ = {
        "DATAMANAGER_CONSUMER_NATS_URL": "nats://a:4222, nats://b:4222",
        "DATAMANAGER_CONSUMER_SUBJECT": "from.env",
        "DATAMANAGER_CONSUMER_SYMBOLS": "ethusdt, BTCUSDT,,",
        "DATAMANAGER_CONSUMER_SUMMARY_INTERVAL": "2.5",
        "DATAMANAGER_LOG_FORMAT": "JSON",
    }
    settings = load(parse_flags("--subject", "from.flag"), environ)
    assert settings.nats_servers == ("nats://a:4222", "nats://b:4222")
    assert settings.subject == "from.flag"
    assert settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.summary_interval == 2.5
    assert settings.log_format == "json"


def test_every_bad_value_is_reported_with_its_source() -> None:
    environ = {"DATAMANAGER_CONSUMER_HTTP_PORT": "http", "DATAMANAGER_LOG_LEVEL": "loud"}
    flags = parse_flags(
        "--nats-url",
        "http://example:4222",
        "--summary-interval",
        "-1",
        "--max-symbols",
        "0",
        "--queue-group",
        "two words",
        "--reconnect-max-delay",
        "nan",
        "--subject",
        "a..b",
    )
    with pytest.raises(SettingsError) as caught:
        load(flags, environ)
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 8
    for fragment in [
        # a NATS URL may carry a password: its problem names the setting, never the value
        "--nats-url: the NATS URL must start with nats:// or tls:// or ws:// or wss://, not http://",
        "--summary-interval='-1': expected a number of seconds greater than 0",
        "--max-symbols='0': expected a whole number >= 1",
        "--queue-group='two words': expected a queue group name without whitespace",
        "--reconnect-max-delay='nan'",
        "--subject='a..b'",
        "DATAMANAGER_CONSUMER_HTTP_PORT='http': expected a whole number >= 0",
        "DATAMANAGER_LOG_LEVEL='loud': expected one of debug, info, warning, error",
    ]:
        assert fragment in problems


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--nats-url", ""),
        ("--nats-url", "nats://host:notaport"),
        ("--nats-url", "nats://host:0"),
        ("--http-port", "70000"),
        ("--max-payload-bytes", "1.5"),
        ("--symbols", "BTC\tUSDT"),
        ("--drain-timeout", "inf"),
        ("--log-format", "xml"),
    ],
)
def test_bad_value_is_rejected(flag: str, value: str) -> None:
    with pytest.raises(SettingsError, match=flag):
        load(parse_flags(flag, value), {})


def test_credentials_never_reach_a_log_line() -> None:
    assert redact("nats://user:secret@host:4222") == "nats://***@host:4222"
    assert redact("nats://host:4222") == "nats://host:4222"
