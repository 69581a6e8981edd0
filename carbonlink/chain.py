"""The per-device record chain.

Sequence numbers rise by exactly 1, and each record names the hash of the signed bytes of the
one before it. A missing, reordered or substituted record is
therefore visible to anyone holding the records, without trusting the transport.
"""

import hashlib

from carbonlink.errors import ChainError
from carbonlink.reasons import RejectionReason
from carbonlink.records import RECORD_HASH_BYTES, Record

GENESIS_PREVIOUS_HASH = bytes(RECORD_HASH_BYTES)
"""The previous-record hash of a device's first record (sequence 1): 32 zero bytes."""

FIRST_SEQUENCE = 1


def record_hash(signed: bytes) -> bytes:
    """SHA-256 of a record's exact signed bytes: what its successor names."""
    return hashlib.sha256(signed).digest()


def check_link(previous_signed: bytes | None, previous: Record | None, record: Record) -> None:
    """Raise :class:`ChainError` unless ``record`` directly follows ``previous``.

    ``previous`` and ``previous_signed`` are ``None`` when ``record`` should be a device's first.
    """
    if previous is None or previous_signed is None:
        expected_sequence, expected_hash = FIRST_SEQUENCE, GENESIS_PREVIOUS_HASH
    else:
        if previous.device_id != record.device_id:
            raise ChainError(
                f"record of {record.device_id!r} cannot follow one of {previous.device_id!r}",
                RejectionReason.DEVICE_MISMATCH,
            )
        expected_sequence, expected_hash = previous.sequence + 1, record_hash(previous_signed)
    if record.sequence != expected_sequence:
        raise ChainError(
            f"sequence {record.sequence} does not follow: expected {expected_sequence}", RejectionReason.SEQUENCE_GAP
        )
    if record.previous_record_hash != expected_hash:
        raise ChainError(
            f"previous_record_hash {record.previous_record_hash.hex()} is not {expected_hash.hex()}",
            RejectionReason.CHAIN_BREAK,
        )
