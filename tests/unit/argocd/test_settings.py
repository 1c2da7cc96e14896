"""argocd-cm.yaml and application.yaml as ArgoCD reads them (argocd-check: ArgoCD's settings manager, the
application controller's refresh decision, ArgoCD's diff), on objects shaped like the operator's."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd_health import ARGOCD_CM, ask
from tests.conftest import REPO

Obj = dict[str, Any]
IGNORE_UPDATES = "argocd.argoproj.io/ignore-resource-updates"
APPLICATIONS: list[Obj] = list(yaml.safe_load_all((REPO / "argocd" / "application.yaml").read_text()))
CHART_APP, RESOURCES_APP = APPLICATIONS


def job(
    annotated: bool, *, active: int = 1, ready: int = 0, finalizers: bool = True, done: bool = False
) -> Obj:
    """A worker Job as the operator makes it (owned by its DataAudit, not in Git) at some point of a run."""
    pod_annotations = {IGNORE_UPDATES: "true"} if annotated else {}
    status: Obj = {"startTime": "2026-11-28T12:00:00Z", "active": active, "ready": ready}
    if done:
        status = {
            "startTime": "2026-11-28T12:00:00Z",
            "completionTime": "2026-11-28T12:01:10Z",
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "majors-g1-7f3c",
            "namespace": "market-data",
            "labels": {"datamanager.petrosa.io/resource": "majors", "app.kubernetes.io/name": "datamanager"},
            "annotations": {**pod_annotations, "datamanager.petrosa.io/run-uid": "5b0c0001"},
            "finalizers": ["datamanager.petrosa.io/run-outcome"] if finalizers else [],
            "ownerReferences": [
                {
                    "apiVersion": "datamanager.petrosa.io/v1alpha1",
                    "kind": "DataAudit",
                    "name": "majors",
                    "uid": "0a6f3e2c",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 2,
            "template": {
                "metadata": {"annotations": pod_annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "dm:1"}]},
            },
        },
        "status": status,
    }


def pod(annotated: bool, *, ready: bool, phase: str = "Running", finalizers: bool = True) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "majors-g1-7f3c-x2x7q",
            "namespace": "market-data",
            "annotations": {IGNORE_UPDATES: "true"} if annotated else {},
            "finalizers": ["batch.kubernetes.io/job-tracking"] if finalizers else [],
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "majors-g1-7f3c", "uid": "j"}
            ],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "dm:1"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [
                {"name": "worker", "ready": ready, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }


def tracked_audit(status: Obj) -> Obj:
    audit: Obj = yaml.safe_load((REPO / "argocd" / "health" / "testdata" / "healthy.yaml").read_text())
    audit["metadata"]["labels"] = {"app.kubernetes.io/instance": RESOURCES_APP["metadata"]["name"]}
    audit["status"].update(status)
    return audit


def refreshes(old: Obj, new: Obj) -> bool:
    (answer,) = ask([{"op": "refresh", "old": old, "new": new}])
    assert "error" not in answer, answer
    return bool(answer["refresh"])


def test_ignore_resource_updates_is_enabled_for_every_argocd_2_release() -> None:
    (answer,) = ask([{"op": "settings"}])
    assert answer == {"ignoreResourceUpdatesEnabled": True}
    config = yaml.safe_load((REPO / "argocd" / "argocd-cm.yaml").read_text())
    assert config["data"]["resource.ignoreResourceUpdatesEnabled"] == "true"  # off by default before 2.14


def test_leases_are_not_watched_so_they_need_no_rule() -> None:
    answers = ask(
        [
            {"op": "watched", "group": "coordination.k8s.io", "kind": "Lease"},
            {"op": "watched", "group": "batch", "kind": "Job"},
            {"op": "watched", "group": "", "kind": "Pod"},
            {"op": "watched", "group": "datamanager.petrosa.io", "kind": "DataAudit"},
        ]
    )
    assert [a["watched"] for a in answers] == [False, True, True, True]
    config = yaml.safe_load((REPO / "argocd" / "argocd-cm.yaml").read_text())
    assert not [key for key in config["data"] if "Lease" in key]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (job(True, ready=0), job(True, ready=1)),
        (job(True, finalizers=True, done=True), job(True, finalizers=False, done=True)),
        (pod(True, ready=False), pod(True, ready=True)),  # a Job's pod is Progressing while it runs
        (
            pod(True, ready=False, phase="Succeeded"),
            pod(True, ready=False, phase="Succeeded", finalizers=False),
        ),
    ],
    ids=["job-status", "job-finalizer", "pod-status", "pod-finalizer"],
)
def test_an_annotated_child_changing_without_changing_health_refreshes_nothing(old: Obj, new: Obj) -> None:
    assert not refreshes(old, new)
    plain_old, plain_new = copy.deepcopy(old), copy.deepcopy(new)
    for obj in (plain_old, plain_new):
        obj["metadata"]["annotations"].pop(IGNORE_UPDATES)
        obj["spec"].get("template", {}).get("metadata", {}).get("annotations", {}).pop(IGNORE_UPDATES, None)
    assert refreshes(plain_old, plain_new), (
        "without the annotation ArgoCD applies no rule to untracked children"
    )


def test_without_the_enabled_flag_no_rule_applies(tmp_path: Path) -> None:
    """What ArgoCD 2.8 to 2.13 do when argocd-cm does not set resource.ignoreResourceUpdatesEnabled."""
    config = yaml.safe_load(ARGOCD_CM.read_text())
    config["data"]["resource.ignoreResourceUpdatesEnabled"] = "false"
    path = tmp_path / "argocd-cm.yaml"
    path.write_text(yaml.safe_dump(config))
    (answer,) = ask([{"op": "refresh", "old": job(True, ready=0), "new": job(True, ready=1)}], argocd_cm=path)
    assert answer["refresh"] is True


def test_a_child_changing_health_still_refreshes() -> None:
    assert refreshes(job(True), job(True, done=True))  # Progressing -> Healthy
    assert refreshes(pod(True, ready=True), pod(True, ready=False, phase="Failed"))  # Progressing -> Degraded


def test_a_tracked_resource_refreshes_on_health_changes_not_on_every_status_write() -> None:
    healthy = tracked_audit({})
    rescheduled = tracked_audit(
        {"nextRunTime": "2026-11-28T15:00:00Z", "lastScheduleTime": "2026-11-28T14:00:00Z"}
    )
    assert not refreshes(healthy, rescheduled)
    failed = tracked_audit(
        {
            "conditions": [
                {**healthy["status"]["conditions"][0], "status": "False", "reason": "SinkUnavailable"}
            ]
        }
    )
    assert refreshes(healthy, failed)
    edited = copy.deepcopy(healthy)
    edited["spec"]["suspend"] = True
    assert refreshes(healthy, edited)


def _desired(**spec: Any) -> Obj:
    """samples/dataaudit.yaml as Git holds it, with ``spec`` set."""
    desired: Obj = yaml.safe_load((REPO / "samples" / "dataaudit.yaml").read_text())
    desired["metadata"]["namespace"] = RESOURCES_APP["spec"]["destination"]["namespace"]
    desired["spec"].update(spec)
    return desired


def _live(desired: Obj, **spec: Any) -> Obj:
    live = copy.deepcopy(desired)
    live["metadata"].update({"generation": 2, "uid": "0a6f3e2c", "resourceVersion": "4711"})
    live["spec"].update(spec)
    live["status"] = {"observedGeneration": 2, "phase": "Suspended"}
    return live


def _modified(app: Obj, desired: Obj, live: Obj) -> bool:
    (answer,) = ask([{"op": "diff", "application": app, "desired": desired, "live": live}])
    assert "error" not in answer, answer
    return bool(answer["modified"])


@pytest.mark.parametrize("kind", ["DataAudit", "AnalyticsJob"])
def test_suspend_toggled_with_kubectl_keeps_the_application_synced(kind: str) -> None:
    """Git says `suspend: false`; someone patched it true: no drift, so self-heal does not revert it."""
    desired = _desired(suspend=False)
    desired["kind"] = kind
    assert not _modified(RESOURCES_APP, desired, _live(desired, suspend=True))


def test_without_the_ignore_entry_the_toggle_is_drift_and_other_changes_always_are() -> None:
    without = copy.deepcopy(RESOURCES_APP)
    del without["spec"]["ignoreDifferences"]
    desired = _desired(suspend=False)
    assert _modified(without, desired, _live(desired, suspend=True))
    assert _modified(RESOURCES_APP, desired, _live(desired, symbols=["BTCUSDT"]))


def test_a_suspend_git_does_not_set_is_no_drift_even_without_the_ignore_entry() -> None:
    """ArgoCD compares the fields Git sets: a manifest without `suspend` never fights a kubectl patch."""
    without = copy.deepcopy(RESOURCES_APP)
    del without["spec"]["ignoreDifferences"]
    desired = _desired()
    assert "suspend" not in desired["spec"]
    assert not _modified(without, desired, _live(desired, suspend=True))


def test_deleting_an_application_deletes_nothing_and_syncs_keep_a_kubectl_suspend() -> None:
    for app in APPLICATIONS:
        assert "finalizers" not in app["metadata"], f"{app['metadata']['name']} would cascade its deletion"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert "RespectIgnoreDifferences=true" in RESOURCES_APP["spec"]["syncPolicy"]["syncOptions"]
