"""The consumer's settings: each from its flag, else its environment variable, else its default.

Every value is validated at start and every bad one is reported, each with what was expected and what was
given, so one failed start shows everything there is to fix.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar
from urllib.parse import urlsplit

from datamanager_workers.consumer.counters import DEFAULT_MAX_SYMBOLS
from datamanager_workers.consumer.parsing import DEFAULT_MAX_PAYLOAD_BYTES, MAX_SYMBOL_LENGTH
from datamanager_workers.logs import ENV_LOG_FORMAT, ENV_LOG_LEVEL, LOG_FORMATS, LOG_LEVELS
from datamanager_workers.shared.errors import InvalidConfigError
from datamanager_workers.shared.urls import NATS_SCHEMES, ConnectionUrl, split_url

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

ENV_PREFIX: Final = "DATAMANAGER_CONSUMER_"
DEFAULT_SUBJECT: Final = "binance.futures.websocket.data"


class SettingsError(ValueError):
    """One or more settings are invalid; ``problems`` holds one message per bad value."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Option(Generic[T_co]):
    flag: str
    env: str
    default: T_co
    parse: Callable[[str], T_co]
    help: str
    secret: bool = False  # may hold credentials: a problem names the setting, never repeats its value

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def shown_default(self) -> str:
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default)) or "(none)"
        return str(self.default)


def _servers(text: str) -> tuple[str, ...]:
    servers = tuple(part.strip() for part in text.split(",") if part.strip())
    if not servers:
        raise ValueError("expected one or more NATS URLs such as nats://host:4222, separated by commas")
    credentials = {(url.user, url.password) for url in map(_split, servers) if url.user is not None}
    if len(credentials) > 1:
        raise ValueError("the NATS URLs of a pool that carry a user and password must all carry the same")
    return servers


def _split(server: str) -> ConnectionUrl:
    """One NATS URL, checked; the message names what is wrong and never quotes the URL (it may hold a
    password)."""
    try:
        return split_url(server, "the NATS URL", NATS_SCHEMES, "nats://host:4222")
    except InvalidConfigError as exc:
        raise ValueError(str(exc)) from None


def redact(url: str) -> str:
    """The URL without credentials, fit for a log line."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}").geturl()


def _token(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text or any(char.isspace() for char in text):
            raise ValueError(f"expected a {what} without whitespace")
        return text

    return parse


def _subject(text: str) -> str:
    _token("subject")(text)
    if "" in text.split("."):
        raise ValueError("expected dot-separated non-empty tokens such as binance.futures.websocket.data")
    return text


def _port(text: str) -> int:
    port = _integer(text, 0)
    if port > 65535:
        raise ValueError("expected a TCP port from 0 to 65535 (0 picks a free one)")
    return port


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number >= {minimum}") from None
    if value < minimum:
        raise ValueError(f"expected a whole number >= {minimum}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds greater than 0") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a number of seconds greater than 0")
    return value


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(sorted({part.strip().upper() for part in text.split(",") if part.strip()}))
    bad = [s for s in symbols if len(s) > MAX_SYMBOL_LENGTH or not s.isprintable() or " " in s]
    if bad:
        raise ValueError(f"expected comma-separated symbols such as BTCUSDT,ETHUSDT; unusable: {bad}")
    return symbols


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


NATS_URL = Option[tuple[str, ...]](
    "--nats-url",
    f"{ENV_PREFIX}NATS_URL",
    ("nats://127.0.0.1:4222",),
    _servers,
    "NATS server URL; several, comma-separated, form a pool",
    secret=True,
)
SUBJECT = Option("--subject", f"{ENV_PREFIX}SUBJECT", DEFAULT_SUBJECT, _subject, "subject to consume")
QUEUE_GROUP = Option(
    "--queue-group",
    f"{ENV_PREFIX}QUEUE_GROUP",
    "datamanager-consumer",
    _token("queue group name"),
    "NATS queue group: replicas in one group share the stream, each message goes to one of them",
)
HTTP_HOST = Option(
    "--http-host", f"{ENV_PREFIX}HTTP_HOST", "0.0.0.0", _token("host"), "address of the HTTP endpoints"
)
HTTP_PORT = Option(
    "--http-port", f"{ENV_PREFIX}HTTP_PORT", 8080, _port, "port of /metrics, /healthz, /readyz, /stats"
)
SUMMARY_INTERVAL = Option(
    "--summary-interval",
    f"{ENV_PREFIX}SUMMARY_INTERVAL",
    60.0,
    _seconds,
    "seconds between summary log lines",
)
SYMBOLS = Option[tuple[str, ...]](
    "--symbols",
    f"{ENV_PREFIX}SYMBOLS",
    (),
    _symbols,
    "allow-list of symbols counted under their own name (comma-separated); the rest count as 'other'",
)
MAX_SYMBOLS = Option(
    "--max-symbols",
    f"{ENV_PREFIX}MAX_SYMBOLS",
    DEFAULT_MAX_SYMBOLS,
    _positive_int,
    "without an allow-list: the first N distinct symbols get their own counters, later ones count as 'other'",
)
MAX_PAYLOAD_BYTES = Option(
    "--max-payload-bytes",
    f"{ENV_PREFIX}MAX_PAYLOAD_BYTES",
    DEFAULT_MAX_PAYLOAD_BYTES,
    _positive_int,
    "larger messages are counted as malformed (oversized) without being parsed",
)
MAX_PENDING_BYTES = Option(
    "--max-pending-bytes",
    f"{ENV_PREFIX}MAX_PENDING_BYTES",
    64 * 1024 * 1024,
    _positive_int,
    "bytes received but not yet counted before the client drops messages (counted as dropped)",
)
RECONNECT_MAX_DELAY = Option(
    "--reconnect-max-delay",
    f"{ENV_PREFIX}RECONNECT_MAX_DELAY",
    10.0,
    _seconds,
    "cap of the exponential backoff between connection attempts, in seconds",
)
DRAIN_TIMEOUT = Option(
    "--drain-timeout",
    f"{ENV_PREFIX}DRAIN_TIMEOUT",
    20.0,
    _seconds,
    "seconds SIGTERM may spend counting what was already received before the connection closes",
)
LOG_FORMAT = Option("--log-format", ENV_LOG_FORMAT, "text", _choice(LOG_FORMATS), "log format")
LOG_LEVEL = Option("--log-level", ENV_LOG_LEVEL, "info", _choice(LOG_LEVELS), "log level")

OPTIONS: Final[tuple[Option[object], ...]] = (
    NATS_URL,
    SUBJECT,
    QUEUE_GROUP,
    HTTP_HOST,
    HTTP_PORT,
    SUMMARY_INTERVAL,
    SYMBOLS,
    MAX_SYMBOLS,
    MAX_PAYLOAD_BYTES,
    MAX_PENDING_BYTES,
    RECONNECT_MAX_DELAY,
    DRAIN_TIMEOUT,
    LOG_FORMAT,
    LOG_LEVEL,
)


@dataclass(frozen=True)
class Settings:
    nats_servers: tuple[str, ...]
    subject: str
    queue_group: str
    http_host: str
    http_port: int
    summary_interval: float
    symbols: tuple[str, ...]
    max_symbols: int
    max_payload_bytes: int
    max_pending_bytes: int
    reconnect_max_delay: float
    drain_timeout: float
    log_format: str
    log_level: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            dest=option.dest,
            metavar=option.dest.upper(),
            help=f"{option.help} (env {option.env}; default {option.shown_default})",
        )


class _Reader:
    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self._args = args
        self._environ = environ
        self.problems: list[str] = []

    def read(self, option: Option[T]) -> T:
        """The option's parsed value; a bad one is recorded as a problem and stands in as the default."""
        flag_value: str | None = getattr(self._args, option.dest, None)
        if flag_value is not None:
            source, text = option.flag, flag_value
        elif option.env in self._environ:
            source, text = option.env, self._environ[option.env]
        else:
            return option.default
        try:
            return option.parse(text)
        except ValueError as exc:
            given = "" if option.secret else f"={text!r}"
            self.problems.append(f"{source}{given}: {exc}")
            return option.default


def load(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Settings from flags over environment over defaults; raises SettingsError listing every bad value."""
    reader = _Reader(args, environ)
    settings = Settings(
        nats_servers=reader.read(NATS_URL),
        subject=reader.read(SUBJECT),
        queue_group=reader.read(QUEUE_GROUP),
        http_host=reader.read(HTTP_HOST),
        http_port=reader.read(HTTP_PORT),
        summary_interval=reader.read(SUMMARY_INTERVAL),
        symbols=reader.read(SYMBOLS),
        max_symbols=reader.read(MAX_SYMBOLS),
        max_payload_bytes=reader.read(MAX_PAYLOAD_BYTES),
        max_pending_bytes=reader.read(MAX_PENDING_BYTES),
        reconnect_max_delay=reader.read(RECONNECT_MAX_DELAY),
        drain_timeout=reader.read(DRAIN_TIMEOUT),
        log_format=reader.read(LOG_FORMAT),
        log_level=reader.read(LOG_LEVEL),
    )
    if reader.problems:
        raise SettingsError(reader.problems)
    return settings
