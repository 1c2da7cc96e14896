"""The single entry point of every container and of local use: ``datamanager <subcommand>``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from datamanager import __version__


class Subcommand(Protocol):
    """What a subcommand module provides; heavy imports stay inside ``run`` so ``--help`` is instant."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


SUBCOMMANDS: dict[str, str] = {
    "operator": "datamanager_operator.cli",
    "consume": "datamanager_workers.consumer.cli",
    "audit": "datamanager_workers.audit.cli",
    "analytics": "datamanager_workers.analytics.cli",
}


def _load(module: str) -> Subcommand:
    return cast(Subcommand, importlib.import_module(module))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datamanager",
        description="Audits and analyses the extractor's candles and counts the NATS market-data stream.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = _load(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = cast(Subcommand, args._module)
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
