"""``carbonlink``: one command, a subcommand per task."""

import argparse
import importlib
import sys
from collections.abc import Sequence

from carbonlink import __version__
from carbonlink.cli.errors import EXIT_USAGE, CliError

SUBCOMMANDS: dict[str, str] = {
    "keys": "carbonlink.cli.keys",
    "inspect": "carbonlink.cli.inspect",
    "sim": "carbonlink.cli.sim",
    "replay": "carbonlink.cli.replay",
    "demo": "carbonlink.cli.demo",
    "profile": "carbonlink.cli.profile",
    "agent": "carbonlink.cli.agent",
    "gateway": "carbonlink.cli.gateway",
    "audit": "carbonlink.cli.audit",
}
"""Subcommand name → module; each module is light and imports its app only when run."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonlink",
        description=(
            "carbonlink turns what an electric vehicle measures into signed records "
            "that a gateway verifies before any carbon credit is computed."
        ),
        epilog="Run 'carbonlink COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"carbonlink {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module_name in SUBCOMMANDS.values():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CliError as err:
        print(f"carbonlink: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("carbonlink: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``carbonlink inspect x | head``): nothing to report.
        return EXIT_USAGE
    return code
