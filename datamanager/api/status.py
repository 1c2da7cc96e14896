"""Status of both kinds: conditions in the Kubernetes form, the last and active run, where results are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from datamanager.api.common import ApiModel


class Condition(ApiModel):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str
    observed_generation: int | None = None


class RunRef(ApiModel):
    """One run: why it started, its Job, and how it ended."""

    id: str
    job_name: str
    trigger: Literal["Created", "SpecChanged", "Schedule", "Manual"]
    scheduled_time: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    outcome: Literal["Running", "Succeeded", "Failed"] | None = None
    reason: str | None = None
    message: str | None = None


class DatasetStatus(ApiModel):
    symbol: str
    interval: str
    score: float | None = None
    level: str | None = None


class ResultsStatus(ApiModel):
    """Where the last successful run's results are in MongoDB (never credentials)."""

    database: str
    collection: str
    run_id: str
    documents: int = 0


class ResourceStatus(ApiModel):
    observed_generation: int | None = None
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Suspended"] | None = None
    conditions: list[Condition] = Field(default_factory=list)
    active_run: RunRef | None = None
    last_run: RunRef | None = None
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
