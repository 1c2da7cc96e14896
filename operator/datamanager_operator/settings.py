"""Operator settings: flags and environment variables, validated at start."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OperatorSettings:
    instance_id: str = field(default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname())
    namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE", "default"))
    watch_namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    worker_image: str = "ghcr.io/petrosa/datamanager:latest"
    worker_service_account: str | None = None
    lease_seconds: int = 15
    presence_seconds: int = 10
    stuck_pod_seconds: int = 120  # a pod waiting on an image or its configuration this long fails the run
    workers: int = 16  # concurrent reconciles
    http_port: int = 8080
    dataset_status_limit: int = 10
