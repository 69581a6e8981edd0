"""What the gateway needs from its database, as one protocol: registry, intake and operator reads.

One implementation, :class:`~gateway.store.sql_store.SqlRecordStore`, runs the same SQL on SQLite
(WAL, the embedded default) and PostgreSQL (several gateway processes); ``open_store(url)`` picks
the driver from the URL. Every method is safe to call from several threads at once.

Uniqueness is the database's job, not the caller's: a record's hash, its ``(device_id, sequence)``
and its ``(device_id, record_id)`` are unique, so two gateway processes racing to accept the same
or conflicting records cannot both commit — the loser's :meth:`RecordStore.commit` raises
:class:`~gateway.errors.ConflictError` and commits nothing of its batch.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from carbonlink.keys import PublicKey
from carbonlink.reasons import RejectionReason
from carbonlink.vehicles import VehicleClass
from gateway.model import (
    AcceptedRecord,
    ChainHead,
    Device,
    Enrolment,
    RecordQuery,
    RejectedMessage,
    RejectionQuery,
    StoredRecord,
    StoredRejection,
)

if TYPE_CHECKING:
    from gateway.store.sql_ledger import SqlLedger


class RecordStore(Protocol):
    """The gateway's database (see the module docstring)."""

    # --- device registry ---------------------------------------------------------------------
    def add_device(  # noqa: PLR0913 - keyword-only: every part of a registration
        self,
        device_id: str,
        public_key: PublicKey,
        *,
        vehicle_class: VehicleClass,
        vin_hash: bytes | None,
        enrolment: Enrolment,
        at: datetime,
    ) -> Device:
        """Register a device with its first key; :class:`DeviceExistsError` if the id or key is taken."""
        ...

    def device(self, device_id: str) -> Device | None: ...

    def devices(self) -> list[Device]:
        """Every registered device, by device id."""
        ...

    def revoke_device(self, device_id: str, *, at: datetime) -> Device:
        """Refuse every further record of the device (all its keys are revoked); idempotent."""
        ...

    def revoke_key(self, device_id: str, kid: bytes, *, at: datetime) -> Device:
        """Revoke one key of a device; :class:`UnknownDeviceError` when the device has no such key."""
        ...

    def rotate_key(self, device_id: str, public_key: PublicKey, *, at: datetime) -> Device:
        """Add a new active key; the active one becomes retired at ``at`` (valid for records ended by then)."""
        ...

    # --- intake --------------------------------------------------------------------------------
    def chain_heads(self, device_ids: Collection[str]) -> dict[str, ChainHead]:
        """The last accepted record of each device that has one (one query for the whole batch)."""
        ...

    def record_hash_at(self, device_id: str, sequence: int) -> bytes | None:
        """The hash of the device's accepted record with this sequence number, if any."""
        ...

    def record_hash_of_id(self, device_id: str, record_id: str) -> bytes | None:
        """The hash of the device's accepted record with this record id, if any."""
        ...

    def record_refusal(self, device_id: str, record_hash: bytes) -> RejectionReason | None:
        """Why a stored chain link of the device was refused for its content; None if accepted or unknown."""
        ...

    def overlapping_trip(self, vin_hash: bytes, odometer_start_m: float, odometer_end_m: float) -> bytes | None:
        """The hash of an accepted trip of the same vehicle (any device) overlapping this odometer interval.

        Strictly: intervals that only touch (one ends where the other starts) do not overlap.
        """
        ...

    def odometer_frontier(self, vin_hash: bytes) -> float | None:
        """The highest odometer end of the vehicle's accepted trips (any device); None without any.

        A trip starting at or above it overlaps none of them: intake asks this once per vehicle and
        batch, and :meth:`overlapping_trip` only for the rare trip that starts below.
        """
        ...

    def commit(
        self,
        accepted: Sequence[AcceptedRecord],
        rejected: Sequence[RejectedMessage],
        seen: Mapping[str, datetime],
    ) -> None:
        """Store a batch in one transaction: accepted records, rejections, last-seen times by device.

        Raises :class:`ConflictError` (and stores nothing) when an accepted record breaks a uniqueness
        rule, :class:`StoreError` when the database fails. Stored rejections are bounded: beyond the
        store's limit the oldest are deleted in the same transaction.
        """
        ...

    # --- operators -----------------------------------------------------------------------------
    def records(self, query: RecordQuery) -> list[StoredRecord]: ...

    def record(self, record_hash: bytes) -> StoredRecord | None: ...

    def rejections(self, query: RejectionQuery) -> list[StoredRejection]: ...

    def rejection(self, rejection_id: int) -> StoredRejection | None: ...

    @property
    def ledger(self) -> "SqlLedger":
        """Crediting's tables on the same database (ledger, credits, owners, exclusions, forwarding)."""
        ...

    def check(self) -> None:
        """Raise :class:`StoreError` unless the database answers (for ``/readyz``)."""
        ...

    def close(self) -> None: ...
