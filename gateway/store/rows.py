"""How the gateway's values become table rows and back: pure conversions, no SQL.

Times are integer microseconds (``dialects.to_micros``); enums are stored as their values; a
record's ``fields`` is its JSON view (``carbonlink.wire.record_to_json``) as compact JSON text.
Byte columns come back as ``bytes`` from both drivers; ``bytes(...)`` also accepts a memoryview.
"""

import json
from datetime import datetime

from carbonlink.reasons import RejectionReason
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import record_to_json
from gateway.model import (
    AcceptedRecord,
    ChainHead,
    Device,
    DeviceStatus,
    Enrolment,
    RegisteredKey,
    RejectedMessage,
    StoredRecord,
    StoredRejection,
)
from gateway.store.dialects import Params, Row, from_micros, to_micros


def keys_by_device(rows: list[Row]) -> dict[str, tuple[RegisteredKey, ...]]:
    grouped: dict[str, list[RegisteredKey]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(key(row))
    return {device_id: tuple(keys) for device_id, keys in grouped.items()}


def key(row: Row) -> RegisteredKey:
    _, kid, public_key, added_at, retired_at, revoked_at = row
    return RegisteredKey(
        kid=bytes(kid),
        public_key=bytes(public_key),
        added_at=from_micros(added_at),
        retired_at=time_or_none(retired_at),
        revoked_at=time_or_none(revoked_at),
    )


def device(row: Row, keys: tuple[RegisteredKey, ...]) -> Device:
    device_id, vehicle_class, vin_hash, status, registered_at, enrolment, last_seen_at, sequence = row
    return Device(
        device_id=device_id,
        vehicle_class=VehicleClass(vehicle_class),
        vin_hash=None if vin_hash is None else bytes(vin_hash),
        status=DeviceStatus(status),
        registered_at=from_micros(registered_at),
        enrolment=Enrolment(enrolment),
        keys=keys,
        last_seen_at=time_or_none(last_seen_at),
        last_sequence=sequence,
    )


def time_or_none(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def record_row(accepted: AcceptedRecord) -> Params:
    record = accepted.record
    return (
        accepted.record_hash,
        record.device_id,
        record.RECORD_TYPE,
        record.sequence,
        record.record_id,
        accepted.kid,
        record.vin_hash,
        to_micros(record.start_at),
        to_micros(record.end_at),
        to_micros(accepted.received_at),
        record.odometer_start_m,
        record.odometer_end_m,
        accepted.signed,
        json.dumps(record_to_json(record), separators=(",", ":")),
        None if accepted.refused_for is None else accepted.refused_for.value,
    )


def head_row(accepted: AcceptedRecord) -> Params:
    record = accepted.record
    return (
        record.device_id,
        record.sequence,
        accepted.record_hash,
        record.record_id,
        to_micros(record.end_at),
        record.odometer_end_m,
    )


def rejection_row(rejected: RejectedMessage) -> Params:
    return (
        to_micros(rejected.received_at),
        storable_text(rejected.topic),
        rejected.device_id,
        rejected.record_hash,
        rejected.record_id,
        rejected.sequence,
        rejected.reason.value,
        storable_text(rejected.detail),
        rejected.payload,
        rejected.payload_size,
    )


def storable_text(text: str) -> str:
    """Text from the outside as both databases can store it.

    PostgreSQL refuses NUL and neither driver encodes lone surrogates; a rejection that could not be
    stored would fail intake's whole batch, again and again.
    """
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def chain_head(row: Row) -> ChainHead:
    device_id, sequence, record_hash, record_id, end_at, odometer_end_m = row
    return ChainHead(
        device_id=device_id,
        sequence=sequence,
        record_hash=bytes(record_hash),
        record_id=record_id,
        end_at=from_micros(end_at),
        odometer_end_m=odometer_end_m,
    )


def stored_record(row: Row) -> StoredRecord:
    record_hash, device_id, record_type, sequence, record_id, start_at, end_at, received_at, kid, signed = row[:10]
    fields, refused_for = row[10:]
    return StoredRecord(
        record_hash=bytes(record_hash),
        device_id=device_id,
        record_type=record_type,
        sequence=sequence,
        record_id=record_id,
        start_at=from_micros(start_at),
        end_at=from_micros(end_at),
        received_at=from_micros(received_at),
        kid=bytes(kid),
        signed=bytes(signed),
        fields=json.loads(fields),
        refused_for=None if refused_for is None else RejectionReason(refused_for),
    )


def stored_rejection(row: Row) -> StoredRejection:
    rejection_id, received_at, topic, device_id, record_hash, record_id, sequence, reason, detail = row[:9]
    payload, payload_size = row[9:]
    return StoredRejection(
        rejection_id=rejection_id,
        received_at=from_micros(received_at),
        topic=topic,
        device_id=device_id,
        record_hash=bytes(record_hash),
        record_id=record_id,
        sequence=sequence,
        reason=RejectionReason(reason),
        detail=detail,
        payload=bytes(payload),
        payload_size=payload_size,
    )
