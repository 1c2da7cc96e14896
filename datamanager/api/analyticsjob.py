"""AnalyticsJob: recurring market analytics computed from the extractor's candles."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from datamanager.api.common import API_VERSION, ApiModel, RunSpecBase


class MetricFamily(StrEnum):
    VOLATILITY = "volatility"
    VOLUME = "volume"
    TREND = "trend"
    MOMENTUM = "momentum"
    CORRELATION = "correlation"
    REGIME = "regime"


class FamilyWindows(ApiModel):
    """Look-back windows in candles, per family."""

    volatility: int = Field(default=30, ge=2, le=100000)
    volume: int = Field(default=20, ge=2, le=100000)
    trend: int = Field(default=50, ge=2, le=100000)
    momentum: int = Field(default=14, ge=2, le=100000)
    correlation: int = Field(default=100, ge=3, le=100000)


class AnalyticsJobSpec(RunSpecBase):
    """What to analyse (symbols x intervals over a window), which metric families, and when to run."""

    families: list[MetricFamily] = Field(
        default_factory=lambda: list(MetricFamily),
        min_length=1,
        description="Metric families (all by default).",
    )
    windows: FamilyWindows = Field(default_factory=FamilyWindows)


class AnalyticsJob(ApiModel):
    api_version: Literal["datamanager.petrosa.io/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    kind: Literal["AnalyticsJob"] = "AnalyticsJob"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: AnalyticsJobSpec
