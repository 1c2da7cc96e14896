"""``datamanager audit``: one data-quality audit of the extractor's candles."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from datamanager.contract import ENV_NATS_URL

if TYPE_CHECKING:  # heavy imports stay inside functions so that `--help` is instant
    from datamanager.api import DataAuditSpec
    from datamanager_workers.shared.settings import WorkerSettings

HELP = "Audit the extractor's MySQL candles (gaps, duplicates, OHLC validity, freshness, spikes), score each \
dataset's health and write the report to MongoDB."

EPILOG = f"""\
Settings come from the spec (--spec FILE or DATAMANAGER_SPEC_FILE, then DATAMANAGER_SPEC as JSON), overlaid by
the flags above. Connections come from flags or DATAMANAGER_MYSQL_DSN / DATAMANAGER_MONGODB_URI only.
Sharding: with DATAMANAGER_SHARDS=N and JOB_COMPLETION_INDEX=I (or --shards/--shard-index) only the symbols at
positions p with p % N == I are audited; the summary names the shard.

The summary (one JSON object, at most 4 KB) is printed to stdout and written to the termination-message file.
Logs go to stderr. Backfill requests need a backfill subject and --nats-url (or {ENV_NATS_URL}).

exit codes:
  0  the audit finished (whatever the health score)
  1  internal error (a bug)
  2  invalid configuration: permanent, never worth a retry
  3  MySQL unavailable (unreachable, access denied, unknown database, failing): transient
  4  MongoDB unavailable: transient

See docs/audit.md for the health-score formula and retention."""


def configure(parser: argparse.ArgumentParser) -> None:
    from datamanager_workers.shared.settings import add_common_arguments

    parser.epilog = EPILOG
    runtime = add_common_arguments(parser)
    audit = parser.add_argument_group("audit (override the spec)")
    audit.add_argument(
        "--checks", metavar="A,B", help="checks to run: gaps,duplicates,ohlc,freshness,spikes (default all)"
    )
    audit.add_argument(
        "--max-findings", type=int, metavar="N", help="findings kept per dataset and check (100)"
    )
    audit.add_argument(
        "--spike-sigma", type=float, metavar="K", help="spike: |log return| > K rolling stdevs (6)"
    )
    audit.add_argument(
        "--spike-lookback", type=int, metavar="N", help="spike: candles in the rolling window (50)"
    )
    audit.add_argument("--healthy", type=float, metavar="SCORE", help="lowest healthy score (90)")
    audit.add_argument("--degraded", type=float, metavar="SCORE", help="lowest degraded score (70)")
    audit.add_argument(
        "--unhealthy", type=float, metavar="SCORE", help="lowest unhealthy score (50); below: critical"
    )
    audit.add_argument(
        "--backfill-subject", metavar="SUBJECT", help="publish a backfill request per large gap here"
    )
    audit.add_argument(
        "--backfill-min-missing", type=int, metavar="N", help="smallest gap worth a request (1)"
    )

    runtime.add_argument("--nats-url", help=f"NATS server for backfill requests (env {ENV_NATS_URL})")
    runtime.add_argument(
        "--concurrency",
        type=int,
        default=2,
        metavar="N",
        help="MySQL connections in use at once (default %(default)s)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The audit's own flags, in the spec's wire form."""
    return {
        "checks": [item.strip() for item in args.checks.split(",") if item.strip()] if args.checks else None,
        "maxFindings": args.max_findings,
        "spikes": {"sigma": args.spike_sigma, "lookback": args.spike_lookback},
        "thresholds": {"healthy": args.healthy, "degraded": args.degraded, "unhealthy": args.unhealthy},
        "backfillSubject": args.backfill_subject,
        "backfillMinMissing": args.backfill_min_missing,
    }


def load_audit_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> WorkerSettings[DataAuditSpec]:
    """The run's settings: spec layers, the common flags and the audit's own flags."""
    from datamanager.api import DataAuditSpec
    from datamanager_workers.shared.settings import load_settings

    return load_settings(DataAuditSpec, args, kind="DataAudit", overrides=_overrides(args), environ=environ)


def run(args: argparse.Namespace) -> int:
    from datamanager.contract import RunSummary
    from datamanager_workers.audit.job import AuditOptions, run_audit
    from datamanager_workers.logs import configure_logging
    from datamanager_workers.shared.entrypoint import run_job
    from datamanager_workers.shared.errors import InvalidConfigError

    configure_logging(args.log_format, args.log_level)

    async def main() -> RunSummary:
        settings = load_audit_settings(args)
        nats_url = args.nats_url or os.environ.get(ENV_NATS_URL)
        if settings.spec.backfill_subject and not nats_url:
            raise InvalidConfigError(
                "backfillSubject is set but no NATS server: give the DataAudit spec.natsUrlSecretRef (a"
                f" Secret key holding the URL), or set {ENV_NATS_URL} or --nats-url"
            )
        if args.concurrency < 1:
            raise InvalidConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
        return await run_audit(
            settings, AuditOptions(as_of=args.as_of, concurrency=args.concurrency, nats_url=nats_url)
        )

    return run_job("audit", main, args)
