"""Status of both kinds: conditions in the Kubernetes form, the active and last runs, where results are."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from datamanager.api.common import ApiModel

RunOutcome = Literal["Running", "Succeeded", "Failed"]
TriggerKind = Literal["Created", "SpecChanged", "Schedule", "Manual"]


class StatusModel(ApiModel):
    """Status is written by the operator only; fields an older or newer operator wrote are ignored on read."""

    model_config = ConfigDict(extra="ignore")


class Condition(StatusModel):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str
    observed_generation: int | None = None


class RunRef(StatusModel):
    """One run: why it started, its Job, and how it ended."""

    id: str = Field(description="g<generation>, s<YYYYmmddHHMM> of the cron slot (UTC) or m<number>.")
    number: int = Field(
        default=0, ge=0, description="1, 2, 3, ...: the order runs of this resource started in."
    )
    uid: str = Field(
        default="", description="Unique per run; the Job carries it as datamanager.petrosa.io/run-uid."
    )
    job_name: str
    trigger: TriggerKind
    generation: int | None = Field(default=None, description="The spec generation the run executes.")
    scheduled_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    outcome: RunOutcome | None = None
    reason: str | None = None
    message: str | None = None


class DatasetStatus(StatusModel):
    symbol: str
    interval: str
    score: float | None = None
    level: str | None = None


class ResultsStatus(StatusModel):
    """Where the last successful run's results are in MongoDB (never credentials)."""

    database: str
    collection: str
    run_id: str
    documents: int = 0


class ResourceStatus(StatusModel):
    observed_generation: int | None = None
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Suspended"] | None = None
    conditions: list[Condition] = Field(default_factory=list)
    active_runs: list[RunRef] = Field(
        default_factory=list, max_length=100, description="Runs whose Job has not finished, oldest first."
    )
    last_run: RunRef | None = Field(default=None, description="The most recently started run that ended.")
    last_successful_time: str | None = Field(default=None, description="When the last successful run ended.")
    consecutive_failures: int = Field(default=0, ge=0, description="Runs failed since the last success.")
    last_schedule_time: str | None = Field(default=None, description="The latest schedule slot handled.")
    next_run_time: str | None = None
    missed_runs: int = Field(default=0, description="Schedule slots missed past the starting deadline.")
    handled_trigger: str | None = Field(default=None, description="The last manual trigger token acted on.")
    health_score: float | None = Field(
        default=None, description="Audits: 0-100 from the last successful run."
    )
    health_level: str | None = None
    datasets: list[DatasetStatus] = Field(default_factory=list, max_length=20, description="Worst first.")
    results: ResultsStatus | None = None
    lease_holder: str | None = None
