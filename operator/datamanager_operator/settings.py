"""Operator settings: flags and environment variables, validated at start."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field


def _pod_namespace() -> str:
    return os.environ.get("DATAMANAGER_LEASE_NAMESPACE") or os.environ.get("POD_NAMESPACE") or "default"


@dataclass(frozen=True)
class OperatorSettings:
    instance_id: str = field(default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname())
    namespace: str = field(default_factory=_pod_namespace)  # the operator's own: presence and run Leases
    watch_namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    worker_image: str = "ghcr.io/petrosa/datamanager:latest"
    allowed_images: tuple[str, ...] = ()  # besides worker_image; an entry ending in * is a prefix
    worker_service_account: str | None = None
    worker_image_pull_secrets: tuple[str, ...] = ()
    worker_pod_labels: Mapping[str, str] = field(default_factory=dict)
    worker_pod_annotations: Mapping[str, str] = field(default_factory=dict)
    lease_seconds: int = 15
    presence_seconds: int = 10
    stuck_pod_seconds: int = 120  # a pod waiting on its image or configuration this long fails the run
    unschedulable_seconds: int = 600  # a pod the scheduler cannot place this long fails the run
    workers: int = 16  # concurrent reconciles
    http_port: int = 8080
    dataset_status_limit: int = 10
    qps: float = 50.0  # requests per second to the API server, like client-go's QPS and Burst (docs: Scale)
    burst: int = 100
    resync_seconds: int = 600  # every resource is reconciled again at least this often

    def image_problem(self, image: str | None) -> str | None:
        """Why a resource may not run ``image`` (None: it may). Checked by the operator itself, whether or
        not an admission policy is installed."""
        if image is None or image == self.worker_image:
            return None
        for allowed in self.allowed_images:
            if image == allowed or (allowed.endswith("*") and image.startswith(allowed[:-1])):
                return None
        listing = ", ".join([self.worker_image, *self.allowed_images])
        return (
            f"spec.job.image {image!r} is not allowed: the operator runs only {listing}; "
            "remove spec.job.image, or have the operator's --allowed-images include it"
        )
