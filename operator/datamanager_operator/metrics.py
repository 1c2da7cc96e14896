"""Prometheus metrics of the operator (names follow Prometheus conventions: unit suffixes, _total)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

RUNS = Counter(
    "datamanager_operator_runs_total",
    "Runs finished, by kind and outcome.",
    ["kind", "outcome", "reason"],
    registry=REGISTRY,
)
RUNS_STARTED = Counter(
    "datamanager_operator_runs_started_total",
    "Runs started, by kind and trigger.",
    ["kind", "trigger"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "datamanager_operator_run_duration_seconds",
    "From Job creation to the run's end.",
    ["kind"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
TRIGGER_TO_JOB = Histogram(
    "datamanager_operator_trigger_to_job_seconds",
    "From the trigger (resource change, cron slot, annotation) to the Job existing.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
LEASE_CONFLICTS = Counter(
    "datamanager_operator_lease_conflicts_total",
    "Times a resource's Lease was held by another instance.",
    registry=REGISTRY,
)
MISSED_RUNS = Counter(
    "datamanager_operator_missed_runs_total",
    "Schedule slots missed past the starting deadline.",
    ["kind"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "datamanager_operator_last_success_timestamp_seconds",
    "When the resource's last successful run ended.",
    ["kind", "namespace", "name"],
    registry=REGISTRY,
)
HEALTH_SCORE = Gauge(
    "datamanager_operator_health_score",
    "Overall health score (0-100) of the last successful audit.",
    ["namespace", "name"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "datamanager_operator_reconcile_errors_total",
    "Reconciles that failed and were retried.",
    ["kind"],
    registry=REGISTRY,
)
MEMBERS = Gauge(
    "datamanager_operator_members", "Live operator instances sharing the work.", registry=REGISTRY
)
