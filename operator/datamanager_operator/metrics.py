"""Prometheus metrics of the operator (names follow Prometheus conventions: unit suffixes, _total).

Counters and histograms are per replica. Per-resource gauges are not kept anywhere: they are read at scrape
time from the status of the resources this replica owns (``ResourceCollector``), so a resource that was
deleted or handed to another replica has no series left behind to alert on. What the replica keeps (cached
objects, the work queue, held run Leases) is read at scrape time too (``StateCollector``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .views import ResourceView

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
    "From a run's start to its end.",
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
    "Times a resource's Lease was held by another replica when this one meant to act.",
    registry=REGISTRY,
)
STATUS_CONFLICTS = Counter(
    "datamanager_operator_status_conflicts_total",
    "Status writes refused because the resource changed since it was read (decided again).",
    registry=REGISTRY,
)
JOB_REFUSALS = Counter(
    "datamanager_operator_job_refusals_total",
    "Job creations the API server refused (quota, admission, invalid).",
    ["kind"],
    registry=REGISTRY,
)
MISSED_RUNS = Counter(
    "datamanager_operator_missed_runs_total",
    "Schedule slots missed past the starting deadline.",
    ["kind"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "datamanager_operator_reconcile_errors_total",
    "Reconciles that failed and were retried.",
    ["kind"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "datamanager_operator_api_requests_total",
    "Requests to the API server besides watches, by verb and result (ok or the error's class).",
    ["verb", "result"],
    registry=REGISTRY,
)
WATCH_RESTARTS = Counter(
    "datamanager_operator_watch_restarts_total",
    "Watches listed again, by informer and cause (expired: 410 Gone; error: anything else).",
    ["informer", "cause"],
    registry=REGISTRY,
)
MEMBERS = Gauge("datamanager_operator_members", "Live operator replicas sharing the work.", registry=REGISTRY)
READY = Gauge(
    "datamanager_operator_ready",
    "1 once every cache is primed and the replica knows its peers.",
    registry=REGISTRY,
)


for _kind in ("DataAudit", "AnalyticsJob"):  # zero from the start, so rate() and alerts see a series
    for _counter in (RECONCILE_ERRORS, MISSED_RUNS, JOB_REFUSALS):
        _counter.labels(_kind)


class ResourceCollector(Collector):
    """Per-resource gauges of the resources this replica owns, from their status at scrape time."""

    def __init__(self, owned: Callable[[], Iterable[ResourceView]]) -> None:
        self.owned = owned

    def collect(self) -> Iterator[Metric]:
        labels = ["kind", "namespace", "name"]
        success = GaugeMetricFamily(
            "datamanager_operator_last_success_timestamp_seconds",
            "When the resource's last successful run ended (resources this replica owns).",
            labels=labels,
        )
        health = GaugeMetricFamily(
            "datamanager_operator_health_score",
            "Health score (0-100) of the audit's last successful run (resources this replica owns).",
            labels=labels,
        )
        failures = GaugeMetricFamily(
            "datamanager_operator_consecutive_failures",
            "Runs failed since the resource's last success (resources this replica owns).",
            labels=labels,
        )
        active = GaugeMetricFamily(
            "datamanager_operator_active_runs",
            "Runs in progress (resources this replica owns).",
            labels=labels,
        )
        upcoming = GaugeMetricFamily(
            "datamanager_operator_next_run_timestamp_seconds",
            "When the resource's schedule next fires (scheduled, unsuspended resources this replica owns).",
            labels=labels,
        )
        for view in self.owned():
            status, key = view.status, [view.kind, view.namespace, view.name]
            if when := status.get("lastSuccessfulTime"):
                success.add_metric(key, _timestamp(when))
            if (score := status.get("healthScore")) is not None:
                health.add_metric(key, float(score))
            failures.add_metric(key, float(status.get("consecutiveFailures") or 0))
            active.add_metric(key, float(len(status.get("activeRuns") or [])))
            if when := status.get("nextRunTime"):
                upcoming.add_metric(key, _timestamp(when))
        yield from (success, health, failures, active, upcoming)


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


class StateCollector(Collector):
    """What this replica keeps, at scrape time: objects per cache, the work queue, run Leases held."""

    def __init__(
        self,
        cached: Callable[[], Mapping[str, int]],
        queue: Callable[[], tuple[int, int]],
        held: Callable[[], int],
    ) -> None:
        self.cached, self.queue, self.held = cached, queue, held

    def collect(self) -> Iterator[Metric]:
        cached = GaugeMetricFamily(
            "datamanager_operator_cached_objects",
            "Objects in this replica's caches, by informer.",
            labels=["informer"],
        )
        for informer, count in self.cached().items():
            cached.add_metric([informer], float(count))
        depth, scheduled = self.queue()
        yield cached
        yield GaugeMetricFamily(
            "datamanager_operator_workqueue_depth", "Resources waiting for a reconcile.", value=depth
        )
        yield GaugeMetricFamily(
            "datamanager_operator_workqueue_scheduled",
            "Resources with a later reconcile scheduled (a time to look again, or a retry).",
            value=scheduled,
        )
        yield GaugeMetricFamily(
            "datamanager_operator_run_leases_held", "Run Leases this replica holds.", value=self.held()
        )
