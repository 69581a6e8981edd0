"""``carbonlink keys``: create and show device keys."""

import argparse
import json
from pathlib import Path
from typing import Any

from carbonlink.cli.errors import EXIT_OK

HELP = "create and show Ed25519 device keys"


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "keys",
        help=HELP,
        description=(
            "Device keys sign a vehicle's records. A key file is TOML holding the device id and the "
            "private key; it is written with mode 0600 and must stay on the vehicle."
        ),
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    generate = actions.add_parser(
        "generate",
        help="write a new device key and print its device id, kid and public key",
        description="Write a new Ed25519 device key (mode 0600) and print its identity.",
    )
    generate.add_argument("--out", required=True, type=Path, metavar="PATH", help="key file to write")
    generate.add_argument(
        "--device-id", help="device id to sign for (default: derived from the public key, 'ev-' + 16 letters)"
    )
    generate.add_argument("--force", action="store_true", help="replace an existing key file")
    generate.add_argument("--json", action="store_true", help="print the identity as JSON")
    generate.set_defaults(run=_generate)

    show = actions.add_parser(
        "show",
        help="print the device id, kid and public key of a key file",
        description="Print the public identity of a device key file (never the private key).",
    )
    show.add_argument("path", type=Path, metavar="PATH", help="key file to read")
    show.add_argument("--json", action="store_true", help="print the identity as JSON")
    show.set_defaults(run=_show)


def _generate(args: argparse.Namespace) -> int:
    from carbonlink.cli.keyfile import new_device_key, write_device_key  # noqa: PLC0415 - lazy by design

    key = new_device_key(args.device_id)
    write_device_key(args.out, key, overwrite=args.force)
    _print_identity(args.out, key.device_id, key.kid, key.public_key.raw, as_json=args.json)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from carbonlink.cli.keyfile import load_device_key  # noqa: PLC0415 - lazy by design

    key = load_device_key(args.path)
    _print_identity(args.path, key.device_id, key.kid, key.public_key.raw, as_json=args.json)
    return EXIT_OK


def _print_identity(path: Path, device_id: str, kid: bytes, public_key: bytes, *, as_json: bool) -> None:
    identity = {"device_id": device_id, "kid": kid.hex(), "public_key": public_key.hex(), "key_file": str(path)}
    if as_json:
        print(json.dumps(identity, indent=2))
    else:
        width = max(len(name) for name in identity)
        for name, value in identity.items():
            print(f"{name:<{width}}  {value}")
