"""A FAKE Kubernetes API server in memory, and operator replicas wired to it, for the exactly-once tests.

This is a fake, not the real thing: the rig's kube-apiserver (``tests/e2e/test_exactly_once.py``) stays the
proof. It keeps only what exactly-once depends on, the way the real server does it:

- every write takes the next resourceVersion of one global counter (etcd revisions) and appends a watch event
  to one log; each replica's informers read that log at their own pace, may miss a stretch of it (a watch
  gap) and then list again (``Store.replace``), as the operator's ``Informer`` does;
- a status merge patch that carries ``metadata.resourceVersion`` is refused with 409 when the object changed
  (the precondition), and is applied as RFC 7386 says (nested objects merged, ``null`` removes a key);
- a create of an existing name is 409 AlreadyExists; an update of a Lease with an old resourceVersion is 409;
- names and labels are validated as the real server validates them (a Job name must be a DNS-1123 subdomain
  of at most 63 characters, because it becomes a label value; label values at most 63 characters);
- a delete of an object with finalizers only sets ``deletionTimestamp``; the object goes when the last
  finalizer is removed (the strategic-merge ``$deleteFromPrimitiveList/finalizers`` the operator sends);
- a Job gets one pod; a simulated job controller makes it succeed, fail, hang or wait on its image, and
  fails it past ``activeDeadlineSeconds``; a TTL controller deletes finished Jobs after
  ``ttlSecondsAfterFinished``; the garbage collector deletes a deleted resource's Jobs (background) and a
  removed Job's pods. Only what the operator reads of a Job is kept (not its pod template's spec).

Faults are injected per request (the next N requests answer 409/422/403/429/500 or time out, a timeout
either applied or not) and per replica (a crash at its k-th next request, before or after the server applied
it). Requests answer what the operator's ``LiveCluster`` answers after its own retries: typed errors.

The fake also keeps the ground truth the invariants are checked against: every Job creation (counted by run
uid and by resource uid and run id), every status write (which runs it claimed and closed, what it recorded),
and every Job that ever existed (its run uid, how it ended, whether it was deleted before it finished).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar
from unittest import mock

from datamanager_operator import reconciler as reconciler_module
from datamanager_operator.cluster import (
    AlreadyExistsError,
    ConflictError,
    LateError,
    RejectedError,
    UnavailableError,
)
from datamanager_operator.informer import Store
from datamanager_operator.leases import LeaseKeeper
from datamanager_operator.membership import Membership
from datamanager_operator.model import (
    ANNOTATION_RUN_NOW,
    ANNOTATION_RUN_UID,
    FINALIZER,
    LABEL_MANAGED_BY,
    LABEL_RESOURCE_UID,
    LABEL_RUN_ID,
    MANAGED_BY,
    PLURALS,
    Body,
    Key,
    Kind,
)
from datamanager_operator.reconciler import Caches, Reconciler
from datamanager_operator.settings import OperatorSettings
from datamanager_operator.views import JobView, PodView, ResourceView

T = TypeVar("T")
START = datetime(2026, 3, 2, 9, 58, 0, tzinfo=UTC)
OPERATOR_NAMESPACE = "datamanager-system"
LEASE_SECONDS = 15
PRESENCE_SECONDS = 10
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
RESOURCE_KINDS: tuple[Kind, ...] = ("DataAudit", "AnalyticsJob")
INFORMERS = (*RESOURCE_KINDS, "jobs", "pods")
# what a request "times out" as: the operator's LiveCluster gives up with UnavailableError after its retries
REQUEST_FAULTS = (
    "conflict",
    "invalid",
    "forbidden",
    "throttled",
    "server-error",
    "timeout-applied",
    "timeout-lost",
)
WRITE_VERBS = frozenset(
    {
        "patch_status",
        "create_job",
        "release_job",
        "delete_job",
        "create_lease",
        "replace_lease",
        "delete_lease",
    }
)
STUCK_REASON = "ImagePullBackOff"
EXIT_SUMMARY_REASON = {1: "WorkerError", 2: "InvalidConfig", 3: "SourceUnavailable", 4: "SinkUnavailable"}

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_RUN_EVENT = re.compile(r"^run (\S+) (succeeded|failed)")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def name_problem(name: str, limit: int = 253) -> str | None:
    """What the real server says of an object name that is not a DNS-1123 subdomain (None: valid)."""
    if len(name) > limit:
        return f"metadata.name: Invalid value: {name!r}: must be no more than {limit} characters"
    if not _SUBDOMAIN.match(name):
        return f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of ..."
    return None


def labels_problem(labels: Mapping[str, str], where: str) -> str | None:
    """What the real server says of invalid label keys or values (None: valid)."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and name_problem(prefix)) or len(name) > 63 or not _LABEL_NAME.match(name):
            return f"{where}: Invalid value: {key!r}: name part must consist of alphanumeric characters ..."
        if len(value) > 63:
            return f"{where}: Invalid value: {value!r}: must be no more than 63 characters"
        if not _LABEL_VALUE.match(value):
            return (
                f"{where}: Invalid value: {value!r}: a valid label must be an empty string or consist of ..."
            )
    return None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def clone(value: T) -> T:
    """A deep copy of JSON data (what the server stores and serves), faster than ``copy.deepcopy``."""
    copied: T = json.loads(json.dumps(value))
    return copied


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class Crash(Exception):  # noqa: N818 - a replica's process dying, not an error it could handle
    """The replica making the request died (a fault): nothing after this point of its code runs."""


@dataclass
class Fault:
    kind: str  # one of REQUEST_FAULTS
    verb: str | None  # None: any request it applies to
    replica: str | None  # identity of the replica whose requests it hits; None: any
    remaining: int

    def applies(self, verb: str, replica: str) -> bool:
        if self.replica is not None and self.replica != replica:
            return False
        if self.verb is not None and self.verb != verb:
            return False
        if self.kind == "conflict":  # only writes with a precondition answer 409 Conflict
            return verb in ("patch_status", "replace_lease")
        if self.kind == "invalid":  # 422 is an answer to a write
            return verb in WRITE_VERBS or verb == "record_event"
        return True


@dataclass
class CrashPlan:
    after: int  # requests to let through first
    applied: bool  # whether the server carries out the request the replica dies on


@dataclass
class WatchEvent:
    kind: str  # DataAudit, AnalyticsJob, Job, Pod
    type: str  # ADDED, MODIFIED, DELETED
    body: Body


@dataclass
class RunRecord:
    """A run as the server saw it claimed in a resource's status."""

    uid: str
    resource_uid: str
    key: Key
    run_id: str
    number: int
    job_name: str
    policy: str
    closed: bool = False
    recorded: str | None = None  # how its end is known: "lastRun <reason>" or "event <reason>"


@dataclass
class JobRecord:
    """A Job that was created: its run, and what became of it."""

    uid: str
    name: str
    namespace: str
    run_uid: str
    resource_uid: str
    foreign: bool  # not made by the operator (a squatter under a run's name)
    fate: str = "run"  # run: finishes when told; hang: only its deadline ends it; stuck: waits on its image
    result: str | None = None  # Complete or Failed
    deleted_unfinished: bool = False
    stuck: bool = False
    gone: bool = False


class FakeServer:
    """The fake API server's state, its simulated controllers, and the ground truth for the invariants."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self.mono = 1000.0
        self.revision = 100
        self.objects: dict[str, dict[tuple[str, str], Body]] = {
            k: {} for k in (*RESOURCE_KINDS, "Job", "Pod", "Lease")
        }
        self.log: list[WatchEvent] = []
        self.events: list[Body] = []
        self.faults: list[Fault] = []
        self.crashes: dict[str, CrashPlan] = {}
        self.stats: Counter[str] = Counter()
        self.violations: list[str] = []
        self.runs: dict[str, RunRecord] = {}
        self.jobs: dict[str, JobRecord] = {}  # by Job uid
        self.created: Counter[str] = Counter()  # operator Job creations per run uid
        self.created_by_id: Counter[tuple[str, str]] = Counter()  # per (resource uid, run id)
        self.refused: set[str] = set()  # run uids whose Job create was refused (a fault, or invalid)
        self.deleted_resources: set[str] = set()  # uids
        self.policies: dict[str, str] = {}  # resource uid -> concurrencyPolicy it was created with
        self.trace: list[str] = []
        self.actor = "user"  # who makes the current write
        self.writes = 0  # operator writes that change runs or Jobs (status, Job create/delete/release)
        self._uids = 0

    # ------------------------------------------------------------ time and identity

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.actor = "controllers"
        self.now += timedelta(seconds=seconds)
        self.mono += seconds
        self._job_controller()
        self._ttl_controller()

    def new_uid(self, prefix: str) -> str:
        self._uids += 1
        return f"{prefix}-{self._uids:05d}"

    # ------------------------------------------------------------ storage

    def get(self, kind: str, namespace: str, name: str) -> Body | None:
        found = self.objects[kind].get((namespace, name))
        return clone(found) if found is not None else None

    def _stamp(self, kind: str, body: Body, event: str) -> Body:
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        meta = body["metadata"]
        self._trace(kind, event, body)
        self.objects[kind][(meta["namespace"], meta["name"])] = body
        if kind != "Lease":
            self.log.append(WatchEvent(kind, event, clone(body)))
        return clone(body)

    def _trace(self, kind: str, event: str, body: Body) -> None:
        """One line per write, for the story of a failure (``trace_of``)."""
        if kind == "Lease":
            return
        meta = body["metadata"]
        line = (
            f"{self.revision} {iso(self.now)} {self.actor}: {event} {kind} {meta['namespace']}/{meta['name']}"
        )
        if kind == "Job":
            line += (
                f" finalizers={meta.get('finalizers')} deleting={bool(meta.get('deletionTimestamp'))}"
                f" finished={finished(body)}"
            )
        elif kind in RESOURCE_KINDS:
            status = body.get("status") or {}
            active = [f"{r.get('id')}#{r.get('number')}" for r in status.get("activeRuns") or []]
            last = status.get("lastRun") or {}
            line += (
                f" gen={meta.get('generation')} active={active} last={last.get('id')}#{last.get('number')}"
                f"/{last.get('reason')}"
            )
        self.trace.append(line)

    def story(self, *names: str, last: int = 40) -> str:
        """The last writes that touched objects with any of these names, one line each."""
        lines = [line for line in self.trace if any(name in line for name in names)]
        return "\n".join(f"    {line}" for line in lines[-last:])

    def _create(self, kind: str, body: Body) -> Body:
        meta = body.setdefault("metadata", {})
        meta.update(uid=self.new_uid(kind.lower()), creationTimestamp=iso(self.now))
        return self._stamp(kind, body, "ADDED")

    def _remove(self, kind: str, namespace: str, name: str) -> None:
        body = self.objects[kind].pop((namespace, name))
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        self._trace(kind, "DELETED", body)
        if kind != "Lease":
            self.log.append(WatchEvent(kind, "DELETED", clone(body)))
        if kind == "Job":
            self._job_gone(body)
        if kind in RESOURCE_KINDS:
            self._resource_gone(body)

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        """A delete as the server does it: finalizers hold the object; False when there is none."""
        body = self.objects[kind].get((namespace, name))
        if body is None:
            return False
        meta = body["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = iso(self.now)
                if kind == "Job":
                    record = self.jobs.get(meta["uid"])
                    if record is not None and record.result is None:
                        record.deleted_unfinished = True
                self._stamp(kind, body, "MODIFIED")
        else:
            self._remove(kind, namespace, name)
        return True

    # ------------------------------------------------------------ resources (what users do)

    def create_resource(
        self, kind: Kind, namespace: str, name: str, spec: Body, annotations: Mapping[str, str] | None = None
    ) -> Body:
        self.actor = "user"
        problem = name_problem(name)
        assert problem is None, problem
        assert (namespace, name) not in self.objects[kind], f"{kind} {namespace}/{name} exists"
        body: Body = {
            "apiVersion": "datamanager.petrosa.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": 1,
                "annotations": dict(annotations or {}),
            },
            "spec": clone(spec),
        }
        created = self._create(kind, body)
        self.policies[created["metadata"]["uid"]] = str(spec.get("concurrencyPolicy", "Forbid"))
        return created

    def update_spec(self, key: Key, spec: Body) -> None:
        self.actor = "user"
        body = self.objects[key.kind][(key.namespace, key.name)]
        if body["spec"] != spec:
            body["spec"] = clone(spec)
            body["metadata"]["generation"] += 1
            self._stamp(key.kind, body, "MODIFIED")

    def annotate(self, key: Key, value: str) -> None:
        """``kubectl annotate ... run-now=<value> --overwrite``: a write even when the value is the same."""
        self.actor = "user"
        body = self.objects[key.kind][(key.namespace, key.name)]
        body["metadata"].setdefault("annotations", {})[ANNOTATION_RUN_NOW] = value
        self._stamp(key.kind, body, "MODIFIED")

    def delete_resource(self, key: Key) -> None:
        self.actor = "user"
        self._delete(key.kind, key.namespace, key.name)

    def _resource_gone(self, body: Body) -> None:
        uid = body["metadata"]["uid"]
        self.deleted_resources.add(uid)
        for (namespace, name), job in list(self.objects["Job"].items()):  # the garbage collector, background
            if any(ref.get("uid") == uid for ref in job["metadata"].get("ownerReferences") or []):
                self._delete("Job", namespace, name)

    def resource_of(self, uid: str) -> Body | None:
        for kind in RESOURCE_KINDS:
            for body in self.objects[kind].values():
                if body["metadata"]["uid"] == uid:
                    return body
        return None

    # ------------------------------------------------------------ Jobs and their pods

    def job_records(self, *, alive: bool = True) -> list[JobRecord]:
        return [r for r in self.jobs.values() if not (alive and r.gone)]

    def _new_job(self, manifest: Body, *, foreign: bool) -> Body:
        spec = manifest.get("spec") or {}
        template = spec.get("template") or {}
        body = {  # the pod template's spec is not kept: nothing here reads it, and copies of it cost
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": clone(manifest["metadata"]),
            "spec": {
                **{k: spec[k] for k in ("activeDeadlineSeconds", "ttlSecondsAfterFinished") if k in spec},
                "template": {"metadata": clone(template.get("metadata") or {})},
            },
            "status": {"startTime": iso(self.now), "active": 1},
        }
        created = self._create("Job", body)
        meta = created["metadata"]
        labels = meta.get("labels") or {}
        self.jobs[meta["uid"]] = JobRecord(
            uid=meta["uid"],
            name=meta["name"],
            namespace=meta["namespace"],
            run_uid=(meta.get("annotations") or {}).get(ANNOTATION_RUN_UID, ""),
            resource_uid=labels.get(LABEL_RESOURCE_UID, ""),
            foreign=foreign,
        )
        pod: Body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-p{self.revision % 100000:05d}",
                "namespace": meta["namespace"],
                "labels": {
                    **((template.get("metadata") or {}).get("labels") or {}),
                    JOB_NAME_LABEL: meta["name"],
                },
                "ownerReferences": [{"kind": "Job", "name": meta["name"], "uid": meta["uid"]}],
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "worker", "state": {"running": {}}}],
            },
        }
        self._create("Pod", pod)
        return created

    def squat(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        """Someone else's Job under a name a run will claim (an older operator's, a user's): never adopted."""
        self.actor = "someone else"
        if (namespace, name) in self.objects["Job"]:
            return
        manifest: Body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"template": {"metadata": {"labels": dict(labels)}}},
        }
        self._new_job(manifest, foreign=True)

    def pods_of(self, namespace: str, job: str) -> list[Body]:
        return [
            p
            for (ns, _), p in self.objects["Pod"].items()
            if ns == namespace and (p["metadata"].get("labels") or {}).get(JOB_NAME_LABEL) == job
        ]

    def finish_job(self, namespace: str, name: str, exit_code: int, reason: str | None = None) -> bool:
        """The Job's pod ends with ``exit_code`` (0: success, with a worker summary), and so does the Job. A
        pod that waits on its image never runs: only the deadline (``reason``) ends such a Job."""
        self.actor = "job controller"
        job = self.objects["Job"].get((namespace, name))
        if job is None or job["metadata"].get("deletionTimestamp") or finished(job):
            return False
        record = self.jobs[job["metadata"]["uid"]]
        if record.stuck and reason is None:
            return False
        for pod in self.pods_of(namespace, name):
            terminated: Body = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
            if exit_code == 0:
                terminated["message"] = _summary(name, "Succeeded", 0, "Completed")
            elif exit_code in EXIT_SUMMARY_REASON and exit_code != 1:
                terminated["message"] = _summary(name, "Failed", exit_code, EXIT_SUMMARY_REASON[exit_code])
            pod["status"] = {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [{"name": "worker", "state": {"terminated": terminated}}],
            }
            self._stamp("Pod", pod, "MODIFIED")
        now = iso(self.now)
        if exit_code == 0:
            condition = {"type": "Complete", "status": "True", "reason": "", "lastTransitionTime": now}
            job["status"] = {**job["status"], "active": 0, "succeeded": 1, "completionTime": now}
            record.result = "Complete"
        else:
            why = reason or "BackoffLimitExceeded"
            condition = {
                "type": "Failed",
                "status": "True",
                "reason": why,
                "message": why,
                "lastTransitionTime": now,
            }
            job["status"] = {**job["status"], "active": 0, "failed": 1}
            record.result = "Failed"
        job["status"]["conditions"] = [condition]
        self._stamp("Job", job, "MODIFIED")
        return True

    def stick_job(self, namespace: str, name: str) -> bool:
        """The Job's pod waits on an image it cannot pull (stuck until the operator gives up on it)."""
        self.actor = "kubelet"
        job = self.objects["Job"].get((namespace, name))
        if job is None or finished(job) or job["metadata"].get("deletionTimestamp"):
            return False
        self.jobs[job["metadata"]["uid"]].stuck = True
        self.jobs[job["metadata"]["uid"]].fate = "stuck"
        for pod in self.pods_of(namespace, name):
            waiting = {"reason": STUCK_REASON, "message": "Back-off pulling image"}
            pod["status"] = {
                "phase": "Pending",
                "containerStatuses": [{"name": "worker", "state": {"waiting": waiting}}],
            }
            self._stamp("Pod", pod, "MODIFIED")
        return True

    def _job_controller(self) -> None:
        """activeDeadlineSeconds: a Job running longer fails with DeadlineExceeded (its pod is killed)."""
        for (namespace, name), job in list(self.objects["Job"].items()):
            deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
            if deadline is None or finished(job) or job["metadata"].get("deletionTimestamp"):
                continue
            started = datetime.fromisoformat(job["status"]["startTime"].replace("Z", "+00:00"))
            if (self.now - started).total_seconds() >= deadline:
                self.finish_job(namespace, name, 137, "DeadlineExceeded")

    def _ttl_controller(self) -> None:
        for (namespace, name), job in list(self.objects["Job"].items()):
            ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
            if ttl is None or not finished(job) or job["metadata"].get("deletionTimestamp"):
                continue
            ended = _finished_at(job)
            if ended is not None and (self.now - ended).total_seconds() >= ttl:
                self._delete("Job", namespace, name)

    def ttl_delete(self, namespace: str, name: str) -> bool:
        """The TTL controller deleting a finished Job now (as with ``ttlSecondsAfterFinished: 0``)."""
        self.actor = "ttl controller"
        job = self.objects["Job"].get((namespace, name))
        if job is None or not finished(job) or job["metadata"].get("deletionTimestamp"):
            return False
        return self._delete("Job", namespace, name)

    def user_delete_job(self, namespace: str, name: str) -> bool:
        """``kubectl delete job <name>`` (background propagation)."""
        self.actor = "user"
        job = self.objects["Job"].get((namespace, name))
        if job is None or job["metadata"].get("deletionTimestamp"):
            return False
        return self._delete("Job", namespace, name)

    def _job_gone(self, body: Body) -> None:
        meta = body["metadata"]
        record = self.jobs.get(meta["uid"])
        if record is not None:
            record.gone = True
        for pod in self.pods_of(meta["namespace"], meta["name"]):  # the garbage collector
            self._remove("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if record is None or record.foreign or not record.run_uid:
            return
        run = self.runs.get(record.run_uid)
        resource = self.resource_of(record.resource_uid)
        if run is not None and not run.closed and resource is not None:
            self.violations.append(
                f"Job {meta['name']} disappeared while its run {run.run_id} ({run.uid}) is still in "
                f"activeRuns of {run.key}; its story:\n{self.story(run.key.name, meta['name'])}"
            )

    # ------------------------------------------------------------ the operator's requests

    def fault(self, verb: str, replica: str) -> str | None:
        """The injected fault this request meets, if any (consumed)."""
        for fault in self.faults:
            if fault.applies(verb, replica):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                self.stats[f"hit:{fault.kind}"] += 1
                return fault.kind
        return None

    def patch_status(self, key: Key, status: Body, resource_version: str, writer: str) -> Body:
        body = self.objects[key.kind].get((key.namespace, key.name))
        if body is None:
            raise RejectedError(f'{key.kind.lower()}s "{key.name}" not found', 404)
        if body["metadata"]["resourceVersion"] != resource_version:
            raise ConflictError(
                f'Operation cannot be fulfilled on {PLURALS[key.kind]} "{key.name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                409,
            )
        old = body.get("status") or {}
        new = merge_patch(old, status)
        intended = without_nulls(status)
        if new != intended:
            self.violations.append(
                f"status write of {key} by {writer}: the merge patch leaves {_diff(new, intended)} that the "
                "operator did not write"
            )
        self._audit_status(key, body, old, new, writer)
        body["status"] = new
        self.writes += 1
        return self._stamp(key.kind, body, "MODIFIED")

    def create_job(self, manifest: Body, writer: str) -> Body:
        meta = manifest.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        problem = name_problem(name, 63) or labels_problem(meta.get("labels") or {}, "metadata.labels")
        template = ((manifest.get("spec") or {}).get("template") or {}).get("metadata") or {}
        problem = problem or labels_problem(template.get("labels") or {}, "spec.template.metadata.labels")
        if problem is not None:
            self.violations.append(f"{writer} built a Job the API server refuses: {problem}")
            self.refused.add((meta.get("annotations") or {}).get(ANNOTATION_RUN_UID, ""))
            raise RejectedError(f'Job.batch "{name}" is invalid: {problem}', 422)
        if (namespace, name) in self.objects["Job"]:
            raise AlreadyExistsError(f'jobs.batch "{name}" already exists', 409)
        run_uid = (meta.get("annotations") or {}).get(ANNOTATION_RUN_UID, "")
        labels = meta.get("labels") or {}
        resource_uid, run_id = labels.get(LABEL_RESOURCE_UID, ""), labels.get(LABEL_RUN_ID, "")
        run = self.runs.get(run_uid)
        if run is None or run.closed:
            state = "unknown to any status" if run is None else "already closed"
            self.violations.append(f"{writer} created Job {name} for run {run_uid}, which is {state}")
        self.created[run_uid] += 1
        self.created_by_id[(resource_uid, run_id)] += 1
        if self.created[run_uid] > 1:
            story = self.story(name)
            self.violations.append(f"run {run_uid} got a second Job creation ({name}, by {writer}):\n{story}")
        if self.created_by_id[(resource_uid, run_id)] > 1:
            self.violations.append(
                f"run id {run_id} of resource {resource_uid} got a second Job ({name}, by {writer})"
            )
        self.writes += 1
        created = self._new_job(manifest, foreign=False)
        self._check_single_active(resource_uid)
        return created

    def release_job(self, namespace: str, name: str) -> None:
        job = self.objects["Job"].get((namespace, name))
        if job is None:
            return
        meta = job["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        meta["finalizers"] = [f for f in meta["finalizers"] if f != FINALIZER]
        self.writes += 1
        if meta.get("deletionTimestamp") and not meta["finalizers"]:
            self._remove("Job", namespace, name)
        else:
            self._stamp("Job", job, "MODIFIED")

    def delete_job(self, namespace: str, name: str) -> None:
        if self._delete("Job", namespace, name):
            self.writes += 1

    def create_lease(self, lease: Body) -> Body:
        meta = lease["metadata"]
        problem = name_problem(meta["name"])
        if problem is not None:
            raise RejectedError(f"Lease is invalid: {problem}", 422)
        if (meta["namespace"], meta["name"]) in self.objects["Lease"]:
            raise AlreadyExistsError(f'leases.coordination.k8s.io "{meta["name"]}" already exists', 409)
        return self._create("Lease", clone(lease))

    def replace_lease(self, lease: Body) -> Body:
        meta = lease["metadata"]
        current = self.objects["Lease"].get((meta["namespace"], meta["name"]))
        if current is None:
            raise RejectedError(f'leases.coordination.k8s.io "{meta["name"]}" not found', 404)
        if meta.get("resourceVersion") and meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ConflictError(f'Operation cannot be fulfilled on leases "{meta["name"]}"', 409)
        body = clone(lease)
        body["metadata"] = {
            **current["metadata"],
            **{k: v for k, v in meta.items() if k != "resourceVersion"},
        }
        return self._stamp("Lease", body, "MODIFIED")

    def delete_lease(self, namespace: str, name: str) -> bool:
        if (namespace, name) not in self.objects["Lease"]:
            return False
        self._remove("Lease", namespace, name)
        return True

    def list_leases(self, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        return [
            clone(lease)
            for (ns, _), lease in self.objects["Lease"].items()
            if ns == namespace
            and all((lease["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    def record_event(self, key: Key, uid: str, kind: str, reason: str, message: str, writer: str) -> None:
        self.events.append({"key": key, "uid": uid, "type": kind, "reason": reason, "message": message})
        found = _RUN_EVENT.match(message)
        if reason not in ("RunSucceeded", "RunFailed") or found is None:
            return
        for run in self.runs.values():
            if (
                run.resource_uid == uid
                and run.run_id == found.group(1)
                and run.closed
                and (run.recorded is None or run.recorded.startswith("status counters"))
            ):
                run.recorded = f"event {reason}"

    # ------------------------------------------------------------ invariants checked at each write

    def _audit_status(self, key: Key, body: Body, old: Body, new: Body, writer: str) -> None:
        uid = body["metadata"]["uid"]
        before = {r.get("uid", ""): r for r in old.get("activeRuns") or []}
        after = {r.get("uid", ""): r for r in new.get("activeRuns") or []}
        policy = self.policies.get(uid, "Forbid")
        for run_uid, run in after.items():
            known = self.runs.get(run_uid)
            if known is None:
                self.runs[run_uid] = RunRecord(
                    run_uid, uid, key, run["id"], int(run.get("number", 0)), run["jobName"], policy
                )
            elif known.closed:
                self.violations.append(
                    f"{writer} revived run {known.run_id} ({run_uid}) of {key}, closed before"
                )
        if policy != "Allow" and len(after) > 1:
            self.violations.append(f"{writer} made {len(after)} runs active at once on {key} under {policy}")
        last, last_before = new.get("lastRun") or {}, old.get("lastRun") or {}
        if int(last.get("number", 0)) < int(last_before.get("number", 0)):
            self.violations.append(
                f"{writer} moved lastRun of {key} back from run {last_before.get('number')} to "
                f"{last.get('number')}"
            )
        if (new.get("observedGeneration") or 0) < (old.get("observedGeneration") or 0):
            self.violations.append(
                f"{writer} moved observedGeneration of {key} back from {old.get('observedGeneration')} to "
                f"{new.get('observedGeneration')}"
            )
        if last.get("uid") and last.get("uid") != last_before.get("uid"):
            run_uid = str(last["uid"])
            if run_uid not in self.runs:  # claimed and ended in one write (ImageNotAllowed)
                self.runs[run_uid] = RunRecord(
                    run_uid, uid, key, last["id"], int(last.get("number", 0)), last["jobName"], policy
                )
            record = self.runs[run_uid]
            record.recorded = f"lastRun {last.get('reason')}"
            self._check_outcome(record, str(last.get("outcome")), str(last.get("reason")), writer)
        for run_uid in set(before) - set(after):
            closed = self.runs[run_uid]
            closed.closed = True
            if closed.recorded is None and closed.number < int(last.get("number", 0)):
                # an older run ending after a newer one (Allow): lastRun keeps the newer; the write that
                # closes it counts it in lastSuccessfulTime / consecutiveFailures (docs/operator.md)
                closed.recorded = "status counters (an older run under Allow)"
        if last.get("uid") in self.runs:
            self.runs[str(last["uid"])].closed = True

    def _check_outcome(self, run: RunRecord, outcome: str, reason: str, writer: str) -> None:
        """The outcome recorded for ``run`` must be what became of a Job carrying the run's uid."""
        jobs = [j for j in self.jobs.values() if j.run_uid == run.uid and not j.foreign]
        name_taken = any(j.foreign and j.name == run.job_name for j in self.jobs.values())
        if reason == "RunSucceeded":
            ok = outcome == "Succeeded" and any(j.result == "Complete" for j in jobs)
        elif reason == "JobDeleted":
            ok = any(j.deleted_unfinished for j in jobs)
        elif reason == "JobRejected":
            ok = run.uid in self.refused or name_taken
        elif reason == STUCK_REASON:
            ok = any(j.stuck for j in jobs)
        elif reason == "Replaced":
            ok = run.policy == "Replace"
        else:  # the worker's reason, or the Job's (BackoffLimitExceeded, ...) when no pod was seen
            ok = outcome == "Failed" and any(j.result == "Failed" for j in jobs)
        if not ok:
            seen = [(j.name, j.result, j.deleted_unfinished) for j in jobs]
            self.violations.append(
                f"{writer} recorded run {run.run_id} ({run.uid}) of {run.key} as {outcome}/{reason}, which "
                f"no Job of that run shows (its Jobs: {seen}; refused: {run.uid in self.refused}; "
                f"name taken by another Job: {name_taken})"
            )

    def _check_single_active(self, resource_uid: str) -> None:
        """Under Forbid and Replace, at most one unfinished Job not being deleted per resource."""
        if self.policies.get(resource_uid, "Forbid") == "Allow":
            return
        active = [
            j["metadata"]["name"]
            for j in self.objects["Job"].values()
            if (j["metadata"].get("labels") or {}).get(LABEL_RESOURCE_UID) == resource_uid
            and (j["metadata"].get("annotations") or {}).get(ANNOTATION_RUN_UID)
            and not finished(j)
            and not j["metadata"].get("deletionTimestamp")
        ]
        if len(active) > 1:
            self.violations.append(
                f"{len(active)} unfinished Jobs at once for resource {resource_uid} under "
                f"{self.policies.get(resource_uid)}: {sorted(active)}"
            )


def finished(job: Body) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _finished_at(job: Body) -> datetime | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("lastTransitionTime"):
            return datetime.fromisoformat(str(condition["lastTransitionTime"]).replace("Z", "+00:00"))
    return None


def _summary(run_id: str, outcome: str, exit_code: int, reason: str) -> str:
    return json.dumps(
        {
            "job": "audit",
            "outcome": outcome,
            "exitCode": exit_code,
            "reason": reason,
            "message": f"simulated worker: {reason}",
            "runId": run_id,
            "healthScore": 95.0 if outcome == "Succeeded" else None,
            "level": "healthy" if outcome == "Succeeded" else None,
            "results": {"database": "datamanager", "collection": "audit", "runId": run_id, "documents": 3}
            if outcome == "Succeeded"
            else None,
        }
    )


def _diff(actual: Any, intended: Any, path: str = "status") -> str:
    if isinstance(actual, dict) and isinstance(intended, dict):
        for k in sorted(set(actual) | set(intended)):
            if actual.get(k) != intended.get(k):
                return _diff(actual.get(k), intended.get(k), f"{path}.{k}")
    return f"{path}={actual!r} (written: {intended!r})"


class FakeCluster:
    """One replica's requests to the fake server: the operator's ``Cluster`` protocol, with faults."""

    def __init__(self, server: FakeServer, identity: str) -> None:
        self.server = server
        self.identity = identity
        self.alive = True
        self.requests = 0

    def _enter(self, verb: str) -> tuple[str | None, bool]:
        """(the request fault met, whether this replica dies on this request) before it is carried out."""
        if not self.alive:
            raise Crash(f"{self.identity} is dead")
        self.requests += 1
        plan = self.server.crashes.get(self.identity)
        if plan is not None:
            if plan.after <= 0:
                del self.server.crashes[self.identity]
                self.alive = False
                self.server.stats["crash:mid-reconcile"] += 1
                self.server.actor = f"{self.identity} (dying)"
                if not plan.applied:
                    raise Crash(f"{self.identity} died before {verb}")
                return None, True
            plan.after -= 1
        fault = self.server.fault(verb, self.identity)
        self.server.actor = self.identity
        if fault == "conflict":
            raise ConflictError("Operation cannot be fulfilled: the object has been modified (injected)", 409)
        if fault in ("invalid", "forbidden"):
            code = 422 if fault == "invalid" else 403
            raise RejectedError(f"injected {code}: admission webhook denied the request", code)
        if fault in ("throttled", "server-error", "timeout-lost"):
            raise UnavailableError(f"injected {fault}")
        return fault, False

    def _leave(self, verb: str, fault: str | None, dies: bool) -> None:
        if dies:
            raise Crash(f"{self.identity} died after {verb}")
        if fault == "timeout-applied":
            raise UnavailableError(f"injected timeout after {verb} was applied")

    async def pace(self, requests: int) -> None:
        """The fake has no rate limit: nothing to wait for."""

    async def get_resource(self, key: Key) -> Body | None:
        fault, dies = self._enter("get_resource")
        found = self.server.get(key.kind, key.namespace, key.name)
        self._leave("get_resource", fault, dies)
        return found

    async def patch_status(self, key: Key, status: Body, resource_version: str) -> Body:
        fault, dies = self._enter("patch_status")
        written = self.server.patch_status(key, status, resource_version, self.identity)
        self._leave("patch_status", fault, dies)
        return written

    async def get_job(self, namespace: str, name: str) -> Body | None:
        fault, dies = self._enter("get_job")
        found = self.server.get("Job", namespace, name)
        self._leave("get_job", fault, dies)
        return found

    async def create_job(self, manifest: Body, deadline: float) -> Body:
        if self.server.monotonic() > deadline:  # as LiveCluster: never sent after the deadline
            self.server.stats["late-create"] += 1
            raise LateError("create_job not sent: its deadline passed")
        try:
            fault, dies = self._enter("create_job")
        except RejectedError:
            self.server.refused.add(
                (manifest["metadata"].get("annotations") or {}).get(ANNOTATION_RUN_UID, "")
            )
            raise
        created = self.server.create_job(manifest, self.identity)
        self._leave("create_job", fault, dies)
        return created

    async def release_job(self, namespace: str, name: str) -> None:
        fault, dies = self._enter("release_job")
        self.server.release_job(namespace, name)
        self._leave("release_job", fault, dies)

    async def delete_job(self, namespace: str, name: str) -> None:
        fault, dies = self._enter("delete_job")
        self.server.delete_job(namespace, name)
        self._leave("delete_job", fault, dies)

    async def list_pods(self, namespace: str, job_name: str) -> list[Body]:
        fault, dies = self._enter("list_pods")
        pods = [clone(p) for p in self.server.pods_of(namespace, job_name)]
        self._leave("list_pods", fault, dies)
        return pods

    async def get_lease(self, namespace: str, name: str) -> Body | None:
        fault, dies = self._enter("get_lease")
        found = self.server.get("Lease", namespace, name)
        self._leave("get_lease", fault, dies)
        return found

    async def create_lease(self, lease: Body) -> Body:
        fault, dies = self._enter("create_lease")
        created = self.server.create_lease(lease)
        self._leave("create_lease", fault, dies)
        return created

    async def replace_lease(self, lease: Body) -> Body:
        fault, dies = self._enter("replace_lease")
        replaced = self.server.replace_lease(lease)
        self._leave("replace_lease", fault, dies)
        return replaced

    async def delete_lease(self, namespace: str, name: str) -> None:
        fault, dies = self._enter("delete_lease")
        self.server.delete_lease(namespace, name)
        self._leave("delete_lease", fault, dies)

    async def list_leases(self, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        fault, dies = self._enter("list_leases")
        found = self.server.list_leases(namespace, labels)
        self._leave("list_leases", fault, dies)
        return found

    async def record_event(self, key: Key, uid: str, kind: str, reason: str, message: str) -> None:
        # best effort, as LiveCluster's: a refused or failed event is dropped, never raised
        if not self.alive:
            self.server.stats["event:lost-in-crash"] += 1
            return
        try:
            _, dies = self._enter("record_event")
        except (RejectedError, UnavailableError, ConflictError, Crash):
            self.server.stats["event:dropped"] += 1
            return
        self.server.record_event(key, uid, kind, reason, message, self.identity)
        if dies:
            self.server.stats["event:sent-then-crash"] += 1


def _matches(informer: str, event_kind: str, body: Body) -> bool:
    if informer in RESOURCE_KINDS:
        return event_kind == informer
    wanted = {"jobs": "Job", "pods": "Pod"}[informer]
    return event_kind == wanted and (body["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY


class Replica:
    """One operator replica: the real Reconciler, LeaseKeeper and Membership on the fake server, and its own
    caches (the informers' Stores), fed from the server's watch log at the pace the test chooses."""

    def __init__(self, server: FakeServer, identity: str, skew: float = 0.0) -> None:
        self.server = server
        self.identity = identity
        self.skew = skew
        self.client = FakeCluster(server, identity)
        self.caches = Caches(resources={kind: Store() for kind in PLURALS})
        settings = OperatorSettings(
            instance_id=identity,
            namespace=OPERATOR_NAMESPACE,
            lease_seconds=LEASE_SECONDS,
            presence_seconds=PRESENCE_SECONDS,
        )
        self.leases = LeaseKeeper(
            self.client, identity, OPERATOR_NAMESPACE, LEASE_SECONDS, clock=server.monotonic, wall=self.wall
        )
        self.membership = Membership(
            self.client,
            OPERATOR_NAMESPACE,
            identity,
            PRESENCE_SECONDS,
            on_change=lambda: None,
            clock=server.monotonic,
        )
        self.reconciler = Reconciler(
            self.client,
            settings,
            self.caches,
            self.leases,
            self.membership,
            clock=self.wall,
            new_uid=lambda: server.new_uid("run"),  # unique like the operator's random ones, and repeatable
        )
        self.cursor = dict.fromkeys(INFORMERS, len(server.log))
        self.broken = dict.fromkeys(INFORMERS, False)

    def wall(self) -> datetime:
        return self.server.now + timedelta(seconds=self.skew)

    @property
    def alive(self) -> bool:
        return self.client.alive

    @property
    def ready(self) -> bool:
        return self.alive and self.membership.known.is_set()

    def relist(self, informer: str) -> None:
        """The informer lists its kind and replaces its store: objects deleted meanwhile are dropped."""
        server = self.server
        if informer in RESOURCE_KINDS:
            kind: Kind = "DataAudit" if informer == "DataAudit" else "AnalyticsJob"
            self.caches.resources[kind].replace(
                [ResourceView.of(kind, clone(b)) for b in server.objects[kind].values()], None
            )
        elif informer == "jobs":
            self.caches.jobs.replace(
                [JobView.of(clone(b)) for b in server.objects["Job"].values() if _matches("jobs", "Job", b)],
                None,
            )
        else:
            self.caches.pods.replace(
                [PodView.of(clone(b)) for b in server.objects["Pod"].values() if _matches("pods", "Pod", b)],
                None,
            )
        self.cursor[informer] = len(server.log)
        self.broken[informer] = False

    def prime(self) -> None:
        for informer in INFORMERS:
            self.relist(informer)

    def deliver(self, informer: str, count: int | None = None) -> int:
        """Hands the next ``count`` (None: all) watch events to one informer; a broken watch loses them."""
        log = self.server.log
        end = len(log) if count is None else min(len(log), self.cursor[informer] + count)
        delivered = 0
        for event in log[self.cursor[informer] : end]:
            if not _matches(informer, event.kind, event.body) or self.broken[informer]:
                continue
            delivered += 1
            meta = event.body["metadata"]
            if informer in RESOURCE_KINDS:
                kind: Kind = "DataAudit" if informer == "DataAudit" else "AnalyticsJob"
                store_r = self.caches.resources[kind]
                if event.type == "DELETED":
                    store_r.remove(meta["namespace"], meta["name"])
                else:
                    store_r.apply(ResourceView.of(kind, event.body))
            elif informer == "jobs":
                if event.type == "DELETED":
                    self.caches.jobs.remove(meta["namespace"], meta["name"])
                else:
                    self.caches.jobs.apply(JobView.of(event.body))
            elif event.type == "DELETED":
                self.caches.pods.remove(meta["namespace"], meta["name"])
            else:
                self.caches.pods.apply(PodView.of(event.body))
        self.cursor[informer] = end
        return delivered

    def deliver_all(self) -> None:
        for informer in INFORMERS:
            self.deliver(informer)


class World:
    """The fake server, replica slots (a slot's replica may be dead) and one event loop to run them on."""

    def __init__(self, replicas: int = 3, start: datetime = START) -> None:
        self.server = FakeServer(start)
        self.loop = asyncio.new_event_loop()
        # the reconciler times its live confirmations by the monotonic clock: the simulated one here
        self._clock = mock.patch.object(
            reconciler_module, "time", SimpleNamespace(monotonic=self.server.monotonic)
        )
        self._clock.start()
        self.slots: list[Replica] = []
        self.errors: list[str] = []  # reconciles that failed, for the story of a failure
        self.incarnations: Counter[int] = Counter()
        for slot in range(replicas):
            self.slots.append(self.start_replica(slot))

    def close(self) -> None:
        try:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()
        finally:
            self._clock.stop()

    def run(self, coro: Awaitable[T]) -> T:
        async def then_background() -> T:
            result = await coro
            await asyncio.sleep(0)  # the Events the reconcile emitted in the background are sent
            return result

        return self.loop.run_until_complete(then_background())

    # ------------------------------------------------------------ replicas

    def start_replica(self, slot: int, *, same_identity: bool = False, skew: float = 0.0) -> Replica:
        """A new process in ``slot``: empty memory, caches primed by a list, then its first beat."""
        if not same_identity:
            self.incarnations[slot] += 1
        identity = f"operator-{slot}-{self.incarnations[slot]}"
        replica = Replica(self.server, identity, skew)
        replica.prime()
        if slot < len(self.slots):
            self.slots[slot] = replica
        self.beat(replica)
        return replica

    def crash(self, slot: int) -> None:
        self.slots[slot].client.alive = False

    def beat(self, replica: Replica) -> bool:
        if not replica.alive:
            return False
        try:
            self.run(replica.membership.beat())
        except (RejectedError, UnavailableError, ConflictError, AlreadyExistsError):
            return False
        except Crash:
            return False
        return True

    def reconcile(self, replica: Replica, key: Key) -> str:
        """One reconcile as the controller's worker runs it: a ClusterError is retried later, not fatal."""
        if not replica.ready:
            return "not-ready"
        try:
            self.run(replica.reconciler.reconcile(key))
        except (RejectedError, UnavailableError, ConflictError, AlreadyExistsError) as exc:
            self.server.stats[f"reconcile-error:{type(exc).__name__}"] += 1
            self.errors.append(f"{replica.identity} {key}: {type(exc).__name__}: {exc}")
            return "error"
        except Crash:
            return "crashed"
        return "ok"

    def settle(self, keys: list[Key], rounds: int = 60) -> list[str]:
        """No more faults: every slot runs a live replica, watches are whole, Jobs run to their end; the
        replicas reconcile everything until no run is left open. Returns what stayed wrong."""
        server = self.server
        server.faults.clear()
        server.crashes.clear()
        for slot, replica in enumerate(self.slots):
            if not replica.alive:
                self.start_replica(slot)
            for informer in INFORMERS:
                if replica.broken[informer]:
                    self.slots[slot].relist(informer)
        for _ in range(rounds):
            writes = server.writes
            for replica in self.slots:
                self.beat(replica)
                replica.deliver_all()
            for key in keys:
                for replica in self.slots:
                    self.reconcile(replica, key)
                    replica.deliver_all()
            for record in server.job_records():
                if record.fate == "run" and record.result is None and not record.deleted_unfinished:
                    server.finish_job(record.namespace, record.name, 0)
            open_runs = [
                r
                for r in server.runs.values()
                if not r.closed and r.resource_uid not in server.deleted_resources
            ]
            held = self.finalized_orphans()
            if not open_runs and not held and server.writes == writes:
                break
            server.advance(20 if server.writes != writes else 60)
        return self.unsettled()

    def catch_up(self) -> None:
        """Every live replica's informers receive every event so far."""
        for replica in self.slots:
            if replica.alive:
                replica.deliver_all()

    def round(self, keys: list[Key], *, beat: bool = False) -> None:
        """Every live replica (beats,) catches up and reconciles ``keys``."""
        for replica in self.slots:
            if beat:
                self.beat(replica)
            replica.deliver_all()
            for key in keys:
                self.reconcile(replica, key)

    def owner(self, key: Key) -> Replica:
        """The live replica that membership gives ``key`` to (they agree after a beat each)."""
        body = self.server.objects[key.kind][(key.namespace, key.name)]
        uid = body["metadata"]["uid"]
        owners = [r for r in self.slots if r.alive and r.membership.mine(uid)]
        assert len(owners) == 1, f"replicas disagree on who owns {key}: {[r.identity for r in owners]}"
        return owners[0]

    def finalized_orphans(self) -> list[str]:
        """Jobs still holding the operator's finalizer although their run is closed or their resource gone."""
        held = []
        for (namespace, name), job in self.server.objects["Job"].items():
            meta = job["metadata"]
            if FINALIZER not in (meta.get("finalizers") or []):
                continue
            run = self.server.runs.get((meta.get("annotations") or {}).get(ANNOTATION_RUN_UID, ""))
            resource_uid = (meta.get("labels") or {}).get(LABEL_RESOURCE_UID, "")
            if run is None or run.closed or resource_uid in self.server.deleted_resources:
                held.append(f"{namespace}/{name}")
        return held

    def unsettled(self) -> list[str]:
        problems = []
        for run in self.server.runs.values():
            if run.resource_uid in self.server.deleted_resources:
                continue
            if not run.closed:
                problems.append(
                    f"run {run.run_id} ({run.uid}) of {run.key} never ended; its story:\n"
                    f"{self.server.story(run.key.name, run.job_name)}\nlast errors: {self.errors[-5:]}"
                )
            elif run.recorded is None:
                problems.append(
                    f"run {run.run_id} ({run.uid}) of {run.key} ended with its outcome neither in lastRun "
                    "nor in an Event"
                )
        problems += [
            f"Job {name} keeps the finalizer after its run ended" for name in self.finalized_orphans()
        ]
        return problems


def resource_spec(
    policy: str = "Forbid",
    succeeded_limit: int = 3,
    failed_limit: int = 1,
    *,
    schedule: str | None = None,
    window: str = "24h",
    suspend: bool = False,
    ttl: int = 86400,
    deadline: int = 600,
) -> Body:
    spec: Body = {
        "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
        "sink": {"uriSecretRef": {"name": "mongodb", "key": "uri"}},
        "symbols": ["BTCUSDT"],
        "intervals": ["1h"],
        "window": window,
        "concurrencyPolicy": policy,
        "successfulRunsHistoryLimit": succeeded_limit,
        "failedRunsHistoryLimit": failed_limit,
        "suspend": suspend,
        "job": {"activeDeadlineSeconds": deadline, "ttlSecondsAfterFinished": ttl},
    }
    if schedule is not None:
        spec["schedule"] = schedule
    return spec


def status_of(server: FakeServer, key: Key) -> Body:
    body = server.objects[key.kind].get((key.namespace, key.name))
    assert body is not None, f"{key} does not exist"
    return dict(body.get("status") or {})


def jobs_of(server: FakeServer, key: Key) -> list[Body]:
    body = server.objects[key.kind].get((key.namespace, key.name))
    uid = body["metadata"]["uid"] if body else None
    return [
        j
        for j in server.objects["Job"].values()
        if (j["metadata"].get("labels") or {}).get(LABEL_RESOURCE_UID) == uid
    ]
