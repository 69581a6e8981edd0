"""The gateway's values: registered devices and keys, chain heads, what intake commits, what operators read.

Every value is frozen. Times are aware UTC datetimes ending in ``_at``; hashes and keys are raw
bytes (the API spells them in hex). Intake builds :class:`AcceptedRecord` and
:class:`RejectedMessage` values, the store commits them in one transaction, and operators read
them back as :class:`StoredRecord` and :class:`StoredRejection`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from carbonlink.reasons import RejectionReason
from carbonlink.records import Record
from carbonlink.vehicles import VehicleClass

MAX_STORED_REJECTED_BYTES = 8192
"""A rejected message is kept up to the size cap of a record: enough to see what came, bounded."""


class DeviceStatus(StrEnum):
    """Whether a device's records are taken at all."""

    ACTIVE = "active"
    REVOKED = "revoked"
    """Decommissioned or compromised: every record is refused with ``revoked_key``."""


class KeyStatus(StrEnum):
    """What a registered key may still sign."""

    ACTIVE = "active"
    RETIRED = "retired"
    """Replaced by a rotation: still valid for records that ended before ``retired_at``."""
    REVOKED = "revoked"
    """Never valid again, whatever the record's time."""


class Enrolment(StrEnum):
    """How a device came into the registry."""

    OPERATOR = "operator"
    """``carbonlink gateway devices add`` or the API."""
    CERTIFICATE = "certificate"
    """Zero-touch: an enrolment certificate signed by the fleet authority, on first contact."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredKey:
    """One public key of a device, with its life cycle."""

    kid: bytes
    """RFC 9679 thumbprint of ``public_key``: what a record's protected header names."""
    public_key: bytes
    added_at: datetime
    retired_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def status(self) -> KeyStatus:
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.retired_at is not None:
            return KeyStatus.RETIRED
        return KeyStatus.ACTIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A registered vehicle and its keys, newest key last."""

    device_id: str
    vehicle_class: VehicleClass
    vin_hash: bytes | None
    status: DeviceStatus
    registered_at: datetime
    enrolment: Enrolment
    keys: tuple[RegisteredKey, ...]
    last_seen_at: datetime | None = None
    """When the gateway last received a message on this device's records topic (any outcome)."""
    last_sequence: int | None = None
    """Sequence number of the device's last accepted record."""

    def key(self, kid: bytes) -> RegisteredKey | None:
        return next((key for key in self.keys if key.kid == kid), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """A device's last accepted record, as the replay and continuity checks need it."""

    device_id: str
    sequence: int
    record_hash: bytes
    record_id: str
    end_at: datetime
    odometer_end_m: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedRecord:
    """A new link of a device's chain, ready to commit: accepted, or refused for its content only.

    A record that is authentic and follows its device's chain, but fails plausibility or the overlap
    check, is still the link the device's next record names: it is stored with ``refused_for`` set
    (never credited), so the chain goes on instead of stalling at ``sequence_gap`` forever.
    """

    signed: bytes
    """The exact bytes received: what the signature covers and what auditors re-verify."""
    record_hash: bytes
    record: Record
    kid: bytes
    received_at: datetime
    refused_for: RejectionReason | None = None
    """None: accepted. Else the reason its content was refused (plausibility or overlap)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedMessage:
    """A message refused for ``reason``, kept (bounded) for operators."""

    received_at: datetime
    topic: str
    device_id: str | None
    """The device id of the topic, when the topic was a valid records topic."""
    record_hash: bytes
    """SHA-256 of the whole payload as received (also when it was cut for storage)."""
    record_id: str | None
    sequence: int | None
    reason: RejectionReason
    detail: str
    payload: bytes
    """The payload as received, cut to :data:`MAX_STORED_REJECTED_BYTES`."""
    payload_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRecord:
    """An accepted record as operators and auditors read it back."""

    record_hash: bytes
    device_id: str
    record_type: str
    sequence: int
    record_id: str
    start_at: datetime
    end_at: datetime
    received_at: datetime
    kid: bytes
    signed: bytes
    fields: Mapping[str, Any]
    """The record's JSON view (``carbonlink.wire``): bytes as hex, times as RFC 3339 text."""
    refused_for: RejectionReason | None = None
    """None for an accepted record; else a chain link refused for its content (see AcceptedRecord)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRejection(RejectedMessage):
    """A stored rejection: the message as intake refused it, numbered; ``rejection_id`` rises with time."""

    rejection_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordQuery:
    """Which accepted records to list: every condition given must hold; newest first."""

    include_refused: bool = False
    """Also list chain links refused for their content (``StoredRecord.refused_for`` set)."""
    device_id: str | None = None
    record_type: str | None = None
    """``trip`` or ``charge``."""
    start_from: datetime | None = None
    """Records that end at or after this time."""
    until: datetime | None = None
    """Records that start before this time."""
    limit: int = 100
    before_received_at: datetime | None = None
    """Keyset pagination: only records received before this (the last one of the previous page)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectionQuery:
    """Which stored rejections to list: every condition given must hold; newest first."""

    device_id: str | None = None
    reason: RejectionReason | None = None
    since: datetime | None = None
    limit: int = 100
    before_id: int | None = None
    """Keyset pagination: only rejections with a smaller ``rejection_id``."""
