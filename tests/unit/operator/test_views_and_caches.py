"""What the informers keep: typed views of API objects, and stores that never go back to an older version
and report deletions when a list replaces them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from lightkube.models.batch_v1 import JobStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job

from datamanager_operator.informer import Store
from datamanager_operator.leases import lease_name
from datamanager_operator.model import FINALIZER, Key, as_dict, job_name
from datamanager_operator.settings import OperatorSettings
from datamanager_operator.views import EPOCH, JobView, PodView, ResourceView, parse_time
from tests.unit.operator.observed import T0

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def job_body(**meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "j",
            "uid": "ju",
            "resourceVersion": "42",
            "creationTimestamp": "2026-11-28T12:00:00Z",
            "labels": {
                "datamanager.petrosa.io/kind": "DataAudit",
                "datamanager.petrosa.io/resource": "cut-name",
                "datamanager.petrosa.io/resource-uid": "ru",
                "datamanager.petrosa.io/run-id": "g1",
            },
            "annotations": {"datamanager.petrosa.io/run-uid": "u1"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-it"},
                {"kind": "DataAudit", "name": "whole.name", "controller": True},
            ],
            "finalizers": ["batch.kubernetes.io/x", FINALIZER],
            **meta,
        },
        "status": {
            "completionTime": "2026-11-28T12:05:00Z",
            "conditions": [
                {"type": "Suspended", "status": "False"},
                {"type": "Failed", "status": "False"},
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "lastTransitionTime": "t",
                },
            ],
        },
    }


def test_a_job_view_keeps_what_decisions_read() -> None:
    view = JobView.of(job_body())
    assert (view.namespace, view.name, view.uid, view.version) == ("ns", "j", "ju", 42)
    assert view.owner == Key("DataAudit", "ns", "whole.name"), "from the controller reference"
    assert (view.resource_uid, view.run_id, view.run_uid) == ("ru", "g1", "u1")
    assert (view.finished, view.succeeded, view.reason) == (True, True, "CompletionsReached")
    assert view.completion_time == "2026-11-28T12:05:00Z"
    assert view.created == T0
    assert view.finalized
    assert not view.deleting


def test_a_job_view_of_an_older_or_foreign_job() -> None:
    body = job_body(
        deletionTimestamp="2026-11-28T12:06:00Z",
        finalizers=[],
        annotations={},
        resourceVersion="x",
        ownerReferences=[{"kind": "DataAudit", "name": "x", "controller": False}],
    )
    del body["status"]
    view = JobView.of(body)
    assert view.owner is None
    assert view.run_uid == ""
    assert view.version == 0
    assert (view.finished, view.deleting, view.finalized) == (False, True, False)
    assert JobView.of({}).created == EPOCH
    failed = job_body()
    failed["status"] = {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "m",
                "lastTransitionTime": "lt",
            }
        ]
    }
    view = JobView.of(failed)
    assert (view.finished, view.succeeded, view.reason, view.message, view.completion_time) == (
        True,
        False,
        "DeadlineExceeded",
        "m",
        "lt",
    )
    unowned = job_body(ownerReferences=[])
    assert JobView.of(unowned).owner is None, "a name label alone does not make a Job the resource's"
    reference = {"kind": "AnalyticsJob", "name": "a", "controller": True}
    no_namespace = JobView.of({"metadata": {"ownerReferences": [reference]}})
    assert (no_namespace.namespace, no_namespace.owner) == ("", Key("AnalyticsJob", "", "a")), "as the Job's"


def test_views_of_objects_missing_every_field_hold_empty_values_never_none() -> None:
    """What the decision compares is always a string, a number or a time: a field the API server (or an older
    one) left out reads as empty, version 0 (older than anything stored), the epoch, generation 1."""
    assert JobView.of({}) == JobView(
        namespace="",
        name="",
        uid="",
        version=0,
        created=EPOCH,
        owner=None,
        resource_uid="",
        run_id="",
        run_uid="",
        deleting=False,
        finalized=False,
        finished=False,
        succeeded=False,
        reason="",
        message="",
        completion_time=None,
    )
    assert PodView.of({}) == PodView(
        namespace="",
        name="",
        uid="",
        version=0,
        created=EPOCH,
        job_name="",
        index=0,
        phase="Pending",
        waiting_reason="",
        waiting_message="",
        exit_code=None,
        terminated_reason="",
        summary="",
        unschedulable=None,
    )
    assert ResourceView.of("AnalyticsJob", {}) == ResourceView(
        kind="AnalyticsJob",
        namespace="",
        name="",
        uid="",
        version=0,
        created=EPOCH,
        resource_version="",
        generation=1,
        deleting=False,
        run_now=None,
        changed=None,
        spec_json=b"{}",
        status_json=b"{}",
    )


def test_times_are_read_as_utc() -> None:
    assert parse_time("2026-11-28T12:00:00Z") == T0
    assert parse_time("2026-11-28T13:00:00+01:00") == T0
    assert parse_time("") is None
    assert parse_time(None) is None


def test_a_finished_job_without_reason_or_message_reads_as_empty() -> None:
    body = job_body()
    body["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    view = JobView.of(body)
    assert (view.finished, view.succeeded, view.reason, view.message, view.completion_time) == (
        True,
        True,
        "",
        "",
        None,
    )


def test_a_pod_view_reads_the_first_waiting_and_the_first_terminated_container() -> None:
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "p",
            "uid": "pu",
            "resourceVersion": "8",
            "creationTimestamp": "2026-11-28T12:00:00Z",
            "labels": {"batch.kubernetes.io/job-name": "j"},
            "annotations": {"batch.kubernetes.io/job-completion-index": "3"},
        },
        "status": {
            "phase": "Failed",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1"}
            ],
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off"}}},
                {"state": {"terminated": {"exitCode": 3, "reason": "Error", "message": "{}"}}},
                {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        },
    }
    assert PodView.of(body) == PodView(
        namespace="ns",
        name="p",
        uid="pu",
        version=8,
        job_name="j",
        index=3,
        created=T0,
        phase="Failed",
        waiting_reason="ImagePullBackOff",
        waiting_message="back-off",
        exit_code=3,
        terminated_reason="Error",
        summary="{}",
        unschedulable="0/1",
    )
    bare = PodView.of({"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": "x"}}})
    assert (bare.index, bare.phase, bare.exit_code, bare.unschedulable) == (0, "Pending", None, None)


def test_a_wait_without_a_reason_does_not_hide_the_next_containers_reason() -> None:
    body = {
        "status": {
            "containerStatuses": [
                {"state": {"waiting": {"message": "no reason given"}}},
                {"state": {"waiting": {"reason": "CreateContainerConfigError"}}},
                {"state": {"terminated": {"exitCode": 137}}},
            ]
        }
    }
    view = PodView.of(body)
    assert (view.waiting_reason, view.waiting_message) == ("CreateContainerConfigError", "")
    assert (view.exit_code, view.terminated_reason) == (137, "")


def test_a_pod_view_reads_the_first_container_that_waits_and_a_bare_termination_as_exit_0() -> None:
    body = {
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "Unschedulable"},
            ],
            "containerStatuses": [
                {"state": {"running": {"startedAt": "2026-11-28T12:00:00Z"}}},  # a sidecar
                {"state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}},
                {"state": {"waiting": {"reason": "ContainerCreating"}}},
                {"state": {"terminated": {"reason": "Completed"}}},  # exitCode left out: an int's zero
            ],
        }
    }
    view = PodView.of(body)
    assert (view.waiting_reason, view.waiting_message) == ("ErrImagePull", "no such image")
    assert (view.exit_code, view.terminated_reason, view.summary) == (0, "Completed", "")
    assert view.unschedulable is None, "only PodScheduled's Unschedulable reason means it cannot be placed"
    unschedulable = {"status": {"conditions": [{"type": "PodScheduled", "reason": "Unschedulable"}]}}
    assert PodView.of(unschedulable).unschedulable == "", "without a message it still cannot be placed"


def test_a_resource_view_drops_managed_fields_and_keeps_when_a_user_last_changed_it() -> None:
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "r",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 3,
            "creationTimestamp": "2026-11-28T11:00:00Z",
            "deletionTimestamp": "2026-11-28T12:00:00Z",
            "annotations": {"datamanager.petrosa.io/run-now": "t"},
            "managedFields": [
                {"manager": "kubectl", "time": "2026-11-28T11:30:00Z"},
                {"manager": "operator", "time": "2026-11-28T11:45:00Z", "subresource": "status"},
                {"manager": "kubectl-annotate", "time": "2026-11-28T11:40:00Z"},
            ],
        },
        "spec": {"a": 1},
        "status": {"b": 2},
    }
    view = ResourceView.of("DataAudit", body)
    assert view.key == Key("DataAudit", "ns", "r")
    assert view == ResourceView(
        kind="DataAudit",
        namespace="ns",
        name="r",
        uid="u",
        version=7,
        resource_version="7",
        generation=3,
        created=T0 - timedelta(hours=1),
        deleting=True,
        run_now="t",
        changed=T0 - timedelta(minutes=20),  # kubectl-annotate; the operator's status write does not count
        spec_json=b'{"a":1}',
        status_json=b'{"b":2}',
    )
    assert (view.spec, view.status) == ({"a": 1}, {"b": 2})
    assert "managedFields" not in str(view)


# ---------------------------------------------------------------- the store


def job(name: str, version: int, owner: str = "r", namespace: str = "ns") -> JobView:
    reference = {"kind": "DataAudit", "name": owner, "controller": True}
    return JobView.of(
        job_body(name=name, namespace=namespace, resourceVersion=str(version), ownerReferences=[reference])
    )


def test_the_store_keeps_the_newest_version_and_indexes_it() -> None:
    store: Store[JobView] = Store(lambda j: str(j.owner))
    assert store.apply(job("a", 5)) == (None, job("a", 5))
    assert store.apply(job("a", 4)) is None, "an older event changes nothing"
    assert store.apply(job("a", 5)) is None, "nor does the same version again"
    assert store.apply(job("a", 6, owner="s")) == (job("a", 5), job("a", 6, owner="s"))
    assert store.indexed("DataAudit/ns/r") == []
    assert store.indexed("DataAudit/ns/s") == [job("a", 6, owner="s")]
    assert store.get("ns", "a") == job("a", 6, owner="s")
    assert store.remove("ns", "a") == (job("a", 6, owner="s"), None)
    assert store.remove("ns", "a") is None
    assert store.indexed("DataAudit/ns/s") == []
    assert len(store) == 0


def test_the_store_iterates_over_a_snapshot_and_indexes_several_objects_per_value() -> None:
    store: Store[JobView] = Store(lambda j: str(j.owner))
    for view in (job("a", 1), job("b", 1), job("c", 1, owner="s")):
        store.apply(view)
    for view in store:  # a watch event may change the store while the controller walks it
        if view.name == "a":
            store.remove(view.namespace, view.name)
    assert sorted(v.name for v in store) == ["b", "c"]
    assert store.indexed("DataAudit/ns/r") == [job("b", 1)], "the other object of the same value stays"
    store.remove("ns", "b")
    assert store.indexed("DataAudit/ns/r") == []
    assert store.indexed("DataAudit/ns/s") == [job("c", 1, owner="s")]


def test_a_list_replaces_the_store_and_reports_what_was_deleted_in_a_gap() -> None:
    store: Store[JobView] = Store(lambda j: str(j.owner))
    for view in (job("gone", 1), job("kept", 1), job("newer", 9), job("other-ns", 1, namespace="elsewhere")):
        store.apply(view)
    changes = store.replace([job("kept", 2), job("newer", 3), job("new", 4)], "ns")
    assert (job("gone", 1), None) in changes
    assert (job("kept", 1), job("kept", 2)) in changes
    assert (None, job("new", 4)) in changes
    assert len(changes) == 3, "a watch event newer than the list is kept, silently"
    assert store.get("ns", "newer") == job("newer", 9)
    assert store.get("elsewhere", "other-ns") is not None, "another namespace's informer owns that one"
    everything = store.replace([], None)
    assert len(everything) == 4
    assert len(store) == 0


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "majors",
        "a" * 253,
        "candles." + ".".join(c * 63 for c in "abc") + "." + "x" * 43 + ".eu-west-1",
        "x-" * 100 + "y",
        "a.-b",
    ],
)
@pytest.mark.parametrize("run_id", ["g1", "g9223372036854775807", "s202611281215", "m12345678901234567890"])
def test_job_names_are_dns_labels_of_at_most_60_characters(name: str, run_id: str) -> None:
    made = job_name(name, "0f1e2d3c-aaaa", run_id)
    assert DNS_LABEL.match(made), made
    assert len(made) <= 60
    assert made.endswith(f"-{run_id}")
    assert job_name(name, "0f1e2d3c-bbbb", run_id) != made, "the resource's uid keeps incarnations apart"


def test_a_job_name_is_the_documented_resource_digest_and_run_id() -> None:
    """docs/operator.md: ``<resource>-<uid digest>-<run id>``; workers key their MongoDB documents by it."""
    uid = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"  # sha256: d121aa3b...
    assert job_name("majors", uid, "g1") == "majors-d121aa3b-g1"
    assert job_name("eu.majors", uid, "m2") == "eu-majors-d121aa3b-m2"
    cut = job_name("candles." + "x" * 80, uid, "s202611281215")
    assert cut == "candles-" + "x" * 29 + "-d121aa3b-s202611281215"
    assert len(cut) == 60, "a long name keeps as much of itself as fits"
    at_a_dot = job_name("a" * 47 + ".eu-west-1", uid, "g1")  # the cut falls right after the dot
    assert at_a_dot == "a" * 47 + "-d121aa3b-g1", "the three parts stay apart by one dash"


def test_lease_names_are_bounded_and_distinct() -> None:
    short = lease_name(Key("DataAudit", "team-a", "majors"))
    assert short == "dataaudit.team-a.majors"
    long = [lease_name(Key("AnalyticsJob", "n" * 63, f"{'x' * 240}{i}")) for i in range(3)]
    assert all(len(n) <= 253 for n in long)
    assert len(set(long)) == 3


def test_a_lease_name_is_stable_across_operator_versions() -> None:
    """Replicas of two versions during a rollout must name a resource's Lease alike, or both would act on it:
    the whole name while it fits a DNS subdomain (253), else its first 242 characters and a 10-hex digest."""
    fits = Key("DataAudit", "ns", "x" * (253 - len("dataaudit.ns.")))
    assert lease_name(fits) == f"dataaudit.ns.{fits.name}"
    over = Key("DataAudit", "ns", fits.name + "y")
    assert lease_name(over) == f"dataaudit.ns.{fits.name}"[:242] + "-8230764f8f"
    long = Key("AnalyticsJob", "n" * 63, "x" * 240)
    assert lease_name(long) == f"analyticsjob.{'n' * 63}.{'x' * 240}"[:242] + "-4451c3dc6d"


def test_a_lease_name_cut_at_a_dot_is_still_a_dns_subdomain() -> None:
    prefix = "dataaudit.team-a."
    for separator in ".-":
        name = "a" * (241 - len(prefix)) + separator + "b" * 30  # the cut falls right after the separator
        made = lease_name(Key("DataAudit", "team-a", name))
        assert DNS_SUBDOMAIN.match(made), made
        assert made.startswith(prefix + "a" * (241 - len(prefix)) + "-")


def test_as_dict_gives_the_api_form_the_views_read() -> None:
    job = Job(
        metadata=ObjectMeta(name="j", namespace="ns", resourceVersion="7"),
        status=JobStatus(succeeded=1, completionTime="2026-11-28T12:05:00Z"),  # type: ignore[arg-type]
    )
    body = as_dict(job)
    assert body == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns", "resourceVersion": "7"},
        "status": {"completionTime": "2026-11-28T12:05:00Z", "succeeded": 1},
    }
    view = JobView.of(body)
    assert (view.name, view.version, view.completion_time) == ("j", 7, "2026-11-28T12:05:00Z")


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("image", "allowed", "ok"),
    [
        (None, (), True),
        ("", (), True),  # as the Job builder and the admission policy read it: the worker image
        ("ghcr.io/petrosa/datamanager:latest", (), True),
        ("ghcr.io/petrosa/datamanager:v2", (), False),
        ("ghcr.io/petrosa/datamanager:v2", ("ghcr.io/petrosa/*",), True),
        ("ghcr.io/petrosa-evil/x", ("ghcr.io/petrosa/*",), False),
        ("reg.example/a", ("reg.example/a",), True),
        ("reg.example/a:1", ("reg.example/a",), False),
        ("reg.example/[a]", ("reg.example/?a*",), False),
    ],
)
def test_the_image_allow_list(image: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    problem = OperatorSettings(allowed_images=allowed).image_problem(image)
    assert (problem is None) == ok
    if problem:
        assert problem == (
            f"spec.job.image {image!r} is not allowed: the operator runs only "
            f"{', '.join(['ghcr.io/petrosa/datamanager:latest', *allowed])}; "
            "remove spec.job.image, or have the operator's --allowed-images include it"
        )
