"""The Grafana dashboard ConfigMap: opt-in, found by the sidecar, one per installation, every query valid
PromQL (parsed by promtool) over series of the metrics contract (the e2e tier checks a real scrape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.chart import NAMESPACE, RELEASE, all_queries, dashboard, panel_queries, render, series_used
from tests.tools import run

# The series the operator and the consumer export (docs/operator.md, docs/consumer.md) and their labels;
# job and pod come from the scrape, and the consumer's namespace too (the operator's per-resource series
# carry the resource's namespace themselves).
CONTRACT: dict[str, set[str]] = {
    "datamanager_operator_runs_total": {"kind", "outcome", "reason"},
    "datamanager_operator_runs_started_total": {"kind", "trigger"},
    "datamanager_operator_run_duration_seconds_bucket": {"kind", "le"},
    "datamanager_operator_trigger_to_job_seconds_bucket": {"kind", "le"},
    "datamanager_operator_lease_conflicts_total": set(),
    "datamanager_operator_missed_runs_total": {"kind"},
    "datamanager_operator_reconcile_errors_total": {"kind"},
    "datamanager_operator_members": set(),
    "datamanager_operator_ready": set(),
    "datamanager_operator_last_success_timestamp_seconds": {"kind", "namespace", "name"},
    "datamanager_operator_health_score": {"kind", "namespace", "name"},
    "datamanager_operator_consecutive_failures": {"kind", "namespace", "name"},
    "datamanager_operator_active_runs": {"kind", "namespace", "name"},
    "datamanager_operator_next_run_timestamp_seconds": {"kind", "namespace", "name"},
    "datamanager_consumer_messages_total": {"type"},
    "datamanager_consumer_malformed_messages_total": {"reason"},
    "datamanager_consumer_worst_lag_seconds": {"type"},
    "datamanager_consumer_ready": set(),
    "datamanager_consumer_dropped_messages_total": set(),
    "datamanager_consumer_nats_reconnects_total": set(),
}
SCRAPE_LABELS = {"datamanager_operator": {"job", "pod"}, "datamanager_consumer": {"job", "pod", "namespace"}}


def test_every_panel_query_parses(tmp_path: Path) -> None:
    queries = panel_queries(dashboard())
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(queries.values())]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run("promtool", "check", "rules", str(path))


def test_every_series_an_alert_or_panel_reads_is_in_the_contract_with_its_labels() -> None:
    for where, expr in all_queries().items():
        for metric, labels in series_used(expr).items():
            assert metric in CONTRACT, f"{where} reads {metric}, which nothing exports"
            scraped = SCRAPE_LABELS["_".join(metric.split("_")[:2])]
            unknown = labels - CONTRACT[metric] - scraped
            assert not unknown, f"{where} uses labels {unknown} that {metric} does not have"


def test_the_panels_cover_what_operators_look_at() -> None:
    used = {metric for expr in panel_queries(dashboard()).values() for metric in series_used(expr)}
    for metric in (
        "datamanager_operator_runs_total",  # runs and failures by kind
        "datamanager_operator_health_score",  # health per resource
        "datamanager_operator_trigger_to_job_seconds_bucket",  # trigger-to-Job latency
        "datamanager_consumer_messages_total",  # consumer throughput
        "datamanager_consumer_worst_lag_seconds",  # lag by type
        "datamanager_consumer_malformed_messages_total",  # malformed messages
    ):
        assert metric in used


def test_the_dashboard_configmap_is_found_by_the_sidecar_and_unique_per_installation() -> None:
    (config_map,) = render("metrics.dashboard.enabled=true", show_only="templates/dashboard.yaml")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == NAMESPACE
    board: dict[str, Any] = dashboard()
    other = dashboard("fullnameOverride=second")
    assert board["uid"] != other["uid"]
    assert len(board["uid"]) <= 40  # Grafana's limit
    assert board["title"] == f"datamanager ({NAMESPACE}/{RELEASE}-datamanager)"
    assert "__" not in str(board).replace("$__rate_interval", "")  # every placeholder replaced
    (moved,) = render(
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.namespace=grafana",
        "metrics.dashboard.annotations.grafana_folder=Market data",
        show_only="templates/dashboard.yaml",
    )
    assert moved["metadata"]["namespace"] == "grafana"
    assert moved["metadata"]["annotations"] == {"grafana_folder": "Market data"}
