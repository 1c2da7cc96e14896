"""``datamanager operator``: the controller for DataAudit and AnalyticsJob."""

from __future__ import annotations

import argparse
import os
import sys

from .settings import OperatorSettings

DEFAULTS = OperatorSettings()
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HELP = "run the operator: one Job per run of each DataAudit and AnalyticsJob, status from the results"


def _from_env(name: str, default: object) -> object:
    """The environment's value as the flag's default: argparse applies the flag's ``type`` to it, so a bad
    value fails with the flag's name, like a bad flag, instead of a traceback."""
    return os.environ.get(name) or default


def configure(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        default=[n for n in env("DATAMANAGER_WATCH_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable); default: the whole cluster "
        "[env DATAMANAGER_WATCH_NAMESPACES, comma-separated]",
    )
    parser.add_argument(
        "--worker-image",
        default=env("DATAMANAGER_WORKER_IMAGE", DEFAULTS.worker_image),
        help="image of the worker Jobs unless a resource sets spec.job.image [env DATAMANAGER_WORKER_IMAGE]",
    )
    parser.add_argument(
        "--worker-service-account",
        default=env("DATAMANAGER_WORKER_SERVICE_ACCOUNT") or None,
        help="ServiceAccount of worker pods (they mount no token) [env DATAMANAGER_WORKER_SERVICE_ACCOUNT]",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=_from_env("DATAMANAGER_HTTP_PORT", DEFAULTS.http_port),
        help="port of /healthz, /readyz and /metrics [env DATAMANAGER_HTTP_PORT]",
    )
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=_from_env("DATAMANAGER_LEASE_SECONDS", DEFAULTS.lease_seconds),
        help="per-resource Lease duration: how long a dead instance blocks a resource "
        "[env DATAMANAGER_LEASE_SECONDS]",
    )
    parser.add_argument(
        "--stuck-pod-seconds",
        type=int,
        default=_from_env("DATAMANAGER_STUCK_POD_SECONDS", DEFAULTS.stuck_pod_seconds),
        help="a worker pod waiting on its image or configuration this long fails the run "
        "[env DATAMANAGER_STUCK_POD_SECONDS]",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_from_env("DATAMANAGER_OPERATOR_WORKERS", DEFAULTS.workers),
        help="concurrent reconciles [env DATAMANAGER_OPERATOR_WORKERS]",
    )
    parser.add_argument(
        "--log-level",
        default=env("DATAMANAGER_LOG_LEVEL", "INFO"),
        choices=LOG_LEVELS,
        help="[env DATAMANAGER_LOG_LEVEL]",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .controller import Controller

    problems = [
        f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}"
        for name, low in (("lease_seconds", 5), ("stuck_pod_seconds", 10), ("workers", 1))
        if getattr(args, name) < low
    ]
    if (
        args.log_level not in LOG_LEVELS
    ):  # argparse does not check a default (from the environment) for choices
        problems.append(
            f"--log-level [env DATAMANAGER_LOG_LEVEL] must be one of {', '.join(LOG_LEVELS)}, "
            f"got {args.log_level!r}"
        )
    if problems:
        for problem in problems:
            print(f"datamanager operator: invalid configuration: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("kopf", "httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))
    settings = OperatorSettings(
        watch_namespaces=tuple(args.namespaces),
        worker_image=args.worker_image,
        worker_service_account=args.worker_service_account,
        lease_seconds=args.lease_seconds,
        stuck_pod_seconds=args.stuck_pod_seconds,
        workers=args.workers,
        http_port=args.http_port,
    )
    asyncio.run(Controller(settings).run())
    return 0
