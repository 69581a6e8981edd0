"""The tinydb outbox: records kept until acknowledged, a chain head that survives, checked at open."""

import base64
import contextlib
import json
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from agent.errors import OutboxError, OutboxFullError
from agent.outbox import ChainHead, EntryState, Outbox, OutboxCounts
from agent.outbox.atomic_storage import AtomicJsonStorage
from agent.outbox.tinydb_outbox import TinyDbOutbox
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.testing import SAMPLE_DEVICE_ID, sample_trip

KEY = DeviceKey.from_seed(bytes([11]) * 32, SAMPLE_DEVICE_ID)
OTHER_KEY = DeviceKey.from_seed(bytes([12]) * 32, SAMPLE_DEVICE_ID)
BOUND = 50


@dataclass(frozen=True, slots=True)
class Sealed:
    """A signed record as the sealer hands it to the outbox."""

    sequence: int
    record_id: str
    signed: bytes

    @property
    def digest(self) -> bytes:
        return record_hash(self.signed)


class Chain:
    """Signed trips of one device, each naming the hash of the one before."""

    def __init__(self, key: DeviceKey = KEY, head: ChainHead | None = None) -> None:
        self._key = key
        self._sequence = 0 if head is None else head.sequence
        self._previous = GENESIS_PREVIOUS_HASH if head is None else head.record_hash

    def next(self) -> Sealed:
        sequence = self._sequence + 1
        record_id = f"00000000-0000-4000-8000-{sequence:012d}"
        signed = sign(
            sample_trip(sequence=sequence, record_id=record_id, previous_record_hash=self._previous), self._key
        )
        self._sequence, self._previous = sequence, record_hash(signed)
        return Sealed(sequence, record_id, signed)


SAMPLE_END_AT_S = sample_trip().end_at.timestamp()


def _head(sequence: int, digest: bytes) -> ChainHead:
    """The chain head after appending a sample trip (they all end at the same moment)."""
    return ChainHead(sequence=sequence, record_hash=digest, end_at_s=SAMPLE_END_AT_S)


def _open(path: Path, **bounds: int) -> TinyDbOutbox:
    return TinyDbOutbox(path, bounds.pop("max_unacknowledged", BOUND), KEY.public_key, **bounds)


def _append(outbox: Outbox, chain: Chain, count: int) -> list[Sealed]:
    sealed = [chain.next() for _ in range(count)]
    for record in sealed:
        outbox.append(record.signed, record.sequence, record.record_id)
    return sealed


def _snapshot(outbox: TinyDbOutbox) -> tuple[object, ...]:
    """Everything the outbox tells about its state."""
    return (outbox.chain_head(), outbox.unacknowledged(10_000), outbox.rejected(), outbox.counts())


def _edit_file(path: Path, edit: Any) -> None:  # noqa: ANN401 - any function of the parsed document
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def _flip_byte(encoded: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tmp"))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.json"


@pytest.fixture
def outbox(path: Path) -> Iterator[TinyDbOutbox]:
    with _open(path) as opened:
        yield opened


# --- the protocol ---------------------------------------------------------------------------------


def test_tinydb_outbox_is_an_outbox(outbox: TinyDbOutbox) -> None:
    """TinyDbOutbox implements the Outbox protocol the sealer and the uplink use."""
    implementation: Outbox = outbox
    assert implementation.chain_head() is None


def test_new_outbox_is_empty_and_written_at_once(path: Path, outbox: TinyDbOutbox) -> None:
    """A new outbox has no chain head and no records, and creates its file when opened."""
    assert outbox.chain_head() is None
    assert outbox.unacknowledged(10) == []
    assert outbox.counts() == OutboxCounts(pending=0, sent=0, rejected=0, quarantined=0, acknowledged_total=0)
    assert outbox.quarantined_at_open == ()
    assert path.is_file()


def test_appended_records_come_back_pending_oldest_first(outbox: TinyDbOutbox) -> None:
    """Unacknowledged records come back in sequence order, pending, byte for byte, up to the limit."""
    sealed = _append(outbox, Chain(), 12)
    entries = outbox.unacknowledged(5)
    assert [entry.sequence for entry in entries] == [1, 2, 3, 4, 5]
    assert [entry.signed for entry in entries] == [record.signed for record in sealed[:5]]
    assert [entry.record_hash for entry in entries] == [record.digest for record in sealed[:5]]
    assert [entry.record_id for entry in entries] == [record.record_id for record in sealed[:5]]
    assert {entry.state for entry in entries} == {EntryState.PENDING}
    assert {(entry.sent_count, entry.last_sent_at_s) for entry in entries} == {(0, None)}
    assert len(outbox.unacknowledged(100)) == 12
    assert outbox.unacknowledged(0) == []
    assert outbox.chain_head() == _head(12, sealed[-1].digest)
    assert outbox.counts().pending == 12


def test_records_survive_reopening(path: Path) -> None:
    """What was appended is there, identical, after the outbox is closed and opened again."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 3)
        before = _snapshot(outbox)
    with _open(path) as reopened:
        assert _snapshot(reopened) == before
        assert reopened.quarantined_at_open == ()


def test_mark_sent_records_each_publish(path: Path, outbox: TinyDbOutbox) -> None:
    """mark_sent makes a record sent, counts the publishes and keeps the last time, durably."""
    first, _ = _append(outbox, Chain(), 2)
    outbox.mark_sent(first.digest, 1_800_000_000.5)
    outbox.mark_sent(first.digest, 1_800_000_030.25)
    entries = outbox.unacknowledged(10)
    assert (entries[0].state, entries[0].sent_count, entries[0].last_sent_at_s) == (
        EntryState.SENT,
        2,
        1_800_000_030.25,
    )
    assert (entries[1].state, entries[1].sent_count) == (EntryState.PENDING, 0)
    assert outbox.counts() == OutboxCounts(pending=1, sent=1, rejected=0, quarantined=0, acknowledged_total=0)
    outbox.close()
    with _open(path) as reopened:
        assert reopened.unacknowledged(10) == entries


def test_mark_sent_of_a_settled_record_changes_nothing(outbox: TinyDbOutbox) -> None:
    """A publish noted after the ack arrived (the uplink races the ack) is ignored."""
    (record,) = _append(outbox, Chain(), 1)
    assert outbox.acknowledge(record.digest)
    outbox.mark_sent(record.digest, 1_800_000_000.0)
    assert outbox.unacknowledged(10) == []


def test_acknowledge_removes_the_record_and_counts_it(path: Path, outbox: TinyDbOutbox) -> None:
    """An acknowledged record leaves the outbox (and its file); acknowledged_total counts it."""
    sealed = _append(outbox, Chain(), 3)
    outbox.mark_sent(sealed[1].digest, 1_800_000_000.0)
    assert outbox.acknowledge(sealed[1].digest) is True
    assert [entry.sequence for entry in outbox.unacknowledged(10)] == [1, 3]
    assert outbox.counts() == OutboxCounts(pending=2, sent=0, rejected=0, quarantined=0, acknowledged_total=1)
    assert sealed[1].digest.hex() not in path.read_text()
    assert sealed[0].digest.hex() in path.read_text()


def test_duplicate_acknowledgement_returns_false(outbox: TinyDbOutbox) -> None:
    """A second ack for the same record (the gateway resends acks) finds nothing and counts nothing."""
    (record,) = _append(outbox, Chain(), 1)
    assert outbox.acknowledge(record.digest) is True
    assert outbox.acknowledge(record.digest) is False
    assert outbox.acknowledge(bytes(32)) is False
    assert outbox.counts().acknowledged_total == 1


def test_reject_moves_the_record_with_its_reason(path: Path, outbox: TinyDbOutbox) -> None:
    """A rejected record leaves the unacknowledged ones and is kept, with reason and detail, for an operator."""
    sealed = _append(outbox, Chain(), 2)
    assert outbox.reject(sealed[0].digest, "implausible_energy", "62 kWh/100 km for a compact car") is True
    assert outbox.reject(sealed[0].digest, "implausible_energy", None) is False
    assert outbox.reject(bytes(32), "bad_signature", None) is False
    assert [entry.sequence for entry in outbox.unacknowledged(10)] == [2]
    (rejected,) = outbox.rejected()
    assert (rejected.sequence, rejected.record_id, rejected.signed, rejected.record_hash) == (
        1,
        sealed[0].record_id,
        sealed[0].signed,
        sealed[0].digest,
    )
    assert (rejected.reason, rejected.detail) == ("implausible_energy", "62 kWh/100 km for a compact car")
    assert outbox.counts() == OutboxCounts(pending=1, sent=0, rejected=1, quarantined=0, acknowledged_total=0)
    outbox.close()
    with _open(path) as reopened:
        assert reopened.rejected() == [rejected]
        assert reopened.quarantined_at_open == ()


def test_rejected_list_drops_its_oldest_past_the_bound_and_counts_them(path: Path) -> None:
    """Past max_rejected the oldest rejected entries go (they were reported already), counted."""
    with _open(path, max_rejected=2) as outbox:
        sealed = _append(outbox, Chain(), 4)
        for record in sealed:
            outbox.reject(record.digest, "plausibility", None)
        assert [entry.sequence for entry in outbox.rejected()] == [3, 4]
        assert outbox.rejected_dropped_total == 2
        assert outbox.counts().rejected == 2


def test_chain_head_survives_acknowledging_everything_and_reopening(path: Path) -> None:
    """With every record acknowledged the chain head still names the last one, after a restart too."""
    chain = Chain()
    with _open(path) as outbox:
        sealed = _append(outbox, chain, 3)
        for record in sealed:
            outbox.acknowledge(record.digest)
    with _open(path) as reopened:
        assert reopened.unacknowledged(10) == []
        assert reopened.chain_head() == _head(3, sealed[-1].digest)
        assert reopened.counts().acknowledged_total == 3
        (fourth,) = _append(reopened, chain, 1)
        assert reopened.chain_head() == _head(4, fourth.digest)


def test_a_new_outbox_takes_only_sequence_one(outbox: TinyDbOutbox) -> None:
    """A device's first record has sequence 1; the outbox refuses a later one, storing nothing."""
    chain = Chain()
    chain.next()
    second = chain.next()
    with pytest.raises(OutboxError, match="next record must be 1"):
        outbox.append(second.signed, second.sequence, second.record_id)
    assert outbox.chain_head() is None
    assert outbox.unacknowledged(10) == []


def test_sequence_must_be_chain_head_plus_one(path: Path, outbox: TinyDbOutbox) -> None:
    """Repeating or skipping a sequence number is refused and leaves the outbox and its file unchanged."""
    chain = Chain()
    sealed = _append(outbox, chain, 2)
    chain.next()  # sequence 3, never appended
    fourth = chain.next()
    before, file_before = _snapshot(outbox), path.read_bytes()
    with pytest.raises(OutboxError, match="next record must be 3"):
        outbox.append(sealed[1].signed, sealed[1].sequence, sealed[1].record_id)
    with pytest.raises(OutboxError, match="next record must be 3"):
        outbox.append(fourth.signed, fourth.sequence, fourth.record_id)
    assert _snapshot(outbox) == before
    assert path.read_bytes() == file_before


def test_append_refuses_a_record_that_does_not_link_to_the_head(outbox: TinyDbOutbox) -> None:
    """The right sequence is not enough: the record must name the chain head's hash."""
    _append(outbox, Chain(), 1)
    stray = Chain(head=ChainHead(sequence=1, record_hash=bytes([9]) * 32)).next()
    with pytest.raises(OutboxError, match="previous_record_hash"):
        outbox.append(stray.signed, stray.sequence, stray.record_id)
    assert outbox.counts().pending == 1


def test_append_refuses_records_that_do_not_verify_or_disagree(outbox: TinyDbOutbox) -> None:
    """Only records signed by the device key, with the sequence and id given, are stored."""
    foreign = Chain(key=OTHER_KEY).next()
    with pytest.raises(OutboxError, match="does not verify"):
        outbox.append(foreign.signed, foreign.sequence, foreign.record_id)
    own = Chain().next()
    with pytest.raises(OutboxError, match="the signed record says"):
        outbox.append(own.signed, own.sequence, "another-record-id")
    assert outbox.chain_head() is None


def test_full_outbox_refuses_the_next_record_and_keeps_every_stored_one(path: Path) -> None:
    """At max_unacknowledged the outbox raises OutboxFullError, evicts nothing, and takes records again once acked."""
    chain = Chain()
    with _open(path, max_unacknowledged=3) as outbox:
        sealed = _append(outbox, chain, 3)
        refused = chain.next()
        with pytest.raises(OutboxFullError) as caught:
            outbox.append(refused.signed, refused.sequence, refused.record_id)
        message = str(caught.value)
        assert "holds 3 unacknowledged records" in message
        assert "nothing was dropped" in message
        assert [entry.signed for entry in outbox.unacknowledged(10)] == [record.signed for record in sealed]
        assert outbox.chain_head() == _head(3, sealed[-1].digest)
        outbox.acknowledge(sealed[0].digest)
        outbox.append(refused.signed, refused.sequence, refused.record_id)
        assert [entry.sequence for entry in outbox.unacknowledged(10)] == [2, 3, 4]


def test_rejected_records_do_not_count_toward_the_bound(path: Path) -> None:
    """Only pending and sent records fill the outbox: rejected ones are bounded separately."""
    with _open(path, max_unacknowledged=2) as outbox:
        chain = Chain()
        for record in _append(outbox, chain, 2):
            outbox.reject(record.digest, "plausibility", None)
        _append(outbox, chain, 2)
        assert outbox.counts() == OutboxCounts(pending=2, sent=0, rejected=2, quarantined=0, acknowledged_total=0)


# --- checks at open ---------------------------------------------------------------------------------


def test_flipped_byte_in_a_stored_record_is_quarantined_and_reported(path: Path) -> None:
    """A record whose stored bytes changed on disk moves to quarantine at open and is reported, not dropped."""
    with _open(path) as outbox:
        sealed = _append(outbox, Chain(), 3)

    def flip(document: dict[str, Any]) -> None:
        document["records"]["2"]["signed"] = _flip_byte(document["records"]["2"]["signed"], 100)

    _edit_file(path, flip)
    with _open(path) as reopened:
        (report,) = reopened.quarantined_at_open
        assert "records entry 2" in report
        assert "sequence 2" in report
        assert sealed[1].record_id in report
        assert "hash" in report
        assert [entry.sequence for entry in reopened.unacknowledged(10)] == [1, 3]
        assert reopened.counts().quarantined == 1
        assert reopened.chain_head() == _head(3, sealed[-1].digest)
    (kept,) = json.loads(path.read_text())["quarantine"].values()
    assert kept["source_table"] == "records"
    assert kept["document"]["record_id"] == sealed[1].record_id
    with _open(path) as again:
        assert again.quarantined_at_open == ()
        assert again.counts().quarantined == 1


def test_record_with_a_broken_signature_and_a_matching_hash_is_quarantined(path: Path) -> None:
    """Re-verification catches a change even when the stored hash was recomputed to match."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 2)

    def forge(document: dict[str, Any]) -> None:
        entry = document["records"]["1"]
        entry["signed"] = _flip_byte(entry["signed"], len(base64.b64decode(entry["signed"])) - 1)
        entry["record_hash"] = record_hash(base64.b64decode(entry["signed"])).hex()

    _edit_file(path, forge)
    with _open(path) as reopened:
        (report,) = reopened.quarantined_at_open
        assert "BadSignatureError" in report
        assert [entry.sequence for entry in reopened.unacknowledged(10)] == [2]


def test_rejected_records_are_reverified_too(path: Path) -> None:
    """A damaged record in the rejected list is quarantined like an unacknowledged one."""
    with _open(path) as outbox:
        (record,) = _append(outbox, Chain(), 1)
        outbox.reject(record.digest, "plausibility", None)

    def damage(document: dict[str, Any]) -> None:
        (entry,) = document["rejected"].values()
        entry["signed"] = "not base64!"

    _edit_file(path, damage)
    with _open(path) as reopened:
        (report,) = reopened.quarantined_at_open
        assert report.startswith("rejected entry")
        assert reopened.rejected() == []
        assert reopened.counts().quarantined == 1


def test_quarantine_past_its_bound_drops_the_oldest_and_says_so(path: Path) -> None:
    """Past max_quarantined the oldest quarantine entry goes, counted and reported."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 3)

    def damage(document: dict[str, Any]) -> None:
        for doc_id in ("1", "2"):
            document["records"][doc_id]["record_id"] = "edited"

    _edit_file(path, damage)
    with _open(path, max_quarantined=1) as reopened:
        reports = reopened.quarantined_at_open
        assert len(reports) == 3
        assert "quarantine full" in reports[-1]
        assert reopened.counts().quarantined == 1
        assert reopened.quarantine_dropped_total == 1
        assert [entry.sequence for entry in reopened.unacknowledged(10)] == [3]


def test_valid_record_beyond_the_chain_head_refuses_to_open(path: Path) -> None:
    """A chain head behind a stored record would reuse a sequence number: an operator must decide."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 2)

    def rewind(document: dict[str, Any]) -> None:
        document["meta"]["1"]["head_sequence"] = 1

    _edit_file(path, rewind)
    with pytest.raises(OutboxError, match="not part of the chain"):
        _open(path)


def test_garbage_file_raises_naming_the_path_and_is_left_alone(path: Path) -> None:
    """A file that is not JSON is never replaced by an empty outbox: opening fails and names it."""
    path.write_bytes(b'{"records": {"1": {"sequence": 1, "sig')
    with pytest.raises(OutboxError) as caught:
        _open(path)
    assert str(path) in str(caught.value)
    assert "operator" in str(caught.value)
    assert path.read_bytes() == b'{"records": {"1": {"sequence": 1, "sig'


def test_json_of_the_wrong_shape_raises(path: Path) -> None:
    """Valid JSON that is not tinydb's tables of documents is refused too."""
    path.write_text('{"records": [1, 2, 3]}')
    with pytest.raises(OutboxError, match="not a JSON object of tables"):
        _open(path)


def test_unknown_layout_raises(path: Path) -> None:
    """A file of another layout version is refused rather than guessed at."""
    with _open(path):
        pass
    _edit_file(path, lambda document: document["meta"]["1"].update(format=2))
    with pytest.raises(OutboxError, match="layout 2"):
        _open(path)


def test_records_without_a_chain_head_raise(path: Path) -> None:
    """A file holding records but no meta document was edited or not ours: refused."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 1)
    _edit_file(path, lambda document: document.pop("meta"))
    with pytest.raises(OutboxError, match="no chain head"):
        _open(path)


# --- the file -----------------------------------------------------------------------------------------


def test_second_open_of_the_same_file_is_refused(path: Path, outbox: TinyDbOutbox) -> None:
    """Two writers would fork the chain: while one outbox is open, another open fails."""
    _append(outbox, Chain(), 1)
    with pytest.raises(OutboxError, match="in use by another process"):
        _open(path)
    outbox.close()
    with _open(path) as reopened:
        assert reopened.counts().pending == 1


def test_closed_outbox_refuses_use(outbox: TinyDbOutbox) -> None:
    """Using an outbox after close raises instead of touching a file another process may now own."""
    outbox.close()
    outbox.close()
    with pytest.raises(OutboxError, match="closed"):
        outbox.counts()


def test_leftover_temp_file_is_removed_and_never_read(path: Path) -> None:
    """A temp file left by a writer killed mid-write is deleted at open, not mistaken for the outbox."""
    with _open(path) as outbox:
        _append(outbox, Chain(), 1)
    leftover = path.with_name(f".{path.name}.k1ll3d.tmp")
    leftover.write_text('{"meta": {}}')
    with _open(path) as reopened:
        assert reopened.counts().pending == 1
    assert not leftover.exists()


def test_successful_writes_leave_no_temp_files(path: Path, outbox: TinyDbOutbox) -> None:
    """Each write renames its temp file over the outbox: none is left behind."""
    sealed = _append(outbox, Chain(), 3)
    outbox.mark_sent(sealed[0].digest, 1.0)
    outbox.acknowledge(sealed[0].digest)
    outbox.reject(sealed[1].digest, "plausibility", None)
    assert _temp_files(path.parent) == []


@contextlib.contextmanager
def _read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` refuse new files: by its mode, or for root (who ignores modes) by the immutable flag."""
    if os.geteuid() != 0:
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            yield
        finally:
            directory.chmod(stat.S_IRWXU)
        return
    if not _chattr("+i", directory):
        pytest.skip("running as root without a working chattr: the next test injects the fault instead")
    try:
        yield
    finally:
        if not _chattr("-i", directory):
            raise RuntimeError(f"could not make {directory} writable again")


def _chattr(flag: str, directory: Path) -> bool:
    """Set or clear a file attribute with chattr(1); False if chattr is missing or refused."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    run = subprocess.run([chattr, flag, str(directory)], capture_output=True, check=False)  # noqa: S603 - fixed argv
    return run.returncode == 0


def test_write_into_a_read_only_directory_fails_and_keeps_the_old_state(path: Path) -> None:
    """When the directory refuses the temp file, append raises OutboxError and nothing changes."""
    chain = Chain()
    with _open(path) as outbox:
        _append(outbox, chain, 2)
        before, file_before = _snapshot(outbox), path.read_bytes()
        third = chain.next()
        with _read_only(path.parent):
            with pytest.raises(OutboxError, match="previous state is kept"):
                outbox.append(third.signed, third.sequence, third.record_id)
            assert _snapshot(outbox) == before
        assert path.read_bytes() == file_before
        outbox.append(third.signed, third.sequence, third.record_id)
    assert _temp_files(path.parent) == []


def test_failed_rename_raises_and_keeps_the_old_state(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the OS fails the write (here: rename), every operation raises OutboxError and changes nothing.

    The fault is injected into ``os.replace``, which we do not own: a full disk is not available to
    a test, and a read-only directory (the test above) fails earlier, at the temp file.
    """
    chain = Chain()
    with _open(path) as outbox:
        sealed = _append(outbox, chain, 2)
        before, file_before = _snapshot(outbox), path.read_bytes()

        def disk_full(*_: object) -> None:
            raise OSError(28, "No space left on device")

        third = chain.next()
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", disk_full)
            with pytest.raises(OutboxError, match="No space left on device"):
                outbox.append(third.signed, third.sequence, third.record_id)
            with pytest.raises(OutboxError, match="previous state is kept"):
                outbox.acknowledge(sealed[0].digest)
            with pytest.raises(OutboxError):
                outbox.reject(sealed[0].digest, "plausibility", None)
            with pytest.raises(OutboxError):
                outbox.mark_sent(sealed[0].digest, 1.0)
        assert _snapshot(outbox) == before
        assert path.read_bytes() == file_before
        assert _temp_files(path.parent) == []
        outbox.append(third.signed, third.sequence, third.record_id)
        assert outbox.chain_head() == _head(3, third.digest)
    with _open(path) as reopened:
        assert [entry.sequence for entry in reopened.unacknowledged(10)] == [1, 2, 3]


def test_outbox_is_safe_to_share_between_threads(outbox: TinyDbOutbox) -> None:
    """The sealer appends while the uplink acknowledges from another thread; every record is accounted for."""
    chain = Chain()
    acknowledged: list[int] = []
    done = threading.Event()

    def uplink() -> None:
        while not done.is_set() or outbox.unacknowledged(1):
            acknowledged.extend(
                entry.sequence for entry in outbox.unacknowledged(5) if outbox.acknowledge(entry.record_hash)
            )

    worker = threading.Thread(target=uplink)
    worker.start()
    try:
        _append(outbox, chain, 40)
    finally:
        done.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert sorted(acknowledged) == list(range(1, 41))
    assert outbox.counts().acknowledged_total == 40


# --- the storage on its own ------------------------------------------------------------------------


def test_atomic_storage_serves_tinydb(path: Path) -> None:
    """AtomicJsonStorage is an ordinary tinydb storage: what tinydb writes, it reads back after reopening."""
    with TinyDB(path, storage=AtomicJsonStorage) as db:
        db.table("things").insert({"name": "pack", "voltage_v": 398.5})
    with TinyDB(path, storage=AtomicJsonStorage) as db:
        assert db.table("things").all() == [{"name": "pack", "voltage_v": 398.5}]


def _insert_then_fail(storage: AtomicJsonStorage, db: TinyDB) -> None:
    with storage.transaction():
        db.table("a").insert({"n": 3})
        raise KeyError("abandon")


def test_storage_transaction_writes_once_or_not_at_all(path: Path) -> None:
    """Changes to two tables inside a transaction reach the file together, or not at all on an exception."""
    storage = AtomicJsonStorage(path)
    db = TinyDB(storage=lambda: storage)
    try:
        with storage.transaction():
            db.table("a").insert({"n": 1})
            db.table("b").insert({"n": 2})
            assert not path.exists()  # nothing written yet
        assert json.loads(path.read_text()) == {"a": {"1": {"n": 1}}, "b": {"1": {"n": 2}}}
        with pytest.raises(KeyError, match="abandon"):
            _insert_then_fail(storage, db)
        assert json.loads(path.read_text()) == {"a": {"1": {"n": 1}}, "b": {"1": {"n": 2}}}
        assert storage.read() == {"a": {"1": {"n": 1}}, "b": {"1": {"n": 2}}}
    finally:
        db.close()


def test_missing_file_is_an_empty_database(path: Path) -> None:
    """A storage over a file that does not exist reads as empty and creates nothing until written."""
    storage = AtomicJsonStorage(path)
    try:
        assert storage.read() is None
        assert not path.exists()
    finally:
        storage.close()
