"""A worker's settings: the resource's spec plus connection strings, run identity and shard.

Layers, lowest first: the spec file (``--spec`` or ``DATAMANAGER_SPEC_FILE``; YAML or JSON; a bare spec or a
whole manifest with apiVersion/kind/spec), the spec in ``DATAMANAGER_SPEC`` (JSON), then flags. Mappings merge
key by key, anything else is replaced. Connection strings and run identity come from flags or environment
only: the operator passes Secrets by reference, so they never appear in a spec. Anything invalid raises
``InvalidConfigError`` with a message naming the setting.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import ValidationError

from datamanager.api.common import RunSpecBase
from datamanager.contract import (
    DEFAULT_TERMINATION_LOG,
    ENV_MONGODB_URI,
    ENV_MYSQL_DSN,
    ENV_RESOURCE,
    ENV_RUN_ID,
    ENV_SHARD_INDEX,
    ENV_SHARDS,
    ENV_SPEC,
    ENV_SPEC_FILE,
    ENV_TERMINATION_LOG,
)
from datamanager_workers.shared.errors import InvalidConfigError

SpecT = TypeVar("SpecT", bound=RunSpecBase)

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
DEFAULT_CONNECT_TIMEOUT = 10.0

# Workers receive credentials through environment or flags; a Secret reference matters only to the operator,
# so a spec written for a local run may leave it out and gets this stand-in.
_UNUSED_SECRET_REF = {"name": "provided-by-environment", "key": "value"}


@dataclass(frozen=True)
class Shard:
    """One shard of an Indexed Job: it processes the symbols whose position in the spec's list has
    ``position % count == index``, so shards are disjoint and together cover every symbol."""

    index: int
    count: int

    def select(self, symbols: Sequence[str]) -> list[str]:
        return [symbol for position, symbol in enumerate(symbols) if position % self.count == self.index]

    @property
    def label(self) -> str:
        return f"{self.index}-of-{self.count}"


@dataclass(frozen=True)
class WorkerSettings(Generic[SpecT]):
    """Everything one run needs; ``symbols`` is already narrowed to this run's shard."""

    spec: SpecT
    mysql_dsn: str
    mongodb_uri: str
    run_id: str
    resource: str | None
    shard: Shard | None
    termination_log: Path
    connect_timeout: float

    @property
    def symbols(self) -> list[str]:
        return self.shard.select(self.spec.symbols) if self.shard else list(self.spec.symbols)

    def collection(self, default: str) -> str:
        """The sink collection: the spec's ``sink.collection`` or the job's default (``audit``, ...)."""
        return self.spec.sink.collection or default


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def utc_time(text: str) -> datetime:
    """An argparse type: an ISO-8601 time, read as UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2024-07-05T12:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def add_common_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Flags every batch worker takes; each names the environment variable it overrides. Returns the
    "run time" group, for a job's own run-time flags."""
    run = parser.add_argument_group("spec and run identity")
    run.add_argument(
        "--spec",
        metavar="FILE",
        help=f"the resource's spec: YAML or JSON, a bare spec or a whole manifest (env {ENV_SPEC_FILE}); "
        f"a JSON spec in env {ENV_SPEC} overlays it, and the flags below overlay both",
    )
    run.add_argument(
        "--run-id", help=f"identifies this run's results; a rerun replaces them (env {ENV_RUN_ID})"
    )
    run.add_argument("--resource", help=f"<kind>/<namespace>/<name> of the resource (env {ENV_RESOURCE})")
    run.add_argument(
        "--shards", type=int, metavar="N", help=f"number of shards of an Indexed Job (env {ENV_SHARDS})"
    )
    run.add_argument(
        "--shard-index",
        type=int,
        metavar="I",
        help=f"this shard; processes the symbols at positions p with p %% N == I (env {ENV_SHARD_INDEX})",
    )
    run.add_argument(
        "--termination-log",
        metavar="PATH",
        help=f"where the JSON summary goes (env {ENV_TERMINATION_LOG}; default {DEFAULT_TERMINATION_LOG}; "
        "skipped when its directory does not exist)",
    )

    conn = parser.add_argument_group("connections (never part of a spec)")
    conn.add_argument(
        "--mysql-dsn", metavar="DSN", help=f"mysql://user:password@host:port/database (env {ENV_MYSQL_DSN})"
    )
    conn.add_argument("--mongodb-uri", metavar="URI", help=f"MongoDB connection URI (env {ENV_MONGODB_URI})")
    conn.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_CONNECT_TIMEOUT,
        help="timeout for connecting to MySQL and MongoDB (default %(default)s)",
    )

    what = parser.add_argument_group("what to process (override the spec)")
    what.add_argument("--symbols", type=_comma_list, metavar="A,B", help="symbols, e.g. BTCUSDT,ETHUSDT")
    what.add_argument("--intervals", type=_comma_list, metavar="A,B", help="intervals, e.g. 1m,1h,1d")
    what.add_argument("--window", help="how far back from now to look, e.g. 24h, 30d, 2w")
    what.add_argument("--table-prefix", help="source tables are <prefix><m5|h1|...> (default klines_)")
    what.add_argument("--database", help="MongoDB database for the results (default datamanager)")
    what.add_argument("--collection", help="MongoDB collection for the results (default per job)")
    what.add_argument("--retention-days", type=int, help="results expire after this many days (default 30)")

    runtime = parser.add_argument_group("run time")
    runtime.add_argument(
        "--as-of", type=utc_time, metavar="TIME", help="run as if it were TIME (ISO-8601, UTC); default now"
    )
    runtime.add_argument("--log-format", choices=("text", "json"), default="text", help="default %(default)s")
    runtime.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="default %(default)s",
    )
    return runtime


def _common_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {
        "symbols": args.symbols,
        "intervals": args.intervals,
        "window": args.window,
        "source": {"tablePrefix": args.table_prefix},
        "sink": {
            "database": args.database,
            "collection": args.collection,
            "retentionDays": args.retention_days,
        },
    }
    return drop_unset(flags)


def drop_unset(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flags left at None are not overrides; empty mappings left behind by that are dropped too."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            value = drop_unset(value)
            if not value:
                continue
        if value is not None:
            kept[key] = value
    return kept


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay wins; nested mappings merge key by key so ``--table-prefix`` keeps the spec's source."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_spec_file(path: Path, kind: str | None = None) -> dict[str, Any]:
    """A spec from YAML or JSON; a manifest (apiVersion/kind/spec) yields its ``spec``."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidConfigError(f"cannot read spec file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidConfigError(f"spec file {path} is not valid YAML or JSON: {exc}") from exc
    return _unwrap(document, f"spec file {path}", kind)


def _unwrap(document: object, origin: str, kind: str | None) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidConfigError(f"{origin} must hold a mapping, not {type(document).__name__}")
    if "spec" in document and ("kind" in document or "apiVersion" in document):
        if kind is not None and document.get("kind", kind) != kind:
            raise InvalidConfigError(f"{origin} is a {document.get('kind')}, expected a {kind}")
        document = document["spec"]
        if not isinstance(document, dict):
            raise InvalidConfigError(f"{origin}: spec must be a mapping")
    return document


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field as it is spelt in the resource."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "spec"
        problems.append(f"{location}: {item['msg']}")
    return "invalid spec: " + "; ".join(problems)


def termination_log_path(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Path:
    """Where the summary goes; resolvable even when the rest of the settings are invalid."""
    env = os.environ if environ is None else environ
    return Path(args.termination_log or env.get(ENV_TERMINATION_LOG) or DEFAULT_TERMINATION_LOG)


def _run_id(value: str | None) -> str:
    if value is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz")
        return f"manual-{stamp}-{secrets.token_hex(3)}"
    if not re.fullmatch(RUN_ID_PATTERN, value):
        raise InvalidConfigError(f"run id {value!r} must match {RUN_ID_PATTERN}")
    return value


def _int_setting(flag: int | None, environ: Mapping[str, str], name: str) -> int | None:
    if flag is not None:
        return flag
    text = environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidConfigError(f"{name}={text!r} is not an integer") from None


def _shard(args: argparse.Namespace, environ: Mapping[str, str]) -> Shard | None:
    count = _int_setting(args.shards, environ, ENV_SHARDS)
    if count is None:
        return None  # JOB_COMPLETION_INDEX alone does not shard: a non-sharded Indexed Job is possible
    index = _int_setting(args.shard_index, environ, ENV_SHARD_INDEX)
    if index is None:
        raise InvalidConfigError(
            f"{ENV_SHARDS}={count} needs a shard index ({ENV_SHARD_INDEX} or --shard-index)"
        )
    if count < 1 or not 0 <= index < count:
        raise InvalidConfigError(f"shard index {index} is outside 0..{count - 1} (shards={count})")
    return Shard(index=index, count=count)


def _required(flag: str | None, environ: Mapping[str, str], name: str, what: str, option: str) -> str:
    value = flag or environ.get(name)
    if not value:
        raise InvalidConfigError(f"no {what}: set {name} or {option}")
    return value


def load_settings(
    model: type[SpecT],
    args: argparse.Namespace,
    *,
    kind: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> WorkerSettings[SpecT]:
    """Build and validate a run's settings from ``add_common_arguments`` flags, ``overrides`` (a job's own
    flags, in the spec's camelCase wire form) and the environment (``os.environ`` unless given)."""
    env = os.environ if environ is None else environ
    layered: dict[str, Any] = {}
    spec_file = args.spec or env.get(ENV_SPEC_FILE)
    if spec_file:
        layered = read_spec_file(Path(spec_file), kind)
    if env.get(ENV_SPEC):
        try:
            from_env = json.loads(env[ENV_SPEC])
        except json.JSONDecodeError as exc:
            raise InvalidConfigError(f"{ENV_SPEC} is not valid JSON: {exc}") from exc
        layered = merge(layered, _unwrap(from_env, ENV_SPEC, kind))
    layered = merge(layered, _common_overrides(args))
    layered = merge(layered, drop_unset(overrides or {}))
    layered = merge(
        {"source": {"dsnSecretRef": _UNUSED_SECRET_REF}, "sink": {"uriSecretRef": _UNUSED_SECRET_REF}},
        layered,
    )
    try:
        spec = model.model_validate(layered)
    except ValidationError as exc:
        raise InvalidConfigError(format_validation_error(exc)) from None

    from datamanager_workers.shared.sink import parse_mongodb_uri
    from datamanager_workers.shared.source import MySqlDsn

    mysql_dsn = _required(args.mysql_dsn, env, ENV_MYSQL_DSN, "MySQL DSN", "--mysql-dsn")
    MySqlDsn.parse(mysql_dsn)
    mongodb_uri = _required(args.mongodb_uri, env, ENV_MONGODB_URI, "MongoDB URI", "--mongodb-uri")
    parse_mongodb_uri(mongodb_uri)
    if args.connect_timeout <= 0:
        raise InvalidConfigError(f"--connect-timeout must be positive, not {args.connect_timeout}")
    return WorkerSettings(
        spec=spec,
        mysql_dsn=mysql_dsn,
        mongodb_uri=mongodb_uri,
        run_id=_run_id(args.run_id or env.get(ENV_RUN_ID) or None),
        resource=args.resource or env.get(ENV_RESOURCE) or None,
        shard=_shard(args, env),
        termination_log=termination_log_path(args, env),
        connect_timeout=args.connect_timeout,
    )
