"""API types of group ``datamanager.petrosa.io``: the single source of truth for the CRDs and the workers."""

from datamanager.api.analyticsjob import AnalyticsJob, AnalyticsJobSpec, MetricFamily
from datamanager.api.common import (
    GROUP,
    VERSION,
    ConcurrencyPolicy,
    Interval,
    JobOverrides,
    SecretKeyRef,
    SinkSpec,
    SourceSpec,
)
from datamanager.api.dataaudit import AuditCheck, DataAudit, DataAuditSpec, HealthThresholds

__all__ = [
    "GROUP",
    "VERSION",
    "AnalyticsJob",
    "AnalyticsJobSpec",
    "AuditCheck",
    "ConcurrencyPolicy",
    "DataAudit",
    "DataAuditSpec",
    "HealthThresholds",
    "Interval",
    "JobOverrides",
    "MetricFamily",
    "SecretKeyRef",
    "SinkSpec",
    "SourceSpec",
]
