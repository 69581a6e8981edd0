"""``carbonlink gateway devices ...``: the device registry from the command line.

Input is validated by :class:`gateway.registry.DeviceRegistry`, the same code the operator API
uses, so the CLI and the API accept and refuse exactly the same things.
"""

import argparse
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.text_table import aligned_rows

if TYPE_CHECKING:
    from gateway.model import Device


def manage_devices(args: argparse.Namespace) -> int:
    from gateway.config import load_config  # noqa: PLC0415 - the gateway loads only when it runs
    from gateway.errors import ConfigError, RegistryError, StoreError, UnknownDeviceError  # noqa: PLC0415
    from gateway.registry import DeviceRegistry  # noqa: PLC0415
    from gateway.store import open_store  # noqa: PLC0415

    try:
        url = args.store if args.store is not None else load_config(args.config, os.environ).store.url
        store = open_store(url)
    except (ConfigError, StoreError) as err:
        raise CliError(str(err), EXIT_USAGE) from err
    registry = DeviceRegistry(store, lambda: datetime.now(UTC))
    try:
        if args.verb == "add":
            device = registry.add(args.device_id, args.public_key, vin=args.vin, vehicle_class=args.vehicle_class)
            print(f"registered {device.device_id} ({device.vehicle_class}) with key {device.keys[-1].kid.hex()}")
        elif args.verb == "list":
            _print_devices(registry.list(), as_json=args.json)
        elif args.verb == "revoke":
            device = registry.revoke(args.device_id, args.kid)
            what = f"key {args.kid} of {device.device_id}" if args.kid else f"device {device.device_id}"
            print(f"revoked {what}: its records are refused from now on")
        else:
            device = registry.rotate_key(args.device_id, args.public_key)
            print(f"rotated the key of {device.device_id}: new key {device.keys[-1].kid.hex()}; the old one is retired")
    except UnknownDeviceError as err:
        raise CliError(str(err), EXIT_INVALID) from err
    except RegistryError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    except StoreError as err:
        raise CliError(f"store: {err}", EXIT_USAGE) from err
    finally:
        store.close()
    return EXIT_OK


def _device_json(device: "Device") -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "vehicle_class": device.vehicle_class.value,
        "status": device.status.value,
        "vin_hash": None if device.vin_hash is None else device.vin_hash.hex(),
        "registered_at": device.registered_at.isoformat(),
        "enrolment": device.enrolment.value,
        "last_seen_at": None if device.last_seen_at is None else device.last_seen_at.isoformat(),
        "last_sequence": device.last_sequence,
        "keys": [
            {
                "kid": key.kid.hex(),
                "public_key": key.public_key.hex(),
                "status": key.status.value,
                "added_at": key.added_at.isoformat(),
                "retired_at": None if key.retired_at is None else key.retired_at.isoformat(),
                "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
            }
            for key in device.keys
        ],
    }


def _print_devices(devices: "list[Device]", *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([_device_json(device) for device in devices], indent=2))
        return
    header = ("DEVICE", "CLASS", "STATUS", "KEYS", "LAST SEQ", "LAST SEEN")
    rows = [
        (
            d.device_id,
            d.vehicle_class.value,
            d.status.value,
            ",".join(f"{k.kid.hex()[:8]}:{k.status.value}" for k in d.keys),
            "-" if d.last_sequence is None else str(d.last_sequence),
            "-" if d.last_seen_at is None else d.last_seen_at.isoformat(timespec="seconds"),
        )
        for d in devices
    ]
    for line in aligned_rows(header, rows):
        print(line)
    if not rows:
        print("(no devices registered)")
