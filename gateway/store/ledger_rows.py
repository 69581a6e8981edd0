"""How the crediting tables' rows become values: pure conversions (and the two head reads the writer needs)."""

import json
from typing import Any

from carbonlink.ledger import EntryKind, LedgerBatch, LedgerEntry
from gateway.crediting.model import Binding, Credit, DeliveryState, Owner, StoredDelivery
from gateway.store.dialects import Connection, Row, from_micros
from gateway.store.rows import time_or_none

ENTRY_SELECT = "SELECT seq, kind, recorded_at, body, previous_hash, entry_hash FROM ledger_entries"
BATCH_SELECT = "SELECT batch_no, first_seq, last_seq, merkle_root, previous_root, sealed_at FROM ledger_batches"
CREDIT_SELECT = """
    SELECT c.credit_id, c.record_hash, c.device_id, c.vehicle_key, c.odometer_start_m, c.odometer_end_m, c.period,
           c.end_at, c.reduction_co2e_g, c.owner_id, c.issue_seq, c.issued_at,
           e.seq, e.kind, e.recorded_at, e.body, e.previous_hash, e.entry_hash
    FROM credits c JOIN ledger_entries e ON e.seq = c.entry_seq"""
DELIVERY_SELECT = """
    SELECT id, sink, idempotency_key, credit_id, state, attempts, created_at, next_attempt_at, last_attempt_at,
           last_error, delivered_at
    FROM forwarding"""
OWNER_SELECT = "SELECT owner_id, name, created_at FROM owners"


def json_fields(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"stored JSON is not an object: {text[:60]!r}")
    return value


def entry(row: Row) -> LedgerEntry:
    seq, kind, recorded_at, body, previous_hash, entry_hash = row
    return LedgerEntry(
        seq=int(seq),
        kind=EntryKind(kind),
        recorded_at=from_micros(recorded_at),
        body=json_fields(body),
        previous_hash=bytes(previous_hash),
        entry_hash=bytes(entry_hash),
    )


def batch(row: Row) -> LedgerBatch:
    batch_no, first_seq, last_seq, merkle_root, previous_root, sealed_at = row
    return LedgerBatch(
        batch_no=int(batch_no),
        first_seq=int(first_seq),
        last_seq=int(last_seq),
        merkle_root=bytes(merkle_root),
        previous_root=bytes(previous_root),
        sealed_at=from_micros(sealed_at),
    )


def last_entry(connection: Connection) -> LedgerEntry | None:
    row = connection.fetch_one(
        ENTRY_SELECT + " WHERE seq = (SELECT last_seq FROM ledger_head WHERE id = 1)"  # noqa: S608 - constants
    )
    return None if row is None else entry(row)


def last_batch(connection: Connection) -> LedgerBatch | None:
    row = connection.fetch_one(
        BATCH_SELECT + " WHERE batch_no = (SELECT last_batch_no FROM ledger_head WHERE id = 1)"  # noqa: S608 - constants
    )
    return None if row is None else batch(row)


def binding(row: Row) -> Binding:
    vehicle_key, owner_id, consented_at, consent_method, consent_reference, binding_seq = row
    return Binding(
        vehicle_key=vehicle_key,
        owner_id=owner_id,
        consented_at=from_micros(consented_at),
        consent_method=consent_method,
        consent_reference=consent_reference,
        binding_seq=int(binding_seq),
    )


def credit(row: Row) -> Credit:
    (credit_id, record_hash, device_id, vehicle_key, start_m, end_m, period, end_at, reduction, owner_id) = row[:10]
    issue_seq, issued_at = row[10:12]
    return Credit(
        credit_id=credit_id,
        record_hash=bytes(record_hash),
        device_id=device_id,
        vehicle_key=vehicle_key,
        odometer_start_m=float(start_m),
        odometer_end_m=float(end_m),
        period=period,
        end_at=from_micros(end_at),
        reduction_co2e_g=float(reduction),
        entry=entry(row[12:18]),
        owner_id=owner_id,
        issue_seq=None if issue_seq is None else int(issue_seq),
        issued_at=time_or_none(issued_at),
    )


def delivery(row: Row) -> StoredDelivery:
    (delivery_id, sink, key, credit_id, state, attempts, created_at, next_at, last_at, last_error, delivered_at) = row
    return StoredDelivery(
        delivery_id=int(delivery_id),
        sink=sink,
        idempotency_key=key,
        credit_id=credit_id,
        state=DeliveryState(state),
        attempts=int(attempts),
        created_at=from_micros(created_at),
        next_attempt_at=time_or_none(next_at),
        last_attempt_at=time_or_none(last_at),
        last_error=last_error,
        delivered_at=time_or_none(delivered_at),
    )


def owner(row: Row) -> Owner:
    owner_id, name, created_at = row
    return Owner(owner_id=owner_id, name=name, created_at=from_micros(created_at))
