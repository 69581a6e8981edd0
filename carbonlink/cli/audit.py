"""``carbonlink audit``: re-verify a ledger export offline and print what it holds."""

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, CliError

HELP = "re-verify a ledger export (carbonlink gateway export) offline"

DESCRIPTION = """\
Check a ledger export from the export alone: every record signature and device chain, the
ledger's hash chain and Merkle batches, every credit recomputed from its signed trip, charges and
stored parameters, no trip or odometer interval credited twice, every issue under a consented
binding, and the end line's count. Stops at the first discrepancy and names its line.
Exit status: 0 the export verifies (a summary is printed), 1 a discrepancy (one line on stderr),
2 bad arguments or an unreadable file. See docs/ledger.md."""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "audit", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", metavar="LEDGER.jsonl", help="the export to check, or - for standard input")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.audit import AuditError, audit_lines  # noqa: PLC0415 - lazy by design

    try:
        if args.file == "-":
            summary = audit_lines(_lines(sys.stdin.buffer))
        else:
            with Path(args.file).open("rb") as stream:
                summary = audit_lines(_lines(stream))
    except AuditError as err:
        if args.json:
            print(json.dumps({"ok": False, "line": err.line_no, "problem": err.problem}, ensure_ascii=False))
        print(f"carbonlink: audit failed: {err}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as err:
        raise CliError(f"cannot read {args.file}: {err.strerror or err}") from err
    if args.json:
        print(json.dumps({"ok": True, "summary": summary.to_json()}, ensure_ascii=False))
    else:
        print("The ledger export verifies.")
        print(summary.render_text())
    return EXIT_OK


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    from carbonlink.audit import MAX_LINE_CHARS  # noqa: PLC0415 - lazy by design

    while True:
        # Bounded: a line longer than the limit comes back cut, and the audit refuses it.
        line = stream.readline(MAX_LINE_CHARS + 2)
        if not line:
            return
        yield line
