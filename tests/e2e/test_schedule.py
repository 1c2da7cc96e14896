# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Schedules on a real cluster: a cron slot fires on time, and suspend stops new runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lightkube import Client
from lightkube.types import PatchType

from tests.argocd_health import argocd_health
from tests.conftest import wait_for
from tests.e2e.conftest import CandleSource, resource_manifest
from tests.e2e.test_operator import DataAudit, finished, jobs_of
from tests.fixtures.kube import as_dict

pytestmark = pytest.mark.usefixtures("operator_release")


def run_ids(kube: Client, namespace: str, name: str) -> set[str]:
    return {j.metadata.labels["datamanager.petrosa.io/run-id"] for j in jobs_of(kube, namespace, name)}


def test_a_cron_slot_fires_on_time_and_suspend_stops_the_next(
    kube: Client, namespace: str, candles: CandleSource
) -> None:
    manifest = resource_manifest(
        "DataAudit", "cron", candles, schedule="* * * * *", startingDeadlineSeconds=30
    )
    kube.create(DataAudit.from_dict(manifest), namespace=namespace)
    wait_for(lambda: finished(kube, DataAudit, "cron", namespace), 120, "the creation run")
    status = kube.get(DataAudit, "cron", namespace=namespace).status
    slot = datetime.fromisoformat(status["nextRunTime"].replace("Z", "+00:00"))
    assert slot - datetime.now(UTC) <= timedelta(seconds=60)
    expected = f"s{slot:%Y%m%d%H%M}"
    wait_for(lambda: expected in run_ids(kube, namespace, "cron"), 100, f"the {slot:%H:%M} slot's Job")
    job = next(
        j
        for j in jobs_of(kube, namespace, "cron")
        if j.metadata.labels["datamanager.petrosa.io/run-id"] == expected
    )
    created = job.metadata.creationTimestamp
    assert created is not None
    lateness = created - slot
    assert timedelta(0) <= lateness < timedelta(seconds=15), f"the slot's Job came {lateness} after {slot}"

    kube.patch(
        DataAudit, "cron", {"spec": {"suspend": True}}, namespace=namespace, patch_type=PatchType.MERGE
    )
    wait_for(
        lambda: (
            (as_dict(kube.get(DataAudit, "cron", namespace=namespace)).get("status") or {}).get("phase")
            == "Suspended"
        ),
        120,
        "phase Suspended",
    )
    suspended_at = datetime.now(UTC)
    before = run_ids(kube, namespace, "cron")
    next_slot = suspended_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    wait_for(lambda: datetime.now(UTC) > next_slot + timedelta(seconds=10), 90, "the next slot to pass")
    assert run_ids(kube, namespace, "cron") == before, "a suspended resource must start no run"
    live = as_dict(kube.get(DataAudit, "cron", namespace=namespace))
    assert "nextRunTime" not in live["status"]
    # suspended after a success: Healthy, said in the message (docs/argocd.md)
    health = argocd_health(live)
    assert health["status"] == "Healthy"
    assert health["message"].startswith("Suspended: no new runs start")
