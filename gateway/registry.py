"""The device registry as operators change it: the one place their input is checked.

The API and ``carbonlink gateway devices ...`` both go through :class:`DeviceRegistry`, so a device
id, a public key, a VIN or a vehicle class is refused with the same precise message wherever it
was typed. The VIN itself is never stored: only its hash, the key of the credit ledger.
"""

import string
from collections.abc import Callable
from datetime import datetime

from carbonlink.errors import KeyFormatError
from carbonlink.keys import PublicKey, check_device_id
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash
from gateway.errors import RegistryError, UnknownDeviceError
from gateway.model import Device, DeviceStatus, Enrolment
from gateway.store.record_store import RecordStore

KID_HEX_DIGITS = 64
"""A kid is a SHA-256 thumbprint: 32 bytes, 64 hex digits (as many as an Ed25519 public key)."""
_BASE64_KEY_CHARS = (43, 44)
"""Base64 of 32 bytes, without and with its padding."""


def parse_device_id(device_id: str) -> str:
    """The device id if it is valid, else :class:`RegistryError` saying what a device id is."""
    try:
        return check_device_id(device_id)
    except KeyFormatError as err:
        raise RegistryError(str(err)) from err


def parse_public_key(text: str) -> PublicKey:
    """An Ed25519 public key from 64 hex digits or base64, else :class:`RegistryError`."""
    digits = text.strip()
    if (
        digits
        and len(digits) not in {KID_HEX_DIGITS, *_BASE64_KEY_CHARS}
        and all(c in string.hexdigits for c in digits)
    ):
        # Hex of the wrong length (a truncated copy) would otherwise be read as base64 of some odd length.
        raise RegistryError(
            f"public key: expected {KID_HEX_DIGITS} hex digits or base64 of 32 bytes, got {len(digits)} hex digits"
        )
    try:
        return PublicKey.from_text(text)
    except KeyFormatError as err:
        raise RegistryError(f"public key: {err}") from err


def parse_kid(text: str) -> bytes:
    """A key id from its 64 hex digits, else :class:`RegistryError`."""
    digits = text.strip().lower()
    if len(digits) != KID_HEX_DIGITS or any(c not in "0123456789abcdef" for c in digits):
        raise RegistryError(f"kid must be {KID_HEX_DIGITS} hex digits (a key thumbprint), got {text!r}")
    return bytes.fromhex(digits)


def parse_vehicle_class(text: str | None) -> VehicleClass:
    """A vehicle class by name (``unspecified`` when none is given), else :class:`RegistryError`."""
    if text is None:
        return VehicleClass.UNSPECIFIED
    try:
        return VehicleClass(text.strip().lower())
    except ValueError as err:
        known = ", ".join(c.value for c in VehicleClass)
        raise RegistryError(f"unknown vehicle class {text!r}; known classes: {known}") from err


def parse_vin_hash(vin: str | None) -> bytes | None:
    """The hash of a VIN (None when none is given), else :class:`RegistryError`."""
    if vin is None:
        return None
    try:
        return vin_hash(vin)
    except ValueError as err:
        raise RegistryError(f"VIN: {err}") from err


class DeviceRegistry:
    """Registers, lists, revokes and re-keys devices in a :class:`RecordStore`, checking every input.

    Raises :class:`RegistryError` for input that is not valid, :class:`UnknownDeviceError` for a
    device or key that is not registered and :class:`DeviceExistsError` (from the store) for a
    device id or public key registered already.
    """

    def __init__(self, store: RecordStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def add(
        self,
        device_id: str,
        public_key: str,
        vin: str | None = None,
        vehicle_class: str | None = None,
    ) -> Device:
        """Register a device with its first key, entered by an operator."""
        checked_id = parse_device_id(device_id)
        key = parse_public_key(public_key)
        hashed_vin = parse_vin_hash(vin)
        kind = parse_vehicle_class(vehicle_class)
        return self._store.add_device(
            checked_id, key, vehicle_class=kind, vin_hash=hashed_vin, enrolment=Enrolment.OPERATOR, at=self._clock()
        )

    def list(self) -> list[Device]:
        """Every registered device, by device id."""
        return self._store.devices()

    def get(self, device_id: str) -> Device:
        device = self._store.device(parse_device_id(device_id))
        if device is None:
            raise UnknownDeviceError(f"device {device_id!r} is not registered")
        return device

    def revoke(self, device_id: str, kid: str | None = None) -> Device:
        """Revoke one key (``kid`` in hex), or the whole device when no kid is given."""
        key_id = None if kid is None else parse_kid(kid)
        device = self.get(device_id)
        if key_id is None:
            return self._store.revoke_device(device.device_id, at=self._clock())
        if device.key(key_id) is None:
            raise UnknownDeviceError(f"device {device.device_id!r} has no key {key_id.hex()}")
        return self._store.revoke_key(device.device_id, key_id, at=self._clock())

    def rotate_key(self, device_id: str, public_key: str) -> Device:
        """Add a new active key; the current one is retired (valid for records ended before now)."""
        key = parse_public_key(public_key)
        device = self.get(device_id)
        if device.status is DeviceStatus.REVOKED:
            raise RegistryError(f"device {device.device_id!r} is revoked: register the vehicle as a new device")
        return self._store.rotate_key(device.device_id, key, at=self._clock())
