"""Valid ledger exports for tests, and the means to tamper with one and seal it again.

:func:`build_export` makes what ``carbonlink gateway export`` would write for a small fleet:

- ``car-a`` (compact, VIN known and signed into its records): 8 records from ``sample_chain`` —
  trips and charges — whose key is rotated after record 5;
- ``car-b`` (SUV, no VIN): 4 records, its third a trip refused for implausible energy;
- ``car-c`` (compact): a replacement device registered on car-a's VIN whose records do not carry
  it; its 2 trips repeat odometer readings car-a already drove, so crediting left them out.

Every accepted trip of car-a and car-b is credited with the shipped methodology (its charges: the
vehicle's accepted charges of the period that ended by the trip's start); car-a is then bound to
``owner-1`` and its credits issued. Entries are sealed three to a batch.

An export is a list of JSON objects (one per line), so a test changes one field and calls
:meth:`Export.reseal` to recompute what an honest gateway would have (entry hashes, batch roots,
the end count) — the audit must then still find the change.
"""

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from carbonlink.chain import record_hash
from carbonlink.credit_entries import BindingEntry, CreditEntry, IssueEntry, vehicle_key_for
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.ledger import GENESIS_HASH, EntryKind, LedgerEntry, entry_hash, next_entry, seal_batch
from carbonlink.ledger_export import ExportDevice, ExportEnd, ExportHeader, ExportKey, ExportRecord, export_line
from carbonlink.merkle import merkle_root
from carbonlink.methodology import (
    ChargeEnergy,
    CreditParameters,
    ParameterSet,
    TripEnergy,
    compute_reduction,
    crediting_period,
    parse_parameter_file,
    resolve_parameters,
)
from carbonlink.reasons import RejectionReason
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.testing import SAMPLE_START_AT, sample_chain
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import format_time, parse_time

Line = dict[str, Any]

GRID_REGION = "eu-27"
VIN_HASH_A = hashlib.sha256(b"WVWZZZAUZLW000001").digest()
KEY_A1 = DeviceKey.from_seed(bytes([1]) * 32, "car-a")
KEY_A2 = DeviceKey.from_seed(bytes([2]) * 32, "car-a")
KEY_B = DeviceKey.from_seed(bytes([3]) * 32, "car-b")
KEY_C = DeviceKey.from_seed(bytes([4]) * 32, "car-c")
ROTATED_AFTER = 5
"""car-a signs records 1-5 with KEY_A1 and the rest with KEY_A2."""
REGISTERED_AT = SAMPLE_START_AT - timedelta(days=30)
CREDITED_AT = SAMPLE_START_AT + timedelta(days=1)
EXPORTED_AT = SAMPLE_START_AT + timedelta(days=2)
OWNER = "owner-1"
BATCH_SIZE = 3


def shipped_parameters() -> ParameterSet:
    """The parameter file shipped with the methodology, read as the gateway reads it."""
    text = resources.files("carbonlink.methodology").joinpath("parameters.toml").read_text(encoding="utf-8")
    return parse_parameter_file(text)


def credit_parameters(vehicle_class: VehicleClass, year: int) -> CreditParameters:
    return resolve_parameters(shipped_parameters(), vehicle_class=vehicle_class, grid_region=GRID_REGION, year=year)


def sample_credit_entry() -> CreditEntry:
    """One credit of car-a's first trip, standing alone (for body tests)."""
    signed, trip = next(iter(sample_chain(KEY_A1, 1, vin_hash=VIN_HASH_A)))
    if not isinstance(trip, TripRecord):
        raise TypeError("sample_chain starts with a trip")
    return _credit(signed, trip, "vin:" + VIN_HASH_A.hex(), VehicleClass.COMPACT, [])


@dataclass
class _Vehicle:
    key: DeviceKey
    vehicle_class: VehicleClass
    vin_hash: bytes | None
    keys: tuple[ExportKey, ...]
    records: list[tuple[bytes, Record, RejectionReason | None]]


def _chain(key: DeviceKey, count: int, **options: Any) -> list[tuple[bytes, Record]]:  # noqa: ANN401 - sample_chain's
    return list(sample_chain(key, count, **options))


def _rotated(records: list[tuple[bytes, Record]], after: int, key: DeviceKey) -> list[tuple[bytes, Record]]:
    """The same chain with records after ``after`` re-signed with ``key`` (and re-chained)."""
    out = records[:after]
    previous = record_hash(out[-1][0])
    for _, record in records[after:]:
        moved = replace(record, previous_record_hash=previous)
        signed = sign(moved, key)
        out.append((signed, moved))
        previous = record_hash(signed)
    return out


def _key(key: DeviceKey, retired_at: datetime | None = None) -> ExportKey:
    return ExportKey(
        kid=key.kid, public_key=key.public_key.raw, added_at=REGISTERED_AT, retired_at=retired_at, revoked_at=None
    )


def _fleet() -> list[_Vehicle]:
    chain_a = _rotated(_chain(KEY_A1, 8, vin_hash=VIN_HASH_A), ROTATED_AFTER, KEY_A2)
    rotation_at = chain_a[ROTATED_AFTER - 1][1].end_at
    chain_b = _chain(KEY_B, 4, start_at=SAMPLE_START_AT + timedelta(minutes=7), odometer_m=9_000_000.0)
    chain_c = _chain(KEY_C, 2, start_at=SAMPLE_START_AT + timedelta(hours=12))
    return [
        _Vehicle(
            key=KEY_A1,
            vehicle_class=VehicleClass.COMPACT,
            vin_hash=VIN_HASH_A,
            keys=(_key(KEY_A1, retired_at=rotation_at), _key(KEY_A2)),
            records=[(signed, record, None) for signed, record in chain_a],
        ),
        _Vehicle(
            key=KEY_B,
            vehicle_class=VehicleClass.SUV,
            vin_hash=None,
            keys=(_key(KEY_B),),
            records=[
                (signed, record, RejectionReason.IMPLAUSIBLE_ENERGY if record.sequence == 3 else None)
                for signed, record in chain_b
            ],
        ),
        _Vehicle(
            key=KEY_C,
            vehicle_class=VehicleClass.COMPACT,
            vin_hash=VIN_HASH_A,
            keys=(_key(KEY_C),),
            records=[(signed, record, None) for signed, record in chain_c],
        ),
    ]


def _credit(
    signed: bytes, trip: TripRecord, vehicle_key: str, vehicle_class: VehicleClass, charges: list[ChargeEnergy]
) -> CreditEntry:
    parameters = credit_parameters(vehicle_class, trip.end_at.year)
    energy = TripEnergy(
        distance_m=trip.distance_m, energy_out_wh=trip.energy_out_wh, energy_regen_wh=trip.energy_regen_wh
    )
    digest = record_hash(signed).hex()
    return CreditEntry(
        credit_id=digest,
        record_hash=digest,
        device_id=trip.device_id,
        vehicle_key=vehicle_key,
        odometer_start_m=trip.odometer_start_m or 0.0,
        odometer_end_m=trip.odometer_end_m or 0.0,
        start_at=format_time(trip.start_at),
        end_at=format_time(trip.end_at),
        period=crediting_period(trip.end_at),
        parameters=parameters,
        charges=tuple(charges),
        reduction=compute_reduction(energy, charges, parameters),
    )


def _ledger(fleet: list[_Vehicle]) -> list[LedgerEntry]:
    charges: list[tuple[str, ChargeRecord, bytes]] = []
    for vehicle in fleet:
        for signed, record, refused in vehicle.records:
            if isinstance(record, ChargeRecord) and refused is None:
                charges.append((vehicle_key_for(record.vin_hash or vehicle.vin_hash, record.device_id), record, signed))
    entries: list[LedgerEntry] = []
    credited: list[CreditEntry] = []

    def append(kind: EntryKind, body: dict[str, object]) -> LedgerEntry:
        entry = next_entry(entries[-1] if entries else None, kind, body, CREDITED_AT + timedelta(seconds=len(entries)))
        entries.append(entry)
        return entry

    for vehicle in fleet[:2]:  # car-c's trips overlap car-a's: crediting refused them
        for signed, record, refused in vehicle.records:
            if not isinstance(record, TripRecord) or refused is not None:
                continue
            key = vehicle_key_for(record.vin_hash or vehicle.vin_hash, record.device_id)
            used = [
                ChargeEnergy(
                    record_hash=record_hash(charge_signed),
                    energy_in_wh=charge.energy_in_wh,
                    grid_energy_wh=charge.grid_energy_wh,
                    excluded=False,
                )
                for charge_key, charge, charge_signed in charges
                if charge_key == key
                and charge.end_at <= record.start_at
                and crediting_period(charge.end_at) == crediting_period(record.end_at)
            ]
            credit = _credit(signed, record, key, vehicle.vehicle_class, used)
            credited.append(credit)
            append(EntryKind.CREDIT, credit.to_body())
    vehicle_a = "vin:" + VIN_HASH_A.hex()
    binding = BindingEntry(
        vehicle_key=vehicle_a,
        owner_id=OWNER,
        consented_at=format_time(CREDITED_AT - timedelta(hours=2)),
        consent_method="app",
        consent_reference="form 2026-117",
    )
    binding_seq = append(EntryKind.BINDING, binding.to_body()).seq
    for credit in credited:
        if credit.vehicle_key == vehicle_a:
            issue = IssueEntry(
                credit_id=credit.credit_id,
                owner_id=OWNER,
                vehicle_key=vehicle_a,
                reduction_co2e_g=credit.reduction.reduction_co2e_g,
                binding_seq=binding_seq,
            )
            append(EntryKind.ISSUE, issue.to_body())
    return entries


@dataclass
class Export:
    """An export as its lines (JSON objects), to read, change, re-seal and write."""

    lines: list[Line]

    def text(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines)

    def write(self, path: Path) -> Path:
        path.write_text(self.text(), encoding="utf-8")
        return path

    def copy(self) -> "Export":
        return Export(copy.deepcopy(self.lines))

    def find(self, kind: str, predicate: Callable[[Line], bool] = lambda _: True, nth: int = 0) -> int:
        """The index of the ``nth`` line of this type matching ``predicate``."""
        found = [i for i, line in enumerate(self.lines) if line["type"] == kind and predicate(line)]
        return found[nth]

    def append_entry(self, kind: EntryKind, body: Line) -> int:
        """Add an entry after the last one (into the last batch) and re-seal; the new line's index."""
        last = max(i for i, line in enumerate(self.lines) if line["type"] == "entry")
        recorded_at = self.lines[last]["recorded_at"]
        self.lines.insert(
            last + 1, {"type": "entry", "seq": 0, "kind": kind.value, "recorded_at": recorded_at, "body": body}
        )
        self.reseal()
        return last + 1

    def entries(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line["type"] == "entry" and line["kind"] == kind]

    def record_of(self, digest: str) -> Record:
        """The record (decoded, not verified) of a record line by its hash."""
        from carbonlink.envelope import open_envelope  # noqa: PLC0415 - only this helper needs it

        line = self.lines[self.find("record", lambda line: line["record_hash"] == digest)]
        return open_envelope(base64.b64decode(line["signed"])).record()

    def recomputed(self, body: Line) -> Line:
        """A credit body with its reduction recomputed from its (possibly changed) parameters and charges."""
        credit = CreditEntry.from_body(body)
        trip = self.record_of(credit.record_hash)
        if not isinstance(trip, TripRecord):
            raise TypeError("a credit names a trip")
        energy = TripEnergy(
            distance_m=trip.distance_m, energy_out_wh=trip.energy_out_wh, energy_regen_wh=trip.energy_regen_wh
        )
        return replace(credit, reduction=compute_reduction(energy, list(credit.charges), credit.parameters)).to_body()

    def reseal(self, *, batches: bool = True) -> "Export":
        """Recompute entry seqs and hashes, batch ranges and roots (unless ``batches`` is False), and the end count."""
        previous = GENESIS_HASH
        hashes: dict[int, bytes] = {}
        seq = 0
        for line in self.lines:
            if line["type"] == "entry":
                seq += 1
                digest = entry_hash(
                    seq=seq,
                    kind=EntryKind(line["kind"]),
                    recorded_at=parse_time(line["recorded_at"]),
                    body=line["body"],
                    previous_hash=previous,
                )
                line.update(seq=seq, previous_hash=previous.hex(), entry_hash=digest.hex())
                hashes[seq] = previous = digest
        if batches:
            root = GENESIS_HASH
            batch_lines = [line for line in self.lines if line["type"] == "batch"]
            for line in batch_lines:
                if line is batch_lines[-1]:
                    line["last_seq"] = seq
                leaves = [hashes[n] for n in range(line["first_seq"], line["last_seq"] + 1)]
                line.update(merkle_root=merkle_root(leaves).hex(), previous_root=root.hex())
                root = merkle_root(leaves)
        self.lines[-1]["lines"] = len(self.lines) - 1
        return self


def build_export() -> Export:
    """A valid export of the fleet described in the module docstring."""
    fleet = _fleet()
    out: list[str] = [
        export_line(
            ExportHeader(exported_at=EXPORTED_AT, gateway_kid=KEY_A1.kid, gateway_public_key=KEY_A1.public_key.raw)
        )
    ]
    # The gateway signs with its own key; any Ed25519 key stands in for it here.
    out.extend(
        export_line(
            ExportDevice(
                device_id=vehicle.key.device_id,
                vehicle_class=vehicle.vehicle_class.value,
                vin_hash=vehicle.vin_hash,
                status="active",
                keys=vehicle.keys,
            )
        )
        for vehicle in fleet
    )
    for vehicle in fleet:
        out.extend(
            export_line(
                ExportRecord(
                    record_hash=record_hash(signed),
                    device_id=record.device_id,
                    sequence=record.sequence,
                    refused_for=refused,
                    signed=signed,
                )
            )
            for signed, record, refused in vehicle.records
        )
    entries = _ledger(fleet)
    out.extend(export_line(entry) for entry in entries)
    batch = None
    for start in range(0, len(entries), BATCH_SIZE):
        batch = seal_batch(batch, entries[start : start + BATCH_SIZE], CREDITED_AT + timedelta(minutes=1))
        out.append(export_line(batch))
    out.append(export_line(ExportEnd(lines=len(out))))
    return Export([json.loads(line) for line in out])


def export_text() -> str:
    """The text of a valid export, as a file holds it."""
    return build_export().text()
