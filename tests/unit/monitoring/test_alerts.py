"""The chart's alerts, evaluated by Prometheus's own rule engine (promtool, built from the pinned module).

Every alert has a case where it fires and one where it stays silent. The operator's per-resource gauges are
exported only by the replica that owns the resource and vanish on hand-off or deletion: the cases hand a
resource from one replica to another with a gap between their series (the alert must not flap), and delete
one (the alert must end). Expected annotations are the rule's own templates with the alert's labels and value
filled in, so a template naming a label the alert lacks fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import CONSUMER_JOB, NAMESPACE, OPERATOR_JOB, alerts, prometheus_rule
from tests.tools import run

OP = {"job": OPERATOR_JOB, "namespace": NAMESPACE}
CO = {"job": CONSUMER_JOB, "namespace": NAMESPACE}
OTHER_OPERATOR = {"job": "other/dm-datamanager-operator", "namespace": "other"}
OTHER_CONSUMER = {"job": "other/dm-datamanager-consumer", "namespace": "other"}
RESOURCE = {"kind": "DataAudit", "namespace": "team-a"}  # per-resource series: the resource's namespace

Labels = dict[str, str]


def series(metric: str, labels: Labels, values: str) -> dict[str, str]:
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{metric}{{{body}}}", "values": values}


def resource(name: str, pod: str, job: Labels = OP) -> Labels:
    # honorLabels: the resource's namespace, not the operator's
    return {**RESOURCE, "job": job["job"], "name": name, "pod": pod}


def fires(alert: str, at: str, *alerts: tuple[Labels, float | str | None]) -> dict[str, Any]:
    """alert_rule_test entry: at `at`, exactly these alerts (labels, value) fire; none when empty."""
    return {"eval_time": at, "alertname": alert, "_expect": list(alerts)}


def silent(alert: str, at: str) -> dict[str, Any]:
    return fires(alert, at)


def held(*names: str) -> list[tuple[Labels, float | str | None]]:
    """Resources whose consecutive-failures alert fires with value 3."""
    return [({**RESOURCE, "name": n}, 3) for n in names]


CASES: list[dict[str, Any]] = [
    {
        "name": "operator down: no replica reports ready (another installation's does)",
        "input_series": [series("datamanager_operator_ready", {**OTHER_OPERATOR, "pod": "x"}, "1x20")],
        "alert_rule_test": [
            silent("DataManagerOperatorDown", "4m"),
            fires("DataManagerOperatorDown", "6m", ({}, None)),
        ],
    },
    {
        "name": "operator up but never ready",
        "input_series": [series("datamanager_operator_ready", {**OP, "pod": "a"}, "0x20")],
        "alert_rule_test": [
            fires("DataManagerOperatorDown", "6m", ({}, None)),
            silent("DataManagerOperatorNotReady", "9m"),
            fires("DataManagerOperatorNotReady", "11m", ({**OP, "pod": "a"}, None)),
        ],
    },
    {
        "name": "healthy operator: a replica replaced, another starting",
        "input_series": [
            series("datamanager_operator_ready", {**OP, "pod": "a"}, "1x10 stale"),
            series("datamanager_operator_ready", {**OP, "pod": "b"}, "0x2 1x20"),
            series("datamanager_operator_ready", {**OP, "pod": "c"}, "_x12 0 1x10"),
        ],
        "alert_rule_test": [
            silent("DataManagerOperatorDown", "6m"),
            silent("DataManagerOperatorDown", "12m"),
            silent("DataManagerOperatorDown", "20m"),
            silent("DataManagerOperatorNotReady", "20m"),
        ],
    },
    {
        "name": "reconcile errors: persistent fires, a burst does not",
        "input_series": [
            series(
                "datamanager_operator_reconcile_errors_total",
                {**OP, "kind": "DataAudit", "pod": "a"},
                "0+1x40",
            ),
            series(
                "datamanager_operator_reconcile_errors_total",
                {**OP, "kind": "AnalyticsJob", "pod": "a"},
                "0 3x40",
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerReconcileErrors", "14m"),
            fires("DataManagerReconcileErrors", "17m", ({"kind": "DataAudit"}, None)),
        ],
    },
    {
        "name": "consecutive failures: threshold, recovery, hand-off, deletion",
        "input_series": [
            series("datamanager_operator_consecutive_failures", resource("flaky", "a"), "1 2 3 3 0x20"),
            # handed from replica a to b with two scrapes of neither in between
            series("datamanager_operator_consecutive_failures", resource("majors", "a"), "3x10 stale"),
            series("datamanager_operator_consecutive_failures", resource("majors", "b"), "_x12 3x20"),
            # recovered while being handed off: the old owner's last value holds for at most 5 minutes
            series("datamanager_operator_consecutive_failures", resource("healed", "a"), "3x10 stale"),
            series("datamanager_operator_consecutive_failures", resource("healed", "b"), "_x12 0x20"),
            # deleted: its series ends
            series("datamanager_operator_consecutive_failures", resource("gone", "a"), "3x10 stale"),
        ],
        "alert_rule_test": [
            fires("DataManagerRunFailingRepeatedly", "1m", *held("majors", "healed", "gone")),
            fires("DataManagerRunFailingRepeatedly", "2m", *held("flaky", "majors", "healed", "gone")),
            fires("DataManagerRunFailingRepeatedly", "4m", *held("majors", "healed", "gone")),  # flaky: 0
            fires("DataManagerRunFailingRepeatedly", "11m", *held("majors", "healed", "gone")),  # the gap
            fires("DataManagerRunFailingRepeatedly", "14m", *held("majors", "healed", "gone")),
            fires("DataManagerRunFailingRepeatedly", "16m", ({**RESOURCE, "name": "majors"}, 3)),
        ],
    },
    {
        "name": "two failures in a row are not repeated failures",
        "input_series": [series("datamanager_operator_consecutive_failures", resource("below", "a"), "2x30")],
        "alert_rule_test": [silent("DataManagerRunFailingRepeatedly", "10m")],
    },
    {
        "name": "failed runs by reason; successes do not count",
        "input_series": [
            series(
                "datamanager_operator_runs_total",
                {**OP, "kind": "DataAudit", "outcome": "Failed", "reason": "SourceUnavailable", "pod": "a"},
                "0x10 1x40",
            ),
            series(
                "datamanager_operator_runs_total",
                {**OP, "kind": "AnalyticsJob", "outcome": "Succeeded", "reason": "RunSucceeded", "pod": "a"},
                "0+1x50",
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerRunsFailing", "9m"),
            fires(
                "DataManagerRunsFailing", "12m", ({"kind": "DataAudit", "reason": "SourceUnavailable"}, None)
            ),
            silent("DataManagerRunsFailing", "45m"),
        ],
    },
    {
        "name": "health below threshold: held through a hand-off, ended by deletion",
        "input_series": [
            series("datamanager_operator_health_score", resource("majors", "a"), "62x10 stale"),
            series("datamanager_operator_health_score", resource("majors", "b"), "_x12 62x20"),
            series("datamanager_operator_health_score", resource("fine", "a"), "95x30"),
            series("datamanager_operator_health_score", resource("gone", "a"), "62x20 stale"),
        ],
        "alert_rule_test": [
            silent("DataManagerHealthBelowThreshold", "14m"),
            # pending since 0 across the gap at 11m: without bridging it would only fire at 27m
            fires(
                "DataManagerHealthBelowThreshold",
                "16m",
                ({**RESOURCE, "name": "majors"}, 62),
                ({**RESOURCE, "name": "gone"}, 62),
            ),
            fires("DataManagerHealthBelowThreshold", "27m", ({**RESOURCE, "name": "majors"}, 62)),
        ],
    },
    {
        "name": "missed schedule slots",
        "input_series": [
            series(
                "datamanager_operator_missed_runs_total", {**OP, "kind": "DataAudit", "pod": "a"}, "0x10 1x80"
            ),
            series(
                "datamanager_operator_missed_runs_total", {**OP, "kind": "AnalyticsJob", "pod": "a"}, "0x90"
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerMissedSchedules", "9m"),
            fires("DataManagerMissedSchedules", "12m", ({"kind": "DataAudit"}, None)),
            silent("DataManagerMissedSchedules", "75m"),
        ],
    },
    {
        "name": "stale scheduled resources: no success for 2 hours; hand-off; deletion; unscheduled ones",
        "input_series": [
            # succeeded at time 0, handed off at 125m
            series(
                "datamanager_operator_last_success_timestamp_seconds", resource("majors", "a"), "0x125 stale"
            ),
            series(
                "datamanager_operator_last_success_timestamp_seconds", resource("majors", "b"), "_x127 0x30"
            ),
            series(
                "datamanager_operator_next_run_timestamp_seconds", resource("majors", "a"), "60+60x125 stale"
            ),
            series(
                "datamanager_operator_next_run_timestamp_seconds", resource("majors", "b"), "_x127 60+60x30"
            ),
            # succeeds every minute
            series("datamanager_operator_last_success_timestamp_seconds", resource("fresh", "a"), "0+60x160"),
            series("datamanager_operator_next_run_timestamp_seconds", resource("fresh", "a"), "60+60x160"),
            series(
                "datamanager_operator_last_success_timestamp_seconds", resource("gone", "a"), "0x130 stale"
            ),
            series(
                "datamanager_operator_next_run_timestamp_seconds", resource("gone", "a"), "60+60x130 stale"
            ),
            # no schedule: runs on changes only, and rightly has not run for hours
            series(
                "datamanager_operator_last_success_timestamp_seconds", resource("on-change", "a"), "0x160"
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerRunsStale", "119m"),
            fires(
                "DataManagerRunsStale",
                "121m",
                ({**RESOURCE, "name": "majors"}, "2h 1m 0s"),
                ({**RESOURCE, "name": "gone"}, "2h 1m 0s"),
            ),
            fires(
                "DataManagerRunsStale",
                "126m",
                ({**RESOURCE, "name": "majors"}, "2h 6m 0s"),
                ({**RESOURCE, "name": "gone"}, "2h 6m 0s"),
            ),
            fires("DataManagerRunsStale", "137m", ({**RESOURCE, "name": "majors"}, "2h 17m 0s")),
        ],
    },
    {
        "name": "consumer not ready: ours down, another namespace's ready",
        "input_series": [
            series("datamanager_consumer_ready", {**CO, "pod": "c1"}, "0x20"),
            series("datamanager_consumer_ready", {**OTHER_CONSUMER, "pod": "x"}, "1x20"),
        ],
        "alert_rule_test": [
            silent("DataManagerConsumerNotReady", "4m"),
            fires("DataManagerConsumerNotReady", "6m", ({}, None)),
        ],
    },
    {
        "name": "consumer ready: one of two replicas is enough",
        "input_series": [
            series("datamanager_consumer_ready", {**CO, "pod": "c1"}, "1x20"),
            series("datamanager_consumer_ready", {**CO, "pod": "c2"}, "0x20"),
        ],
        "alert_rule_test": [silent("DataManagerConsumerNotReady", "10m")],
    },
    {
        "name": "no messages: ours stopped while another namespace's flow",
        "input_series": [
            series(
                "datamanager_consumer_messages_total", {**CO, "type": "trade", "pod": "c1"}, "0+10x10 100x40"
            ),
            series(
                "datamanager_consumer_messages_total",
                {**OTHER_CONSUMER, "type": "trade", "pod": "x"},
                "0+10x50",
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerConsumerNoMessages", "15m"),
            silent("DataManagerConsumerNoMessages", "28m"),
            fires("DataManagerConsumerNoMessages", "31m", ({}, None)),
        ],
    },
    {
        "name": "messages flow",
        "input_series": [
            series("datamanager_consumer_messages_total", {**CO, "type": "trade", "pod": "c1"}, "0+10x50"),
        ],
        "alert_rule_test": [silent("DataManagerConsumerNoMessages", "31m")],
    },
    {
        "name": "stream stalled: a continuous type late on every consumer",
        "input_series": [
            series(
                "datamanager_consumer_worst_lag_seconds",
                {**CO, "type": "markPriceUpdate", "pod": "c1"},
                "300x20",
            ),
            series(
                "datamanager_consumer_worst_lag_seconds",
                {**CO, "type": "markPriceUpdate", "pod": "c2"},
                "300x20",
            ),
            # sporadic by nature: not a listed type
            series(
                "datamanager_consumer_worst_lag_seconds", {**CO, "type": "forceOrder", "pod": "c1"}, "3000x20"
            ),
            series(
                "datamanager_consumer_worst_lag_seconds", {**CO, "type": "forceOrder", "pod": "c2"}, "3000x20"
            ),
        ],
        "alert_rule_test": [
            silent("DataManagerConsumerStreamStalled", "4m"),
            fires("DataManagerConsumerStreamStalled", "6m", ({"type": "markPriceUpdate"}, "5m 0s")),
        ],
    },
    {
        "name": "stream fresh on one consumer: the stream is fine, that replica is not",
        "input_series": [
            series(
                "datamanager_consumer_worst_lag_seconds",
                {**CO, "type": "markPriceUpdate", "pod": "c1"},
                "300x20",
            ),
            series(
                "datamanager_consumer_worst_lag_seconds",
                {**CO, "type": "markPriceUpdate", "pod": "c2"},
                "0.5x20",
            ),
        ],
        "alert_rule_test": [silent("DataManagerConsumerStreamStalled", "10m")],
    },
    {
        "name": "dropped messages",
        "input_series": [
            series("datamanager_consumer_dropped_messages_total", {**CO, "pod": "c1"}, "0x15 7x30"),
            series("datamanager_consumer_dropped_messages_total", {**CO, "pod": "c2"}, "0x45"),
        ],
        "alert_rule_test": [
            silent("DataManagerConsumerDroppedMessages", "15m"),
            fires("DataManagerConsumerDroppedMessages", "18m", ({"pod": "c1"}, None)),
            silent("DataManagerConsumerDroppedMessages", "30m"),
        ],
    },
]


def _value(value: float | str | None) -> str:
    if isinstance(value, str):  # already as humanizeDuration prints it
        return value
    assert value is not None, "a template uses $value: give the case its value"
    return str(int(value)) if float(value).is_integer() else repr(value)


def _annotations(rule: dict[str, Any], labels: Labels, value: float | str | None) -> Labels:
    def fill(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("$labels."):
            return labels[expr.removeprefix("$labels.")]
        if expr in ("$value", "$value | humanizeDuration"):
            return _value(value)
        raise AssertionError(f"{rule['alert']}: no expectation for the template {expr!r}")

    return {k: re.sub(r"\{\{(.*?)\}\}", fill, v) for k, v in rule.get("annotations", {}).items()}


def promtool_tests(rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tests = []
    for case in CASES:
        checks = []
        for check in case["alert_rule_test"]:
            rule = rules[check["alertname"]]
            expected = []
            for labels, value in check["_expect"]:
                full = {**labels, **rule.get("labels", {})}
                expected.append({"exp_labels": full, "exp_annotations": _annotations(rule, full, value)})
            checks.append(
                {"eval_time": check["eval_time"], "alertname": check["alertname"], "exp_alerts": expected}
            )
        tests.append(
            {
                "name": case["name"],
                "interval": "1m",
                "input_series": case["input_series"],
                "alert_rule_test": checks,
            }
        )
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}


@pytest.fixture(scope="module")
def rule() -> dict[str, Any]:
    return prometheus_rule()


def write_rules(rule: dict[str, Any], folder: Path) -> Path:
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_rules_pass_promtool_check(rule: dict[str, Any], tmp_path: Path) -> None:
    out = run("promtool", "check", "rules", str(write_rules(rule, tmp_path)))
    assert f"SUCCESS: {len(alerts(rule))} rules found" in out


def test_every_alert_fires_and_stays_silent_as_the_cases_say(rule: dict[str, Any], tmp_path: Path) -> None:
    write_rules(rule, tmp_path)
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(promtool_tests(alerts(rule)), sort_keys=False))
    out = run("promtool", "test", "rules", str(path))
    assert "SUCCESS" in out


def test_every_alert_has_a_firing_and_a_silent_case(rule: dict[str, Any]) -> None:
    checks = [c for case in CASES for c in case["alert_rule_test"]]
    firing = {c["alertname"] for c in checks if c["_expect"]}
    quiet = {c["alertname"] for c in checks if not c["_expect"]}
    assert firing == set(alerts(rule)) == quiet


def test_every_selector_names_this_installation() -> None:
    for name, alert in alerts(prometheus_rule()).items():
        for selector in re.findall(r"datamanager_[a-z_]+\{([^}]*)\}", alert["expr"]):
            assert "job=" in selector, f"{name} selects series of any installation: {alert['expr']}"
            if "datamanager_consumer" in alert["expr"]:
                assert f'namespace="{NAMESPACE}"' in selector, f"{name} has no namespace filter"


def test_consumer_alerts_are_not_rendered_without_the_consumer() -> None:
    rule = prometheus_rule("consumer.enabled=false")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["datamanager-operator"]
    assert "datamanager_consumer" not in yaml.safe_dump(rule)


def test_operator_alerts_are_not_rendered_without_the_operator() -> None:
    rule = prometheus_rule("operator.enabled=false")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["datamanager-consumer"]


def test_the_optional_alerts_can_be_turned_off() -> None:
    names = set(
        alerts(
            prometheus_rule(
                "metrics.prometheusRule.staleSeconds=0", "metrics.prometheusRule.consumerStalledTypes=null"
            )
        )
    )
    assert "DataManagerRunsStale" not in names
    assert "DataManagerConsumerStreamStalled" not in names
