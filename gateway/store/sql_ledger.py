"""The crediting half of the store: the ledger, credits, owners, exclusions and the forwarding outbox.

:class:`SqlLedger` shares the :class:`~gateway.store.sql_store.SqlRecordStore`'s connections and
transactions (one database, one schema). Writes that extend the ledger go through
:meth:`SqlLedger.writing`, a :class:`~gateway.store.ledger_writer.LedgerWriter` in one transaction
that seals its entries into a batch before it commits. Everything else is one transaction per call.

The forwarding outbox is filled in the transaction that issues a credit (so a credit is issued
exactly when its deliveries exist) and emptied by the forwarder through :meth:`due`,
:meth:`mark_delivered` and :meth:`mark_failed` (the ``ForwardingQueue`` of ``gateway.forwarding``).
"""

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from carbonlink.ledger import LedgerBatch, LedgerEntry, Receipt
from gateway.crediting.model import (
    Credit,
    CreditQuery,
    CreditToIssue,
    CreditTotal,
    DeliveryState,
    Owner,
    StoredDelivery,
    TotalsBy,
)
from gateway.crediting.payload import issued_payload
from gateway.errors import ConflictError, RegistryError, StoreError
from gateway.forwarding.model import Delivery
from gateway.store import ledger_rows as convert
from gateway.store.dialects import Params, Row, from_micros, to_micros
from gateway.store.ledger_writer import LedgerWriter

if TYPE_CHECKING:
    from gateway.store.sql_store import SqlRecordStore

log = logging.getLogger("carbonlink.gateway.forwarding")

DELIVERY_LEASE_S = 600.0
"""How long a delivery handed to a forwarder is not handed out again (another gateway's forwarder,
or this one after a crash). Longer than a forwarder's pass can take (``FORWARD_BATCH_MAX`` deliveries
of at most the webhook's timeout each, 10 × 10 s by default), so one attempt ends before the next."""

MISSING_DELIVERIES_EVERY_S = 60.0
"""How often a forwarder looks for issued credits without a delivery to its sinks."""

_DUE = """
    SELECT id, sink, idempotency_key, payload, attempts, created_at FROM forwarding
    WHERE state = 'pending' AND sink IN ({sinks}) AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"""
_UNDELIVERED = """
    SELECT c.credit_id, c.record_hash, c.device_id, c.vehicle_key, c.period, c.reduction_co2e_g, c.entry_seq,
           c.owner_id, c.issue_seq, c.issued_at
    FROM credits c
    WHERE c.issue_seq IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM forwarding f WHERE f.sink = ? AND f.idempotency_key = c.credit_id)
    ORDER BY c.issue_seq LIMIT ?"""
_ADD_DELIVERY = """
    INSERT INTO forwarding (sink, idempotency_key, credit_id, payload, state, attempts, created_at, next_attempt_at,
                            last_error)
    VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, '')
    ON CONFLICT (sink, idempotency_key) DO NOTHING"""
_TOTAL_KEYS = {
    TotalsBy.DEVICE: "device_id",
    TotalsBy.OWNER: "owner_id",
    TotalsBy.PERIOD: "period",
    TotalsBy.VEHICLE: "vehicle_key",
}


class SqlLedger:
    """Crediting's tables on the store's database (see the module docstring)."""

    def __init__(self, store: "SqlRecordStore") -> None:
        self._store = store

    def _read(self, doing: str, sql: str, params: Params = ()) -> list[Row]:
        with self._store.transaction(doing, write=False) as connection:
            return connection.fetch_all(sql, params)

    # --- writing the ledger ---------------------------------------------------------------------------
    @contextmanager
    def writing(self, doing: str, *, at: datetime) -> Iterator[LedgerWriter]:
        """A ledger writer in one transaction; its entries are sealed into a batch before the commit."""
        with self._store.transaction(doing, write=True) as connection:
            writer = LedgerWriter(connection, at=at)
            yield writer
            writer.seal()

    # --- owners and exclusions ------------------------------------------------------------------------
    def add_owner(self, owner_id: str, name: str, *, at: datetime) -> Owner:
        """A new owner account; :class:`RegistryError` when the id is taken."""
        try:
            with self._store.transaction(f"adding owner {owner_id!r}", write=True) as connection:
                connection.execute(
                    "INSERT INTO owners (owner_id, name, created_at) VALUES (?, ?, ?)", (owner_id, name, to_micros(at))
                )
        except ConflictError as err:
            raise RegistryError(f"owner {owner_id!r} exists already") from err
        return Owner(owner_id=owner_id, name=name, created_at=at)

    def owners(self) -> list[Owner]:
        return [convert.owner(row) for row in self._read("listing owners", convert.OWNER_SELECT + " ORDER BY owner_id")]

    def owner(self, owner_id: str) -> Owner | None:
        rows = self._read(f"reading owner {owner_id!r}", convert.OWNER_SELECT + " WHERE owner_id = ?", (owner_id,))
        return convert.owner(rows[0]) if rows else None

    def exclude_charge(self, record_hash: bytes, reason: str, *, at: datetime) -> None:
        """Mark an accepted charge as credited elsewhere; :class:`RegistryError` for anything else. Idempotent."""
        with self._store.transaction("marking a charge as credited elsewhere", write=True) as connection:
            row = connection.fetch_one(
                "SELECT record_type, refused_for FROM records WHERE record_hash = ?", (record_hash,)
            )
            if row is None or row[0] != "charge" or row[1] is not None:
                raise RegistryError(f"{record_hash.hex()} is not an accepted charge record")
            connection.execute(
                "INSERT INTO charge_exclusions (record_hash, reason, marked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (record_hash) DO NOTHING",
                (record_hash, reason, to_micros(at)),
            )

    def excluded_charge(self, record_hash: bytes) -> str | None:
        """Why the charge is marked as credited elsewhere; None when it is not."""
        rows = self._read(
            "reading a charge exclusion", "SELECT reason FROM charge_exclusions WHERE record_hash = ?", (record_hash,)
        )
        return str(rows[0][0]) if rows else None

    def excluded_charges(self) -> dict[bytes, str]:
        rows = self._read("listing excluded charges", "SELECT record_hash, reason FROM charge_exclusions")
        return {bytes(row[0]): str(row[1]) for row in rows}

    # --- credits -----------------------------------------------------------------------------------------
    def credits(self, query: CreditQuery) -> list[Credit]:
        conditions: list[str] = []
        params: list[object] = []
        for condition, value in (
            ("c.device_id = ?", query.device_id),
            ("c.owner_id = ?", query.owner_id),
            ("c.vehicle_key = ?", query.vehicle_key),
            ("c.period = ?", query.period),
            ("c.entry_seq < ?", query.before_seq),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        if query.state is not None:
            conditions.append("c.issue_seq IS NULL" if query.state == "accrued" else "c.issue_seq IS NOT NULL")
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        sql = convert.CREDIT_SELECT + where + " ORDER BY c.entry_seq DESC LIMIT ?"
        return [convert.credit(row) for row in self._read("listing credits", sql, [*params, _clamp(query.limit)])]

    def credit(self, credit_id: str) -> Credit | None:
        rows = self._read("reading a credit", convert.CREDIT_SELECT + " WHERE c.credit_id = ?", (credit_id,))
        return convert.credit(rows[0]) if rows else None

    def receipt(self, seq: int) -> Receipt | None:
        """The entry's receipt: the entry, its batch and the Merkle path from it to the batch's root."""
        with self._store.transaction("building a receipt", write=False) as connection:
            row = connection.fetch_one(convert.ENTRY_SELECT + " WHERE seq = ?", (seq,))
            batch_row = connection.fetch_one(
                convert.BATCH_SELECT + " WHERE batch_no = (SELECT batch_no FROM ledger_entries WHERE seq = ?)",  # noqa: S608 - constants
                (seq,),
            )
            if row is None or batch_row is None:
                return None
            batch = convert.batch(batch_row)
            leaves = [
                bytes(found[0])
                for found in connection.fetch_all(
                    "SELECT entry_hash FROM ledger_entries WHERE seq BETWEEN ? AND ? ORDER BY seq",
                    (batch.first_seq, batch.last_seq),
                )
            ]
        return Receipt.build(convert.entry(row), batch, leaves)

    def totals(self, by: TotalsBy) -> list[CreditTotal]:
        column = _TOTAL_KEYS[by]
        sql = f"""
            SELECT {column}, COUNT(*), COUNT(issue_seq), COALESCE(SUM(reduction_co2e_g), 0),
                   COALESCE(SUM(CASE WHEN issue_seq IS NULL THEN 0 ELSE reduction_co2e_g END), 0)
            FROM credits GROUP BY {column} ORDER BY {column} IS NULL, {column}"""  # noqa: S608 - the column comes from a fixed table
        return [
            CreditTotal(
                key=row[0],
                credits=int(row[1]),
                issued=int(row[2]),
                reduction_co2e_g=float(row[3]),
                issued_co2e_g=float(row[4]),
            )
            for row in self._read(f"summing credits by {by.value}", sql)
        ]

    def decisions(self) -> dict[str, int]:
        """How many records got each crediting outcome."""
        rows = self._read(
            "counting crediting decisions", "SELECT outcome, COUNT(*) FROM crediting_decisions GROUP BY outcome"
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def has_queued(self) -> bool:
        """Whether any accepted record waits for its crediting decision (a read: no write lock)."""
        return bool(self._read("looking at the crediting queue", "SELECT 1 FROM credit_queue LIMIT 1"))

    def queued(self) -> int:
        """Accepted records waiting for their crediting decision."""
        rows = self._read("counting the crediting queue", "SELECT COUNT(*) FROM credit_queue")
        return int(rows[0][0])

    # --- the ledger as it is -----------------------------------------------------------------------------
    def head(self) -> tuple[int, int]:
        """The newest sealed entry's seq and the newest batch's number (0, 0 for an empty ledger)."""
        rows = self._read("reading the ledger head", "SELECT last_seq, last_batch_no FROM ledger_head WHERE id = 1")
        return int(rows[0][0]), int(rows[0][1])

    def entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[LedgerEntry]:
        sql = convert.ENTRY_SELECT + " WHERE seq > ? AND batch_no IS NOT NULL ORDER BY seq LIMIT ?"
        return [convert.entry(row) for row in self._read("reading ledger entries", sql, (after_seq, _clamp(limit)))]

    def batches(self, *, after_no: int = 0, limit: int = 1000) -> list[LedgerBatch]:
        sql = convert.BATCH_SELECT + " WHERE batch_no > ? ORDER BY batch_no LIMIT ?"
        return [convert.batch(row) for row in self._read("reading ledger batches", sql, (after_no, _clamp(limit)))]

    def records_for_export(self, *, after: tuple[str, int] | None, limit: int) -> list[Row]:
        """Stored records (accepted and refused links) by device and sequence, after ``(device, sequence)``.

        Rows of (record_hash, device_id, sequence, refused_for, signed, kid).
        """
        sql = "SELECT record_hash, device_id, sequence, refused_for, signed, kid FROM records"
        params: list[object] = []
        if after is not None:
            sql += " WHERE device_id > ? OR (device_id = ? AND sequence > ?)"
            params = [after[0], after[0], after[1]]
        sql += " ORDER BY device_id, sequence LIMIT ?"
        return self._read("reading records for export", sql, [*params, _clamp(limit)])

    # --- the forwarding outbox ---------------------------------------------------------------------------
    def add_missing_deliveries(self, sinks: Collection[str], *, at: datetime, limit: int = 1000) -> int:
        """Queue issued credits that have no delivery to one of ``sinks`` yet; how many were added.

        A credit issued by a process without that sink (``carbonlink gateway bind --store``, a gateway
        configured differently) or before the sink was configured gets its delivery here.
        """
        added = 0
        with self._store.transaction("adding missing deliveries", write=True) as connection:
            for sink in sorted(sinks):
                for row in connection.fetch_all(_UNDELIVERED, (sink, limit)):
                    credit = CreditToIssue(
                        credit_id=row[0],
                        record_hash=bytes(row[1]),
                        device_id=row[2],
                        vehicle_key=row[3],
                        period=row[4],
                        reduction_co2e_g=float(row[5]),
                        entry_seq=int(row[6]),
                    )
                    payload = issued_payload(
                        credit, owner_id=row[7], issue_seq=int(row[8]), issued_at=from_micros(row[9])
                    )
                    added += connection.execute(
                        _ADD_DELIVERY, (sink, credit.credit_id, credit.credit_id, payload, to_micros(at), to_micros(at))
                    )
        return added

    def forwarding_queue(self, sinks: Collection[str]) -> "SqlForwardingQueue":
        """The outbox as the forwarder of a gateway with these sinks sees it (its ``ForwardingQueue``)."""
        return SqlForwardingQueue(self, sinks)

    def due(self, now: datetime, limit: int, sinks: Collection[str]) -> list[Delivery]:
        """Deliveries to these sinks whose next attempt is due, leased for :data:`DELIVERY_LEASE_S`.

        Only the caller's sinks: a gateway process configured without a sink leaves its deliveries
        to the processes that have it, instead of failing them.
        """
        if not sinks:
            return []
        lease_until = to_micros(now + timedelta(seconds=DELIVERY_LEASE_S))
        names = sorted(sinks)
        with self._store.transaction("taking due deliveries", write=True) as connection:
            sql = _DUE.format(sinks=", ".join("?" * len(names))) + self._store.for_update
            rows = connection.fetch_all(sql, (*names, to_micros(now), limit))
            for row in rows:
                connection.execute("UPDATE forwarding SET next_attempt_at = ? WHERE id = ?", (lease_until, row[0]))
        return [
            Delivery(
                delivery_id=int(r[0]),
                sink=r[1],
                idempotency_key=r[2],
                payload=bytes(r[3]),
                attempts=int(r[4]),
                created_at=from_micros(r[5]),
            )
            for r in rows
        ]

    def mark_delivered(self, delivery_id: int, *, at: datetime) -> None:
        with self._store.transaction("marking a delivery done", write=True) as connection:
            connection.execute(
                "UPDATE forwarding SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, "
                "last_attempt_at = ?, next_attempt_at = NULL, last_error = '' WHERE id = ? AND state = 'pending'",
                (to_micros(at), to_micros(at), delivery_id),
            )

    def mark_failed(self, delivery_id: int, *, error: str, at: datetime, retry_at: datetime | None) -> None:
        state = DeliveryState.PENDING if retry_at is not None else DeliveryState.DEAD
        with self._store.transaction("marking a delivery failed", write=True) as connection:
            connection.execute(
                "UPDATE forwarding SET state = ?, attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, "
                "last_error = ? WHERE id = ? AND state = 'pending'",
                (
                    state.value,
                    to_micros(at),
                    None if retry_at is None else to_micros(retry_at),
                    error[:2000],
                    delivery_id,
                ),
            )

    def deliveries(
        self, *, state: DeliveryState | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[StoredDelivery]:
        conditions: list[str] = []
        params: list[object] = []
        if state is not None:
            conditions.append("state = ?")
            params.append(state.value)
        if before_id is not None:
            conditions.append("id < ?")
            params.append(before_id)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        sql = convert.DELIVERY_SELECT + where + " ORDER BY id DESC LIMIT ?"
        return [convert.delivery(row) for row in self._read("listing deliveries", sql, [*params, _clamp(limit)])]

    def delivery(self, delivery_id: int) -> StoredDelivery | None:
        rows = self._read("reading a delivery", convert.DELIVERY_SELECT + " WHERE id = ?", (delivery_id,))
        return convert.delivery(rows[0]) if rows else None

    def delivery_counts(self) -> dict[DeliveryState, int]:
        rows = self._read("counting deliveries", "SELECT state, COUNT(*) FROM forwarding GROUP BY state")
        counts = dict.fromkeys(DeliveryState, 0)
        counts.update({DeliveryState(row[0]): int(row[1]) for row in rows})
        return counts

    def retry_delivery(self, delivery_id: int, *, at: datetime) -> StoredDelivery:
        """Put a dead letter back in line, due now; :class:`RegistryError` when it is not dead."""
        with self._store.transaction("retrying a delivery", write=True) as connection:
            changed = connection.execute(
                "UPDATE forwarding SET state = 'pending', next_attempt_at = ?, attempts = 0 "
                "WHERE id = ? AND state = 'dead'",
                (to_micros(at), delivery_id),
            )
            row = connection.fetch_one(convert.DELIVERY_SELECT + " WHERE id = ?", (delivery_id,))
        if row is None:
            raise RegistryError(f"there is no delivery {delivery_id}")
        if not changed:
            raise RegistryError(f"delivery {delivery_id} is {row[4]}, not dead: nothing to retry")
        return convert.delivery(row)


def _clamp(limit: int) -> int:
    if limit < 1:
        raise StoreError(f"a listing limit must be 1 or more, got {limit}")
    return min(limit, 10_000)


class SqlForwardingQueue:
    """The ``ForwardingQueue`` of ``gateway.forwarding`` for one gateway process's sinks.

    It also adds the deliveries issued credits lack for these sinks: at its first look and then
    every :data:`MISSING_DELIVERIES_EVERY_S`.
    """

    def __init__(self, ledger: SqlLedger, sinks: Collection[str]) -> None:
        self._ledger = ledger
        self._sinks = frozenset(sinks)
        self._next_check_at: datetime | None = None

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        if self._next_check_at is None or now >= self._next_check_at:
            added = self._ledger.add_missing_deliveries(self._sinks, at=now)
            if added:
                log.info("forwarding.deliveries_added count=%d", added)
            self._next_check_at = now + timedelta(seconds=MISSING_DELIVERIES_EVERY_S)
        return self._ledger.due(now, limit, self._sinks)

    def mark_delivered(self, delivery_id: int, *, at: datetime) -> None:
        self._ledger.mark_delivered(delivery_id, at=at)

    def mark_failed(self, delivery_id: int, *, error: str, at: datetime, retry_at: datetime | None) -> None:
        self._ledger.mark_failed(delivery_id, error=error, at=at, retry_at=retry_at)
