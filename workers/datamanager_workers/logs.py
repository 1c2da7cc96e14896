"""Log setup shared by every worker: one line per record, as text or as JSON, to stderr.

Structured values travel in ``extra={"fields": {...}}``: the JSON format merges them into the object, the text
format appends them as ``key=value``. Either way a record is exactly one line, whatever its values contain,
so a log pipeline never splits one event into several.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, TextIO

# Every worker honours these, so one setting in a chart's shared config covers them all.
ENV_LOG_FORMAT: Final = "DATAMANAGER_LOG_FORMAT"
ENV_LOG_LEVEL: Final = "DATAMANAGER_LOG_LEVEL"
LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def configure_logging(log_format: str, level: str, stream: TextIO | None = None) -> None:
    """Route every logger through one handler on the root logger, replacing whatever was there."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def _fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


def iso_utc(epoch_seconds: float) -> str:
    """``2024-07-05T12:00:00.123Z``: the one timestamp form of every log line and report."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc_ms(epoch_ms: int) -> str:
    """The same form from whole epoch milliseconds, exactly (no float on the way) and in a fifth of the
    time: /stats renders one per symbol, and the symbols' times mostly fall in the same few seconds."""
    second, millisecond = divmod(epoch_ms, 1000)
    return f"{_utc_second(second)}.{millisecond:03d}Z"


@functools.lru_cache(maxsize=1024)
def _utc_second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``<time> <level> <logger>: <message> key=value ...`` on one line; tracebacks are folded into it."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [iso_utc(record.created), record.levelname, f"{record.name}:", _one_line(record.getMessage())]
        parts.extend(f"{key}={_text_value(value)}" for key, value in _fields(record).items())
        if record.exc_info:
            parts.append(f"exception={_one_line(self.formatException(record.exc_info))!r}")
        return " ".join(parts)


def _text_value(value: object) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{key}:{_text_value(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    # Values such as a rejected payload may hold anything: quote them when they would break the line or
    # be mistaken for another key=value pair.
    return repr(text) if not text or not text.isprintable() or " " in text else text


def _one_line(text: str) -> str:
    return text if "\n" not in text else text.replace("\n", "\\n")


class OncePerInterval:
    """Remembers which keys were logged since the last reset, so repeats within one interval stay silent."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen since the last reset."""
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def reset(self) -> None:
        self._seen.clear()
