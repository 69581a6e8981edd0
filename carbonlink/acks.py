"""The gateway's acknowledgement of one record, sent on the vehicle's ack topic after commit.

An ack is compact JSON (sorted keys, UTF-8), readable in ``mosquitto_sub``. It names the record
by id, sequence and the hash of its signed bytes, so the agent deletes exactly what it sent.
"""

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from carbonlink.errors import MalformedError
from carbonlink.reasons import RejectionReason
from carbonlink.records import MAX_SEQUENCE, RECORD_HASH_BYTES

MAX_ACK_BYTES = 1024
MAX_DETAIL_CHARS = 200

_HASH_HEX = re.compile(f"[0-9a-f]{{{2 * RECORD_HASH_BYTES}}}")


class Outcome(StrEnum):
    """What the gateway did with a record."""

    ACCEPTED = "accepted"
    """Committed now."""
    DUPLICATE = "duplicate"
    """An exact resend of a record committed before: the agent may drop it all the same."""
    REJECTED = "rejected"
    """Refused for ``reason``; the agent keeps it for an operator and does not resend it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The gateway's answer about one record."""

    record_id: str
    sequence: int
    record_hash: bytes
    outcome: Outcome
    reason: RejectionReason | None = None
    detail: str | None = None
    """One human-readable line on a rejection; never a secret."""

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.REJECTED) != (self.reason is not None):
            raise MalformedError("an ack carries a reason exactly when its outcome is 'rejected'")
        if not 1 <= self.sequence <= MAX_SEQUENCE:
            raise MalformedError(f"ack sequence {self.sequence} is out of range")
        if len(self.record_hash) != RECORD_HASH_BYTES:
            raise MalformedError(f"ack record_hash must be {RECORD_HASH_BYTES} bytes")
        if self.detail is not None and len(self.detail) > MAX_DETAIL_CHARS:
            raise MalformedError(f"ack detail is longer than {MAX_DETAIL_CHARS} characters")


def encode_ack(ack: Ack) -> bytes:
    body = {
        "record_id": ack.record_id,
        "sequence": ack.sequence,
        "record_hash": ack.record_hash.hex(),
        "outcome": ack.outcome.value,
        "reason": None if ack.reason is None else ack.reason.value,
        "detail": ack.detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_ack(data: bytes) -> Ack:
    """Read an ack, raising :class:`MalformedError` for anything that is not one."""
    if len(data) > MAX_ACK_BYTES:
        raise MalformedError(f"ack is {len(data)} bytes, over {MAX_ACK_BYTES}")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise MalformedError(f"ack is not UTF-8 JSON: {err}") from err
    if not isinstance(body, dict) or set(body) != {
        "record_id",
        "sequence",
        "record_hash",
        "outcome",
        "reason",
        "detail",
    }:
        raise MalformedError("ack must be an object of record_id, sequence, record_hash, outcome, reason, detail")
    record_id, sequence, record_hash = body["record_id"], body["sequence"], body["record_hash"]
    outcome, reason, detail = body["outcome"], body["reason"], body["detail"]
    if not isinstance(record_id, str) or type(sequence) is not int:
        raise MalformedError("ack record_id must be text and sequence an integer")
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
