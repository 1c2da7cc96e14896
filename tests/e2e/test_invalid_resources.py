"""The API server rejects invalid resources before they are stored, with a message a user understands."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
AnalyticsJob = create_namespaced_resource(
    "datamanager.petrosa.io", "v1alpha1", "AnalyticsJob", "analyticsjobs"
)
VALID: dict[str, Any] = {
    "source": {"dsnSecretRef": {"name": "mysql", "key": "dsn"}},
    "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
    "symbols": ["BTCUSDT"],
    "intervals": ["1h"],
    "window": "24h",
}


def spec_with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return spec


DELETE = object()
CASES: list[tuple[str, str, Any, str]] = [
    ("DataAudit", "symbols", [], "spec.symbols"),
    ("DataAudit", "symbols", ["btcusdt"], "spec.symbols[0]"),
    ("DataAudit", "symbols", ["BTCUSDT", "BTCUSDT"], "Duplicate value"),
    ("DataAudit", "intervals", ["3h"], 'Unsupported value: "3h"'),
    ("DataAudit", "intervals", [], "spec.intervals"),
    ("DataAudit", "window", "1h", "window 1h is too short for interval 1h: it must be at least 121m"),
    ("DataAudit", "window", "120m", "window 120m is too short for interval 1h: it must be at least 121m"),
    (
        "DataAudit",
        "intervals",
        ["1h", "1d"],
        "window 24h is too short for interval 1d: it must be at least 2881m",
    ),
    ("DataAudit", "window", "forever", "spec.window"),
    ("DataAudit", "schedule", "every five minutes", "schedule must be a cron expression"),
    ("DataAudit", "schedule", "* * * *", "schedule must be a cron expression"),
    ("DataAudit", "timeZone", "Mars/Olympus", "timeZone must be an IANA time zone"),
    (
        "DataAudit",
        "thresholds",
        {"healthy": 60, "degraded": 70, "unhealthy": 50},
        "thresholds must be ordered",
    ),
    ("DataAudit", "thresholds.healthy", 120, "spec.thresholds.healthy"),
    ("DataAudit", "checks", ["gaps", "vibes"], 'Unsupported value: "vibes"'),
    ("DataAudit", "concurrencyPolicy", "Sometimes", 'Unsupported value: "Sometimes"'),
    ("DataAudit", "source", DELETE, "spec.source: Required value"),
    ("DataAudit", "sink.uriSecretRef", {"name": "mongo"}, "spec.sink.uriSecretRef.key: Required value"),
    ("DataAudit", "sink.retentionDays", 0, "spec.sink.retentionDays"),
    ("DataAudit", "job.parallelism", 4, "job.parallelism cannot exceed the number of symbols"),
    ("DataAudit", "job.backoffLimit", -1, "spec.job.backoffLimit"),
    ("DataAudit", "spikes.sigma", 0, "spec.spikes.sigma"),
    ("DataAudit", "startingDeadlineSeconds", 0, "spec.startingDeadlineSeconds"),
    ("AnalyticsJob", "families", ["volatility", "astrology"], 'Unsupported value: "astrology"'),
    ("AnalyticsJob", "windows.volatility", 1, "spec.windows.volatility"),
    ("AnalyticsJob", "window", "30m", "window 30m is too short for interval 1h: it must be at least 121m"),
]


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize(("kind", "path", "value", "message"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_invalid_resource_is_rejected_with_a_clear_message(
    kube: Client, namespace: str, kind: str, path: str, value: Any, message: str
) -> None:
    res = DataAudit if kind == "DataAudit" else AnalyticsJob
    body = {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "bad"},
        "spec": spec_with(path, value),
    }
    with pytest.raises(ApiError) as rejected:
        kube.create(res.from_dict(body), namespace=namespace)
    assert rejected.value.status.code == 422
    assert message in str(rejected.value.status.message)


@pytest.mark.usefixtures("crds")
def test_the_valid_baseline_is_accepted_with_defaults(kube: Client, namespace: str) -> None:
    body = {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": "DataAudit",
        "metadata": {"name": "ok"},
        "spec": VALID,
    }
    created = kube.create(DataAudit.from_dict(body), namespace=namespace)
    assert created.spec["checks"] == ["gaps", "duplicates", "ohlc", "freshness", "spikes"]
    assert created.spec["concurrencyPolicy"] == "Forbid"
    assert created.spec["job"]["backoffLimit"] == 2


@pytest.mark.usefixtures("crds")
def test_the_documented_samples_are_valid(kube: Client, namespace: str) -> None:
    import yaml

    from tests.conftest import REPO

    for name, res in (("dataaudit.yaml", DataAudit), ("analyticsjob.yaml", AnalyticsJob)):
        manifest = yaml.safe_load((REPO / "samples" / name).read_text())
        created = kube.create(res.from_dict(manifest), namespace=namespace)
        assert created.metadata.name == manifest["metadata"]["name"]


@pytest.mark.usefixtures("crds")
def test_the_minimum_window_is_accepted(kube: Client, namespace: str) -> None:
    """Twice the longest interval plus a minute: the shortest window that always holds a closed candle."""
    for name, intervals, window in (("one-hour", ["1h"], "121m"), ("one-day", ["1h", "1d"], "2881m")):
        body = {
            "apiVersion": "datamanager.petrosa.io/v1alpha1",
            "kind": "DataAudit",
            "metadata": {"name": name},
            "spec": {**VALID, "intervals": intervals, "window": window},
        }
        assert kube.create(DataAudit.from_dict(body), namespace=namespace).spec["window"] == window
