"""``carbonlink keys``: create and show device keys, and certify them for zero-touch enrolment."""

import argparse
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonlink.cli.errors import EXIT_OK, CliError

if TYPE_CHECKING:
    from carbonlink.keys import PublicKey

HELP = "create and show Ed25519 device keys; issue enrolment certificates"
DEFAULT_VALID_DAYS = 365
MAX_VALID_DAYS = 3650
"""Ten years: a certificate only matters at a vehicle's first contact, so a long one buys nothing."""


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

    enrol = actions.add_parser(
        "enrol",
        help="sign an enrolment certificate for a device key with the fleet authority's key",
        description=(
            "Write an enrolment certificate (docs/protocol.md, 'Enrolment certificates'): the fleet "
            "authority's key vouches for a device's public key, id, vehicle class and VIN. A gateway "
            "that trusts the authority registers the vehicle when it presents the certificate on its "
            "first contact. The authority key is an ordinary key file "
            "('carbonlink keys generate --device-id fleet-authority'); keep it off the vehicles."
        ),
    )
    enrol.add_argument("--authority", required=True, type=Path, metavar="PATH", help="the authority's key file")
    device = enrol.add_mutually_exclusive_group(required=True)
    device.add_argument(
        "--device-key", type=Path, metavar="PATH", help="the device's key file (its public part is used)"
    )
    device.add_argument(
        "--public-key", metavar="KEY", help="the device's public key: 64 hex digits, base64, or a file holding it"
    )
    enrol.add_argument(
        "--device-id", help="the device id (required with --public-key; with --device-key it must match)"
    )
    enrol.add_argument("--vehicle-class", default="unspecified", help="compact, suv, van, bus or unspecified (default)")
    enrol.add_argument("--vin", help="the vehicle's VIN: only its SHA-256 goes into the certificate")
    enrol.add_argument(
        "--valid-days",
        type=int,
        default=DEFAULT_VALID_DAYS,
        metavar="DAYS",
        help=f"days from now until the certificate expires (default {DEFAULT_VALID_DAYS}, at most {MAX_VALID_DAYS})",
    )
    enrol.add_argument("--authority-name", help="the authority's name in the certificate (default: its key's id)")
    enrol.add_argument("--out", required=True, type=Path, metavar="PATH", help="certificate file to write")
    enrol.add_argument("--force", action="store_true", help="replace an existing certificate file")
    enrol.add_argument("--json", action="store_true", help="print what was certified as JSON")
    enrol.set_defaults(run=_enrol)


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


def _enrol(args: argparse.Namespace) -> int:
    from carbonlink.cli.keyfile import load_device_key  # noqa: PLC0415 - lazy by design
    from carbonlink.enrolment import issue_certificate, read_certificate_unverified  # noqa: PLC0415
    from carbonlink.errors import CarbonlinkError  # noqa: PLC0415
    from carbonlink.vehicles import VehicleClass  # noqa: PLC0415

    if not 1 <= args.valid_days <= MAX_VALID_DAYS:
        raise CliError(f"--valid-days must be from 1 to {MAX_VALID_DAYS}, not {args.valid_days}")
    try:
        vehicle_class = VehicleClass(args.vehicle_class.strip().lower())
    except ValueError as err:
        known = ", ".join(member.value for member in VehicleClass)
        raise CliError(f"--vehicle-class {args.vehicle_class!r} is not one of: {known}") from err
    if args.out.exists() and not args.force:  # before any key is read: the cheapest mistake first
        raise CliError(f"{args.out} already exists; pass --force to replace it")
    authority_key = load_device_key(args.authority)
    device_id, public_key = _certified_device(args)
    issued_at = datetime.now(UTC).replace(microsecond=0)
    try:
        certificate = issue_certificate(
            authority_key,
            device_public_key=public_key,
            device_id=device_id,
            vehicle_class=vehicle_class,
            vin_hash=_vin_hash(args.vin),
            issued_at=issued_at,
            expires_at=issued_at + timedelta(days=args.valid_days),
            authority=args.authority_name or authority_key.device_id,
        )
    except CarbonlinkError as err:
        raise CliError(str(err)) from err
    _write_certificate(args.out, certificate, overwrite=args.force)
    issued = read_certificate_unverified(certificate)
    facts = {
        "device_id": issued.device_id,
        "public_key": issued.public_key.raw.hex(),
        "kid": issued.public_key.kid.hex(),
        "vehicle_class": issued.vehicle_class.value,
        "vin_hash": None if issued.vin_hash is None else issued.vin_hash.hex(),
        "issued_at": issued.issued_at.isoformat(),
        "expires_at": issued.expires_at.isoformat(),
        "authority": issued.authority,
        "authority_kid": issued.authority_kid.hex(),
        "certificate_file": str(args.out),
        "certificate_bytes": len(certificate),
    }
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        width = max(len(name) for name in facts)
        for name, value in facts.items():
            print(f"{name:<{width}}  {'-' if value is None else value}")
    return EXIT_OK


def _certified_device(args: argparse.Namespace) -> "tuple[str, PublicKey]":
    """The device id and public key to certify, from --device-key or --public-key with --device-id."""
    from carbonlink.cli.keyfile import load_device_key, load_public_key  # noqa: PLC0415
    from carbonlink.errors import KeyFormatError  # noqa: PLC0415
    from carbonlink.keys import check_device_id  # noqa: PLC0415

    if args.device_key is not None:
        key = load_device_key(args.device_key)
        if args.device_id is not None and args.device_id != key.device_id:
            raise CliError(f"--device-id {args.device_id!r} is not the id of {args.device_key} ({key.device_id!r})")
        return key.device_id, key.public_key
    if args.device_id is None:
        raise CliError("--public-key needs --device-id")
    try:
        device_id = check_device_id(args.device_id)
    except KeyFormatError as err:
        raise CliError(str(err)) from err
    return device_id, load_public_key(args.public_key)


def _vin_hash(vin: str | None) -> bytes | None:
    from carbonlink.vin import vin_hash  # noqa: PLC0415

    try:
        return None if vin is None else vin_hash(vin)
    except ValueError as err:
        raise CliError(f"--vin: {err}") from err


def _write_certificate(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write the certificate (public: mode 0644) beside the target and rename; never replace one unless asked."""
    if not path.parent.is_dir():
        raise CliError(f"cannot write {path}: directory {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(0o644)
        if overwrite:
            temporary.replace(path)
        else:
            os.link(temporary, path)  # fails if the target appeared meanwhile: no silent overwrite
    except FileExistsError as err:
        raise CliError(f"{path} already exists; pass --force to replace it") from err
    except OSError as err:
        raise CliError(f"cannot write certificate file {path}: {err.strerror}") from err
    finally:
        temporary.unlink(missing_ok=True)
