"""The outbox in one tinydb JSON file, written atomically, checked at every start.

Layout of the file (tinydb tables; bytes as base64, hashes as hex)::

    records     sequence → {record_hash, sequence, record_id, signed, state, sent_count, last_sent_at_s}
    rejected    n        → {record_hash, sequence, record_id, signed, reason, detail}
    quarantine  n        → {source_table, source_id, error, document}
    meta        1        → {format, head_sequence, head_record_hash, head_end_at_s, acknowledged_total,
                            rejected_dropped_total, quarantine_dropped_total}

Acknowledged records are removed, not kept: tinydb rewrites the whole file on every write (about
1.4 KiB and 11 µs per stored record per write, measured: an append takes ≈ 1.2 ms with 10 records
stored, 2 ms with 100, 13 ms with 1,000), so the file holds only what still matters. The chain head
lives in ``meta`` and moves in the same write that stores its record, so it survives
acknowledging everything and restarting.

**Bounds.** Unacknowledged (pending and sent) records are never evicted: they are measurements
nobody else holds. When ``max_unacknowledged`` of them are stored, ``append`` raises
:class:`~agent.errors.OutboxFullError` and stores nothing; the sealer's caller logs it loudly and
the outbox keeps the oldest records. The refused record took no sequence number, so the chain
stays contiguous. The rejected list (records the gateway refused for good, each reported when
the ack arrived) keeps at most ``max_rejected`` entries, ``MAX_REJECTED`` by default: past it
the oldest entry is dropped and ``rejected_dropped_total`` counts it. The quarantine keeps at
most ``max_quarantined``, ``MAX_QUARANTINED`` by default: past it the oldest entry is dropped,
``quarantine_dropped_total`` counts it and ``quarantined_at_open`` says so. The two lists are
small because every entry in them slows every write.

**Checks at open.** Every stored record, unacknowledged and rejected, is re-verified with the
device's public key, its stored hash recomputed and its sequence and record id compared with the
signed record (≈ 0.3 ms per record: 0.3 s to open with 1,000 stored). A record that fails moves
to the quarantine with the error, and ``quarantined_at_open`` lists a short report of each for
the app to log: nothing is dropped silently. A verified record at or beyond the chain head that
disagrees with it means two different records for one sequence number, and the outbox refuses
to open (:class:`~agent.errors.OutboxError`): an operator must decide.

**Checks at append.** A record is stored only if it verifies with the device key, carries the
sequence number and record id it is appended under, follows the chain head by exactly one and
names the head's hash; so everything found stored later either verifies or was damaged on disk.

Every method is atomic on disk and serialised by a lock (the sealer and the uplink call it from
different threads).
"""

import base64
import binascii
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Self, TypeVar

from tinydb import Query, TinyDB
from tinydb.table import Document, Table

from agent.errors import OutboxError, OutboxFullError
from agent.outbox import ChainHead, EntryState, OutboxCounts, OutboxEntry, RejectedEntry
from agent.outbox.atomic_storage import AtomicJsonStorage
from carbonlink.chain import FIRST_SEQUENCE, GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import verify
from carbonlink.errors import CarbonlinkError
from carbonlink.keys import PublicKey

FORMAT = 1
"""Version of the file layout above; a file of another version is refused, not guessed at."""
MAX_REJECTED = 100
"""Default bound of the rejected list, in records."""
MAX_QUARANTINED = 100
"""Default bound of the quarantine, in entries."""

_RECORDS: Final = "records"
_REJECTED: Final = "rejected"
_QUARANTINE: Final = "quarantine"
_META: Final = "meta"
_META_ID: Final = 1

_T = TypeVar("_T")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class _BadEntryError(Exception):
    """A stored document that is not what this module writes: it goes to quarantine."""


def _field(doc: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = doc.get(name)
    # bool is an int in Python, and never a valid sequence, count or time here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _BadEntryError(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _check_signed(doc: Mapping[str, Any], public_key: PublicKey) -> tuple[int, bytes]:
    """Sequence and hash of a stored record, after checking it against its signed bytes."""
    try:
        signed = _unb64(_field(doc, "signed", str))
        stored_hash = bytes.fromhex(_field(doc, "record_hash", str))
    except (ValueError, binascii.Error) as err:  # not base64 / hex
        raise _BadEntryError(f"bytes are not stored as base64/hex: {err}") from err
    sequence = _field(doc, "sequence", int)
    record_id = _field(doc, "record_id", str)
    if record_hash(signed) != stored_hash:
        raise _BadEntryError("the stored record hash is not the SHA-256 of the stored signed bytes")
    try:
        record = verify(signed, public_key)
    except CarbonlinkError as err:
        raise _BadEntryError(f"{type(err).__name__}: {err}") from err
    if record.sequence != sequence or record.record_id != record_id:
        raise _BadEntryError(
            f"stored sequence {sequence} / record id {record_id!r} differ from the signed record's "
            f"{record.sequence} / {record.record_id!r}"
        )
    return sequence, stored_hash


def _check_record_state(doc: Document) -> None:
    if doc.doc_id != doc.get("sequence"):
        raise _BadEntryError(f"stored under id {doc.doc_id}, not under its sequence {doc.get('sequence')!r}")
    try:
        EntryState(_field(doc, "state", str))
    except ValueError as err:
        raise _BadEntryError(str(err)) from err
    if _field(doc, "sent_count", int) < 0:
        raise _BadEntryError("sent_count is negative")
    last_sent_at_s = doc.get("last_sent_at_s")
    if last_sent_at_s is not None and (not isinstance(last_sent_at_s, int | float) or isinstance(last_sent_at_s, bool)):
        raise _BadEntryError("field 'last_sent_at_s' is neither null nor a number")


class TinyDbOutbox:
    """The agent's :class:`~agent.outbox.Outbox` in a tinydb file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_unacknowledged: int,
        public_key: PublicKey,
        *,
        max_rejected: int = MAX_REJECTED,
        max_quarantined: int = MAX_QUARANTINED,
    ) -> None:
        for name, bound in (
            ("max_unacknowledged", max_unacknowledged),
            ("max_rejected", max_rejected),
            ("max_quarantined", max_quarantined),
        ):
            if bound < 1:
                raise ValueError(f"{name} must be at least 1, got {bound}")
        self._path = Path(path)
        self._max_unacknowledged = max_unacknowledged
        self._max_rejected = max_rejected
        self._max_quarantined = max_quarantined
        self._public_key = public_key
        self._lock = threading.RLock()
        self._storage = AtomicJsonStorage(self._path)
        self._db = TinyDB(storage=lambda: self._storage)
        self._records = self._db.table(_RECORDS)
        self._rejected_table = self._db.table(_REJECTED)
        self._quarantine = self._db.table(_QUARANTINE)
        self._meta = self._db.table(_META)
        self._closed = False
        try:
            self._quarantined_at_open = self._open()
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    @property
    def quarantined_at_open(self) -> tuple[str, ...]:
        """One short report per entry moved to (or dropped from) the quarantine by this open."""
        return self._quarantined_at_open

    @property
    def rejected_dropped_total(self) -> int:
        """Rejected entries dropped past the rejected list's bound, since the outbox was created."""
        with self._open_and_locked():
            return int(self._meta_doc()["rejected_dropped_total"])

    @property
    def quarantine_dropped_total(self) -> int:
        """Quarantine entries dropped past the quarantine's bound, since the outbox was created."""
        with self._open_and_locked():
            return int(self._meta_doc()["quarantine_dropped_total"])

    # --- the Outbox protocol -----------------------------------------------------------------

    def chain_head(self) -> ChainHead | None:
        with self._open_and_locked():
            meta = self._meta_doc()
            if meta["head_sequence"] == 0:
                return None
            end_at_s = meta.get("head_end_at_s")
            return ChainHead(
                sequence=meta["head_sequence"],
                record_hash=bytes.fromhex(meta["head_record_hash"]),
                end_at_s=None if end_at_s is None else float(end_at_s),
            )

    def append(self, signed: bytes, sequence: int, record_id: str) -> None:
        """Store a new record as pending and make it the chain head, in one atomic write.

        Raises OutboxFullError when ``max_unacknowledged`` records wait (nothing is stored and
        nothing dropped), and OutboxError for a record that does not continue the chain or does
        not verify with the device key, or when the write fails (the previous state stays).
        """
        with self._open_and_locked():
            head = self.chain_head()
            end_at_s = self._check_successor(head, signed, sequence, record_id)
            waiting = len(self._records)
            if waiting >= self._max_unacknowledged:
                raise OutboxFullError(
                    f"the outbox {self._path} holds {waiting} unacknowledged records, its maximum "
                    f"(max_unacknowledged={self._max_unacknowledged}): record {sequence} was not stored and "
                    "nothing was dropped; the stored records wait for the gateway's acknowledgements"
                )
            digest = record_hash(signed)
            with self._transaction():
                self._records.insert(
                    Document(
                        {
                            "record_hash": digest.hex(),
                            "sequence": sequence,
                            "record_id": record_id,
                            "signed": _b64(signed),
                            "state": EntryState.PENDING.value,
                            "sent_count": 0,
                            "last_sent_at_s": None,
                        },
                        doc_id=sequence,
                    )
                )
                self._meta.update(
                    {"head_sequence": sequence, "head_record_hash": digest.hex(), "head_end_at_s": end_at_s},
                    doc_ids=[_META_ID],
                )

    def unacknowledged(self, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` pending or sent records, oldest (lowest sequence) first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        with self._open_and_locked():
            docs = sorted(self._records.all(), key=lambda doc: doc.doc_id)[:limit]
            return [
                OutboxEntry(
                    record_hash=bytes.fromhex(doc["record_hash"]),
                    sequence=doc["sequence"],
                    record_id=doc["record_id"],
                    signed=_unb64(doc["signed"]),
                    state=EntryState(doc["state"]),
                    sent_count=doc["sent_count"],
                    last_sent_at_s=doc["last_sent_at_s"],
                )
                for doc in docs
            ]

    def mark_sent(self, record_hash: bytes, sent_at_s: float) -> None:
        """Note a publish of a stored record; a record no longer stored (settled meanwhile) is ignored."""
        with self._open_and_locked():
            doc = self._find(record_hash)
            if doc is None:
                return
            with self._transaction():
                self._records.update(
                    {"state": EntryState.SENT.value, "sent_count": doc["sent_count"] + 1, "last_sent_at_s": sent_at_s},
                    doc_ids=[doc.doc_id],
                )

    def acknowledge(self, record_hash: bytes) -> bool:
        """Remove an acknowledged record; False if no such record is stored (already settled)."""
        with self._open_and_locked():
            doc = self._find(record_hash)
            if doc is None:
                return False
            meta = self._meta_doc()
            with self._transaction():
                self._records.remove(doc_ids=[doc.doc_id])
                self._meta.update({"acknowledged_total": meta["acknowledged_total"] + 1}, doc_ids=[_META_ID])
            return True

    def reject(self, record_hash: bytes, reason: str, detail: str | None) -> bool:
        """Move a record to the rejected list (final); False if no such record is stored."""
        with self._open_and_locked():
            doc = self._find(record_hash)
            if doc is None:
                return False
            with self._transaction():
                self._records.remove(doc_ids=[doc.doc_id])
                self._rejected_table.insert(
                    {
                        "record_hash": doc["record_hash"],
                        "sequence": doc["sequence"],
                        "record_id": doc["record_id"],
                        "signed": doc["signed"],
                        "reason": reason,
                        "detail": detail,
                    }
                )
                dropped = self._trim(self._rejected_table, self._max_rejected)
                if dropped:
                    meta = self._meta_doc()
                    self._meta.update(
                        {"rejected_dropped_total": meta["rejected_dropped_total"] + len(dropped)}, doc_ids=[_META_ID]
                    )
            return True

    def rejected(self) -> list[RejectedEntry]:
        """The rejected records still kept, oldest first."""
        with self._open_and_locked():
            docs = sorted(self._rejected_table.all(), key=lambda doc: doc.doc_id)
            return [
                RejectedEntry(
                    record_hash=bytes.fromhex(doc["record_hash"]),
                    sequence=doc["sequence"],
                    record_id=doc["record_id"],
                    signed=_unb64(doc["signed"]),
                    reason=doc["reason"],
                    detail=doc["detail"],
                )
                for doc in docs
            ]

    def counts(self) -> OutboxCounts:
        with self._open_and_locked():
            states = [doc["state"] for doc in self._records.all()]
            return OutboxCounts(
                pending=states.count(EntryState.PENDING.value),
                sent=states.count(EntryState.SENT.value),
                rejected=len(self._rejected_table),
                quarantined=len(self._quarantine),
                acknowledged_total=self._meta_doc()["acknowledged_total"],
            )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- inside ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open_and_locked(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise OutboxError(f"the outbox {self._path} is closed")
            yield

    def _meta_doc(self) -> Document:
        meta = self._meta.get(doc_id=_META_ID)
        if meta is None:  # _open writes it before anything else can run
            raise OutboxError(f"the outbox {self._path} has no meta document")
        return meta

    def _find(self, digest: bytes) -> Document | None:
        return self._records.get(Query().record_hash == digest.hex())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One file write for everything inside; on any failure, forget tinydb's cached queries too."""
        try:
            with self._storage.transaction():
                yield
        except BaseException:
            for table in (self._records, self._rejected_table, self._quarantine, self._meta):
                table.clear_cache()
            raise

    def _trim(self, table: Table, bound: int) -> list[Document]:
        """Remove the oldest documents past ``bound``; return them."""
        docs = sorted(table.all(), key=lambda doc: doc.doc_id)
        excess = docs[: max(0, len(docs) - bound)]
        if excess:
            table.remove(doc_ids=[doc.doc_id for doc in excess])
        return excess

    def _check_successor(self, head: ChainHead | None, signed: bytes, sequence: int, record_id: str) -> float:
        """Check that the record continues the chain; its end time (UTC seconds) when it does."""
        expected_sequence = FIRST_SEQUENCE if head is None else head.sequence + 1
        expected_previous = GENESIS_PREVIOUS_HASH if head is None else head.record_hash
        if sequence != expected_sequence:
            raise OutboxError(
                f"the outbox {self._path} refuses record {sequence}: the chain head is "
                f"{0 if head is None else head.sequence}, so the next record must be {expected_sequence}"
            )
        try:
            record = verify(signed, self._public_key)
        except CarbonlinkError as err:
            raise OutboxError(
                f"the outbox {self._path} refuses record {sequence}: it does not verify with the device key: {err}"
            ) from err
        if record.sequence != sequence or record.record_id != record_id:
            raise OutboxError(
                f"the outbox {self._path} refuses record {sequence} / {record_id!r}: the signed record says "
                f"{record.sequence} / {record.record_id!r}"
            )
        if record.previous_record_hash != expected_previous:
            raise OutboxError(
                f"the outbox {self._path} refuses record {sequence}: its previous_record_hash "
                f"{record.previous_record_hash.hex()} is not the chain head's hash {expected_previous.hex()}"
            )
        return record.end_at.timestamp()

    def _open(self) -> tuple[str, ...]:
        """Create the meta document or check it, then re-verify every stored record."""
        meta = self._meta.get(doc_id=_META_ID)
        if meta is None:
            if len(self._records) or len(self._rejected_table) or len(self._quarantine):
                raise OutboxError(
                    f"the outbox {self._path} holds records but no chain head (meta): it was not written by "
                    "this program or was edited; an operator must decide"
                )
            with self._transaction():
                self._meta.insert(
                    Document(
                        {
                            "format": FORMAT,
                            "head_sequence": 0,
                            "head_record_hash": None,
                            "head_end_at_s": None,
                            "acknowledged_total": 0,
                            "rejected_dropped_total": 0,
                            "quarantine_dropped_total": 0,
                        },
                        doc_id=_META_ID,
                    )
                )
            return ()
        head = self._check_meta(meta)
        bad: list[tuple[Table, Document, str]] = []
        for table in (self._records, self._rejected_table):
            for doc in table.all():
                try:
                    sequence, digest = _check_signed(doc, self._public_key)
                    if table is self._records:
                        _check_record_state(doc)
                except _BadEntryError as err:
                    bad.append((table, doc, str(err)))
                    continue
                self._check_against_head(head, sequence, digest)
        return self._move_to_quarantine(bad) if bad else ()

    def _check_meta(self, meta: Document) -> ChainHead | None:
        if meta.get("format") != FORMAT:
            raise OutboxError(
                f"the outbox {self._path} has layout {meta.get('format')!r}; this agent reads layout {FORMAT}"
            )
        try:
            counters = [
                _field(meta, name, int)
                for name in (
                    "head_sequence",
                    "acknowledged_total",
                    "rejected_dropped_total",
                    "quarantine_dropped_total",
                )
            ]
            sequence = counters[0]
            head = None
            if sequence != 0:
                head = ChainHead(sequence=sequence, record_hash=bytes.fromhex(_field(meta, "head_record_hash", str)))
        except (_BadEntryError, ValueError) as err:
            raise OutboxError(
                f"the outbox {self._path} has a damaged chain head (meta: {err}); an operator must decide"
            ) from err
        end_at_s = meta.get("head_end_at_s")
        if end_at_s is not None and (isinstance(end_at_s, bool) or not isinstance(end_at_s, int | float)):
            raise OutboxError(f"the outbox {self._path} has a damaged chain head (meta: head_end_at_s {end_at_s!r})")
        if min(counters) < 0:
            raise OutboxError(f"the outbox {self._path} has a negative counter in meta; an operator must decide")
        return head

    def _check_against_head(self, head: ChainHead | None, sequence: int, digest: bytes) -> None:
        head_sequence = 0 if head is None else head.sequence
        if sequence > head_sequence or (head is not None and sequence == head.sequence and digest != head.record_hash):
            raise OutboxError(
                f"the outbox {self._path} holds a valid record {sequence} that is not part of the chain ending at "
                f"head {head_sequence}: two records may share a sequence number; an operator must decide"
            )

    def _move_to_quarantine(self, bad: list[tuple[Table, Document, str]]) -> tuple[str, ...]:
        reports = [
            f"{table.name} entry {doc.doc_id} (sequence {doc.get('sequence')!r}, record {doc.get('record_id')!r}) "
            f"quarantined: {error}"
            for table, doc, error in bad
        ]
        with self._transaction():
            for table, doc, error in bad:
                table.remove(doc_ids=[doc.doc_id])
                self._quarantine.insert(
                    {"source_table": table.name, "source_id": doc.doc_id, "error": error, "document": dict(doc)}
                )
            dropped = self._trim(self._quarantine, self._max_quarantined)
            if dropped:
                meta = self._meta_doc()
                self._meta.update(
                    {"quarantine_dropped_total": meta["quarantine_dropped_total"] + len(dropped)}, doc_ids=[_META_ID]
                )
        reports.extend(
            f"quarantine full (max_quarantined={self._max_quarantined}): dropped its oldest entry, "
            f"{doc.get('source_table')} entry {doc.get('source_id')} ({doc.get('error')})"
            for doc in dropped
        )
        return tuple(reports)
