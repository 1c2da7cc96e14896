"""``datamanager operator``: the controller for DataAudit and AnalyticsJob."""

from __future__ import annotations

import argparse
import json
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
        "--allowed-images",
        type=_names,
        default=env("DATAMANAGER_ALLOWED_IMAGES", ""),
        help="comma-separated images a resource may set in spec.job.image besides --worker-image; an entry "
        "ending in * is a prefix; any other image fails the run (ImageNotAllowed) "
        "[env DATAMANAGER_ALLOWED_IMAGES]",
    )
    parser.add_argument(
        "--worker-image-pull-secrets",
        type=_names,
        default=env("DATAMANAGER_WORKER_IMAGE_PULL_SECRETS", ""),
        help="comma-separated Secrets worker pods pull their image with "
        "[env DATAMANAGER_WORKER_IMAGE_PULL_SECRETS]",
    )
    parser.add_argument(
        "--worker-pod-labels",
        type=_mapping,
        default=env("DATAMANAGER_WORKER_POD_LABELS", "{}"),
        help='labels of every worker pod, a JSON object such as {"team": "data"} '
        "[env DATAMANAGER_WORKER_POD_LABELS]",
    )
    parser.add_argument(
        "--worker-pod-annotations",
        type=_mapping,
        default=env("DATAMANAGER_WORKER_POD_ANNOTATIONS", "{}"),
        help="annotations of every worker pod, a JSON object [env DATAMANAGER_WORKER_POD_ANNOTATIONS]",
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
        "--unschedulable-seconds",
        type=int,
        default=_from_env("DATAMANAGER_UNSCHEDULABLE_SECONDS", DEFAULTS.unschedulable_seconds),
        help="a worker pod the scheduler cannot place this long fails the run; leave a cluster autoscaler "
        "time to add a node [env DATAMANAGER_UNSCHEDULABLE_SECONDS]",
    )
    parser.add_argument(
        "--lease-namespace",
        default=env("DATAMANAGER_LEASE_NAMESPACE") or DEFAULTS.namespace,
        help="namespace of the operator's Leases (presence and one per resource); default: its own "
        "[env DATAMANAGER_LEASE_NAMESPACE, else POD_NAMESPACE]",
    )
    parser.add_argument(
        "--qps",
        type=float,
        default=_from_env("DATAMANAGER_QPS", DEFAULTS.qps),
        help="requests per second to the API server, besides watches [env DATAMANAGER_QPS]",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=_from_env("DATAMANAGER_BURST", DEFAULTS.burst),
        help="requests allowed at once above --qps [env DATAMANAGER_BURST]",
    )
    parser.add_argument(
        "--resync-seconds",
        type=int,
        default=_from_env("DATAMANAGER_RESYNC_SECONDS", DEFAULTS.resync_seconds),
        help="every resource is reconciled again at least this often [env DATAMANAGER_RESYNC_SECONDS]",
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


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _mapping(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise argparse.ArgumentTypeError('expected a JSON object of strings, such as {"team": "data"}')
    return value


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .controller import Controller

    problems = [
        f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}"
        for name, low in (
            ("lease_seconds", 5),
            ("stuck_pod_seconds", 10),
            ("unschedulable_seconds", 10),
            ("workers", 1),
            ("qps", 1),
            ("burst", 1),
            ("resync_seconds", 30),
        )
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
    for noisy in ("httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))
    settings = OperatorSettings(
        namespace=args.lease_namespace,
        watch_namespaces=tuple(args.namespaces),
        worker_image=args.worker_image,
        allowed_images=args.allowed_images,
        worker_service_account=args.worker_service_account,
        worker_image_pull_secrets=args.worker_image_pull_secrets,
        worker_pod_labels=args.worker_pod_labels,
        worker_pod_annotations=args.worker_pod_annotations,
        lease_seconds=args.lease_seconds,
        stuck_pod_seconds=args.stuck_pod_seconds,
        unschedulable_seconds=args.unschedulable_seconds,
        workers=args.workers,
        http_port=args.http_port,
        qps=args.qps,
        burst=args.burst,
        resync_seconds=args.resync_seconds,
    )
    asyncio.run(Controller(settings).run())
    return 0
