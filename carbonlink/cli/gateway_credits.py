"""``carbonlink gateway export|owners|bind|exclude-charge|credits``: crediting from the command line.

Each action opens the store named in gateway.toml (``--config``) or by URL (``--store``), does one
thing and closes it. Binding goes through :class:`gateway.crediting.service.Crediting`, the same
code the operator API uses, so both record consent and issue accrued credits the same way.
"""

import argparse
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.text_table import aligned_rows

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.crediting.model import Credit
    from gateway.crediting.service import Crediting
    from gateway.store.record_store import RecordStore


_OWNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
"""Owner ids are spelled like device ids (the API checks the same)."""


@dataclass(frozen=True, slots=True)
class _Opened:
    store: "RecordStore"
    config: "GatewayConfig | None"


def _open(args: argparse.Namespace) -> _Opened:
    from gateway.config import load_config  # noqa: PLC0415 - the gateway loads only when it runs
    from gateway.errors import ConfigError, StoreError  # noqa: PLC0415
    from gateway.store import open_store  # noqa: PLC0415

    try:
        config = None if args.config is None else load_config(args.config, os.environ)
        url = args.store if config is None else config.store.url
        return _Opened(open_store(url), config)
    except (ConfigError, StoreError) as err:
        raise CliError(str(err), EXIT_USAGE) from err


def run_credits_action(args: argparse.Namespace) -> int:
    from gateway.errors import RegistryError, StoreError  # noqa: PLC0415 - the gateway loads only when it runs

    opened = _open(args)
    try:
        return _ACTIONS[args.verb](args, opened)
    except RegistryError as err:
        raise CliError(str(err), EXIT_INVALID) from err
    except StoreError as err:
        raise CliError(f"store: {err}", EXIT_USAGE) from err
    finally:
        opened.store.close()


def _export(args: argparse.Namespace, opened: _Opened) -> int:
    from gateway.adapters.ledger_file import write_ledger_export  # noqa: PLC0415 - lazy by design
    from gateway.crediting.sinks import read_signing_key  # noqa: PLC0415
    from gateway.errors import ConfigError  # noqa: PLC0415

    key_file = None if opened.config is None else opened.config.forwarding.signing_key_file
    try:
        gateway_key = None if key_file is None else read_signing_key(key_file).public_key
    except ConfigError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    try:
        counts = write_ledger_export(opened.store, args.out, exported_at=datetime.now(UTC), gateway_key=gateway_key)
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}", EXIT_USAGE) from err
    print(
        f"wrote {args.out}: {counts.devices} device(s), {counts.records} record(s), "
        f"{counts.entries} ledger entr{'y' if counts.entries == 1 else 'ies'}, {counts.batches} batch(es)"
    )
    if counts.devices_cut:
        print(f"{counts.devices_cut} device(s) had records committed during the export: the next export has them")
    print(f"check it with: carbonlink audit {args.out}")
    return EXIT_OK


def _owners(args: argparse.Namespace, opened: _Opened) -> int:
    ledger = opened.store.ledger
    if args.owner_verb == "add":
        if _OWNER_ID.fullmatch(args.owner_id) is None:
            raise CliError(f"--owner-id {args.owner_id!r} must be 3-64 of a-z, 0-9, '_' and '-'", EXIT_USAGE)
        owner = ledger.add_owner(args.owner_id, args.name, at=datetime.now(UTC))
        print(f"added owner {owner.owner_id} ({owner.name})")
        return EXIT_OK
    owners = ledger.owners()
    if args.json:
        print(
            json.dumps(
                [{"owner_id": o.owner_id, "name": o.name, "created_at": o.created_at.isoformat()} for o in owners]
            )
        )
    else:
        _table(
            ("OWNER", "NAME", "CREATED"),
            [(o.owner_id, o.name, o.created_at.isoformat(timespec="seconds")) for o in owners],
        )
    return EXIT_OK


def _crediting(opened: _Opened) -> "Crediting":
    from gateway.adapters.parameter_file import load_parameters  # noqa: PLC0415 - lazy by design
    from gateway.crediting.service import Crediting, check_regions  # noqa: PLC0415
    from gateway.crediting.settings import CreditingSettings, ForwardingSettings  # noqa: PLC0415

    crediting = opened.config.crediting if opened.config is not None else CreditingSettings()
    forwarding = opened.config.forwarding if opened.config is not None else ForwardingSettings()
    parameters = load_parameters(crediting.parameter_file)
    check_regions(parameters, [crediting.grid_region, *crediting.device_regions.values()], datetime.now(UTC).year)
    # Deliveries go to the sinks of the config; without one (--store) the running gateway's forwarder
    # adds them for its own sinks within a minute.
    return Crediting(
        opened.store.ledger,
        parameters,
        grid_region=crediting.grid_region,
        device_regions=crediting.device_regions,
        sinks=forwarding.sinks,
        clock=lambda: datetime.now(UTC),
    )


def _bind(args: argparse.Namespace, opened: _Opened) -> int:
    from gateway.errors import ConfigError  # noqa: PLC0415 - lazy by design

    try:
        crediting = _crediting(opened)
    except ConfigError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    consented_at = args.consented_at or datetime.now(UTC)
    binding, issued = crediting.bind(
        args.vehicle,
        args.owner,
        consented_at=consented_at,
        consent_method=args.consent_method,
        consent_reference=args.reference,
    )
    print(
        f"bound {binding.vehicle_key} to {binding.owner_id} (consent by {binding.consent_method} at "
        f"{binding.consented_at.isoformat()}, ledger entry {binding.binding_seq}); issued {issued} accrued credit(s)"
    )
    return EXIT_OK


def _exclude(args: argparse.Namespace, opened: _Opened) -> int:
    try:
        record_hash = bytes.fromhex(args.record_hash)
    except ValueError as err:
        raise CliError(f"--record-hash must be hex digits: {err}", EXIT_USAGE) from err
    opened.store.ledger.exclude_charge(record_hash, args.reason, at=datetime.now(UTC))
    print(f"charge {args.record_hash} is marked as credited elsewhere: later credits leave its energy out")
    return EXIT_OK


def _credits(args: argparse.Namespace, opened: _Opened) -> int:
    from gateway.crediting.model import CreditQuery  # noqa: PLC0415 - lazy by design

    found = opened.store.ledger.credits(
        CreditQuery(device_id=args.device_id, owner_id=args.owner, period=args.period, limit=args.limit)
    )
    if args.json:
        print(json.dumps([_credit_json(credit) for credit in found], indent=2))
        return EXIT_OK
    _table(
        ("CREDIT", "DEVICE", "PERIOD", "ODOMETER KM", "KG CO2E", "STATE", "OWNER"),
        [
            (
                c.credit_id[:12],
                c.device_id,
                c.period,
                f"{c.odometer_start_m / 1000:.1f}-{c.odometer_end_m / 1000:.1f}",
                f"{c.reduction_co2e_g / 1000:.3f}",
                c.state.value,
                c.owner_id or "-",
            )
            for c in found
        ],
    )
    return EXIT_OK


def _credit_json(credit: "Credit") -> dict[str, object]:
    return {
        "credit_id": credit.credit_id,
        "device_id": credit.device_id,
        "vehicle_key": credit.vehicle_key,
        "period": credit.period,
        "odometer_start_m": credit.odometer_start_m,
        "odometer_end_m": credit.odometer_end_m,
        "reduction_co2e_g": credit.reduction_co2e_g,
        "state": credit.state.value,
        "owner_id": credit.owner_id,
        "entry_seq": credit.entry.seq,
        "entry": dict(credit.entry.body),
    }


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    for line in aligned_rows(header, rows):
        print(line)
    if not rows:
        print("(none)")


_ACTIONS = {"export": _export, "owners": _owners, "bind": _bind, "exclude-charge": _exclude, "credits": _credits}
