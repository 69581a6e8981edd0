"""The credit ledger: append-only, hash-chained entries sealed into Merkle batches, and receipts.

Each entry names the hash of the one before it, so an entry changed, removed or inserted breaks
every later hash::

    entry_hash = SHA-256(previous_hash || canonical_json({"seq", "kind", "recorded_at", "body"}))

The first entry (seq 1) names :data:`GENESIS_HASH`. Entries are sealed, in seq order and without
gaps, into numbered batches; a batch records the RFC 9162 Merkle root over its entries' hashes
(:mod:`carbonlink.merkle`) and the root of the batch before it. A :class:`Receipt` (an entry, its
batch, the inclusion proof) lets anyone holding the batch root check one entry alone.

Everything here is pure: values in, values out; time comes in as data. Every check raises a
:class:`LedgerError` naming the entry (seq) or batch and what is wrong.
"""

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from carbonlink.errors import CarbonlinkError, SchemaError
from carbonlink.merkle import MerkleError, inclusion_proof, merkle_root, root_from_inclusion_proof
from carbonlink.strict_json import exact_fields
from carbonlink.wire import format_time, parse_time

GENESIS_HASH = bytes(32)
"""The previous hash of entry 1 and the previous root of batch 1: 32 zero bytes."""

HASH_BYTES = 32

_HASH_HEX = re.compile(f"[0-9a-f]{{{2 * HASH_BYTES}}}")


class LedgerError(CarbonlinkError, ValueError):
    """An entry, batch or receipt that breaks the ledger's rules, or a body that breaks its schema."""


class EntryKind(StrEnum):
    """What a ledger entry records."""

    CREDIT = "credit"
    """A computed reduction for one trip (accrued; issued only after a binding)."""
    BINDING = "binding"
    """A vehicle bound to an owner account with the owner's consent."""
    ISSUE = "issue"
    """A credit issued to the owner the vehicle is bound to."""


_KINDS = tuple(kind.value for kind in EntryKind)


def canonical_json(value: object) -> bytes:
    """The one spelling of a JSON value that hashes are taken over: sorted keys, no spaces, UTF-8.

    NaN and infinities are refused (``ValueError``): JSON has no spelling for them.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One link of the ledger's hash chain."""

    seq: int
    kind: EntryKind
    recorded_at: datetime
    body: Mapping[str, object]
    """Built and read only through :mod:`carbonlink.credit_entries`."""
    previous_hash: bytes
    entry_hash: bytes

    def to_json(self) -> dict[str, object]:
        """The entry as a JSON object (hashes in lowercase hex)."""
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "recorded_at": format_time(self.recorded_at),
            "body": dict(self.body),
            "previous_hash": self.previous_hash.hex(),
            "entry_hash": self.entry_hash.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s form strictly; :class:`LedgerError` names the field. Hashes are not checked."""
        fields = json_fields(value, "entry", ("seq", "kind", "recorded_at", "body", "previous_hash", "entry_hash"))
        kind = fields["kind"]
        if kind not in _KINDS:
            raise LedgerError(f"entry.kind {kind!r} is not one of: {', '.join(_KINDS)}")
        body = fields["body"]
        if not isinstance(body, dict) or not all(isinstance(key, str) for key in body):
            raise LedgerError("entry.body must be a JSON object")
        return cls(
            seq=_positive_int(fields["seq"], "entry.seq"),
            kind=EntryKind(str(kind)),
            recorded_at=json_time(fields["recorded_at"], "entry.recorded_at"),
            body=body,
            previous_hash=json_hash(fields["previous_hash"], "entry.previous_hash"),
            entry_hash=json_hash(fields["entry_hash"], "entry.entry_hash"),
        )


def entry_hash(
    *, seq: int, kind: EntryKind, recorded_at: datetime, body: Mapping[str, object], previous_hash: bytes
) -> bytes:
    """SHA-256(previous_hash || canonical JSON of seq, kind, recorded_at and body)."""
    content = {"seq": seq, "kind": kind.value, "recorded_at": format_time(recorded_at), "body": dict(body)}
    try:
        text = canonical_json(content)
    except (TypeError, ValueError) as err:
        raise LedgerError(f"entry {seq}: body is not plain JSON ({err})") from err
    return hashlib.sha256(previous_hash + text).digest()


def next_entry(
    previous: LedgerEntry | None, kind: EntryKind, body: Mapping[str, object], recorded_at: datetime
) -> LedgerEntry:
    """The entry that follows ``previous`` (the first entry, seq 1, when it is ``None``)."""
    _check_utc(recorded_at, "recorded_at")
    seq = 1 if previous is None else previous.seq + 1
    previous_hash = GENESIS_HASH if previous is None else previous.entry_hash
    digest = entry_hash(seq=seq, kind=kind, recorded_at=recorded_at, body=body, previous_hash=previous_hash)
    return LedgerEntry(
        seq=seq, kind=kind, recorded_at=recorded_at, body=body, previous_hash=previous_hash, entry_hash=digest
    )


def check_entry(previous: LedgerEntry | None, entry: LedgerEntry) -> None:
    """Raise :class:`LedgerError` unless ``entry`` directly follows ``previous`` and its hash is right.

    ``previous`` is ``None`` when ``entry`` should be the ledger's first.
    """
    expected_seq = 1 if previous is None else previous.seq + 1
    if entry.seq != expected_seq:
        raise LedgerError(f"entry {entry.seq}: seq does not follow the entry before it (expected {expected_seq})")
    expected_previous = GENESIS_HASH if previous is None else previous.entry_hash
    if entry.previous_hash != expected_previous:
        raise LedgerError(
            f"entry {entry.seq}: previous_hash {entry.previous_hash.hex()} is not the hash of entry "
            f"{expected_seq - 1} ({expected_previous.hex()})"
        )
    check_entry_hash(entry)


def check_entry_hash(entry: LedgerEntry) -> None:
    """Raise :class:`LedgerError` unless the entry's hash is the hash of its content."""
    _check_utc(entry.recorded_at, f"entry {entry.seq}: recorded_at")
    recomputed = entry_hash(
        seq=entry.seq,
        kind=entry.kind,
        recorded_at=entry.recorded_at,
        body=entry.body,
        previous_hash=entry.previous_hash,
    )
    if entry.entry_hash != recomputed:
        raise LedgerError(
            f"entry {entry.seq}: entry_hash {entry.entry_hash.hex()} is not the hash of its content "
            f"({recomputed.hex()})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerBatch:
    """Entries ``first_seq``..``last_seq`` sealed under their Merkle root, chained to the batch before."""

    batch_no: int
    first_seq: int
    last_seq: int
    merkle_root: bytes
    previous_root: bytes
    sealed_at: datetime

    @property
    def size(self) -> int:
        """How many entries the batch seals."""
        return self.last_seq - self.first_seq + 1

    def to_json(self) -> dict[str, object]:
        """The batch as a JSON object (roots in lowercase hex)."""
        return {
            "batch_no": self.batch_no,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "merkle_root": self.merkle_root.hex(),
            "previous_root": self.previous_root.hex(),
            "sealed_at": format_time(self.sealed_at),
        }

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s form strictly; :class:`LedgerError` names the field. The root is not checked."""
        names = ("batch_no", "first_seq", "last_seq", "merkle_root", "previous_root", "sealed_at")
        fields = json_fields(value, "batch", names)
        batch = cls(
            batch_no=_positive_int(fields["batch_no"], "batch.batch_no"),
            first_seq=_positive_int(fields["first_seq"], "batch.first_seq"),
            last_seq=_positive_int(fields["last_seq"], "batch.last_seq"),
            merkle_root=json_hash(fields["merkle_root"], "batch.merkle_root"),
            previous_root=json_hash(fields["previous_root"], "batch.previous_root"),
            sealed_at=json_time(fields["sealed_at"], "batch.sealed_at"),
        )
        if batch.last_seq < batch.first_seq:
            raise LedgerError(
                f"batch {batch.batch_no}: last_seq {batch.last_seq} is before first_seq {batch.first_seq}"
            )
        return batch


def seal_batch(previous: LedgerBatch | None, entries: Sequence[LedgerEntry], sealed_at: datetime) -> LedgerBatch:
    """Seal ``entries`` (the next ones after ``previous``'s, in seq order) into the next batch."""
    _check_utc(sealed_at, "sealed_at")
    batch_no = 1 if previous is None else previous.batch_no + 1
    if not entries:
        raise LedgerError(f"batch {batch_no}: a batch seals at least one entry")
    expected_first = 1 if previous is None else previous.last_seq + 1
    if entries[0].seq != expected_first:
        raise LedgerError(f"batch {batch_no}: starts at entry {entries[0].seq}, not at {expected_first}")
    check_entry_hash(entries[0])
    for before, entry in itertools.pairwise(entries):
        check_entry(before, entry)
    return LedgerBatch(
        batch_no=batch_no,
        first_seq=entries[0].seq,
        last_seq=entries[-1].seq,
        merkle_root=merkle_root([entry.entry_hash for entry in entries]),
        previous_root=GENESIS_HASH if previous is None else previous.merkle_root,
        sealed_at=sealed_at,
    )


def check_batch(previous: LedgerBatch | None, batch: LedgerBatch, entry_hashes: Sequence[bytes]) -> None:
    """Raise :class:`LedgerError` unless ``batch`` follows ``previous`` and seals exactly these entry hashes.

    ``entry_hashes`` are the hashes of entries ``batch.first_seq``..``batch.last_seq`` in seq order,
    taken from entries already checked with :func:`check_entry`.
    """
    expected_no = 1 if previous is None else previous.batch_no + 1
    if batch.batch_no != expected_no:
        raise LedgerError(
            f"batch {batch.batch_no}: batch_no does not follow the batch before it (expected {expected_no})"
        )
    expected_first = 1 if previous is None else previous.last_seq + 1
    if batch.first_seq != expected_first:
        raise LedgerError(
            f"batch {batch.batch_no}: first_seq {batch.first_seq} leaves a gap or overlap after the batch before "
            f"(expected {expected_first})"
        )
    if batch.last_seq < batch.first_seq:
        raise LedgerError(f"batch {batch.batch_no}: last_seq {batch.last_seq} is before first_seq {batch.first_seq}")
    expected_previous = GENESIS_HASH if previous is None else previous.merkle_root
    if batch.previous_root != expected_previous:
        raise LedgerError(
            f"batch {batch.batch_no}: previous_root {batch.previous_root.hex()} is not the root of batch "
            f"{expected_no - 1} ({expected_previous.hex()})"
        )
    if len(entry_hashes) != batch.size:
        raise LedgerError(
            f"batch {batch.batch_no}: seals entries {batch.first_seq}-{batch.last_seq} but {len(entry_hashes)} "
            "of them exist"
        )
    root = merkle_root(entry_hashes)
    if batch.merkle_root != root:
        raise LedgerError(
            f"batch {batch.batch_no}: merkle_root {batch.merkle_root.hex()} is not the root of entries "
            f"{batch.first_seq}-{batch.last_seq} ({root.hex()})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """Proof that an entry is in a sealed batch: the entry, the batch and the RFC 9162 inclusion proof."""

    entry: LedgerEntry
    batch: LedgerBatch
    proof: tuple[bytes, ...]

    @classmethod
    def build(cls, entry: LedgerEntry, batch: LedgerBatch, batch_entry_hashes: Sequence[bytes]) -> Self:
        """The receipt of ``entry`` given the hashes of every entry of its batch, in seq order."""
        if not batch.first_seq <= entry.seq <= batch.last_seq:
            raise LedgerError(
                f"entry {entry.seq} is not in batch {batch.batch_no} ({batch.first_seq}-{batch.last_seq})"
            )
        proof = inclusion_proof(batch_entry_hashes, entry.seq - batch.first_seq)
        return cls(entry=entry, batch=batch, proof=tuple(proof))

    def check(self) -> None:
        """Raise :class:`LedgerError` unless the entry's hash is right and the proof leads to the batch root."""
        entry, batch = self.entry, self.batch
        check_entry_hash(entry)
        if not batch.first_seq <= entry.seq <= batch.last_seq:
            raise LedgerError(
                f"entry {entry.seq} is not in batch {batch.batch_no} ({batch.first_seq}-{batch.last_seq})"
            )
        try:
            root = root_from_inclusion_proof(entry.entry_hash, entry.seq - batch.first_seq, batch.size, self.proof)
        except MerkleError as err:
            raise LedgerError(f"entry {entry.seq}: receipt proof is malformed: {err}") from err
        if root != batch.merkle_root:
            raise LedgerError(
                f"entry {entry.seq}: the receipt's proof leads to root {root.hex()}, not to the root of batch "
                f"{batch.batch_no} ({batch.merkle_root.hex()})"
            )

    def to_json(self) -> dict[str, object]:
        """``{"entry": .., "batch": .., "proof": [hex, ..]}``."""
        return {
            "entry": self.entry.to_json(),
            "batch": self.batch.to_json(),
            "proof": [step.hex() for step in self.proof],
        }

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s form strictly; call :meth:`check` to verify it."""
        fields = json_fields(value, "receipt", ("entry", "batch", "proof"))
        proof = fields["proof"]
        if not isinstance(proof, list):
            raise LedgerError("receipt.proof must be a list of hex hashes")
        return cls(
            entry=LedgerEntry.from_json(fields["entry"]),
            batch=LedgerBatch.from_json(fields["batch"]),
            proof=tuple(json_hash(step, f"receipt.proof[{i}]") for i, step in enumerate(proof)),
        )


# --- strict JSON reading, shared with carbonlink.credit_entries and carbonlink.ledger_export ----------
def json_fields(value: object, where: str, names: Sequence[str]) -> Mapping[str, object]:
    """``value`` as a JSON object holding exactly the fields ``names``, else :class:`LedgerError`."""
    return exact_fields(value, where, names, LedgerError)


def _positive_int(value: object, where: str) -> int:
    # ``type(...) is int``: JSON true must not pass for 1.
    if type(value) is not int or value < 1:
        raise LedgerError(f"{where} must be a positive integer, got {value!r}")
    return value


def json_hash(value: object, where: str) -> bytes:
    """A 32-byte hash spelled in lowercase hex, else :class:`LedgerError` naming ``where``."""
    if not isinstance(value, str) or _HASH_HEX.fullmatch(value) is None:
        raise LedgerError(f"{where} must be {HASH_BYTES} bytes in lowercase hex, got {value!r}")
    return bytes.fromhex(value)


def json_time(value: object, where: str) -> datetime:
    """A UTC time in the wire spelling, else :class:`LedgerError` naming ``where``."""
    if not isinstance(value, str):
        raise LedgerError(f"{where} must be a UTC time string, got {value!r}")
    try:
        return parse_time(value, where)
    except SchemaError as err:
        raise LedgerError(str(err)) from err


def _check_utc(moment: datetime, where: str) -> None:
    if moment.utcoffset() != timedelta(0):
        raise LedgerError(f"{where} must be an aware UTC datetime, got {moment!r}")
