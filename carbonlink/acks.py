"""The gateway's acknowledgement of one record, sent on the vehicle's ack topic after commit.

An ack is compact JSON (sorted keys, UTF-8), readable in ``mosquitto_sub``. It names the record
by the SHA-256 of the exact bytes the agent published — which the gateway can compute even for
bytes it cannot read — so the agent settles exactly what it sent. Record id and sequence are
added when the gateway could read and trust them, for people reading the acks.
"""

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from carbonlink.errors import MalformedError
from carbonlink.reasons import RejectionReason
from carbonlink.records import MAX_SEQUENCE, RECORD_HASH_BYTES, RECORD_ID_PATTERN

MAX_ACK_BYTES = 2048
"""Larger than the largest valid ack (~1.2 KiB: a 128-character id, 200 four-byte characters)."""
MAX_DETAIL_CHARS = 200

_FIELDS = frozenset({"record_id", "sequence", "record_hash", "outcome", "reason", "detail"})
_HASH_HEX = re.compile(f"[0-9a-f]{{{2 * RECORD_HASH_BYTES}}}")


class Outcome(StrEnum):
    """What the gateway did with a record."""

    ACCEPTED = "accepted"
    """Committed now."""
    DUPLICATE = "duplicate"
    """An exact resend of a record committed before: the agent may drop it all the same."""
    REJECTED = "rejected"
    """Refused for ``reason``: final (quarantined by the agent) unless the reason is retryable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The gateway's answer about one record."""

    record_hash: bytes
    """SHA-256 of the exact bytes received: how the agent finds the record in its outbox."""
    record_id: str | None
    """``None`` when the gateway could not read or trust the record (too large, malformed, bad signature)."""
    sequence: int | None
    outcome: Outcome
    reason: RejectionReason | None = None
    detail: str | None = None
    """One human-readable line on a rejection; never a secret."""

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.REJECTED) != (self.reason is not None):
            raise MalformedError("an ack carries a reason exactly when its outcome is 'rejected'")
        if len(self.record_hash) != RECORD_HASH_BYTES:
            raise MalformedError(f"ack record_hash must be {RECORD_HASH_BYTES} bytes")
        if self.record_id is not None and RECORD_ID_PATTERN.fullmatch(self.record_id) is None:
            raise MalformedError(f"ack record_id {self.record_id[:40]!r} is not a record id")
        if self.sequence is not None and not 1 <= self.sequence <= MAX_SEQUENCE:
            raise MalformedError(f"ack sequence {self.sequence} is out of range")
        if self.detail is not None and (len(self.detail) > MAX_DETAIL_CHARS or not self.detail.isprintable()):
            raise MalformedError(f"ack detail must be one printable line of at most {MAX_DETAIL_CHARS} characters")


def encode_ack(ack: Ack) -> bytes:
    body = {
        "record_id": ack.record_id,
        "sequence": ack.sequence,
        "record_hash": ack.record_hash.hex(),
        "outcome": ack.outcome.value,
        "reason": None if ack.reason is None else ack.reason.value,
        "detail": ack.detail,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(encoded) > MAX_ACK_BYTES:  # cannot happen for a valid Ack; kept so the bound is a checked fact
        raise MalformedError(f"ack encodes to {len(encoded)} bytes, over {MAX_ACK_BYTES}")
    return encoded


def decode_ack(data: bytes) -> Ack:
    """Read an ack, raising :class:`MalformedError` for anything that is not one."""
    if len(data) > MAX_ACK_BYTES:
        raise MalformedError(f"ack is {len(data)} bytes, over {MAX_ACK_BYTES}")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise MalformedError(f"ack is not UTF-8 JSON: {err}") from err
    if not isinstance(body, dict) or set(body) != _FIELDS:
        raise MalformedError("ack must be an object of record_id, sequence, record_hash, outcome, reason, detail")
    record_id, sequence, record_hash = body["record_id"], body["sequence"], body["record_hash"]
    outcome, reason, detail = body["outcome"], body["reason"], body["detail"]
    if not (record_id is None or isinstance(record_id, str)) or not (sequence is None or type(sequence) is int):
        raise MalformedError("ack record_id must be text or null and sequence an integer or null")
    if not isinstance(record_hash, str) or _HASH_HEX.fullmatch(record_hash) is None:
        raise MalformedError("ack record_hash must be 64 lowercase hex digits")
    if not (detail is None or isinstance(detail, str)):
        raise MalformedError("ack detail must be text or null")
    try:
        known_outcome = Outcome(outcome)
        known_reason = None if reason is None else RejectionReason(reason)
    except ValueError as err:
        raise MalformedError(f"ack has an unknown outcome or reason: {err}") from err
    return Ack(
        record_id=record_id,
        sequence=sequence,
        record_hash=bytes.fromhex(record_hash),
        outcome=known_outcome,
        reason=known_reason,
        detail=detail,
    )
