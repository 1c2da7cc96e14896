"""``datamanager consume``: count the NATS market-data stream and expose what was counted."""

from __future__ import annotations

import argparse
import os
import sys

HELP = (
    "Count the NATS market-data stream in a queue group: messages by type, events by symbol, malformed\n"
    "messages by reason, lag. Persists nothing. Serves /metrics, /healthz, /readyz and /stats over HTTP.\n"
    "Every flag also reads the environment variable named in its help."
)


def configure(parser: argparse.ArgumentParser) -> None:
    from datamanager_workers.consumer.settings import add_arguments

    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from datamanager.contract import ExitCode
    from datamanager_workers.consumer.app import consume
    from datamanager_workers.consumer.settings import SettingsError, load
    from datamanager_workers.logs import configure_logging

    try:
        settings = load(args, os.environ)
    except SettingsError as exc:
        # Logging is not set up yet (its own settings may be the bad ones): plain lines on stderr.
        print("datamanager consume: invalid settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return ExitCode.INVALID_CONFIG
    configure_logging(settings.log_format, settings.log_level)
    import uvloop

    # libuv's event loop reads the socket and wakes the subscription with less overhead per message
    return uvloop.run(consume(settings))
