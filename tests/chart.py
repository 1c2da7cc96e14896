"""The chart rendered by the pinned Helm (no cluster needed), and the PromQL its rules and dashboard use."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.conftest import REPO
from tests.tools import run

CHART = REPO / "charts" / "datamanager"
RELEASE, NAMESPACE = "dm", "md"
OPERATOR_JOB = f"{NAMESPACE}/{RELEASE}-datamanager-operator"
CONSUMER_JOB = f"{NAMESPACE}/{RELEASE}-datamanager-consumer"
MONITORING = ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
# Grafana's built-in variables, as Grafana substitutes them before a query reaches Prometheus
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s", "$__range": "6h"}


def render(*sets: str, show_only: str | None = None) -> list[dict[str, Any]]:
    """`helm template` of the chart (release dm in namespace md) with --set values; the documents."""
    args = ["template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.36.3"]
    for value in sets:
        args += ["--set", value]
    if show_only:
        args += ["--show-only", show_only]
    return [d for d in yaml.safe_load_all(run("helm", *args)) if d]


def prometheus_rule(*sets: str) -> dict[str, Any]:
    (rule,) = [d for d in render(*MONITORING, *sets) if d["kind"] == "PrometheusRule"]
    return rule


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def dashboard(*sets: str) -> dict[str, Any]:
    (config_map,) = render("metrics.dashboard.enabled=true", *sets, show_only="templates/dashboard.yaml")
    result: dict[str, Any] = json.loads(config_map["data"]["datamanager.json"])
    return result


def panel_queries(board: dict[str, Any]) -> dict[str, str]:
    """Each panel target's query as Prometheus receives it: "<panel title> <refId>" -> PromQL."""
    queries = {}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries[f"{panel['title']} {target['refId']}"] = expr
    return queries


def all_queries() -> dict[str, str]:
    """Every query the chart ships: each alert's expression and each dashboard panel's, by where it is."""
    queries = {f"alert {name}": rule["expr"] for name, rule in alerts(prometheus_rule()).items()}
    queries.update({f"panel {name}": expr for name, expr in panel_queries(dashboard()).items()})
    return queries


def series_used(expr: str) -> dict[str, set[str]]:
    """The metrics a query reads and, for each, the labels it relies on (in its selector or in a `by` clause).

    Every query here names one metric, or one per side of a `time() -` / histogram quantile: the labels of a
    `by` clause are attributed to every metric of the query."""
    metrics = set(re.findall(r"\b(datamanager_[a-z_]+)\b", expr))
    grouped = {
        label for clause in re.findall(r"\bby \(([^)]*)\)", expr) for label in re.split(r",\s*", clause)
    }
    used: dict[str, set[str]] = {}
    for metric in metrics:
        selectors = re.findall(rf"\b{metric}\{{([^}}]*)\}}", expr)
        matched = {m for s in selectors for m in re.findall(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)", s)}
        used[metric] = matched | (grouped if metric.endswith("_bucket") else grouped - {"le"})
    return used
