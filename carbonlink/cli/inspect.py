"""``carbonlink inspect``: decode and verify a signed record for a human, as JSON."""

import argparse
import sys
from typing import Any

HELP = "decode a signed record as JSON, and verify it with --public-key"

DESCRIPTION = """\
Print a signed record (COSE_Sign1) as JSON: {"valid", "kid", "type", "version", "record_hash",
"record", "error"}. The input may be the raw bytes, or the same bytes in hex or base64 text.
Without --public-key the signature is not checked ("valid": null). Exit status: 0 valid (or
decoded, without a key), 1 not valid, 2 unreadable input; the reason is one line on stderr."""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "inspect", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", metavar="FILE", help="signed record to read, or - for standard input")
    parser.add_argument(
        "--public-key",
        metavar="KEY",
        help="verify with this Ed25519 public key: hex or base64 text, or a file holding it or a device key",
    )
    parser.add_argument("--type", choices=("trip", "charge"), help="also require this record type")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.cli.inspection import inspect_record, read_signed_input  # noqa: PLC0415 - lazy by design
    from carbonlink.cli.keyfile import load_public_key  # noqa: PLC0415 - lazy by design

    public_key = None if args.public_key is None else load_public_key(args.public_key)
    data = read_signed_input(args.file, sys.stdin.buffer)
    report = inspect_record(data, public_key, args.type)
    print(report.to_json())
    if report.error is not None:
        print(f"carbonlink: {report.error}", file=sys.stderr)
    return report.exit_code
