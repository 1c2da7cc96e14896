"""``datamanager analytics``: one run of market analytics over the extractor's candles."""

from __future__ import annotations

import argparse

HELP = "Compute market analytics (volatility, volume, trend, momentum, correlation, regime) from the \
extractor's MySQL candles and write the results to MongoDB."

EPILOG = """\
Settings come from the spec (--spec FILE or DATAMANAGER_SPEC_FILE, then DATAMANAGER_SPEC as JSON), overlaid by
the flags above. Connections come from flags or DATAMANAGER_MYSQL_DSN / DATAMANAGER_MONGODB_URI only.
Each run reads the candles with open time in [now - window, now) per symbol and interval; a family short of
candles reports "insufficient_data" with the counts instead of a number.

Sharding: with DATAMANAGER_SHARDS=N and JOB_COMPLETION_INDEX=I (or --shards/--shard-index) only the symbols at
positions p with p % N == I get per-symbol families. Correlation needs all symbols: shard 0 computes it from
every symbol's closes, the other shards skip it.

The summary (one JSON object, at most 4 KB) is printed to stdout and written to the termination-message file.
Logs go to stderr.

exit codes:
  0  the run finished (also when some families had insufficient data)
  1  internal error (a bug)
  2  invalid configuration: permanent, never worth a retry
  3  MySQL unavailable (unreachable, access denied, unknown database, failing): transient
  4  MongoDB unavailable: transient

See docs/analytics.md for the formulas, regime thresholds and document shapes."""

_WINDOW_FLAGS = {
    "volatility": "volatility estimators (default 30)",
    "volume": "volume averages, relative volume, taker-buy ratio (default 20)",
    "trend": "linear-regression slope (default 50)",
    "momentum": "RSI and rate of change (default 14)",
    "correlation": "aligned returns in the correlation matrix (default 100)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    from datamanager_workers.shared.settings import add_common_arguments

    parser.epilog = EPILOG
    add_common_arguments(parser)
    analytics = parser.add_argument_group("analytics (override the spec)")
    analytics.add_argument(
        "--families",
        metavar="A,B",
        help="metric families: volatility,volume,trend,momentum,correlation,regime (default all)",
    )
    for family, what in _WINDOW_FLAGS.items():
        analytics.add_argument(
            f"--{family}-window", type=int, metavar="N", help=f"candles in the window of {what}"
        )


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The job's own flags, in the spec's wire form."""
    families = [item.strip() for item in args.families.split(",") if item.strip()] if args.families else None
    return {
        "families": families,
        "windows": {family: getattr(args, f"{family}_window") for family in _WINDOW_FLAGS},
    }


def run(args: argparse.Namespace) -> int:
    from datamanager.api.analyticsjob import AnalyticsJobSpec
    from datamanager.contract import RunSummary
    from datamanager_workers.analytics.job import AnalyticsOptions, run_analytics
    from datamanager_workers.logs import configure_logging
    from datamanager_workers.shared.entrypoint import run_job
    from datamanager_workers.shared.settings import load_settings

    configure_logging(args.log_format, args.log_level)

    async def main() -> RunSummary:
        settings = load_settings(AnalyticsJobSpec, args, kind="AnalyticsJob", overrides=_overrides(args))
        return await run_analytics(settings, AnalyticsOptions(as_of=args.as_of))

    return run_job("analytics", main, args)
