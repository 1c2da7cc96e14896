# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Creating many resources at once and recording every Job the operator creates (stress test and bench)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.batch_v1 import Job

from tests.fixtures.kube import name_of

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
# pods of these Jobs never start: the burst measures the operator, not the workers
UNPULLABLE = "unpullable.invalid/datamanager:burst"


def burst_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": "DataAudit",
        "metadata": {"name": name},
        "spec": {
            "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
            "sink": {"uriSecretRef": {"name": "datamanager-mongodb", "key": "uri"}},
            "symbols": ["BTCUSDT"],
            "intervals": ["1h"],
            "job": {"image": UNPULLABLE},
        },
    }


class JobWatcher:
    """Every Job ADDED in a namespace, with the monotonic time it was seen, from a background watch."""

    def __init__(self, kube: Client, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self.by_resource: dict[str, set[str]] = defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobWatcher:
        self._thread.start()
        time.sleep(0.5)  # the watch is established before anything is created
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            # lightkube renews the watch by itself, so the loop ends only here, on the next event after
            # the stop (or with the connection).
            for event, job in self.kube.watch(Job, namespace=self.namespace, server_timeout=5):
                name = name_of(job)
                if event == "ADDED" and name not in self.seen:
                    self.seen[name] = time.monotonic()
                    resource = (job.metadata.labels or {}).get("datamanager.petrosa.io/resource", "")
                    self.by_resource[resource].add(name)
                if self._stop.is_set():
                    return
        except Exception:
            # After the stop, a watch cut short (the API server going away at the end of the session)
            # is expected; before it, the error is the test's business.
            if not self._stop.is_set():
                raise


def create_many(kube: Client, namespace: str, names: list[str], threads: int = 16) -> dict[str, float]:
    """Creates the resources concurrently; returns name -> monotonic time the create call returned."""
    created: dict[str, float] = {}

    def create(name: str) -> None:
        kube.create(DataAudit.from_dict(burst_manifest(name)), namespace=namespace)
        created[name] = time.monotonic()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, names))
    return created
