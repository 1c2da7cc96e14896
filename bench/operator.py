"""Benchmark: 500 DataAudits created at once; how fast does the operator give each its one Job?

Runs on the rig (`make rig-up`, or via `make bench`): installs the chart (2 operator replicas), creates the
resources from 16 client threads, and records when each Job appears through a watch. Worker pods never start
(their image is unpullable), so the figure is the operator's own throughput.

Anchor, not a same-run baseline: the Spark operator's reported ~130 s for 500 SparkApplications.
Target: all 500 Jobs within 30 s, no duplicates. Last line: one JSON object.
"""

from __future__ import annotations

import os
import sys

if __name__ == "operator":
    # A script in bench/ was started without -P, so this file is being imported as the standard library's
    # `operator`: say so instead of failing somewhere deep in an unrelated import.
    raise ImportError(
        "bench/operator.py shadows the standard library's operator: run benchmarks with "
        "`python -P bench/<name>.py` (as `make bench` does)"
    )
# This file shares its name with the standard library's `operator`: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import psutil
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Secret

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.burst import JobWatcher, create_many
from tests.e2e.conftest import CHART, tool_path

SPARK_OPERATOR_SECONDS_FOR_500 = 130.0


def operator_rss_mb() -> float:
    """Largest resident set of the operator processes running on the process node."""
    sizes = [
        p.info["memory_info"].rss
        for p in psutil.process_iter(["cmdline", "memory_info"])
        if p.info["cmdline"]
        and "operator" in p.info["cmdline"]
        and any("datamanager" in part for part in p.info["cmdline"])
    ]
    return round(max(sizes, default=0) / 2**20, 1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if "KUBECONFIG" not in os.environ:
        sys.exit("bench/operator.py needs the rig: run `make rig-up && . .rig/env` (or `make bench`)")
    env = {**os.environ, "PATH": tool_path()}
    release, system = "dm-bench", "dm-bench-system"
    kube = Client(KubeConfig.from_env(), field_manager="bench")
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(REPO / "crds")],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "helm",
            "upgrade",
            "--install",
            release,
            str(CHART),
            "-n",
            system,
            "--create-namespace",
            "--wait",
            "--set",
            "consumer.enabled=false",
            "--set",
            "operator.replicas=2",
            "--set",
            "operator.stuckPodSeconds=3600",
            # the bench's namespace is created below; its resources name a never-pulled image
            "--set",
            "rbac.clusterWide=true",
            "--set",
            "operator.allowedImages={unpullable.invalid/*}",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    kube.create(Namespace(metadata=ObjectMeta(name=namespace)))
    try:
        for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
            kube.create(
                Secret(metadata=ObjectMeta(name=name), stringData={key: "unused"}), namespace=namespace
            )
        names = [f"b-{i:04d}" for i in range(args.resources)]
        with JobWatcher(kube, namespace) as jobs:
            start = time.monotonic()
            created = create_many(kube, namespace, names)
            creating = time.monotonic() - start
            deadline = start + args.timeout
            while len(jobs.by_resource) < args.resources and time.monotonic() < deadline:
                time.sleep(0.2)
            all_jobs = time.monotonic() - start
            rss = operator_rss_mb()
        latencies = sorted(
            jobs.seen[next(iter(jobs.by_resource[n]))] - created[n] for n in names if jobs.by_resource.get(n)
        )
        duplicates = sum(len(v) - 1 for v in jobs.by_resource.values())
        missing = args.resources - len(jobs.by_resource)
        p50 = statistics.median(latencies) if latencies else float("nan")
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
        print(
            f"{args.resources} resources (the client took {creating:.1f}s to create them) -> "
            f"{len(jobs.by_resource)} with a Job in {all_jobs:.1f}s "
            f"(anchor: Spark operator ~{SPARK_OPERATOR_SECONDS_FOR_500:.0f}s for 500); "
            f"trigger->Job p50 {p50:.2f}s p99 {p99:.2f}s; duplicates {duplicates}; operator RSS {rss} MB"
        )
        print(
            json.dumps(
                {
                    "resources": args.resources,
                    "seconds_all_jobs": round(all_jobs, 2),
                    "seconds_creating": round(creating, 2),
                    "p50_seconds": round(p50, 3),
                    "p99_seconds": round(p99, 3),
                    "duplicates": duplicates,
                    "missing": missing,
                    "rss_mb": rss,
                    "ratio_vs_spark_anchor": round(SPARK_OPERATOR_SECONDS_FOR_500 / all_jobs, 2),
                }
            )
        )
        return 0 if duplicates == 0 and missing == 0 else 1
    finally:
        kube.delete(Namespace, namespace)
        subprocess.run(["helm", "uninstall", release, "-n", system, "--wait"], env=env, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
