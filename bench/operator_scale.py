"""Benchmark: thousands of DataAudits created at once; how fast does each get its one Job, what does a replica
hold, and what does the operator cost when nothing happens?

Runs on the rig (`make rig-up && . .rig/env`, or `make bench`). The chart is installed by Helm with 3
operator replicas and its defaults otherwise, except ``operator.unschedulableSeconds`` set to a day, so runs
stay active for the whole measurement. Pods are kept cheap: every resource sets ``spec.job.nodeSelector``
to a label no node has, so the Job controller creates the pods, the scheduler marks them Unschedulable and the
process node runs nothing; the figures are the operator's (and the API server's), not the workers'.

For each size (1,000, 2,500 and 5,000 resources; ``--resources N`` for one size, e.g. 10000 or 200):

1. **The physical limit**: a bare client creates the same number of plain Jobs (the operator's own Job
   manifest, without owner and finalizer, suspended so they make no pods) from the same 16 threads against
   the same API server; ``ratio_vs_bare_creates`` is the operator's Jobs per second as a fraction of the bare
   client's.
2. **The burst**: the resources are created from 16 threads in a fresh namespace. Every figure below is read
   from the kube-apiserver's audit log (``RIG_AUDIT_LOG``), never from a watch: seconds until every resource
   has its Job (from the first create), trigger-to-Job p50/p99 (from a resource's create returning to its
   Job's create being answered), and duplicates (a Job name created twice, or a resource given a second Job).
3. **At rest**: once every pod exists and is Unschedulable, 120 s of nothing: CPU seconds per replica (its
   process, read through /proc) and API requests per second per replica (audit entries of the operator's
   ServiceAccount, grouped by source address = the replica's pod IP; watches count when they end).
   RSS per replica is read at the end of the rest window; its slope per resource comes from a least-squares
   fit over the sizes measured and the replicas' size before the first burst.
4. **A run's end**: the Jobs of a sample of runs (100) get ``activeDeadlineSeconds: 1``, so they fail with
   DeadlineExceeded and the operator records their outcome and releases their finalizer. ``writes_per_run``
   is the operator's writes during the burst per run, plus its writes for the sample's ends per ended run,
   listed by kind (run Lease, status, Job create, Event, Job finalizer release...).

Anchor, not a same-run baseline: the Spark operator's reported ~130 s for 500 SparkApplications.
Targets (issue #20): 5,000 resources -> every Job within 150 s; RSS <= 256 MB per replica at 5,000 with a
slope that keeps 10,000 under the chart's memory limit; at rest <= 0.5 % of a core and <= 0.2 requests/s per
replica; 0 duplicates. 10,000 resources (``--resources 10000``) take over an hour on 2 cores and are not
part of ``make bench``. Last line: one JSON object (the largest size's figures, and every size
under ``sizes``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod, Secret
from lightkube.types import CascadeType, PatchType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datamanager.api.dataaudit import DataAuditSpec  # noqa: E402
from datamanager.api.status import RunRef  # noqa: E402
from datamanager_operator.jobs import build_job  # noqa: E402
from datamanager_operator.settings import OperatorSettings  # noqa: E402
from tests.e2e.conftest import CHART, tool_path  # noqa: E402
from tests.fixtures.audit import AuditLog, Entry  # noqa: E402
from tests.fixtures.kube import as_dict, resource  # noqa: E402

SPARK_OPERATOR_SECONDS_FOR_500 = 130.0
RELEASE, SYSTEM = "dm-scale", "dm-scale-system"
THREADS = 16
REST_SECONDS = 120.0
ENDED_SAMPLE = 100
NOWHERE = {"datamanager.petrosa.io/bench": "no-node-has-this-label"}  # pods stay Pending: see the docstring
WRITES = ("create", "update", "patch", "delete", "deletecollection")
API_VERSION = "datamanager.petrosa.io/v1alpha1"
DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")


def spec() -> dict[str, Any]:
    return {
        "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
        "sink": {"uriSecretRef": {"name": "datamanager-mongodb", "key": "uri"}},
        "symbols": ["BTCUSDT"],
        "intervals": ["1h"],
        "job": {"nodeSelector": NOWHERE},
    }


def plain_job(name: str, namespace: str) -> dict[str, Any]:
    """The Job the operator would create for a run, without its owner reference and finalizer, suspended: it
    makes no pods, so its namespace goes at once and the next measurement starts on a quiet API server (the
    operator's Jobs do make pods while it works, so the ratio leans towards the bare client)."""
    run = RunRef(id="g1", number=1, uid="0" * 16, job_name=name, trigger="Created", outcome="Running")
    meta = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
    manifest = build_job("DataAudit", meta, DataAuditSpec.model_validate(spec()), run, OperatorSettings())
    manifest["metadata"].pop("ownerReferences")
    manifest["metadata"].pop("finalizers")
    manifest["metadata"]["labels"].pop("app.kubernetes.io/managed-by")  # not the operator's to watch
    manifest["spec"]["suspend"] = True
    return manifest


def patch_job(kube: Client, name: str, namespace: str) -> None:
    """Makes the Job fail at once (DeadlineExceeded): its run ends as runs do."""
    patch = {"spec": {"activeDeadlineSeconds": 1}}
    kube.patch(Job, name, patch, namespace=namespace, patch_type=PatchType.MERGE)


def in_threads(work: Callable[[str], object], names: Iterable[str]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, names))


# ---------------------------------------------------------------- the operator's replicas


@dataclass
class Replica:
    pod: str
    ip: str
    process: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / 2**20


def replicas(kube: Client, node_ip: str) -> list[Replica]:
    """The operator's pods and, for each, its process on the process node (found by POD_NAME and by the API
    server address in its environment, so another rig's operators on this machine are never measured)."""
    pods = {
        p.metadata.name: p.status.podIP
        for p in kube.list(Pod, namespace=SYSTEM, labels={"app.kubernetes.io/component": "operator"})
        if p.metadata and p.metadata.name and p.status and p.status.podIP and not p.metadata.deletionTimestamp
    }
    found: list[Replica] = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "operator" not in (process.info["cmdline"] or []):
                continue
            env = process.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        pod = env.get("POD_NAME", "")
        if pod in pods and env.get("KUBERNETES_SERVICE_HOST") == node_ip:
            found.append(Replica(pod, pods[pod], process))
    if len(found) != len(pods):
        sys.exit(f"found the processes of {sorted(r.pod for r in found)}, expected {sorted(pods)}")
    return sorted(found, key=lambda r: r.pod)


def install(env: dict[str, str], kube: Client, extra: list[str]) -> str:
    """Installs the chart; returns the operator's user name in the audit log."""
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(REPO / "crds")],
        env=env,
        check=True,
        capture_output=True,
    )
    settings = [
        "consumer.enabled=false",
        "operator.replicas=3",
        "operator.unschedulableSeconds=86400",  # runs stay active during the measurement
        "rbac.clusterWide=true",  # the bench's namespaces are its own, created per size
    ]
    if image := env.get("RIG_IMAGE"):  # container mode: the replicas run from the image `make image` built
        repository, _, tag = image.rpartition(":")
        settings += [f"image.repository={repository}", f"image.tag={tag}"]
    command = ["helm", "upgrade", "--install", RELEASE, str(CHART), "-n", SYSTEM, "--create-namespace"]
    command += ["--wait", "--timeout", "300s", *(f"--set={s}" for s in settings)]
    command += [f"--set-json={s}" for s in extra]
    # new pods every time: the replicas run the code as it is now, whatever an earlier run installed
    command.append(f"--set-string=operator.podAnnotations.bench-started={int(time.time())}")
    subprocess.run(command, env=env, check=True, capture_output=True)
    deployment = kube.get(Deployment, f"{RELEASE}-datamanager-operator", namespace=SYSTEM)
    account = deployment.spec.template.spec.serviceAccountName  # type: ignore[union-attr]
    return f"system:serviceaccount:{SYSTEM}:{account}"


# ---------------------------------------------------------------- the audit log as it grows


class Tail:
    """Reads the audit log on from a mark, keeping every entry read."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.offset = audit.mark()
        self.entries: list[Entry] = []

    def poll(self) -> list[Entry]:
        new, self.offset = self.audit.read(self.offset)
        self.entries += new
        return new


def job_resource(job: str) -> str:
    """The resource a Job belongs to: its name is ``<resource>-<uid digest>-<run id>``."""
    return job.rsplit("-", 2)[0]


def wait(what: str, done: Callable[[], bool], timeout: float, every: float = 1.0) -> float:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - start


def new_namespace(kube: Client, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    for secret, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
        kube.create(Secret(metadata=ObjectMeta(name=secret), stringData={key: "unused"}), namespace=name)
    return name


def delete_namespace(kube: Client, name: str, timeout: float = 1800.0) -> float:
    """Deletes the namespace, its resources and Jobs first from THREADS threads: the API server deletes a
    namespace's objects one at a time (2,500 DataAudits with their Jobs took over 13 minutes)."""
    start = time.monotonic()
    for kind in (DataAudit, Job):
        names = [as_dict(o)["metadata"]["name"] for o in kube.list(kind, namespace=name)]
        in_threads(functools.partial(delete_quietly, kube, kind, namespace=name), names)
    kube.delete(Namespace, name)

    def gone() -> bool:
        try:
            kube.get(Namespace, name)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    wait(f"namespace {name} to be deleted", gone, timeout, every=2.0)
    return time.monotonic() - start


def delete_quietly(kube: Client, kind: Any, name: str, *, namespace: str) -> None:
    try:
        kube.delete(kind, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
    except ApiError as exc:
        if exc.status.code != 404:
            raise


# ---------------------------------------------------------------- one size


@dataclass
class Figures:
    resources: int
    seconds_all_jobs: float = 0.0
    seconds_creating: float = 0.0
    p50_seconds: float = 0.0
    p99_seconds: float = 0.0
    duplicates: int = 0
    missing: int = 0
    bare_seconds: float = 0.0
    ratio_vs_bare_creates: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    idle_cpu_seconds: dict[str, float] = field(default_factory=dict)
    idle_requests: dict[str, Counter[str]] = field(default_factory=dict)
    start_writes: Counter[str] = field(default_factory=Counter)
    start_requests: Counter[str] = field(default_factory=Counter)  # reads too, watches aside
    end_writes: Counter[str] = field(default_factory=Counter)
    ended: int = 0
    seconds_quiet: float = 0.0
    seconds_ends: float = 0.0

    @property
    def writes_per_run(self) -> float:
        ends = sum(self.end_writes.values()) / self.ended if self.ended else 0.0
        return sum(self.start_writes.values()) / self.resources + ends

    def summary(self) -> dict[str, Any]:
        idle_rps = {pod: sum(c.values()) / REST_SECONDS for pod, c in self.idle_requests.items()}
        return {
            "resources": self.resources,
            "seconds_all_jobs": round(self.seconds_all_jobs, 1),
            "seconds_creating": round(self.seconds_creating, 1),
            "p50_seconds": round(self.p50_seconds, 2),
            "p99_seconds": round(self.p99_seconds, 2),
            "duplicates": self.duplicates,
            "missing": self.missing,
            "bare_seconds": round(self.bare_seconds, 1),
            "ratio_vs_bare_creates": round(self.ratio_vs_bare_creates, 3),
            "rss_mb_per_replica": round(max(self.rss_mb.values(), default=0.0), 1),
            "rss_mb": {pod: round(v, 1) for pod, v in self.rss_mb.items()},
            "idle_cpu_percent": round(100 * max(self.idle_cpu_seconds.values(), default=0) / REST_SECONDS, 3),
            "idle_requests_per_second": round(max(idle_rps.values(), default=0.0), 3),
            "idle_requests": {pod: dict(c) for pod, c in self.idle_requests.items()},
            "writes_per_run": round(self.writes_per_run, 2),
            "start_writes": dict(self.start_writes),
            "start_requests_per_run": round(sum(self.start_requests.values()) / self.resources, 2),
            "start_reads": {k: n for k, n in self.start_requests.items() if k not in self.start_writes},
            "end_writes_per_ended_run": {
                k: round(v / max(self.ended, 1), 2) for k, v in self.end_writes.items()
            },
            "seconds_until_quiet": round(self.seconds_quiet, 1),
            "seconds_sample_ends": round(self.seconds_ends, 1),
        }


def kind_of_write(entry: Entry) -> str:
    """A write as "<resource>[/<subresource>] <verb>", run Leases and presence Leases told apart."""
    resource = entry.resource + (f"/{entry.subresource}" if entry.subresource else "")
    if entry.resource == "leases":
        resource = "presence lease" if entry.name.startswith("datamanager-operator-") else "run lease"
    return f"{resource} {entry.verb}"


def bare_creates(kube: Client, size: int) -> float:
    """Seconds for a bare client to create ``size`` plain Jobs from THREADS threads (namespace deleted)."""
    namespace = new_namespace(kube, "scale-bare")
    try:
        start = time.monotonic()
        in_threads(
            lambda name: kube.create(resource(Job, plain_job(name, namespace)), namespace=namespace),
            (f"bare-{i:05d}" for i in range(size)),
        )
        return time.monotonic() - start
    finally:
        delete_namespace(kube, namespace)


def run_size(kube: Client, audit: AuditLog, operator: str, node_ip: str, size: int) -> Figures:
    figures = Figures(size)
    print(f"--- {size} resources; load average {os.getloadavg()[0]:.1f}", flush=True)
    figures.bare_seconds = bare_creates(kube, size)
    print(f"bare client: {size} Jobs in {figures.bare_seconds:.1f}s", flush=True)
    namespace = new_namespace(kube, f"scale-{size}")
    names = [f"s-{i:05d}" for i in range(size)]
    created: dict[str, float] = {}
    tail = Tail(audit)

    def create(name: str) -> None:
        body = {"apiVersion": API_VERSION, "kind": "DataAudit", "metadata": {"name": name}}
        kube.create(DataAudit.from_dict({**body, "spec": spec()}), namespace=namespace)
        created[name] = time.time()

    try:
        start = time.time()
        in_threads(create, names)
        figures.seconds_creating = time.time() - start
        first_job: dict[str, float] = {}
        creates: Counter[str] = Counter()

        def all_jobs() -> bool:
            for e in tail.poll():
                if (e.group, e.resource, e.verb, e.namespace, e.code) == (
                    "batch",
                    "jobs",
                    "create",
                    namespace,
                    201,
                ):
                    creates[e.name] += 1
                    first_job.setdefault(job_resource(e.name), e.at)
            return len(first_job) >= size

        try:
            wait("every resource's Job", all_jobs, timeout=max(300.0, size * 0.2), every=0.5)
        except TimeoutError as exc:
            print(exc, flush=True)
        figures.missing = size - len(first_job)
        figures.seconds_all_jobs = max(first_job.values(), default=start) - start
        latencies = sorted(first_job[n] - created[n] for n in names if n in first_job)
        if latencies:
            figures.p50_seconds = statistics.median(latencies)
            figures.p99_seconds = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        figures.ratio_vs_bare_creates = figures.bare_seconds / max(figures.seconds_all_jobs, 1e-9)
        print(
            f"operator: {len(first_job)}/{size} resources with a Job in {figures.seconds_all_jobs:.1f}s "
            f"(creating them took {figures.seconds_creating:.1f}s); "
            f"trigger->Job p50 {figures.p50_seconds:.2f}s p99 {figures.p99_seconds:.2f}s",
            flush=True,
        )

        def quiet() -> bool:  # every pod exists and the scheduler has said it cannot place it
            pods = list(kube.list(Pod, namespace=namespace))
            return len(pods) >= size and all(
                any(
                    c.type == "PodScheduled" and c.reason == "Unschedulable"
                    for c in (p.status.conditions or [])
                )
                for p in pods
                if p.status
            )

        figures.seconds_quiet = wait(
            "every pod Unschedulable", quiet, timeout=max(600.0, size * 0.3), every=5.0
        )
        time.sleep(10)  # the last pod updates reach the operator
        tail.poll()
        figures.start_requests = Counter(
            kind_of_write(e)
            for e in tail.entries
            if e.user == operator and e.verb != "watch" and kind_of_write(e).split()[0] != "presence"
        )
        figures.start_writes = Counter(
            {k: n for k, n in figures.start_requests.items() if k.rsplit(" ", 1)[1] in WRITES}
        )

        # at rest
        members = replicas(kube, node_ip)
        by_ip = {r.ip: r.pod for r in members}
        rest = Tail(audit)
        cpu = {r.pod: r.cpu_seconds() for r in members}
        time.sleep(REST_SECONDS)
        figures.idle_cpu_seconds = {r.pod: r.cpu_seconds() - cpu[r.pod] for r in members}
        figures.rss_mb = {r.pod: r.rss_mb() for r in members}
        figures.idle_requests = {r.pod: Counter() for r in members}
        for e in rest.poll():
            if e.user == operator and e.source in by_ip:
                figures.idle_requests[by_ip[e.source]][f"{e.resource} {e.verb}"] += 1
        print(
            f"at rest for {REST_SECONDS:.0f}s: CPU s {fmt(figures.idle_cpu_seconds)}, requests "
            f"{fmt({p: sum(c.values()) for p, c in figures.idle_requests.items()})}, "
            f"RSS MB {fmt(figures.rss_mb)}",
            flush=True,
        )

        # a sample of runs ends: their Jobs exceed a 1 s deadline
        sample = sorted(creates)[:ENDED_SAMPLE]
        ends = Tail(audit)
        in_threads(
            lambda job: patch_job(kube, job, namespace),
            sample,
        )
        released: set[str] = set()

        def recorded() -> bool:
            for e in ends.poll():
                if e.user == operator and (e.resource, e.verb, e.namespace) == ("jobs", "patch", namespace):
                    released.add(e.name)
            return released >= set(sample)

        figures.seconds_ends = wait("the sample's outcomes", recorded, timeout=600.0)
        time.sleep(5)
        ends.poll()
        figures.ended = len(sample)
        figures.end_writes = Counter(
            kind_of_write(e)
            for e in ends.entries
            if e.user == operator and e.verb in WRITES and kind_of_write(e).split()[0] != "presence"
        )
        statuses: dict[str, dict[str, Any]] = {
            str(as_dict(r)["metadata"]["name"]): as_dict(r).get("status") or {}
            for r in kube.list(DataAudit, namespace=namespace)
        }
        unrecorded = [
            j for j in sample if (statuses[job_resource(j)].get("lastRun") or {}).get("jobName") != j
        ]
        if unrecorded:
            print(f"outcome missing from status for {unrecorded[:5]}...", flush=True)

        # ground truth for duplicates: every Job creation in the namespace, from the audit log
        tail.poll()
        all_creates = Counter(
            e.name
            for e in tail.entries
            if (e.group, e.resource, e.verb, e.namespace, e.code)
            == ("batch", "jobs", "create", namespace, 201)
        )
        per_resource = Counter(job_resource(name) for name in all_creates)
        figures.duplicates = sum(n - 1 for n in all_creates.values()) + sum(
            n - 1 for n in per_resource.values()
        )
        print(json.dumps(figures.summary()), flush=True)  # now: the namespace's deletion can take long
        return figures
    finally:
        # waited for even after the last size: the operator must release its Jobs before it is uninstalled
        seconds = delete_namespace(kube, namespace)
        print(f"namespace deleted in {seconds:.0f}s", flush=True)


def fmt(values: Mapping[str, float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values.values())


def slope_kb(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per resource, in KB."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mean_x) ** 2 for x in xs)
    return 1024 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, help="one size instead of 1000, 2500 and 5000 (e.g. 10000)")
    parser.add_argument("--keep", action="store_true", help="leave the chart installed afterwards")
    parser.add_argument(
        "--set-json",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="another chart value (repeatable), e.g. "
        '\'operator.extraEnv=[{"name":"DATAMANAGER_QPS","value":"50"}]\'',
    )
    args = parser.parse_args()
    if "KUBECONFIG" not in os.environ or "RIG_AUDIT_LOG" not in os.environ:
        sys.exit("bench/operator_scale.py needs the rig: run `make rig-up && . .rig/env` (or `make bench`)")
    sizes = [args.resources] if args.resources else [1000, 2500, 5000]
    env = {**os.environ, "PATH": tool_path()}
    kube = Client(KubeConfig.from_env(), field_manager="bench")
    audit = AuditLog()
    node_ip = os.environ["RIG_NODE_IP"]
    operator = install(env, kube, args.set_json)
    try:
        time.sleep(15)  # startup settles (first membership beats)
        base = {r.pod: r.rss_mb() for r in replicas(kube, node_ip)}
        print(f"machine: {os.cpu_count()} cores; `uptime`: {uptime()}; operator RSS at start {fmt(base)} MB")
        results = [run_size(kube, audit, operator, node_ip, size) for size in sizes]
    finally:
        if not args.keep:
            subprocess.run(
                ["helm", "uninstall", RELEASE, "-n", SYSTEM, "--wait"], env=env, capture_output=True
            )
    points = [(0, max(base.values()))] + [(f.resources, max(f.rss_mb.values())) for f in results]
    slope = slope_kb(points)
    limit_mb = memory_limit_mb()
    at_10000 = max(base.values()) + slope * 10000 / 1024
    last = results[-1]
    summary = last.summary()
    at_5000 = next((f for f in results if f.resources == 5000), None)
    verdict = {
        f"10,000 projected under the {limit_mb:.0f} MB limit": at_10000 < limit_mb,
        "at rest <= 0.5 % of a core": summary["idle_cpu_percent"] <= 0.5,
        "at rest <= 0.2 requests/s": summary["idle_requests_per_second"] <= 0.2,
        "no duplicates": all(f.duplicates == 0 for f in results),
    }
    if at_5000 is not None:  # the targets stated for 5,000 resources
        verdict["every Job within 150 s at 5,000"] = at_5000.seconds_all_jobs <= 150
        verdict["RSS <= 256 MB per replica at 5,000"] = max(at_5000.rss_mb.values()) <= 256
    for what, ok in verdict.items():
        print(f"{'met' if ok else 'MISSED'}: {what}")
    print(
        f"RSS slope {slope:.1f} KB per resource -> {at_10000:.0f} MB at 10,000 (limit {limit_mb:.0f} MB); "
        f"anchor: Spark operator ~{SPARK_OPERATOR_SECONDS_FOR_500:.0f}s for 500; `uptime`: {uptime()}"
    )
    print(
        json.dumps(
            {
                "resources": last.resources,
                "seconds_all_jobs": summary["seconds_all_jobs"],
                "p99_seconds": summary["p99_seconds"],
                "duplicates": sum(f.duplicates for f in results),
                "rss_mb_per_replica": summary["rss_mb_per_replica"],
                "rss_kb_per_resource": round(slope, 2),
                "idle_cpu_percent": summary["idle_cpu_percent"],
                "idle_requests_per_second": summary["idle_requests_per_second"],
                "ratio_vs_bare_creates": summary["ratio_vs_bare_creates"],
                "writes_per_run": summary["writes_per_run"],
                "rss_mb_projected_10000": round(at_10000, 1),
                "load_average": os.getloadavg()[0],
                "sizes": [f.summary() for f in results],
            }
        )
    )
    return 0 if all(verdict.values()) and all(f.missing == 0 for f in results) else 1


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def memory_limit_mb() -> float:
    """The chart's default memory limit of the operator, in MB."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    limit = str(values["operator"]["resources"]["limits"]["memory"])
    units = {"Mi": 1.0, "Gi": 1024.0, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for unit, factor in units.items():
        if limit.endswith(unit):
            return float(limit[: -len(unit)]) * factor
    return float(limit) / 2**20


if __name__ == "__main__":
    sys.exit(main())
