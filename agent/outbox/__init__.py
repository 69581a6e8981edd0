"""The durable outbox: signed records kept until the gateway acknowledges them.

The interface below is what the sealer (writing) and the uplink (sending, settling) rely on;
``TinyDbOutbox`` in ``agent/outbox/tinydb_outbox.py`` implements it.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class EntryState(StrEnum):
    """Where an unacknowledged record stands."""

    PENDING = "pending"
    """Sealed and stored, not yet published."""
    SENT = "sent"
    """Published at least once; waiting for the gateway's ack (resent after a timeout)."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored, unacknowledged record."""

    record_hash: bytes
    """SHA-256 of ``signed``: how acks name the record."""
    sequence: int
    record_id: str
    signed: bytes
    state: EntryState
    sent_count: int
    last_sent_at_s: float | None
    """Wall-clock Unix time of the last publish, or None."""


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """A record the gateway refused for good, kept for an operator."""

    record_hash: bytes
    sequence: int
    record_id: str
    signed: bytes
    reason: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many records the outbox holds, by state."""

    pending: int
    sent: int
    rejected: int
    quarantined: int
    acknowledged_total: int
    """Records acknowledged since the outbox was created (acknowledged records are not kept)."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last sealed record's sequence number and hash: survives reboots and acknowledgements."""

    sequence: int
    record_hash: bytes
    end_at_s: float | None = None
    """When the last sealed record ends (UTC seconds, the frames' clock), if known: an agent run
    again over the same log skips what it sealed already instead of sealing it twice."""


class Outbox(Protocol):
    """Durable, bounded store of signed records; every method is atomic on disk."""

    def chain_head(self) -> ChainHead | None:
        """The last record ever sealed here, or None for a new device."""

    def append(self, signed: bytes, sequence: int, record_id: str) -> None:
        """Store a new record as pending and make it the chain head, in one atomic write.

        Raises OutboxFullError when the unacknowledged records reach the bound (nothing evicted)
        and OutboxError when the write fails (the previous state stays intact).
        """

    def unacknowledged(self, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` pending or sent records, oldest (lowest sequence) first."""

    def mark_sent(self, record_hash: bytes, sent_at_s: float) -> None: ...

    def acknowledge(self, record_hash: bytes) -> bool:
        """Remove an acknowledged record; False if no such record is stored (already settled)."""

    def reject(self, record_hash: bytes, reason: str, detail: str | None) -> bool:
        """Move a record to the rejected list (final); False if no such record is stored."""

    def rejected(self) -> list[RejectedEntry]: ...

    def counts(self) -> OutboxCounts: ...

    def close(self) -> None: ...
