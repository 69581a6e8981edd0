"""The gateway's store on SQLite or PostgreSQL: one implementation, the same SQL for both.

:class:`SqlRecordStore` implements :class:`~gateway.store.record_store.RecordStore`. Each thread
gets its own connection (intake's worker writes while the API's threadpool reads); the
connection of a thread that has ended is closed when the next new thread connects, and
:meth:`SqlRecordStore.close` closes them all. Every method is one transaction; driver errors
become :class:`StoreError` (or :class:`ConflictError` for a broken uniqueness or foreign-key rule)
naming the database without its password.

A commit of a record whose device is not registered breaks the records' foreign key and raises
:class:`ConflictError` like any other constraint: the registry changed under the batch, and judging
it again (what intake does on a conflict) refuses the record as ``unknown_device``.

Listing limits are clamped to :data:`MAX_LIST_LIMIT`; the API validates its own, smaller, limits.
"""

import contextlib
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from carbonlink.keys import PublicKey
from carbonlink.reasons import RejectionReason
from carbonlink.vehicles import VehicleClass
from gateway.errors import ConflictError, DeviceExistsError, RegistryError, StoreError, UnknownDeviceError
from gateway.model import (
    AcceptedRecord,
    ChainHead,
    Device,
    DeviceStatus,
    Enrolment,
    RecordQuery,
    RejectedMessage,
    RejectionQuery,
    StoredRecord,
    StoredRejection,
)
from gateway.store import rows as convert
from gateway.store.dialects import Connection, Dialect, Params, Row, to_micros
from gateway.store.migrations import migrate
from gateway.store.sql_ledger import SqlLedger

MAX_LIST_LIMIT = 10_000
"""Most rows one listing returns. Well above the API's page (it asks for one more than a page,
to learn whether another page follows), low enough that no request can read the whole table."""
_IN_CHUNK = 500
"""Device ids per ``IN (...)`` list: far below either database's limit on parameters."""

_DEVICE_SELECT = """
    SELECT d.device_id, d.vehicle_class, d.vin_hash, d.status, d.registered_at, d.enrolment, d.last_seen_at,
           h.sequence
    FROM devices d LEFT JOIN chain_heads h ON h.device_id = d.device_id"""
_KEY_SELECT = "SELECT device_id, kid, public_key, added_at, retired_at, revoked_at FROM device_keys"
_RECORD_SELECT = """
    SELECT record_hash, device_id, record_type, sequence, record_id, start_at, end_at, received_at, kid, signed,
           fields, refused_for
    FROM records"""
_REJECTION_SELECT = """
    SELECT id, received_at, topic, device_id, record_hash, record_id, sequence, reason, detail, payload,
           payload_size
    FROM rejections"""
_HEAD_SELECT = "SELECT device_id, sequence, record_hash, record_id, end_at, odometer_end_m FROM chain_heads"

_INSERT_KEY = """
    INSERT INTO device_keys (kid, device_id, ordinal, public_key, added_at)
    SELECT ?, ?, COALESCE(MAX(ordinal), 0) + 1, ?, ? FROM device_keys WHERE device_id = ?"""
_INSERT_RECORD = """
    INSERT INTO records (record_hash, device_id, record_type, sequence, record_id, kid, vin_hash, start_at, end_at,
                         received_at, odometer_start_m, odometer_end_m, signed, fields, refused_for)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# Only forward: a batch never moves a head back, whatever order two gateways commit in.
_UPSERT_HEAD = """
    INSERT INTO chain_heads (device_id, sequence, record_hash, record_id, end_at, odometer_end_m)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (device_id) DO UPDATE SET
        sequence = excluded.sequence, record_hash = excluded.record_hash, record_id = excluded.record_id,
        end_at = excluded.end_at, odometer_end_m = excluded.odometer_end_m
    WHERE excluded.sequence > chain_heads.sequence"""
# Device then sequence within a batch; crediting takes them by id (see migrations).
_QUEUE_FOR_CREDITING = "INSERT INTO credit_queue (record_hash) VALUES (?)"
_INSERT_REJECTION = """
    INSERT INTO rejections (received_at, topic, device_id, record_hash, record_id, sequence, reason, detail,
                            payload, payload_size)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# Ids rise by one per stored rejection (SQLite's AUTOINCREMENT, a PostgreSQL identity), so keeping the
# newest N is "id > max - N": an index lookup instead of counting the table at every commit. Where a
# PostgreSQL transaction that took ids rolled back, the gap makes this keep a few fewer than N.
_PRUNE_REJECTIONS = "DELETE FROM rejections WHERE id <= (SELECT MAX(id) FROM rejections) - ?"
_UPDATE_SEEN = """
    UPDATE devices SET last_seen_at = ? WHERE device_id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)"""
# Accepted trips only: a refused one credited nothing. With the (partial) index on the end reading,
# the usual case, a trip after every earlier one, reads no row at all.
_OVERLAPPING_TRIP = """
    SELECT record_hash FROM records
    WHERE record_type = 'trip' AND vin_hash = ? AND refused_for IS NULL AND odometer_end_m > ? AND odometer_start_m < ?
    ORDER BY odometer_end_m LIMIT 1"""

# The same partial index answers this from its last entry.
_ODOMETER_FRONTIER = """
    SELECT MAX(odometer_end_m) FROM records
    WHERE record_type = 'trip' AND vin_hash = ? AND refused_for IS NULL"""


class SqlRecordStore:
    """The :class:`~gateway.store.record_store.RecordStore` on a SQL database (see the module docstring).

    Build it with :func:`gateway.store.open_store`, which also migrates the schema.
    """

    def __init__(self, dialect: Dialect, *, max_rejections: int) -> None:
        self._dialect = dialect
        self._max_rejections = max_rejections
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, Connection] = {}
        self._closed = threading.Event()
        self._ledger = SqlLedger(self)

    @property
    def url(self) -> str:
        """The database's URL without password."""
        return self._dialect.url

    def migrate(self, *, at: datetime) -> int:
        """Bring the schema up to date (see ``migrations``); the version reached."""
        return migrate(self.connection(), self._dialect, at=at)

    # --- connections and transactions ------------------------------------------------------------
    def connection(self) -> Connection:
        """This thread's connection, opened on first use (or again after it broke)."""
        if self._closed.is_set():
            raise StoreError(f"{self.url}: the store is closed")
        thread = threading.current_thread()
        with self._lock:
            existing = self._connections.get(thread)
        if existing is not None and not existing.broken:
            return existing
        fresh = self._dialect.connect()
        with self._lock:
            # Connections of threads that have ended (the API's idle workers do) go with this one's old one.
            gone = [self._connections.pop(t) for t in list(self._connections) if t is thread or not t.is_alive()]
            closed = self._closed.is_set()
            if closed:
                gone.append(fresh)
            else:
                self._connections[thread] = fresh
        for old in gone:
            _close_quietly(old)
        if closed:
            raise StoreError(f"{self.url}: the store is closed")
        return fresh

    @property
    def ledger(self) -> SqlLedger:
        """The crediting tables: ledger, credits, owners, exclusions, forwarding outbox."""
        return self._ledger

    @property
    def for_update(self) -> str:
        """This database's suffix that locks the rows a SELECT reads (see ``Dialect.for_update``)."""
        return self._dialect.for_update

    def transaction(self, doing: str, *, write: bool) -> AbstractContextManager[Connection]:
        """One transaction on this thread's connection; driver errors become :class:`StoreError`."""
        return self._transaction(doing, write=write)

    @contextmanager
    def _transaction(self, doing: str, *, write: bool) -> Iterator[Connection]:
        connection = self.connection()
        try:
            connection.begin(write=write)
            yield connection
            connection.commit()
        except self._dialect.driver_errors as err:
            connection.rollback()
            raise self._dialect.translate(err, doing) from err
        except BaseException:
            connection.rollback()
            raise

    def _read(self, doing: str, sql: str, params: Params = ()) -> list[Row]:
        with self._transaction(doing, write=False) as connection:
            return connection.fetch_all(sql, params)

    # --- device registry -----------------------------------------------------------------------------
    def add_device(  # noqa: PLR0913 - keyword-only: every part of a registration
        self,
        device_id: str,
        public_key: PublicKey,
        *,
        vehicle_class: VehicleClass,
        vin_hash: bytes | None,
        enrolment: Enrolment,
        at: datetime,
    ) -> Device:
        try:
            with self._transaction(f"registering device {device_id!r}", write=True) as connection:
                if connection.fetch_one("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)) is not None:
                    raise DeviceExistsError(f"device {device_id!r} is registered already")
                _check_key_is_new(connection, public_key)
                connection.execute(
                    "INSERT INTO devices (device_id, vehicle_class, vin_hash, status, registered_at, enrolment)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        device_id,
                        vehicle_class.value,
                        vin_hash,
                        DeviceStatus.ACTIVE.value,
                        to_micros(at),
                        enrolment.value,
                    ),
                )
                _insert_key(connection, device_id, public_key, at)
                return _load_device(connection, device_id)
        except ConflictError as err:  # another process registered the same id or key in the meantime
            raise DeviceExistsError(f"device {device_id!r} or its public key was registered at the same time") from err

    def device(self, device_id: str) -> Device | None:
        with self._transaction(f"reading device {device_id!r}", write=False) as connection:
            return _load_device_or_none(connection, device_id)

    def devices(self) -> list[Device]:
        with self._transaction("listing devices", write=False) as connection:
            found = connection.fetch_all(_DEVICE_SELECT + " ORDER BY d.device_id")
            keys = convert.keys_by_device(connection.fetch_all(_KEY_SELECT + " ORDER BY device_id, ordinal"))
        return [convert.device(row, keys.get(row[0], ())) for row in found]

    def revoke_device(self, device_id: str, *, at: datetime) -> Device:
        with self._transaction(f"revoking device {device_id!r}", write=True) as connection:
            self._lock_device(connection, device_id)
            connection.execute(
                "UPDATE devices SET status = ? WHERE device_id = ?", (DeviceStatus.REVOKED.value, device_id)
            )
            connection.execute(
                "UPDATE device_keys SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
                (to_micros(at), device_id),
            )
            return _load_device(connection, device_id)

    def revoke_key(self, device_id: str, kid: bytes, *, at: datetime) -> Device:
        with self._transaction(f"revoking a key of device {device_id!r}", write=True) as connection:
            self._lock_device(connection, device_id)
            known = connection.fetch_one("SELECT 1 FROM device_keys WHERE device_id = ? AND kid = ?", (device_id, kid))
            if known is None:
                raise UnknownDeviceError(f"device {device_id!r} has no key {kid.hex()}")
            connection.execute(
                "UPDATE device_keys SET revoked_at = ? WHERE device_id = ? AND kid = ? AND revoked_at IS NULL",
                (to_micros(at), device_id, kid),
            )
            return _load_device(connection, device_id)

    def rotate_key(self, device_id: str, public_key: PublicKey, *, at: datetime) -> Device:
        try:
            with self._transaction(f"rotating the key of device {device_id!r}", write=True) as connection:
                if self._lock_device(connection, device_id) == DeviceStatus.REVOKED:
                    raise RegistryError(f"device {device_id!r} is revoked: its keys cannot be rotated")
                _check_key_is_new(connection, public_key)
                connection.execute(
                    "UPDATE device_keys SET retired_at = ?"
                    " WHERE device_id = ? AND retired_at IS NULL AND revoked_at IS NULL",
                    (to_micros(at), device_id),
                )
                _insert_key(connection, device_id, public_key, at)
                return _load_device(connection, device_id)
        except ConflictError as err:
            raise DeviceExistsError(
                f"public key {public_key.raw.hex()} was registered, or device {device_id!r} re-keyed, at the same time"
            ) from err

    def _lock_device(self, connection: Connection, device_id: str) -> str:
        """The device's status, its row locked until the transaction ends; :class:`UnknownDeviceError` if none."""
        row = connection.fetch_one(
            "SELECT status FROM devices WHERE device_id = ?" + self._dialect.for_update,  # noqa: S608 - a constant
            (device_id,),
        )
        if row is None:
            raise UnknownDeviceError(f"device {device_id!r} is not registered")
        return str(row[0])

    # --- intake --------------------------------------------------------------------------------------
    def chain_heads(self, device_ids: Collection[str]) -> dict[str, ChainHead]:
        wanted = sorted(set(device_ids))
        heads: dict[str, ChainHead] = {}
        with self._transaction("reading chain heads", write=False) as connection:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                where = " WHERE device_id IN (" + ", ".join("?" * len(chunk)) + ")"
                for row in connection.fetch_all(_HEAD_SELECT + where, chunk):
                    heads[row[0]] = convert.chain_head(row)
        return heads

    def record_hash_at(self, device_id: str, sequence: int) -> bytes | None:
        sql = "SELECT record_hash FROM records WHERE device_id = ? AND sequence = ?"
        found = self._read(f"reading record {sequence} of {device_id!r}", sql, (device_id, sequence))
        return bytes(found[0][0]) if found else None

    def record_hash_of_id(self, device_id: str, record_id: str) -> bytes | None:
        sql = "SELECT record_hash FROM records WHERE device_id = ? AND record_id = ?"
        found = self._read(f"reading record {record_id!r} of {device_id!r}", sql, (device_id, record_id))
        return bytes(found[0][0]) if found else None

    def record_refusal(self, device_id: str, record_hash: bytes) -> RejectionReason | None:
        sql = "SELECT refused_for FROM records WHERE device_id = ? AND record_hash = ?"
        found = self._read(f"reading a record of {device_id!r}", sql, (device_id, record_hash))
        return RejectionReason(found[0][0]) if found and found[0][0] is not None else None

    def overlapping_trip(self, vin_hash: bytes, odometer_start_m: float, odometer_end_m: float) -> bytes | None:
        params = (vin_hash, odometer_start_m, odometer_end_m)
        found = self._read("looking for an overlapping trip", _OVERLAPPING_TRIP, params)
        return bytes(found[0][0]) if found else None

    def odometer_frontier(self, vin_hash: bytes) -> float | None:
        rows = self._read("reading a vehicle's odometer frontier", _ODOMETER_FRONTIER, (vin_hash,))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def commit(
        self,
        accepted: Sequence[AcceptedRecord],
        rejected: Sequence[RejectedMessage],
        seen: Mapping[str, datetime],
    ) -> None:
        # Rows in one fixed order (device, then sequence) in every gateway, so two PostgreSQL
        # transactions wait for each other rather than deadlock.
        records = sorted(accepted, key=lambda a: (a.record.device_id, a.record.sequence))
        heads = {a.record.device_id: a for a in records}  # the last one of each device: its highest sequence
        doing = f"committing {len(accepted)} record(s) and {len(rejected)} rejection(s)"
        with self._transaction(doing, write=True) as connection:
            if records:
                connection.execute_many(_INSERT_RECORD, [convert.record_row(a) for a in records])
                connection.execute_many(_UPSERT_HEAD, [convert.head_row(heads[d]) for d in sorted(heads)])
                creditable = [(a.record_hash,) for a in records if a.refused_for is None]
                if creditable:
                    connection.execute_many(_QUEUE_FOR_CREDITING, creditable)
            if rejected:
                connection.execute_many(_INSERT_REJECTION, [convert.rejection_row(r) for r in rejected])
                connection.execute(_PRUNE_REJECTIONS, (self._max_rejections,))
            if seen:
                seen_rows = [(to_micros(at), device_id, to_micros(at)) for device_id, at in sorted(seen.items())]
                connection.execute_many(_UPDATE_SEEN, seen_rows)

    # --- operators -----------------------------------------------------------------------------------
    def records(self, query: RecordQuery) -> list[StoredRecord]:
        conditions: list[str] = [] if query.include_refused else ["refused_for IS NULL"]
        params: list[object] = []
        for condition, value in (
            ("device_id = ?", query.device_id),
            ("record_type = ?", query.record_type),
            ("end_at >= ?", None if query.start_from is None else to_micros(query.start_from)),
            ("start_at < ?", None if query.until is None else to_micros(query.until)),
            ("received_at < ?", None if query.before_received_at is None else to_micros(query.before_received_at)),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        sql = _RECORD_SELECT + where + " ORDER BY received_at DESC, record_hash DESC LIMIT ?"
        return [
            convert.stored_record(row) for row in self._read("listing records", sql, [*params, _clamp(query.limit)])
        ]

    def record(self, record_hash: bytes) -> StoredRecord | None:
        found = self._read("reading a record", _RECORD_SELECT + " WHERE record_hash = ?", (record_hash,))
        return convert.stored_record(found[0]) if found else None

    def rejections(self, query: RejectionQuery) -> list[StoredRejection]:
        conditions: list[str] = []
        params: list[object] = []
        for condition, value in (
            ("device_id = ?", query.device_id),
            ("reason = ?", None if query.reason is None else query.reason.value),
            ("received_at >= ?", None if query.since is None else to_micros(query.since)),
            ("id < ?", query.before_id),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        sql = _REJECTION_SELECT + where + " ORDER BY id DESC LIMIT ?"
        found = self._read("listing rejections", sql, [*params, _clamp(query.limit)])
        return [convert.stored_rejection(row) for row in found]

    def rejection(self, rejection_id: int) -> StoredRejection | None:
        found = self._read("reading a rejection", _REJECTION_SELECT + " WHERE id = ?", (rejection_id,))
        return convert.stored_rejection(found[0]) if found else None

    def check(self) -> None:
        self._read("checking the database", "SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            _close_quietly(connection)


def _close_quietly(connection: Connection) -> None:
    with contextlib.suppress(Exception):  # a connection of either driver, possibly broken already
        connection.close()


def _clamp(limit: int) -> int:
    return max(0, min(limit, MAX_LIST_LIMIT))


# --- registry statements-----------------------------------------------------------------------------


def _check_key_is_new(connection: Connection, public_key: PublicKey) -> None:
    owner = connection.fetch_one(
        "SELECT device_id FROM device_keys WHERE public_key = ? OR kid = ?", (public_key.raw, public_key.kid)
    )
    if owner is not None:
        raise DeviceExistsError(f"public key {public_key.raw.hex()} is registered already (device {owner[0]!r})")


def _insert_key(connection: Connection, device_id: str, public_key: PublicKey, at: datetime) -> None:
    params = (public_key.kid, device_id, public_key.raw, to_micros(at), device_id)
    connection.execute(_INSERT_KEY, params)


def _load_device(connection: Connection, device_id: str) -> Device:
    device = _load_device_or_none(connection, device_id)
    if device is None:  # only after a row lock or insert in the same transaction: cannot happen
        raise StoreError(f"device {device_id!r} vanished inside a transaction")
    return device


def _load_device_or_none(connection: Connection, device_id: str) -> Device | None:
    row = connection.fetch_one(_DEVICE_SELECT + " WHERE d.device_id = ?", (device_id,))
    if row is None:
        return None
    keys = connection.fetch_all(_KEY_SELECT + " WHERE device_id = ? ORDER BY ordinal", (device_id,))
    return convert.device(row, tuple(convert.key(key) for key in keys))
