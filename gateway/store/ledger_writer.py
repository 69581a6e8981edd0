"""One ledger transaction: what the crediting worker and operators' bindings write, in one commit.

A :class:`LedgerWriter` lives inside a writing transaction (``SqlLedger.writing``). It first locks the
one ``ledger_head`` row, so ledger writers of several gateways take turns (PostgreSQL row lock;
SQLite has one writer anyway), then reads the newest entry and batch. Entries appended here are
hash-chained to it at once and written with no batch; when the transaction ends, :meth:`seal` puts
them into a new batch whose Merkle root is recorded, so every committed entry is in a sealed batch.

Every method writes or reads at once, so what an earlier call wrote is visible to a later one (a
charge decided in this transaction is an input of a trip decided after it).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from carbonlink.credit_entries import CreditEntry
from carbonlink.ledger import EntryKind, LedgerBatch, LedgerEntry, canonical_json, next_entry, seal_batch
from carbonlink.methodology import ChargeEnergy
from carbonlink.records import ChargeRecord
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import record_from_json
from gateway.crediting.model import Binding, CreditToIssue, Outcome, PendingRecord
from gateway.errors import StoreError
from gateway.store import ledger_rows as convert
from gateway.store.dialects import Connection, to_micros

_LOCK_HEAD = "UPDATE ledger_head SET last_seq = last_seq WHERE id = 1"
_PENDING = """
    SELECT q.id, r.record_hash, r.device_id, r.record_type, r.fields, d.vin_hash, d.vehicle_class
    FROM credit_queue q JOIN records r ON r.record_hash = q.record_hash JOIN devices d ON d.device_id = r.device_id
    ORDER BY q.id LIMIT ?"""
_INSERT_DECISION = """
    INSERT INTO crediting_decisions (record_hash, record_type, vehicle_key, period, end_at, outcome, detail, decided_at,
                                     energy_in_wh, grid_energy_wh)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# The vehicle's charges of the period that ended by the trip's start, with the energies their
# decisions copied from the records (decoding each record's fields again cost 70 % of crediting's
# time); an exclusion row marks one credited elsewhere.
_CHARGES = """
    SELECT c.record_hash, c.energy_in_wh, c.grid_energy_wh, x.record_hash
    FROM crediting_decisions c
    LEFT JOIN charge_exclusions x ON x.record_hash = c.record_hash
    WHERE c.vehicle_key = ? AND c.record_type = 'charge' AND c.period = ? AND c.end_at <= ?
    ORDER BY c.end_at, c.record_hash"""
_OVERLAPPING_CREDIT = """
    SELECT credit_id FROM credits
    WHERE vehicle_key = ? AND odometer_end_m > ? AND odometer_start_m < ?
    ORDER BY odometer_end_m LIMIT 1"""
_INSERT_ENTRY = """
    INSERT INTO ledger_entries (seq, kind, recorded_at, body, previous_hash, entry_hash)
    VALUES (?, ?, ?, ?, ?, ?)"""
_INSERT_CREDIT = """
    INSERT INTO credits (credit_id, record_hash, device_id, vehicle_key, odometer_start_m, odometer_end_m, period,
                         end_at, reduction_co2e_g, entry_seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_ISSUE_CREDIT = (
    "UPDATE credits SET owner_id = ?, issue_seq = ?, issued_at = ? WHERE credit_id = ? AND issue_seq IS NULL"
)
_INSERT_DELIVERY = """
    INSERT INTO forwarding (sink, idempotency_key, credit_id, payload, state, attempts, created_at, next_attempt_at,
                            last_error)
    VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, '')"""
_UPSERT_BINDING = """
    INSERT INTO vehicle_bindings (vehicle_key, owner_id, consented_at, consent_method, consent_reference, binding_seq)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (vehicle_key) DO UPDATE SET
        owner_id = excluded.owner_id, consented_at = excluded.consented_at,
        consent_method = excluded.consent_method, consent_reference = excluded.consent_reference,
        binding_seq = excluded.binding_seq"""
_BINDING = """
    SELECT vehicle_key, owner_id, consented_at, consent_method, consent_reference, binding_seq
    FROM vehicle_bindings WHERE vehicle_key = ?"""
_ACCRUED = """
    SELECT credit_id, record_hash, device_id, vehicle_key, period, reduction_co2e_g, entry_seq
    FROM credits WHERE vehicle_key = ? AND issue_seq IS NULL ORDER BY entry_seq"""


class LedgerWriter:
    """The ledger and crediting tables inside one writing transaction (see the module docstring)."""

    def __init__(self, connection: Connection, *, at: datetime) -> None:
        self._connection = connection
        self.at = at
        connection.execute(_LOCK_HEAD)
        self._last_entry = convert.last_entry(connection)
        self._last_batch = convert.last_batch(connection)
        self._appended: list[LedgerEntry] = []
        self._savepoints = 0

    # --- what to credit -------------------------------------------------------------------------------
    def pending(self, limit: int) -> list[PendingRecord]:
        """Accepted records waiting for a decision, in commit order (each device's in sequence)."""
        pending = []
        for (
            queue_id,
            record_hash,
            device_id,
            record_type,
            fields,
            vin_hash,
            vehicle_class,
        ) in self._connection.fetch_all(_PENDING, (limit,)):
            pending.append(
                PendingRecord(
                    queue_id=int(queue_id),
                    record_hash=bytes(record_hash),
                    device_id=device_id,
                    record=record_from_json(record_type, convert.json_fields(fields)),
                    device_vin_hash=None if vin_hash is None else bytes(vin_hash),
                    vehicle_class=VehicleClass(vehicle_class),
                )
            )
        return pending

    def decide(self, pending: PendingRecord, *, vehicle_key: str, period: str, outcome: Outcome, detail: str) -> None:
        """Record the decision on one pending record and take it off the queue."""
        record = pending.record
        charge = record if isinstance(record, ChargeRecord) else None
        self._connection.execute(
            _INSERT_DECISION,
            (
                pending.record_hash,
                record.RECORD_TYPE,
                vehicle_key,
                period,
                to_micros(record.end_at),
                outcome.value,
                detail,
                to_micros(self.at),
                None if charge is None else charge.energy_in_wh,
                None if charge is None else charge.grid_energy_wh,
            ),
        )
        self._connection.execute("DELETE FROM credit_queue WHERE id = ?", (pending.queue_id,))

    def charges_of(self, vehicle_key: str, period: str, ended_by: datetime) -> list[ChargeEnergy]:
        """The vehicle's accepted charges of the period that ended by ``ended_by``, oldest first."""
        return [
            ChargeEnergy(
                record_hash=bytes(record_hash),
                energy_in_wh=float(energy_in_wh),
                grid_energy_wh=None if grid_energy_wh is None else float(grid_energy_wh),
                excluded=excluded is not None,
            )
            for record_hash, energy_in_wh, grid_energy_wh, excluded in self._connection.fetch_all(
                _CHARGES, (vehicle_key, period, to_micros(ended_by))
            )
        ]

    def overlapping_credit(self, vehicle_key: str, odometer_start_m: float, odometer_end_m: float) -> str | None:
        """A credit of the vehicle whose odometer interval overlaps this one (touching is no overlap)."""
        row = self._connection.fetch_one(_OVERLAPPING_CREDIT, (vehicle_key, odometer_start_m, odometer_end_m))
        return None if row is None else str(row[0])

    def binding(self, vehicle_key: str) -> Binding | None:
        row = self._connection.fetch_one(_BINDING, (vehicle_key,))
        return None if row is None else convert.binding(row)

    def owner_exists(self, owner_id: str) -> bool:
        return self._connection.fetch_one("SELECT 1 FROM owners WHERE owner_id = ?", (owner_id,)) is not None

    def accrued(self, vehicle_key: str) -> list[CreditToIssue]:
        """The vehicle's credits not issued yet, oldest first."""
        return [
            CreditToIssue(
                credit_id=str(row[0]),
                record_hash=bytes(row[1]),
                device_id=str(row[2]),
                vehicle_key=str(row[3]),
                period=str(row[4]),
                reduction_co2e_g=float(row[5]),
                entry_seq=int(row[6]),
            )
            for row in self._connection.fetch_all(_ACCRUED, (vehicle_key,))
        ]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo what the block wrote (rows and appended entries) when it raises; the transaction goes on."""
        self._savepoints += 1
        name = f"decision_{self._savepoints}"
        last_entry, appended = self._last_entry, len(self._appended)
        self._connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._connection.execute(f"RELEASE SAVEPOINT {name}")
            self._last_entry = last_entry
            del self._appended[appended:]
            raise
        self._connection.execute(f"RELEASE SAVEPOINT {name}")

    # --- what to write --------------------------------------------------------------------------------
    def append(self, kind: EntryKind, body: dict[str, object]) -> LedgerEntry:
        """Chain a new entry to the newest one and write it (sealed into a batch at the end)."""
        entry = next_entry(self._last_entry, kind, body, self.at)
        self._connection.execute(
            _INSERT_ENTRY,
            (
                entry.seq,
                entry.kind.value,
                to_micros(entry.recorded_at),
                canonical_json(entry.body).decode("utf-8"),
                entry.previous_hash,
                entry.entry_hash,
            ),
        )
        self._last_entry = entry
        self._appended.append(entry)
        return entry

    def add_credit(self, credit: CreditEntry, entry: LedgerEntry, *, end_at: datetime) -> None:
        self._connection.execute(
            _INSERT_CREDIT,
            (
                credit.credit_id,
                bytes.fromhex(credit.record_hash),
                credit.device_id,
                credit.vehicle_key,
                credit.odometer_start_m,
                credit.odometer_end_m,
                credit.period,
                to_micros(end_at),
                credit.reduction.reduction_co2e_g,
                entry.seq,
            ),
        )

    def issue(self, credit_id: str, owner_id: str, entry: LedgerEntry, deliveries: dict[str, bytes]) -> None:
        """Mark the credit issued by ``entry`` and queue it for every sink (sink name → payload)."""
        if self._connection.execute(_ISSUE_CREDIT, (owner_id, entry.seq, to_micros(self.at), credit_id)) != 1:
            raise StoreError(f"credit {credit_id} is unknown or issued already: not issued again")
        at = to_micros(self.at)
        for sink, payload in sorted(deliveries.items()):
            self._connection.execute(_INSERT_DELIVERY, (sink, credit_id, credit_id, payload, at, at))

    def bind(self, binding: Binding) -> None:
        self._connection.execute(
            _UPSERT_BINDING,
            (
                binding.vehicle_key,
                binding.owner_id,
                to_micros(binding.consented_at),
                binding.consent_method,
                binding.consent_reference,
                binding.binding_seq,
            ),
        )

    def seal(self) -> LedgerBatch | None:
        """Seal what this transaction appended into one batch; None when it appended nothing."""
        if not self._appended:
            return None
        batch = seal_batch(self._last_batch, self._appended, self.at)
        self._connection.execute(
            "INSERT INTO ledger_batches (batch_no, first_seq, last_seq, merkle_root, previous_root, sealed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                batch.batch_no,
                batch.first_seq,
                batch.last_seq,
                batch.merkle_root,
                batch.previous_root,
                to_micros(batch.sealed_at),
            ),
        )
        self._connection.execute(
            "UPDATE ledger_entries SET batch_no = ? WHERE seq BETWEEN ? AND ?",
            (batch.batch_no, batch.first_seq, batch.last_seq),
        )
        self._connection.execute(
            "UPDATE ledger_head SET last_seq = ?, last_batch_no = ? WHERE id = 1", (batch.last_seq, batch.batch_no)
        )
        self._last_batch = batch
        self._appended = []
        return batch
