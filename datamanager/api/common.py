"""Types both kinds share: where candles come from, where results go, scheduling and Job overrides."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

GROUP = "datamanager.petrosa.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """camelCase on the wire (Kubernetes convention), snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Interval(StrEnum):
    """Binance kline intervals the extractor stores, each in its own table ``klines_<suffix>``."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        unit = {"m": 60, "h": 3600, "d": 86400}[self.value[-1]]
        return int(self.value[:-1]) * unit

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def table_suffix(self) -> str:
        """The extractor flips the interval: ``5m`` -> ``m5``, ``1d`` -> ``d1``."""
        return self.value[-1] + self.value[:-1]


# A candle counts as expected once it has been closed this long (the extractor writes it shortly after it
# closes; the old auditor's tolerance was the same 60 s).
CANDLE_GRACE = timedelta(seconds=60)


def minimum_window(interval: Interval) -> timedelta:
    """The shortest window that holds a closed candle whatever the time of day: twice the interval plus the
    grace. A window ending at ``now`` expects the candles opened in ``[now - window, now - interval -
    grace]``, a span of ``window - interval - grace``, which contains a grid point at every moment only when
    it is at least one interval long."""
    return 2 * interval.delta + CANDLE_GRACE


def describe_minimum_window(interval: Interval) -> str:
    """``2881m`` for 1d: the minimum in whole minutes, the unit every minimum is expressible in."""
    return f"{minimum_window(interval) // timedelta(minutes=1)}m"


DURATION_PATTERN = r"^[1-9][0-9]*(m|h|d|w)$"
_DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``30d``, ``2w`` -> timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 90m, 24h, 30d or 2w")
    return timedelta(seconds=int(text[:-1]) * _DURATION_UNITS[text[-1]])


Symbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,20}$", description="Upper-case symbol, e.g. BTCUSDT.")]
Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=12,
        description="A duration: a positive integer and m, h, d or w, e.g. 24h.",
    ),
]


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace. The operator passes the reference, never the value."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class SourceSpec(ApiModel):
    """The extractor's MySQL database holding ``<tablePrefix><suffix>`` tables."""

    dsn_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the MySQL DSN, mysql://user:password@host:port/database."
    )
    table_prefix: str = Field(
        default="klines_", pattern=r"^[A-Za-z0-9_]{1,40}$", description="Tables are <tablePrefix><m5|h1|...>."
    )


class SinkSpec(ApiModel):
    """The MongoDB database the results are written to."""

    uri_secret_ref: SecretKeyRef = Field(description="Secret key holding the MongoDB connection URI.")
    database: str = Field(
        default="datamanager", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="MongoDB database name."
    )
    collection: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="Collection prefix; defaults to `audit` for DataAudit and `analytics` for AnalyticsJob.",
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Results older than this are removed (TTL index where supported).",
    )


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    REPLACE = "Replace"
    ALLOW = "Allow"


class ResourceRequirements(ApiModel):
    requests: dict[str, str] = Field(default_factory=dict, description="Container resource requests.")
    limits: dict[str, str] = Field(default_factory=dict, description="Container resource limits.")


class JobOverrides(ApiModel):
    """How each run's Job is shaped. Defaults suit a small cluster; all are optional."""

    image: str | None = Field(default=None, description="Worker image; defaults to the operator's own image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "1Gi"}
        ),
        description="Container resources.",
    )
    active_deadline_seconds: int = Field(default=1800, ge=10, le=86400, description="Deadline for one run.")
    backoff_limit: int = Field(default=2, ge=0, le=10, description="Retries after transient failures.")
    parallelism: int = Field(
        default=1, ge=1, le=32, description="Shards: >1 fans the symbols out over an Indexed Job."
    )
    ttl_seconds_after_finished: int = Field(
        default=86400, ge=0, description="Finished Jobs are deleted after this many seconds."
    )
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None


class ScheduleSpec(ApiModel):
    """Fields shared by both kinds that say when runs happen."""

    schedule: str | None = Field(
        default=None,
        max_length=100,
        description="Cron expression (5 fields, or @hourly, @daily, ...); without it the resource runs on "
        "changes only.",
    )
    time_zone: str = Field(
        default="UTC", max_length=64, description="IANA time zone of the schedule, e.g. Europe/Lisbon."
    )
    starting_deadline_seconds: int = Field(
        default=300,
        ge=1,
        description="A run that could not start within this many seconds is missed, not replayed.",
    )
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    suspend: bool = Field(default=False, description="No new runs while true; a running one finishes.")
    successful_runs_history_limit: int = Field(default=3, ge=0, le=100)
    failed_runs_history_limit: int = Field(default=1, ge=0, le=100)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from datamanager.cron import check  # the same rules, in the same words, as the CRD's

            check(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _valid_time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as UTC or Europe/Lisbon") from exc
        return value


class RunSpecBase(ScheduleSpec):
    """What to read and where to write: shared by DataAudit and AnalyticsJob."""

    source: SourceSpec
    sink: SinkSpec
    symbols: list[Symbol] = Field(min_length=1, max_length=1000, description="Symbols to process.")
    intervals: list[Interval] = Field(min_length=1, max_length=8, description="Candle intervals to process.")
    window: Duration = Field(default="24h", description="How far back from now each run looks.")
    job: JobOverrides = Field(default_factory=JobOverrides)

    @property
    def window_delta(self) -> timedelta:
        return parse_duration(self.window)

    @field_validator("symbols", "intervals")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError("entries must be unique")
        return value

    @field_validator("window")
    @classmethod
    def _holds_a_closed_candle(cls, value: str, info: ValidationInfo) -> str:
        intervals: list[Interval] = info.data.get("intervals") or []
        if intervals:
            longest = max(intervals, key=lambda interval: interval.seconds)
            if parse_duration(value) < minimum_window(longest):
                raise ValueError(
                    f"window {value} is too short for interval {longest.value}: it must be at least "
                    f"{describe_minimum_window(longest)} (twice the interval plus the 60 s grace), so that "
                    "it always holds a closed candle"
                )
        return value
