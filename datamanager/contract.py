"""The contract between the operator and the worker pods it starts.

Workers get their settings from environment variables (the operator sets them; a person may too), report
through their exit code and a small JSON summary in the container termination message, and write the full
results to MongoDB.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Environment variables a worker honours. Flags override them; they override the spec file.
ENV_SPEC = "DATAMANAGER_SPEC"  # the resource's spec, as JSON
ENV_SPEC_FILE = "DATAMANAGER_SPEC_FILE"  # path to a spec or whole manifest (YAML or JSON)
ENV_MYSQL_DSN = "DATAMANAGER_MYSQL_DSN"  # from the source Secret, by reference
ENV_MONGODB_URI = "DATAMANAGER_MONGODB_URI"  # from the sink Secret, by reference
ENV_RUN_ID = "DATAMANAGER_RUN_ID"
ENV_RESOURCE = "DATAMANAGER_RESOURCE"  # <kind>/<namespace>/<name>
ENV_SHARDS = "DATAMANAGER_SHARDS"  # number of shards of an Indexed Job; index from JOB_COMPLETION_INDEX
ENV_SHARD_INDEX = "JOB_COMPLETION_INDEX"
ENV_TERMINATION_LOG = "DATAMANAGER_TERMINATION_LOG"  # where the summary goes; default below
ENV_NATS_URL = "DATAMANAGER_NATS_URL"  # only for optional publishing, e.g. the audit's backfill requests

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
SUMMARY_MAX_BYTES = 4096


class ExitCode(IntEnum):
    """Worker exit codes; the operator's podFailurePolicy maps them (permanent fails the Job at once)."""

    OK = 0  # the run finished, whatever the health score
    INTERNAL = 1  # a bug: retried per backoffLimit
    INVALID_CONFIG = 2  # permanent: never worth a retry
    SOURCE_UNAVAILABLE = 3  # transient: MySQL unreachable, refused or failing
    SINK_UNAVAILABLE = 4  # transient: MongoDB unreachable, refused or failing

    @property
    def permanent(self) -> bool:
        return self is ExitCode.INVALID_CONFIG


class _SummaryModel(BaseModel):
    """camelCase JSON like the status it feeds; unknown fields are ignored so versions can differ."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ResultsLocation(_SummaryModel):
    """Where a run's full results are; never credentials."""

    database: str
    collection: str
    run_id: str
    documents: int = Field(ge=0, description="Documents this run (or shard) wrote.")


class ShardRef(_SummaryModel):
    index: int = Field(ge=0)
    count: int = Field(ge=1)


class DatasetSummary(_SummaryModel):
    """One symbol x interval, as the status's bounded per-dataset list shows it."""

    symbol: str
    interval: str
    score: float | None = None
    level: str | None = None
    problems: list[str] = Field(default_factory=list)


class RunSummary(_SummaryModel):
    """The JSON a worker leaves in its termination message (at most SUMMARY_MAX_BYTES) and prints."""

    job: str  # "audit" or "analytics"
    outcome: Literal["Succeeded", "Failed"]
    exit_code: int
    reason: str  # CamelCase, usable as a condition reason: Completed, InvalidConfig, SourceUnavailable, ...
    message: str
    run_id: str | None = None
    resource: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    shard: ShardRef | None = None
    results: ResultsLocation | None = None
    health_score: float | None = None  # audits only: 0-100
    level: str | None = None  # audits only: healthy, degraded, unhealthy, critical
    counts: dict[str, int] = Field(default_factory=dict)
    datasets: list[DatasetSummary] = Field(default_factory=list)  # worst first
    truncated: bool = False  # lists were cut to fit SUMMARY_MAX_BYTES
