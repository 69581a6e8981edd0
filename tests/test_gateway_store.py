"""The gateway's store on SQLite and PostgreSQL: every test runs on both through ``store_url``.

Records are real: signed with Ed25519 device keys (``carbonlink.testing.sample_chain``), committed
as intake commits them, read back as operators read them.
"""

import dataclasses
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbonlink.chain import record_hash
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import Record
from carbonlink.testing import sample_chain, sample_charge
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import record_to_json
from gateway.errors import (
    ConfigError,
    ConflictError,
    DeviceExistsError,
    RegistryError,
    StoreError,
    UnknownDeviceError,
)
from gateway.model import (
    AcceptedRecord,
    DeviceStatus,
    Enrolment,
    KeyStatus,
    RecordQuery,
    RejectedMessage,
    RejectionQuery,
)
from gateway.store import open_store
from gateway.store.migrations import MIGRATIONS, latest_version
from gateway.store.sql_store import MAX_LIST_LIMIT, SqlRecordStore

from postgres_server import store_url  # noqa: F401
from waiting import wait_for

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
VIN_HASH = bytes([7]) * 32


def device_key(seed_byte: int, device_id: str = "ev-store-0001") -> DeviceKey:
    return DeviceKey.from_seed(bytes([seed_byte]) * 32, device_id)


def accepted(
    key: DeviceKey, record: Record, received_at: datetime = NOW, signed: bytes | None = None
) -> AcceptedRecord:
    signed = sign(record, key) if signed is None else signed
    return AcceptedRecord(
        signed=signed, record_hash=record_hash(signed), record=record, kid=key.kid, received_at=received_at
    )


def chain(
    key: DeviceKey,
    count: int,
    *,
    received_from: datetime = NOW,
    vin_hash: bytes | None = None,
    odometer_m: float = 48_210_000.0,
) -> list[AcceptedRecord]:
    """``count`` chained records of the key's device, received one minute apart."""
    records = sample_chain(key, count, vin_hash=vin_hash, odometer_m=odometer_m)
    return [
        accepted(key, record, received_from + timedelta(minutes=i), signed)
        for i, (signed, record) in enumerate(records)
    ]


def rejection(device_id: str | None = "ev-store-0001", *, at: datetime = NOW, **changes: object) -> RejectedMessage:
    payload = b"\xd2\x84not a record"
    values: dict[str, object] = {
        "received_at": at,
        "topic": f"carbonlink/v1/vehicles/{device_id or 'x'}/records",
        "device_id": device_id,
        "record_hash": record_hash(payload),
        "record_id": None,
        "sequence": None,
        "reason": RejectionReason.MALFORMED,
        "detail": "not a COSE_Sign1 message",
        "payload": payload,
        "payload_size": len(payload),
    }
    return RejectedMessage(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture
def store(store_url: str) -> Iterator[SqlRecordStore]:  # noqa: F811 - the fixture imported above
    opened = open_store(store_url)
    assert isinstance(opened, SqlRecordStore)
    yield opened
    opened.close()


def register(store: SqlRecordStore, key: DeviceKey, *, at: datetime = NOW, vin_hash: bytes | None = None) -> None:
    store.add_device(
        key.device_id,
        key.public_key,
        vehicle_class=VehicleClass.COMPACT,
        vin_hash=vin_hash,
        enrolment=Enrolment.OPERATOR,
        at=at,
    )


def versions(store: SqlRecordStore) -> list[tuple[int, str]]:
    return [
        (int(v), str(d)) for v, d in _query(store, "SELECT version, description FROM schema_version ORDER BY version")
    ]


def _query(store: SqlRecordStore, sql: str) -> list[tuple[Any, ...]]:
    connection = store.connection()
    connection.begin(write=False)
    try:
        return connection.fetch_all(sql)
    finally:
        connection.commit()


# --- migrations ------------------------------------------------------------------------------------


def test_opening_creates_the_schema_and_opening_again_changes_nothing(store_url: str) -> None:  # noqa: F811
    """A new database gets every migration once; opening it again applies none and keeps the data."""
    first = open_store(store_url)
    assert isinstance(first, SqlRecordStore)
    assert versions(first) == [(m.version, m.description) for m in MIGRATIONS]
    register(first, device_key(1))
    first.close()
    again = open_store(store_url)
    assert isinstance(again, SqlRecordStore)
    assert versions(again) == [(m.version, m.description) for m in MIGRATIONS]
    assert [d.device_id for d in again.devices()] == ["ev-store-0001"]
    again.close()


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    """Migration versions are 1, 2, 3, ...: the store applies 'the one after the current version'."""
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_a_database_of_a_newer_schema_is_refused_and_left_alone(store: SqlRecordStore, store_url: str) -> None:  # noqa: F811
    """A schema version newer than the code knows raises StoreError saying so; nothing is changed."""
    newer = latest_version() + 1
    connection = store.connection()
    connection.begin(write=True)
    connection.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'future', 0)", (newer,)
    )
    connection.commit()
    with pytest.raises(StoreError, match=rf"schema version {newer}, newer than this gateway knows \({newer - 1}\)"):
        open_store(store_url)
    assert versions(store)[-1] == (newer, "future")


def test_two_gateways_opening_a_new_database_at_once_migrate_it_once(store_url: str) -> None:  # noqa: F811
    """Concurrent open_store calls on one new database both succeed; each migration is recorded once."""
    start = threading.Barrier(2)
    opened: list[SqlRecordStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            one = open_store(store_url)
            assert isinstance(one, SqlRecordStore)
            opened.append(one)
        except BaseException as err:  # noqa: BLE001 - reported by the test below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert versions(opened[0]) == [(m.version, m.description) for m in MIGRATIONS]
    for one in opened:
        one.close()


# --- registry --------------------------------------------------------------------------------------


def test_a_registered_device_reads_back_with_its_key(store: SqlRecordStore) -> None:
    """add_device stores the device and its first key; device() and devices() read them back."""
    key = device_key(1)
    added = store.add_device(
        key.device_id,
        key.public_key,
        vehicle_class=VehicleClass.VAN,
        vin_hash=VIN_HASH,
        enrolment=Enrolment.CERTIFICATE,
        at=NOW,
    )
    assert added.vehicle_class is VehicleClass.VAN
    assert added.vin_hash == VIN_HASH
    assert added.status is DeviceStatus.ACTIVE
    assert added.enrolment is Enrolment.CERTIFICATE
    assert added.registered_at == NOW
    assert [(k.kid, k.public_key, k.added_at, k.status) for k in added.keys] == [
        (key.kid, key.public_key.raw, NOW, KeyStatus.ACTIVE)
    ]
    assert added.last_seen_at is None
    assert added.last_sequence is None
    assert store.device(key.device_id) == added
    register(store, device_key(2, "ev-store-0000"))
    assert [d.device_id for d in store.devices()] == ["ev-store-0000", "ev-store-0001"]
    assert store.device("ev-nobody") is None


def test_a_taken_device_id_or_public_key_is_refused(store: SqlRecordStore) -> None:
    """A second device with the same id, or with a key registered to another device, is DeviceExistsError."""
    register(store, device_key(1))
    with pytest.raises(DeviceExistsError, match="device 'ev-store-0001' is registered already"):
        register(store, device_key(2))
    with pytest.raises(DeviceExistsError, match="registered already \\(device 'ev-store-0001'\\)"):
        register(store, device_key(1, "ev-store-0002"))
    assert [d.device_id for d in store.devices()] == ["ev-store-0001"]


def test_rotating_a_key_retires_the_active_one_and_adds_the_new_one_last(store: SqlRecordStore) -> None:
    """rotate_key: the old key is retired at the given time, the new one is active and listed last."""
    old, new = device_key(1), device_key(2)
    register(store, old)
    rotated_at = NOW + timedelta(days=1)
    device = store.rotate_key(old.device_id, new.public_key, at=rotated_at)
    assert [(k.kid, k.status, k.retired_at) for k in device.keys] == [
        (old.kid, KeyStatus.RETIRED, rotated_at),
        (new.kid, KeyStatus.ACTIVE, None),
    ]
    assert device.keys[1].added_at == rotated_at
    # Rotating at the very same instant again still lists keys in the order they were added.
    newest = device_key(3)
    device = store.rotate_key(old.device_id, newest.public_key, at=rotated_at)
    assert [k.kid for k in device.keys] == [old.kid, new.kid, newest.kid]
    assert [k.status for k in device.keys] == [KeyStatus.RETIRED, KeyStatus.RETIRED, KeyStatus.ACTIVE]


def test_rotating_to_a_registered_key_or_on_a_revoked_or_unknown_device_is_refused(store: SqlRecordStore) -> None:
    """A key registered anywhere is DeviceExistsError; a revoked device RegistryError; unknown UnknownDeviceError."""
    key, other = device_key(1), device_key(2, "ev-store-0002")
    register(store, key)
    register(store, other)
    with pytest.raises(DeviceExistsError, match="ev-store-0002"):
        store.rotate_key(key.device_id, other.public_key, at=NOW)
    with pytest.raises(UnknownDeviceError, match="'ev-nobody' is not registered"):
        store.rotate_key("ev-nobody", device_key(3).public_key, at=NOW)
    store.revoke_device(other.device_id, at=NOW)
    with pytest.raises(RegistryError, match="'ev-store-0002' is revoked") as raised:
        store.rotate_key(other.device_id, device_key(4).public_key, at=NOW)
    assert not isinstance(raised.value, DeviceExistsError | UnknownDeviceError)
    assert [k.kid for k in store.device(key.device_id).keys] == [key.kid]  # type: ignore[union-attr]


def test_revoking_a_device_revokes_every_key_once(store: SqlRecordStore) -> None:
    """revoke_device sets the status and revokes the keys not revoked yet; doing it again changes nothing."""
    old, new = device_key(1), device_key(2)
    register(store, old)
    store.rotate_key(old.device_id, new.public_key, at=NOW + timedelta(hours=1))
    store.revoke_key(old.device_id, old.kid, at=NOW + timedelta(hours=2))
    device = store.revoke_device(old.device_id, at=NOW + timedelta(hours=3))
    assert device.status is DeviceStatus.REVOKED
    assert [k.revoked_at for k in device.keys] == [NOW + timedelta(hours=2), NOW + timedelta(hours=3)]
    assert store.revoke_device(old.device_id, at=NOW + timedelta(hours=4)) == device
    with pytest.raises(UnknownDeviceError, match="'ev-nobody' is not registered"):
        store.revoke_device("ev-nobody", at=NOW)


def test_revoking_one_key_needs_a_known_device_and_kid(store: SqlRecordStore) -> None:
    """revoke_key revokes that key only (idempotently); an unknown device or kid is UnknownDeviceError."""
    key, other = device_key(1), device_key(2, "ev-store-0002")
    register(store, key)
    register(store, other)
    device = store.revoke_key(key.device_id, key.kid, at=NOW)
    assert device.keys[0].status is KeyStatus.REVOKED
    assert device.status is DeviceStatus.ACTIVE
    assert store.revoke_key(key.device_id, key.kid, at=NOW + timedelta(days=1)) == device
    with pytest.raises(UnknownDeviceError, match=f"'ev-store-0001' has no key {other.kid.hex()}"):
        store.revoke_key(key.device_id, other.kid, at=NOW)
    with pytest.raises(UnknownDeviceError, match="'ev-nobody' is not registered"):
        store.revoke_key("ev-nobody", key.kid, at=NOW)
    assert store.device(other.device_id).keys[0].status is KeyStatus.ACTIVE  # type: ignore[union-attr]


# --- intake ----------------------------------------------------------------------------------------


def test_a_committed_record_reads_back_with_its_exact_bytes_and_fields(store: SqlRecordStore) -> None:
    """The stored signed bytes are byte-identical; fields are the record's JSON view; the chain head follows."""
    key = device_key(1)
    register(store, key)
    first, second = chain(key, 2, vin_hash=VIN_HASH)
    store.commit([first, second], [], {key.device_id: second.received_at})
    stored = store.record(second.record_hash)
    assert stored is not None
    assert stored.signed == second.signed
    assert stored.fields == record_to_json(second.record)
    assert (stored.device_id, stored.record_type, stored.sequence, stored.record_id) == (
        key.device_id,
        "trip",
        2,
        second.record.record_id,
    )
    assert (stored.start_at, stored.end_at, stored.received_at) == (
        second.record.start_at,
        second.record.end_at,
        second.received_at,
    )
    assert stored.kid == key.kid
    head = store.chain_heads([key.device_id, "ev-nobody"])
    assert list(head) == [key.device_id]
    assert (head[key.device_id].sequence, head[key.device_id].record_hash) == (2, second.record_hash)
    assert head[key.device_id].end_at == second.record.end_at
    assert head[key.device_id].odometer_end_m == second.record.odometer_end_m
    assert store.record_hash_at(key.device_id, 1) == first.record_hash
    assert store.record_hash_at(key.device_id, 3) is None
    assert store.record_hash_of_id(key.device_id, second.record.record_id) == second.record_hash
    assert store.record_hash_of_id(key.device_id, "no-such-record") is None
    device = store.device(key.device_id)
    assert device is not None
    assert (device.last_sequence, device.last_seen_at) == (2, second.received_at)
    assert store.record(bytes(32)) is None


def _conflicting(kind: str, key: DeviceKey, first: AcceptedRecord) -> AcceptedRecord:
    record = first.record
    if kind == "same hash":
        return dataclasses.replace(first, received_at=first.received_at + timedelta(minutes=5))
    if kind == "same sequence":
        return accepted(key, dataclasses.replace(record, record_id="another-record-id"))
    return accepted(key, dataclasses.replace(record, sequence=2))  # same record id


@pytest.mark.parametrize("kind", ["same hash", "same sequence", "same record id"])
def test_a_batch_breaking_uniqueness_is_refused_whole(store: SqlRecordStore, kind: str) -> None:
    """A record repeating a stored hash, (device, sequence) or (device, record id) is ConflictError.

    Nothing of its batch is stored, and what was stored before is intact.
    """
    key, bystander = device_key(1), device_key(2, "ev-store-0002")
    register(store, key)
    register(store, bystander)
    (first,) = chain(key, 1)
    store.commit([first], [], {key.device_id: NOW})
    (innocent,) = chain(bystander, 1)
    later = NOW + timedelta(hours=1)
    with pytest.raises(ConflictError):
        store.commit(
            [innocent, _conflicting(kind, key, first)],
            [rejection()],
            {key.device_id: later, bystander.device_id: later},
        )
    assert [r.record_hash for r in store.records(RecordQuery())] == [first.record_hash]
    assert store.rejections(RejectionQuery()) == []
    assert store.chain_heads([key.device_id, bystander.device_id]).keys() == {key.device_id}
    assert store.device(key.device_id).last_seen_at == NOW  # type: ignore[union-attr]
    assert store.device(bystander.device_id).last_seen_at is None  # type: ignore[union-attr]
    assert store.record(first.record_hash).signed == first.signed  # type: ignore[union-attr]


def test_a_record_of_an_unregistered_device_is_a_conflict(store: SqlRecordStore) -> None:
    """Committing a record whose device is not registered breaks the foreign key: ConflictError, nothing stored."""
    (orphan,) = chain(device_key(1), 1)
    with pytest.raises(ConflictError):
        store.commit([orphan], [rejection()], {})
    assert store.records(RecordQuery()) == []
    assert store.rejections(RejectionQuery()) == []


def race(contenders: dict[str, tuple[SqlRecordStore, AcceptedRecord]]) -> dict[str, str]:
    """Commit each contender's record from its own thread, released together; who won, who lost."""
    start = threading.Barrier(len(contenders))
    outcomes: dict[str, str] = {}

    def commit(name: str) -> None:
        gateway, record = contenders[name]
        start.wait()
        try:
            gateway.commit([record], [], {})
            outcomes[name] = "won"
        except ConflictError:
            outcomes[name] = "lost"

    threads = [threading.Thread(target=commit, args=(name,)) for name in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_gateways_racing_on_one_device_cannot_both_commit(store: SqlRecordStore, store_url: str) -> None:  # noqa: F811
    """Two stores on one database commit different records with the same sequence at once: exactly one wins."""
    key = device_key(1)
    register(store, key)
    rival = open_store(store_url)
    assert isinstance(rival, SqlRecordStore)
    try:
        for sequence, ours in enumerate(chain(key, 5), start=1):
            theirs = accepted(key, dataclasses.replace(ours.record, record_id=f"rival-{sequence}"))
            outcomes = race({"ours": (store, ours), "theirs": (rival, theirs)})
            assert sorted(outcomes.values()) == ["lost", "won"], f"sequence {sequence}: {outcomes}"
            winner = ours if outcomes["ours"] == "won" else theirs
            assert store.record_hash_at(key.device_id, sequence) == winner.record_hash
            assert rival.chain_heads([key.device_id])[key.device_id].record_hash == winner.record_hash
    finally:
        rival.close()
    assert len(store.records(RecordQuery())) == 5


def test_stored_rejections_are_bounded_oldest_out(store_url: str) -> None:  # noqa: F811
    """Beyond max_rejections the oldest rejections are deleted in the committing transaction."""
    bounded = open_store(store_url, max_rejections=3)
    try:
        bounded.commit([], [rejection(detail=f"r{i}") for i in range(2)], {})
        bounded.commit([], [rejection(detail=f"r{i}") for i in range(2, 5)], {})
        kept = bounded.rejections(RejectionQuery())
        assert [r.detail for r in kept] == ["r4", "r3", "r2"]
        assert kept[0].rejection_id > kept[1].rejection_id > kept[2].rejection_id
    finally:
        bounded.close()


def test_a_rejection_reads_back_whole(store: SqlRecordStore) -> None:
    """Every field of a rejection is stored, including text PostgreSQL cannot hold as is (NUL)."""
    stored_before = rejection(
        None,
        topic="carbonlink/v1/bogus",
        reason=RejectionReason.BAD_TOPIC,
        detail="bad\x00topic",
        sequence=7,
        record_id="r-1",
    )
    store.commit([], [stored_before], {})
    (found,) = store.rejections(RejectionQuery())
    assert store.rejection(found.rejection_id) == found
    assert found.detail == "bad\ufffdtopic"
    assert (found.topic, found.device_id, found.reason, found.sequence, found.record_id) == (
        "carbonlink/v1/bogus",
        None,
        RejectionReason.BAD_TOPIC,
        7,
        "r-1",
    )
    assert (found.record_hash, found.payload, found.payload_size, found.received_at) == (
        stored_before.record_hash,
        stored_before.payload,
        stored_before.payload_size,
        NOW,
    )
    assert store.rejection(found.rejection_id + 1) is None


def test_last_seen_only_moves_forward(store: SqlRecordStore) -> None:
    """A device's last_seen_at takes the later of the stored and the committed time; unknown devices are ignored."""
    key = device_key(1)
    register(store, key)
    store.commit([], [], {key.device_id: NOW, "ev-nobody": NOW})
    store.commit([], [], {key.device_id: NOW - timedelta(seconds=1)})
    assert store.device(key.device_id).last_seen_at == NOW  # type: ignore[union-attr]
    store.commit([], [], {key.device_id: NOW + timedelta(microseconds=1)})
    assert store.device(key.device_id).last_seen_at == NOW + timedelta(microseconds=1)  # type: ignore[union-attr]


def test_an_overlapping_trip_of_the_same_vehicle_is_found(store: SqlRecordStore) -> None:
    """overlapping_trip finds an accepted trip of the same VIN hash, from any device, whose odometer interval overlaps.

    Intervals that only touch do not overlap; charges and trips refused for their content never do.
    """
    key, other = device_key(1), device_key(2, "ev-store-0002")
    register(store, key)
    register(store, other)
    records = chain(key, 4, vin_hash=VIN_HASH)  # three trips, then a charge at the last odometer reading
    (elsewhere,) = chain(other, 1, vin_hash=VIN_HASH, odometer_m=1_000_000.0)  # the same car, before its new unit
    (refused,) = chain(device_key(3, "ev-store-0003"), 1, vin_hash=VIN_HASH, odometer_m=2_000_000.0)
    register(store, device_key(3, "ev-store-0003"))
    refused = dataclasses.replace(refused, refused_for=RejectionReason.IMPLAUSIBLE_ENERGY)
    store.commit([*records, elsewhere, refused], [], {})
    trip = records[1].record
    start_m, end_m = trip.odometer_start_m or 0.0, trip.odometer_end_m or 0.0
    assert store.overlapping_trip(VIN_HASH, start_m + 1.0, start_m + 2.0) == records[1].record_hash
    assert store.overlapping_trip(VIN_HASH, start_m, start_m + 0.5) == records[1].record_hash
    assert store.overlapping_trip(VIN_HASH, start_m - 0.5, start_m + 0.5) == records[0].record_hash  # the first to end
    last_end_m = records[2].record.odometer_end_m or 0.0
    assert store.overlapping_trip(VIN_HASH, last_end_m, last_end_m + 10_000.0) is None  # touches the last trip
    assert store.overlapping_trip(VIN_HASH, 1_000_100.0, 1_000_200.0) == elsewhere.record_hash
    assert store.overlapping_trip(VIN_HASH, 2_000_100.0, 2_000_200.0) is None
    assert store.overlapping_trip(bytes(32), start_m, end_m) is None
    # The frontier: the highest end of the vehicle's accepted trips, whatever device; refused links do not count.
    assert store.odometer_frontier(VIN_HASH) == last_end_m
    assert store.odometer_frontier(bytes(32)) is None


def test_a_link_refused_for_its_content_continues_the_chain_but_is_not_listed(store: SqlRecordStore) -> None:
    """A link committed with refused_for is the chain head and answers record_refusal; listings skip it unless asked."""
    key = device_key(1)
    register(store, key)
    first, second = chain(key, 2)
    second = dataclasses.replace(second, refused_for=RejectionReason.IMPLAUSIBLE_SPEED)
    store.commit([first, second], [], {})
    assert store.chain_heads([key.device_id])[key.device_id].record_hash == second.record_hash
    assert store.record_hash_at(key.device_id, 2) == second.record_hash
    assert store.record_refusal(key.device_id, second.record_hash) is RejectionReason.IMPLAUSIBLE_SPEED
    assert store.record_refusal(key.device_id, first.record_hash) is None
    assert store.record_refusal("ev-store-0002", second.record_hash) is None
    assert store.record_refusal(key.device_id, bytes(32)) is None
    assert [r.sequence for r in store.records(RecordQuery())] == [1]
    listed = store.records(RecordQuery(include_refused=True))
    assert [(r.sequence, r.refused_for) for r in listed] == [(2, RejectionReason.IMPLAUSIBLE_SPEED), (1, None)]
    assert store.record(second.record_hash).refused_for is RejectionReason.IMPLAUSIBLE_SPEED  # type: ignore[union-attr]
    assert store.device(key.device_id).last_sequence == 2  # type: ignore[union-attr]


# --- operators -------------------------------------------------------------------------------------


@pytest.fixture
def fleet(store: SqlRecordStore) -> tuple[list[AcceptedRecord], list[AcceptedRecord]]:
    """Two devices with five records each (trips and a charge), received interleaved a minute apart."""
    a, b = device_key(1), device_key(2, "ev-store-0002")
    register(store, a)
    register(store, b)
    of_a = chain(a, 5, received_from=NOW)
    of_b = chain(b, 5, received_from=NOW + timedelta(seconds=30))
    store.commit(of_a + of_b, [], {})
    return of_a, of_b


def test_records_are_listed_newest_first_and_filtered(
    store: SqlRecordStore, fleet: tuple[list[AcceptedRecord], list[AcceptedRecord]]
) -> None:
    """records() lists by received_at, newest first; device, type, time and limit filters all apply."""
    of_a, of_b = fleet
    everything = sorted(of_a + of_b, key=lambda r: r.received_at, reverse=True)
    assert [r.record_hash for r in store.records(RecordQuery())] == [r.record_hash for r in everything]
    only_a = store.records(RecordQuery(device_id=of_a[0].record.device_id))
    assert [r.sequence for r in only_a] == [5, 4, 3, 2, 1]
    charges = store.records(RecordQuery(record_type="charge"))
    assert [(r.device_id, r.sequence) for r in charges] == [("ev-store-0002", 4), ("ev-store-0001", 4)]
    third = of_a[2].record
    ending_late = store.records(RecordQuery(device_id=third.device_id, start_from=third.end_at))
    assert [r.sequence for r in ending_late] == [5, 4, 3]
    starting_early = store.records(RecordQuery(device_id=third.device_id, until=third.start_at))
    assert [r.sequence for r in starting_early] == [2, 1]
    assert len(store.records(RecordQuery(limit=3))) == 3
    assert store.records(RecordQuery(limit=0)) == []


def test_records_page_by_keyset(
    store: SqlRecordStore, fleet: tuple[list[AcceptedRecord], list[AcceptedRecord]]
) -> None:
    """Asking for the records received before the last of a page gives the next page, down to an empty one."""
    of_a, of_b = fleet
    seen: list[bytes] = []
    before = None
    while page := store.records(RecordQuery(limit=4, before_received_at=before)):
        seen += [r.record_hash for r in page]
        before = page[-1].received_at
    everything = sorted(of_a + of_b, key=lambda r: r.received_at, reverse=True)
    assert seen == [r.record_hash for r in everything]


def test_records_received_at_the_same_time_are_listed_in_a_fixed_order(store: SqlRecordStore) -> None:
    """Records sharing received_at come in the same order every time (by hash, descending)."""
    key = device_key(1)
    register(store, key)
    records = [dataclasses.replace(r, received_at=NOW) for r in chain(key, 4)]
    store.commit(records, [], {})
    listed = [r.record_hash for r in store.records(RecordQuery())]
    assert listed == sorted((r.record_hash for r in records), reverse=True)


def test_listing_limits_are_clamped(store: SqlRecordStore) -> None:
    """A limit above MAX_LIST_LIMIT returns at most MAX_LIST_LIMIT rows instead of the whole table."""
    store.commit([], [rejection(detail=str(i)) for i in range(3)], {})
    assert len(store.rejections(RejectionQuery(limit=MAX_LIST_LIMIT * 10))) == 3
    assert store.rejections(RejectionQuery(limit=-1)) == []


def test_rejections_are_listed_newest_first_filtered_and_paged(store: SqlRecordStore) -> None:
    """rejections() lists by id, newest first; device, reason, since and before_id filters all apply."""
    batch = [
        rejection("ev-store-0001", at=NOW, reason=RejectionReason.BAD_SIGNATURE),
        rejection("ev-store-0002", at=NOW + timedelta(minutes=1)),
        rejection(None, at=NOW + timedelta(minutes=2), reason=RejectionReason.BAD_TOPIC),
        rejection("ev-store-0001", at=NOW + timedelta(minutes=3)),
    ]
    for message in batch:
        store.commit([], [message], {})
    listed = store.rejections(RejectionQuery())
    assert [r.received_at for r in listed] == [m.received_at for m in reversed(batch)]
    assert [r.received_at for r in store.rejections(RejectionQuery(device_id="ev-store-0001"))] == [
        NOW + timedelta(minutes=3),
        NOW,
    ]
    assert [r.reason for r in store.rejections(RejectionQuery(reason=RejectionReason.BAD_TOPIC))] == [
        RejectionReason.BAD_TOPIC
    ]
    since = store.rejections(RejectionQuery(since=NOW + timedelta(minutes=1)))
    assert [r.received_at for r in since] == [NOW + timedelta(minutes=m) for m in (3, 2, 1)]
    page = store.rejections(RejectionQuery(limit=2))
    rest = store.rejections(RejectionQuery(limit=2, before_id=page[-1].rejection_id))
    assert [r.rejection_id for r in page + rest] == [r.rejection_id for r in listed]


def test_times_round_trip_to_the_microsecond(store: SqlRecordStore) -> None:
    """Times before the epoch, far ahead and with microseconds come back exactly, as aware UTC."""
    key = device_key(1)
    odd = datetime(1969, 7, 20, 20, 17, 40, 123457, tzinfo=UTC)
    register(store, key, at=odd)
    far = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    record = sample_charge(device_id=key.device_id, record_id="charge-1")
    store.commit([accepted(key, record, received_at=far)], [], {key.device_id: far})
    device = store.device(key.device_id)
    assert device is not None
    assert (device.registered_at, device.last_seen_at) == (odd, far)
    assert device.registered_at.tzinfo == UTC
    (stored,) = store.records(RecordQuery())
    assert stored.received_at == far
    assert stored.start_at == record.start_at


# --- connections and failures ----------------------------------------------------------------------


def test_each_thread_gets_its_own_connection_and_close_ends_them_all(store: SqlRecordStore) -> None:
    """Reads from several threads work at once; after close() every call raises StoreError."""
    register(store, device_key(1))
    found: list[int] = []
    start = threading.Barrier(4)

    def read() -> None:
        start.wait()
        found.append(len(store.devices()))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [1, 1, 1, 1]
    store.check()
    store.close()
    with pytest.raises(StoreError, match="the store is closed"):
        store.check()
    with pytest.raises(StoreError, match="the store is closed"):
        store.devices()


def test_connections_of_ended_threads_are_closed(store: SqlRecordStore, store_url: str) -> None:  # noqa: F811
    """A thread that has ended does not keep its connection: the next new thread's connect closes it."""
    store.check()
    for _ in range(3):
        thread = threading.Thread(target=store.check)
        thread.start()
        thread.join()
    assert len(store._connections) == 2  # this thread's, and the last ended thread's until the next connect
    if store_url.startswith("postgresql"):  # the server agrees: the other connections are closed
        counting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        # A closed connection's server process exits a moment after the client has hung up.
        wait_for(lambda: _query(store, counting) == [(2,)], "the server to count 2 connections")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u@h/db", "unknown kind of database 'mysql'"),
        ("gateway.db", "unknown kind of database '\\(no scheme\\)'"),
        ("sqlite://gateway.db", "three slashes"),
        ("sqlite:///", "no database file"),
        ("sqlite:///:memory:", "only a database file path"),
        ("postgresql://u:secret@h:notaport/db", "Port could not be cast"),
        ("postgres://u@h:5432/", "no database name"),
    ],
)
def test_a_malformed_url_is_a_config_error(url: str, problem: str) -> None:
    """A store URL that is not valid raises ConfigError naming the problem (and never the password)."""
    with pytest.raises(ConfigError, match=problem) as raised:
        open_store(url)
    assert "secret" not in str(raised.value)


def test_a_database_that_cannot_be_opened_is_a_store_error_without_password(store_url: str) -> None:  # noqa: F811
    """An unopenable database raises StoreError naming the URL, without the password it holds."""
    if store_url.startswith("sqlite"):
        broken = f"sqlite:///{store_url.removeprefix('sqlite:///')}/under/a/missing/directory.db"
        expected = "does not exist"
    else:
        parts = store_url.split("@", 1)
        broken = f"{parts[0]}:secret@{parts[1]}_missing"
        expected = "does not exist"
    with pytest.raises(StoreError, match=expected) as raised:
        open_store(broken)
    assert "secret" not in str(raised.value)
    assert f"cannot open {broken.replace(':secret', '')}" in str(raised.value)


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may create files in, root included (root ignores modes: chattr +i then)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() == 0:
        try:
            subprocess.run(["chattr", "+i", str(directory)], check=True, capture_output=True)  # noqa: S603, S607 - e2fsprogs
        except (OSError, subprocess.CalledProcessError) as err:
            pytest.fail(f"cannot make {directory} immutable as root (chattr +i): {err}", pytrace=False)
        yield directory
        subprocess.run(["chattr", "-i", str(directory)], check=True)  # noqa: S603, S607 - e2fsprogs
    else:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)


def test_a_sqlite_database_in_a_read_only_directory_is_a_clear_store_error(read_only_directory: Path) -> None:
    """SQLite cannot create its file (or -wal, -shm) there: StoreError says which directory must be writable."""
    url = f"sqlite:///{read_only_directory / 'gateway.db'}"
    with pytest.raises(StoreError) as raised:
        open_store(url)
    message = str(raised.value)
    assert f"cannot open {url}" in message
    assert f"its directory {read_only_directory} must be writable" in message
    assert isinstance(raised.value.__cause__, sqlite3.Error)
