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


class RegimeThresholds(ApiModel):
    """When each regime label applies. Volatility is judged against the symbol's own volatility over the
    look-back, so a symbol that always runs at 90 % a year is not always "volatile"."""

    volatile_ratio: float = Field(
        default=1.5,
        gt=1,
        le=100,
        description="volatile: volatility at least this many times the symbol's over the look-back.",
    )
    quiet_ratio: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="quiet (with quietVolume): volatility at most this share of the symbol's.",
    )
    volume_surge: float = Field(
        default=3.0, gt=1, le=1000, description="volume_surge: relative volume at least this."
    )
    quiet_volume: float = Field(
        default=0.75, gt=0, lt=1, description="quiet (with quietRatio): relative volume at most this."
    )
    trending_adx: float = Field(
        default=25.0, gt=0, lt=100, description="trending_up / trending_down: ADX at least this."
    )


class AnalyticsJobSpec(RunSpecBase):
    """What to analyse (symbols x intervals over a window), which metric families, and when to run."""

    families: list[MetricFamily] = Field(
        default_factory=lambda: list(MetricFamily),
        min_length=1,
        description="Metric families (all by default).",
    )
    windows: FamilyWindows = Field(default_factory=FamilyWindows)
    regime: RegimeThresholds = Field(default_factory=RegimeThresholds)


class AnalyticsJob(ApiModel):
    api_version: Literal["datamanager.petrosa.io/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    kind: Literal["AnalyticsJob"] = "AnalyticsJob"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: AnalyticsJobSpec
