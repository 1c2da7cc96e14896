"""The shared log setup: one line per record in either format, fields carried along, repeats suppressed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from datamanager_workers.logs import OncePerInterval, configure_logging, iso_utc, iso_utc_ms


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_carry_the_fields() -> None:
    out = io.StringIO()
    configure_logging("json", "info", out)
    fields = {"messages": 3, "types": {"trade": 3}, "example": 'a "quoted"\nline'}
    logging.getLogger("t").info("summary", extra={"fields": fields})
    logging.getLogger("t").debug("not shown at info")
    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "summary"
    assert entry["level"] == "info"
    assert entry["time"].endswith("Z")
    assert {key: entry[key] for key in fields} == fields


@pytest.mark.usefixtures("restore_root_logger")
def test_text_lines_stay_one_line_whatever_the_values() -> None:
    out = io.StringIO()
    configure_logging("text", "debug", out)
    log = logging.getLogger("t")
    log.info("summary", extra={"fields": {"rate": 2.5, "ok": True, "types": {"trade": 2, "kline": 1}}})
    log.warning("bad", extra={"fields": {"example": "two\nlines and spaces", "empty": ""}})
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("INFO t: summary rate=2.500 ok=true types=trade:2,kline:1")
    assert "example='two\\nlines and spaces' empty=''" in lines[1]
    assert "exception=" in lines[2]
    assert "ValueError: boom" in lines[2]


def test_bad_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "info")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("text", "loud")


def test_once_per_interval() -> None:
    once = OncePerInterval()
    assert [once.first("a"), once.first("a"), once.first("b")] == [True, False, True]
    once.reset()
    assert once.first("a")


@pytest.mark.parametrize("epoch_ms", [0, 999, 1000, 1_720_180_800_123, 1_720_223_999_999, 1_720_224_000_000])
def test_milliseconds_render_as_the_seconds_form_does(epoch_ms: int) -> None:
    assert iso_utc_ms(epoch_ms) == iso_utc(epoch_ms / 1000)


def test_milliseconds_render_exactly_where_a_float_would_round() -> None:
    # By the year 2604 a float of seconds no longer holds every millisecond exactly.
    assert iso_utc(20_023_714_623_989 / 1000) == "2604-07-11T22:57:03.988Z"
    assert iso_utc_ms(20_023_714_623_989) == "2604-07-11T22:57:03.989Z"
