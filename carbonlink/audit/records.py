"""Devices and their record chains: every signature, every link, every record hash.

For each record line the audit checks, cheapest first: the device is known; the line's hash is the
SHA-256 of the signed bytes; the bytes are a carbonlink COSE_Sign1 message; the key named by its
``kid`` is one of the device's keys; the signature verifies with it; the payload is a valid record
of the line's device and sequence; and the record follows the device's previous record (sequence
+1, previous-record hash). Refused links are checked the same way: they are part of the chain.

What a later credit needs of a record is kept as small facts (:class:`TripFacts`,
:class:`ChargeFacts`), not the record: memory grows with devices and records, never with bytes.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from carbonlink.audit.errors import AuditError
from carbonlink.chain import check_link, record_hash
from carbonlink.credit_entries import creditable_trip, vehicle_key_for
from carbonlink.envelope import open_envelope
from carbonlink.errors import BadSignatureError, CarbonlinkError, ChainError, EnvelopeError, SchemaError
from carbonlink.keys import PublicKey, thumbprint
from carbonlink.ledger_export import ExportDevice, ExportRecord
from carbonlink.methodology import TripEnergy
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.wire import format_time

if TYPE_CHECKING:
    from carbonlink.reasons import RejectionReason


def short(digest: bytes) -> str:
    """A hash as a person reads it in a message: its first 16 hex digits."""
    return digest.hex()[:16] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class TripFacts:
    """What checking a credit needs of an accepted trip record."""

    device_id: str
    vehicle_key: str
    odometer_start_m: float | None
    odometer_end_m: float | None
    start_at: datetime
    end_at: datetime
    energy: TripEnergy


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeFacts:
    """What checking a credit needs of an accepted charge record."""

    vehicle_key: str
    end_at: datetime
    energy_in_wh: float
    grid_energy_wh: float | None


@dataclass(slots=True)
class _Device:
    line: ExportDevice
    keys: dict[bytes, tuple[PublicKey, datetime | None]]
    """By kid: the key and when it was retired (replaced at a rotation), if it was."""
    previous: tuple[bytes, Record] | None = None
    """The signed bytes and record of the device's last record so far: what the next one must follow."""


class RecordCheck:
    """Checks device and record lines in file order and keeps the facts credits are checked against."""

    def __init__(self) -> None:
        self._devices: dict[str, _Device] = {}
        self.trips: dict[bytes, TripFacts] = {}
        """Accepted trips not credited yet, by record hash (the credit check takes them out)."""
        self.charges: dict[bytes, ChargeFacts] = {}
        """Accepted charges, by record hash."""
        self.refused: dict[bytes, RejectionReason] = {}
        """Links refused for their content, by record hash: never credited."""
        self.records = 0
        self.accepted_trips = 0
        self.accepted_charges = 0

    @property
    def devices(self) -> int:
        return len(self._devices)

    def device(self, device_id: str) -> ExportDevice | None:
        found = self._devices.get(device_id)
        return None if found is None else found.line

    def add_device(self, line_no: int, device: ExportDevice) -> None:
        """Take a device line: a new device whose every kid is the thumbprint of its public key."""
        if device.device_id in self._devices:
            raise AuditError(line_no, f"device {device.device_id} appears twice")
        keys: dict[bytes, tuple[PublicKey, datetime | None]] = {}
        for key in device.keys:
            try:
                public_key = PublicKey(key.public_key)
            except CarbonlinkError as err:
                raise AuditError(
                    line_no, f"device {device.device_id}: key {short(key.kid)} is unusable: {err}"
                ) from err
            if thumbprint(key.public_key) != key.kid:
                raise AuditError(
                    line_no,
                    f"device {device.device_id}: kid {short(key.kid)} is not the thumbprint of its public key "
                    f"({short(public_key.kid)})",
                )
            if key.kid in keys:
                raise AuditError(line_no, f"device {device.device_id}: key {short(key.kid)} is listed twice")
            keys[key.kid] = (public_key, key.retired_at)
        self._devices[device.device_id] = _Device(line=device, keys=keys)

    def add_record(self, line_no: int, line: ExportRecord) -> Record:
        """Take a record line: verify it and link it to its device's chain; return the record."""
        device = self._devices.get(line.device_id)
        what = f"record {short(line.record_hash)} of device {line.device_id}"
        if device is None:
            raise AuditError(line_no, f"{what}: there is no device line for {line.device_id}")
        actual_hash = record_hash(line.signed)
        if actual_hash != line.record_hash:
            raise AuditError(
                line_no, f"{what}: record_hash is not the SHA-256 of the signed bytes ({short(actual_hash)})"
            )
        record = self._verified(line_no, what, device, line)
        if record.device_id != line.device_id:
            raise AuditError(line_no, f"{what}: the signed record is of device {record.device_id}, not of the line's")
        if record.sequence != line.sequence:
            raise AuditError(
                line_no, f"{what}: the signed record has sequence {record.sequence}, the line says {line.sequence}"
            )
        previous_signed, previous = device.previous if device.previous is not None else (None, None)
        try:
            check_link(previous_signed, previous, record)
        except ChainError as err:
            raise AuditError(line_no, f"{what} (sequence {record.sequence}) breaks the device's chain: {err}") from err
        device.previous = (line.signed, record)
        self.records += 1
        if line.refused_for is not None:
            self.refused[line.record_hash] = line.refused_for
        else:
            self._keep_facts(line.record_hash, device.line, record)
        return record

    @staticmethod
    def _verified(line_no: int, what: str, device: _Device, line: ExportRecord) -> Record:
        try:
            envelope = open_envelope(line.signed)
        except EnvelopeError as err:
            raise AuditError(line_no, f"{what}: the signed bytes are not a carbonlink record: {err}") from err
        found = device.keys.get(envelope.kid)
        if found is None:
            raise AuditError(
                line_no, f"{what}: signed by key {short(envelope.kid)}, which is not a key of device {line.device_id}"
            )
        key, retired_at = found
        try:
            envelope.check_signature(key)
        except BadSignatureError as err:
            raise AuditError(line_no, f"{what}: signature does not verify with key {short(key.kid)}") from err
        try:
            record = envelope.record()
        except (SchemaError, EnvelopeError) as err:
            raise AuditError(line_no, f"{what}: the signed payload is not a valid record: {err}") from err
        # The gateway's rule: a key replaced at a rotation signs nothing that ends after it.
        if retired_at is not None and record.end_at > retired_at:
            raise AuditError(
                line_no,
                f"{what}: ends at {format_time(record.end_at)}, after its key {short(key.kid)} was retired "
                f"at {format_time(retired_at)}",
            )
        return record

    def _keep_facts(self, digest: bytes, device: ExportDevice, record: Record) -> None:
        vehicle_key = vehicle_key_for(record.vin_hash or device.vin_hash, device.device_id)
        if isinstance(record, TripRecord):
            self.accepted_trips += 1
            self.trips[digest] = TripFacts(
                device_id=record.device_id,
                vehicle_key=vehicle_key,
                odometer_start_m=record.odometer_start_m,
                odometer_end_m=record.odometer_end_m,
                start_at=record.start_at,
                end_at=record.end_at,
                energy=creditable_trip(record),
            )
        elif isinstance(record, ChargeRecord):
            self.accepted_charges += 1
            self.charges[digest] = ChargeFacts(
                vehicle_key=vehicle_key,
                end_at=record.end_at,
                energy_in_wh=record.energy_in_wh,
                grid_energy_wh=record.grid_energy_wh,
            )
