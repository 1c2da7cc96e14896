"""DataAudit: a recurring data-quality audit of the extractor's candles."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from datamanager.api.common import API_VERSION, ApiModel, RunSpecBase, SecretKeyRef


class AuditCheck(StrEnum):
    GAPS = "gaps"
    DUPLICATES = "duplicates"
    OHLC = "ohlc"
    FRESHNESS = "freshness"
    SPIKES = "spikes"


class HealthThresholds(ApiModel):
    """Score boundaries: >= healthy, >= degraded, >= unhealthy name the level; below them it is critical."""

    healthy: float = Field(default=90, ge=0, le=100)
    degraded: float = Field(default=70, ge=0, le=100)
    unhealthy: float = Field(default=50, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> HealthThresholds:
        if not self.healthy > self.degraded > self.unhealthy:
            raise ValueError("thresholds must be ordered: healthy > degraded > unhealthy")
        return self


class SpikeSettings(ApiModel):
    sigma: float = Field(default=6.0, gt=0, le=100, description="|log return| beyond sigma rolling stdevs.")
    lookback: int = Field(default=50, ge=5, le=10000, description="Candles in the rolling window.")


class DataAuditSpec(RunSpecBase):
    """What to audit (symbols x intervals over a window), which checks, health thresholds and when to run."""

    checks: list[AuditCheck] = Field(
        default_factory=lambda: list(AuditCheck), min_length=1, description="Checks to run (all by default)."
    )
    thresholds: HealthThresholds = Field(default_factory=HealthThresholds)
    spikes: SpikeSettings = Field(default_factory=SpikeSettings)
    max_findings: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Findings kept per dataset and check (totals are always exact).",
    )
    backfill_subject: str | None = Field(
        default=None,
        description="When set, a backfill request per large gap is published to this NATS subject; "
        "natsUrlSecretRef is then required.",
    )
    backfill_min_missing: int = Field(
        default=1, ge=1, description="Smallest gap (in candles) worth a request."
    )
    nats_url_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the URL of the NATS server backfill requests are published to, "
        "nats://[user:password@]host:port; required with backfillSubject, unused without it.",
    )


class DataAudit(ApiModel):
    api_version: Literal["datamanager.petrosa.io/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    kind: Literal["DataAudit"] = "DataAudit"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: DataAuditSpec
