"""The ledger: hash-chained entries, Merkle batches and receipts; and the entry bodies."""

import dataclasses
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.credit_entries import BindingEntry, CreditEntry, IssueEntry, vehicle_key_for
from carbonlink.ledger import (
    GENESIS_HASH,
    EntryKind,
    LedgerBatch,
    LedgerEntry,
    LedgerError,
    Receipt,
    canonical_json,
    check_batch,
    check_entry,
    entry_hash,
    next_entry,
    seal_batch,
)
from carbonlink.merkle import merkle_root

from ledger_exports import sample_credit_entry

AT = datetime(2026, 11, 24, 9, 0, 0, 250000, tzinfo=UTC)


def chain(count: int) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    for i in range(count):
        body = {"n": i, "note": "ü"}
        entries.append(next_entry(entries[-1] if entries else None, EntryKind.BINDING, body, AT + timedelta(seconds=i)))
    return entries


def test_canonical_json_is_sorted_compact_utf8() -> None:
    """Keys sorted, no spaces, non-ASCII kept as UTF-8: one spelling per value."""
    assert canonical_json({"b": 1, "a": [1.5, "ü"], "c": None}) == '{"a":[1.5,"ü"],"b":1,"c":null}'.encode()


def test_canonical_json_refuses_nan() -> None:
    """NaN has no JSON spelling, so it cannot be hashed."""
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})


def test_entry_hash_is_sha256_of_previous_hash_and_canonical_content() -> None:
    """entry_hash = SHA-256(previous_hash || canonical JSON of seq, kind, recorded_at, body)."""
    previous = bytes(range(32))
    content = b'{"body":{"x":1},"kind":"credit","recorded_at":"2026-11-24T09:00:00.250000Z","seq":7}'
    expected = hashlib.sha256(previous + content).digest()
    assert entry_hash(seq=7, kind=EntryKind.CREDIT, recorded_at=AT, body={"x": 1}, previous_hash=previous) == expected


def test_first_entry_follows_genesis() -> None:
    """The first entry has seq 1 and names 32 zero bytes as its predecessor."""
    first = chain(1)[0]
    assert first.seq == 1
    assert first.previous_hash == GENESIS_HASH == bytes(32)
    check_entry(None, first)


def test_a_valid_chain_checks() -> None:
    """Each entry of a chain built with next_entry follows the one before."""
    entries = chain(5)
    check_entry(None, entries[0])
    for before, entry in itertools.pairwise(entries):
        check_entry(before, entry)
        assert entry.previous_hash == before.entry_hash


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": 4}, "entry 4: seq does not follow the entry before it \\(expected 3\\)"),
        ({"previous_hash": bytes(32)}, "entry 3: previous_hash 0+ is not the hash of entry 2"),
        ({"body": {"n": 99, "note": "ü"}}, "entry 3: entry_hash [0-9a-f]+ is not the hash of its content"),
        ({"kind": EntryKind.ISSUE}, "entry 3: entry_hash"),
        ({"recorded_at": AT}, "entry 3: entry_hash"),
        ({"recorded_at": AT.astimezone(timezone(timedelta(hours=1)))}, "recorded_at must be an aware UTC"),
    ],
)
def test_check_entry_names_what_is_wrong(change: dict[str, object], message: str) -> None:
    """Every change to an entry is caught with a message naming the entry and the field."""
    entries = chain(3)
    with pytest.raises(LedgerError, match=message):
        check_entry(entries[1], dataclasses.replace(entries[2], **change))  # type: ignore[arg-type]


def test_first_entry_must_have_seq_1() -> None:
    """A chain that does not start at 1 is refused."""
    entries = chain(2)
    with pytest.raises(LedgerError, match="expected 1"):
        check_entry(None, entries[1])


def test_entry_body_must_be_plain_json() -> None:
    """A body with a value JSON cannot spell is refused at once."""
    with pytest.raises(LedgerError, match="not plain JSON"):
        next_entry(None, EntryKind.CREDIT, {"at": AT}, AT)


def test_seal_batch_records_the_merkle_root_and_chains_roots() -> None:
    """Batches are numbered, contiguous, and chain to the previous batch's root."""
    entries = chain(7)
    first = seal_batch(None, entries[:3], AT)
    second = seal_batch(first, entries[3:], AT)
    assert (first.batch_no, first.first_seq, first.last_seq) == (1, 1, 3)
    assert (second.batch_no, second.first_seq, second.last_seq) == (2, 4, 7)
    assert first.merkle_root == merkle_root([e.entry_hash for e in entries[:3]])
    assert first.previous_root == GENESIS_HASH
    assert second.previous_root == first.merkle_root
    check_batch(None, first, [e.entry_hash for e in entries[:3]])
    check_batch(first, second, [e.entry_hash for e in entries[3:]])


@pytest.mark.parametrize(
    ("entries_from", "message"),
    [(0, "starts at entry 1, not at 4"), (4, "starts at entry 5, not at 4")],
)
def test_seal_batch_refuses_a_gap_or_overlap(entries_from: int, message: str) -> None:
    """A batch must start right after the previous one."""
    entries = chain(7)
    first = seal_batch(None, entries[:3], AT)
    with pytest.raises(LedgerError, match=message):
        seal_batch(first, entries[entries_from:], AT)


def test_seal_batch_refuses_an_empty_batch_and_a_broken_chain() -> None:
    """No empty batches; entries inside a batch must chain."""
    entries = chain(4)
    with pytest.raises(LedgerError, match="at least one entry"):
        seal_batch(None, [], AT)
    with pytest.raises(LedgerError, match="entry 3: seq does not follow"):
        seal_batch(None, [entries[0], entries[2]], AT)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_no": 3}, "batch 3: batch_no does not follow the batch before it \\(expected 2\\)"),
        ({"first_seq": 5}, "batch 2: first_seq 5 leaves a gap or overlap after the batch before \\(expected 4\\)"),
        ({"previous_root": bytes(32)}, "batch 2: previous_root 0+ is not the root of batch 1"),
        ({"merkle_root": bytes(32)}, "batch 2: merkle_root 0+ is not the root of entries 4-7"),
        ({"last_seq": 6}, "batch 2: seals entries 4-6 but 4 of them exist"),
    ],
)
def test_check_batch_names_what_is_wrong(change: dict[str, object], message: str) -> None:
    """Every change to a batch is caught with a message naming it."""
    entries = chain(7)
    first = seal_batch(None, entries[:3], AT)
    second = seal_batch(first, entries[3:], AT)
    with pytest.raises(LedgerError, match=message):
        check_batch(first, dataclasses.replace(second, **change), [e.entry_hash for e in entries[3:]])  # type: ignore[arg-type]


def test_check_batch_notices_a_changed_entry_hash() -> None:
    """The root binds every entry hash of the batch."""
    entries = chain(5)
    batch = seal_batch(None, entries, AT)
    hashes = [e.entry_hash for e in entries]
    hashes[2] = hashlib.sha256(b"other").digest()
    with pytest.raises(LedgerError, match="merkle_root"):
        check_batch(None, batch, hashes)


@given(st.integers(min_value=1, max_value=12), st.data())
def test_every_receipt_checks(size: int, data: st.DataObject) -> None:
    """The receipt of any entry of a batch leads to the batch's root."""
    entries = chain(size)
    batch = seal_batch(None, entries, AT)
    entry = entries[data.draw(st.integers(min_value=0, max_value=size - 1))]
    receipt = Receipt.build(entry, batch, [e.entry_hash for e in entries])
    receipt.check()
    assert Receipt.from_json(json.loads(json.dumps(receipt.to_json()))) == receipt


def test_receipt_fails_for_a_changed_entry_proof_or_batch() -> None:
    """A receipt whose entry, proof or root changed does not check."""
    entries = chain(5)
    batch = seal_batch(None, entries, AT)
    receipt = Receipt.build(entries[3], batch, [e.entry_hash for e in entries])
    changed_body = dataclasses.replace(receipt.entry, body={"n": 100})
    with pytest.raises(LedgerError, match="entry_hash"):
        dataclasses.replace(receipt, entry=changed_body).check()
    with pytest.raises(LedgerError, match="leads to root"):
        dataclasses.replace(receipt, entry=entries[2]).check()
    with pytest.raises(LedgerError, match="leads to root"):
        dataclasses.replace(receipt, proof=(bytes(32), *receipt.proof[1:])).check()
    with pytest.raises(LedgerError, match="leads to root"):
        dataclasses.replace(receipt, batch=dataclasses.replace(batch, merkle_root=bytes(32))).check()
    with pytest.raises(LedgerError, match="malformed"):
        dataclasses.replace(receipt, proof=receipt.proof[1:]).check()
    with pytest.raises(LedgerError, match="not in batch"):
        dataclasses.replace(receipt, batch=dataclasses.replace(batch, first_seq=5)).check()


def test_entry_and_batch_round_trip_through_json() -> None:
    """to_json and from_json are inverse; hashes are lowercase hex, times the wire spelling."""
    entries = chain(2)
    batch = seal_batch(None, entries, AT)
    assert LedgerEntry.from_json(entries[1].to_json()) == entries[1]
    assert LedgerBatch.from_json(batch.to_json()) == batch
    assert entries[1].to_json()["recorded_at"] == "2026-11-24T09:00:01.250000Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": 0}, "entry.seq must be a positive integer"),
        ({"seq": True}, "entry.seq must be a positive integer"),
        ({"kind": "gift"}, "entry.kind 'gift' is not one of: credit, binding, issue"),
        ({"recorded_at": "2026-11-24 09:00"}, "entry.recorded_at"),
        ({"entry_hash": "AB" * 32}, "entry.entry_hash must be 32 bytes in lowercase hex"),
        ({"previous_hash": "00" * 31}, "entry.previous_hash must be 32 bytes"),
        ({"body": []}, "entry.body must be a JSON object"),
        ({"extra": 1}, "entry has unknown fields: extra"),
    ],
)
def test_entry_from_json_names_the_bad_field(change: dict[str, object], message: str) -> None:
    """Reading an entry is strict and says which field is wrong."""
    with pytest.raises(LedgerError, match=message):
        LedgerEntry.from_json(chain(1)[0].to_json() | change)


def test_batch_from_json_refuses_a_reversed_range() -> None:
    """A batch whose last seq is before its first is refused."""
    batch = seal_batch(None, chain(2), AT).to_json() | {"first_seq": 3}
    with pytest.raises(LedgerError, match="before first_seq"):
        LedgerBatch.from_json(batch)


# --- entry bodies --------------------------------------------------------------------------------------
def test_vehicle_key_prefers_the_vin() -> None:
    """Credits are filed under the VIN hash where known, else under the device."""
    assert vehicle_key_for(bytes(range(32)), "car-1") == "vin:" + bytes(range(32)).hex()
    assert vehicle_key_for(None, "car-1") == "device:car-1"


def test_credit_body_round_trips() -> None:
    """A credit body read back is the credit it was built from, through JSON text too."""
    credit = sample_credit_entry()
    assert CreditEntry.from_body(json.loads(canonical_json(credit.to_body()))) == credit


def test_binding_and_issue_bodies_round_trip() -> None:
    """Binding and issue bodies read back equal."""
    binding = BindingEntry(
        vehicle_key="device:car-1", owner_id="owner-1", consented_at="2026-11-20T10:00:00.000000Z", consent_method="app"
    )
    issue = IssueEntry(
        credit_id="ab" * 32, owner_id="owner-1", vehicle_key="device:car-1", reduction_co2e_g=1234.5, binding_seq=3
    )
    assert BindingEntry.from_body(binding.to_body()) == binding
    assert IssueEntry.from_body(issue.to_body()) == issue


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"credit_id": "cd" * 32}, "credit.credit_id .* must equal record_hash"),
        ({"odometer_start_m": 1}, "credit.odometer_start_m must be a number with a decimal point"),
        ({"vehicle_key": "car-1"}, "credit.vehicle_key 'car-1' is not of the form"),
        ({"period": "2026-13"}, "credit.period"),
        ({"start_at": "yesterday"}, "credit.start_at"),
        ({"charges": {}}, "credit.charges must be a list"),
        ({"reduction": {}}, "credit.reduction: "),
        ({"parameters": []}, "credit.parameters: "),
        ({"bonus": 1}, "credit has unknown fields: bonus"),
    ],
)
def test_credit_from_body_names_the_bad_field(change: dict[str, object], message: str) -> None:
    """Reading a credit body is strict and says which field is wrong."""
    with pytest.raises(LedgerError, match=message):
        CreditEntry.from_body(sample_credit_entry().to_body() | change)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"binding_seq": 0}, "issue.binding_seq must be a positive integer"),
        ({"binding_seq": 1.0}, "issue.binding_seq must be a positive integer"),
        ({"reduction_co2e_g": -1.0}, "issue.reduction_co2e_g must be a finite number"),
        ({"owner_id": "A"}, "issue.owner_id"),
    ],
)
def test_issue_from_body_names_the_bad_field(body: dict[str, object], message: str) -> None:
    """Reading an issue body is strict and says which field is wrong."""
    issue = {
        "credit_id": "ab" * 32,
        "owner_id": "owner-1",
        "vehicle_key": "device:car-1",
        "reduction_co2e_g": 1.0,
        "binding_seq": 1,
    }
    with pytest.raises(LedgerError, match=message):
        IssueEntry.from_body(issue | body)


def test_binding_needs_a_consent_method() -> None:
    """A binding without a consent method is refused."""
    body = {
        "vehicle_key": "device:car-1",
        "owner_id": "owner-1",
        "consented_at": "2026-11-20T10:00:00.000000Z",
        "consent_method": "",
        "consent_reference": "",
    }
    with pytest.raises(LedgerError, match="consent_method"):
        BindingEntry.from_body(body)
