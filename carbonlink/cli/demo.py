"""``carbonlink demo``: what carbonlink can do today, end to end on this machine."""

import argparse
from pathlib import Path
from typing import Any

HELP = "show the signed-record chain working end to end (the full fleet demo comes later)"


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "demo",
        help=HELP,
        description=(
            "Create a device key, seal a short chain of trip and charge records with it, verify each "
            "one and the chain, and leave the files for 'carbonlink inspect'. The simulator, agent "
            "and gateway join this demo as they are built."
        ),
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("demo-data"), metavar="DIR", help="where to write keys and records"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.cli.showcase import run_showcase  # noqa: PLC0415 - lazy by design

    return run_showcase(args.data_dir)
