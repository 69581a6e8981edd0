"""The API's JSON bodies as pydantic models, and their construction from the gateway's values.

Hashes, keys and kids are lowercase hex; times are RFC 3339 UTC with microseconds
(``2026-11-24T07:30:00.123456Z``, the spelling of records' own fields). Request bodies refuse
unknown fields, so a misspelt ``vehicle_clas`` is an error rather than silently ignored.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from carbonlink.acks import Outcome
from carbonlink.reasons import RejectionReason
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import format_time
from gateway.model import (
    Device,
    DeviceStatus,
    Enrolment,
    KeyStatus,
    RegisteredKey,
    StoredRecord,
    StoredRejection,
)

UtcTime = Annotated[datetime, PlainSerializer(format_time, return_type=str)]


class ErrorBody(BaseModel):
    """Every error answer: one sentence naming what is wrong."""

    detail: str


Responses = dict[int | str, dict[str, Any]]
"""The ``responses`` argument of a route: what it answers besides success, for the OpenAPI schema."""


def errors(descriptions: Mapping[int, str]) -> Responses:
    """Error answers by status code, e.g. ``errors({404: "No such device."})``."""
    return {code: {"model": ErrorBody, "description": text} for code, text in descriptions.items()}


class KeyOut(BaseModel):
    """One registered public key and where it is in its life cycle."""

    kid: str = Field(description="RFC 9679 thumbprint of the public key, as named in records' protected header.")
    public_key: str
    status: KeyStatus
    added_at: UtcTime
    retired_at: UtcTime | None
    revoked_at: UtcTime | None

    @classmethod
    def of(cls, key: RegisteredKey) -> "KeyOut":
        return cls(
            kid=key.kid.hex(),
            public_key=key.public_key.hex(),
            status=key.status,
            added_at=key.added_at,
            retired_at=key.retired_at,
            revoked_at=key.revoked_at,
        )


class DeviceOut(BaseModel):
    """A registered device with its keys, newest key last."""

    device_id: str
    vehicle_class: VehicleClass
    status: DeviceStatus
    vin_hash: str | None = Field(description="SHA-256 of the VIN; the VIN itself is never stored.")
    registered_at: UtcTime
    enrolment: Enrolment
    keys: list[KeyOut]
    last_seen_at: UtcTime | None = Field(description="Last message on the device's records topic, any outcome.")
    last_sequence: int | None = Field(description="Sequence number of the device's last accepted record.")

    @classmethod
    def of(cls, device: Device) -> "DeviceOut":
        return cls(
            device_id=device.device_id,
            vehicle_class=device.vehicle_class,
            status=device.status,
            vin_hash=None if device.vin_hash is None else device.vin_hash.hex(),
            registered_at=device.registered_at,
            enrolment=device.enrolment,
            keys=[KeyOut.of(key) for key in device.keys],
            last_seen_at=device.last_seen_at,
            last_sequence=device.last_sequence,
        )


class DeviceList(BaseModel):
    """Every registered device."""

    devices: list[DeviceOut]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceCreate(_Request):
    """An operator's registration of a device with its first public key."""

    device_id: str = Field(examples=["ev-fleet-0001"])
    public_key: str = Field(description="Ed25519 public key: 64 hex digits or base64 of 32 bytes.")
    vin: str | None = Field(default=None, description="Hashed at once; only the hash is stored.")
    vehicle_class: str | None = Field(default=None, description="compact, suv, van, bus; default unspecified.")


class RevokeRequest(_Request):
    """Without ``kid`` the whole device is revoked; with it, that one key."""

    kid: str | None = None


class RotateKeyRequest(_Request):
    """A device's new public key."""

    public_key: str = Field(description="The new Ed25519 public key; the active one is retired.")


class RecordOut(BaseModel):
    """An accepted record as listed."""

    record_hash: str = Field(description="SHA-256 of the signed bytes.")
    device_id: str
    type: str = Field(description="trip or charge")
    sequence: int
    record_id: str
    start_at: UtcTime
    end_at: UtcTime
    received_at: UtcTime
    kid: str
    refused_for: RejectionReason | None = Field(
        description="Null: accepted. Else a chain link kept but refused for its content (never credited)."
    )

    @classmethod
    def of(cls, record: StoredRecord) -> "RecordOut":
        return cls(**_record_summary(record))


def _record_summary(record: StoredRecord) -> dict[str, Any]:
    return {
        "record_hash": record.record_hash.hex(),
        "device_id": record.device_id,
        "type": record.record_type,
        "sequence": record.sequence,
        "record_id": record.record_id,
        "start_at": record.start_at,
        "end_at": record.end_at,
        "received_at": record.received_at,
        "kid": record.kid.hex(),
        "refused_for": record.refused_for,
    }


class RecordPage(BaseModel):
    """One page of records, newest first."""

    records: list[RecordOut]
    next: str | None = Field(description="Pass as ?before= for the next (older) page; null on the last page.")


class Reverification(BaseModel):
    """The stored signed bytes verified again, now, with the key registered for their kid."""

    verified: bool
    detail: str
    checked_at: UtcTime


class Verification(BaseModel):
    """Why the gateway trusts a record, and a fresh check of it."""

    device_id: str
    kid: str
    key_status: KeyStatus | None = Field(description="Now; null when the key is no longer registered.")
    record_hash: str
    received_at: UtcTime
    sequence: int
    previous_record_hash: str | None
    signature_verified_on_intake: bool = Field(
        description="Always true: intake stores only records whose signature verified."
    )
    verify_again: Reverification


class RecordDetail(RecordOut):
    """A record with every field (its JSON view) and its verification."""

    fields: dict[str, Any]
    verification: Verification

    @classmethod
    def of_verified(cls, record: StoredRecord, verification: Verification) -> "RecordDetail":
        return cls(**_record_summary(record), fields=dict(record.fields), verification=verification)


class RejectionOut(BaseModel):
    """A message the gateway refused, and why."""

    rejection_id: int
    received_at: UtcTime
    topic: str
    device_id: str | None
    record_hash: str = Field(description="SHA-256 of the whole payload as received.")
    record_id: str | None
    sequence: int | None
    reason: RejectionReason
    detail: str
    payload_size: int = Field(description="Bytes received.")
    stored_bytes: int = Field(description="Bytes kept (the payload is cut at 8 KiB).")

    @classmethod
    def of(cls, rejection: StoredRejection) -> "RejectionOut":
        return cls(
            rejection_id=rejection.rejection_id,
            received_at=rejection.received_at,
            topic=rejection.topic,
            device_id=rejection.device_id,
            record_hash=rejection.record_hash.hex(),
            record_id=rejection.record_id,
            sequence=rejection.sequence,
            reason=rejection.reason,
            detail=rejection.detail,
            payload_size=rejection.payload_size,
            stored_bytes=len(rejection.payload),
        )


class RejectionPage(BaseModel):
    """One page of rejections, newest first."""

    rejections: list[RejectionOut]
    next: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last page.")


class DeviceCounts(BaseModel):
    """Registered devices by status."""

    total: int
    active: int
    revoked: int


class Summary(BaseModel):
    """What the dashboard shows at a glance. Message counts are this gateway process's since it started."""

    generated_at: UtcTime
    messages: dict[Outcome, int] = Field(description="Messages by outcome.")
    rejections: dict[RejectionReason, int] = Field(description="Rejected messages by reason.")
    queue_depth: dict[str, int]
    queue_overflows: dict[str, int]
    mqtt_connected: bool
    devices: DeviceCounts


class Health(BaseModel):
    """The answer of ``/healthz`` and ``/readyz``."""

    status: str = Field(description="alive, ready or not ready")
    reason: str | None = None
