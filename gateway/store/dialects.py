"""What differs between SQLite and PostgreSQL, and nothing else: URLs, connecting, SQL spelling, errors.

The store writes its SQL once, with ``?`` placeholders and two type names in its DDL (``{bytes}``
and ``{id_pk}``); a :class:`Dialect` adapts them and opens :class:`Connection` objects that all
speak the same five verbs (begin, fetch, execute, commit, rollback). Driver exceptions are turned
into :class:`~gateway.errors.StoreError` or :class:`~gateway.errors.ConflictError` here, so no
other module imports ``sqlite3`` or ``psycopg``.

Times are stored as integer microseconds since the Unix epoch (UTC) on both databases: ordering,
range filters and equality then behave identically, round trips are exact to the microsecond
(what the wire format carries), and no timezone setting of a server or driver can shift them.
"""

import contextlib
import functools
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from gateway.errors import ConfigError, ConflictError, StoreError

Row = tuple[Any, ...]
Params = Sequence[object]

SQLITE_BUSY_TIMEOUT_S = 10.0
"""How long a SQLite writer waits for another connection's write lock before failing."""
POSTGRES_CONNECT_TIMEOUT_S = 10
"""How long connecting to PostgreSQL may take (libpq's ``connect_timeout``, whole seconds)."""
_WAL_RETRY_S = 0.01
SCHEMA_LOCK_KEY = 0x636C_6B73_746F_7265
"""PostgreSQL advisory lock held while migrating ("clkstore"): one migrating process at a time."""

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """How a time is stored: microseconds since the epoch (see the module docstring)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """A stored time as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@{host}"))


class Connection(ABC):
    """One database connection, used by one thread at a time, in explicit transactions."""

    @abstractmethod
    def begin(self, *, write: bool) -> None:
        """Start a transaction; a writing one takes the database's write lock where that is how it works."""

    @abstractmethod
    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.fetch_all(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    def execute_many(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None:
        """Undo the open transaction, if any; never raises (the connection may be broken already)."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def broken(self) -> bool:
        """Whether the connection is lost and must be replaced (a server restart, a network cut)."""


class Dialect(ABC):
    """One database kind: how to connect to it and how it spells what differs."""

    name: str
    driver_errors: tuple[type[Exception], ...]
    """The exceptions of the driver: the store turns them into :class:`StoreError` at its boundary."""
    _types: dict[str, str]

    def __init__(self, url: str) -> None:
        self.url = redacted(url)
        """The URL without password: how every message names the database."""

    @abstractmethod
    def connect(self) -> Connection:
        """A new connection, or :class:`StoreError` naming the database and the cause."""

    def ddl(self, statement: str) -> str:
        """A schema statement with this database's type names."""
        return statement.format_map(self._types)

    @abstractmethod
    def lock_schema(self, connection: Connection) -> None:
        """Inside a writing transaction: make concurrent migrations of the same database wait for it."""

    @property
    @abstractmethod
    def for_update(self) -> str:
        """The suffix that locks the rows a SELECT reads until the transaction ends.

        Empty where a writing transaction holds the whole database already.
        """

    def translate(self, err: Exception, doing: str) -> StoreError:
        """The gateway's error for a driver's exception raised while ``doing`` something."""
        if self._is_conflict(err):
            return ConflictError(f"{self.url}: {doing}: {err}")
        return StoreError(f"{self.url}: {doing} failed: {err}")

    @abstractmethod
    def _is_conflict(self, err: Exception) -> bool: ...


# --- SQLite ----------------------------------------------------------------------------------------


class SqliteConnection(Connection):
    """A ``sqlite3`` connection in autocommit mode: transactions are the explicit BEGIN ... COMMIT here."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def begin(self, *, write: bool) -> None:
        # IMMEDIATE takes the write lock at once, so a writer never fails half-way on a lock upgrade;
        # a plain BEGIN gives a reader one consistent snapshot of the WAL.
        self._raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return self._raw.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._raw.execute(sql, params).rowcount

    def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        self._raw.executemany(sql, rows)

    def commit(self) -> None:
        self._raw.execute("COMMIT")

    def rollback(self) -> None:
        if self._raw.in_transaction:
            # SQLite has rolled back by itself after some errors: then nothing is left to undo.
            with contextlib.suppress(sqlite3.Error):
                self._raw.execute("ROLLBACK")

    def close(self) -> None:
        self._raw.close()

    @property
    def broken(self) -> bool:
        return False  # a file does not go away between calls; an error says so on its own


def _enable_wal(raw: sqlite3.Connection) -> str:
    """Switch the database to WAL (it stays so); the journal mode it is in then.

    The switch needs the database to itself and SQLite answers "locked" at once, without its busy
    handler, while another connection is doing the same: two gateways opening a new file together.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            (mode,) = raw.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY_S)
        else:
            return str(mode)


class SqliteDialect(Dialect):
    """SQLite through the standard library: one file, WAL, one writer at a time."""

    name = "sqlite"
    driver_errors = (sqlite3.Error,)
    _types = {"bytes": "BLOB", "id_pk": "INTEGER PRIMARY KEY AUTOINCREMENT"}  # noqa: RUF012 - read only
    # AUTOINCREMENT: an id is never reused, even after the newest rows were pruned; ids rise with time.

    def __init__(self, url: str, path: Path) -> None:
        super().__init__(url)
        self.path = path

    def connect(self) -> Connection:
        try:
            # check_same_thread=False only so that close() may close every thread's connection;
            # the store itself never shares a connection between threads.
            raw = sqlite3.connect(
                self.path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {self.url}: {err}; {self._directory_hint()}") from err
        try:
            mode = _enable_wal(raw)
            # FULL, not NORMAL: in WAL mode NORMAL survives a crash of the process but may lose the
            # last commits on a power cut or kernel crash. The gateway acknowledges a record only after
            # its commit and the vehicle then deletes it, so a commit we acknowledged must be on disk.
            raw.execute("PRAGMA synchronous = FULL")
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        except sqlite3.Error as err:
            raw.close()
            raise StoreError(f"cannot open {self.url}: {err}; {self._directory_hint()}") from err
        if mode != "wal":
            raw.close()
            raise StoreError(f"cannot open {self.url}: SQLite refused WAL mode (journal mode is {mode})")
        return SqliteConnection(raw)

    def _directory_hint(self) -> str:
        directory = self.path.absolute().parent
        if not directory.is_dir():
            return f"the directory {directory} does not exist"
        return (
            f"the database file and its directory {directory} must be writable "
            "(SQLite keeps its -wal and -shm files beside the database)"
        )

    def lock_schema(self, connection: Connection) -> None:
        pass  # BEGIN IMMEDIATE holds the database's one write lock already

    @property
    def for_update(self) -> str:
        return ""  # BEGIN IMMEDIATE locks the whole database for the writer

    def _is_conflict(self, err: Exception) -> bool:
        # Uniqueness and foreign-key violations: another process committed first, or the device is gone.
        return isinstance(err, sqlite3.IntegrityError)


# --- PostgreSQL ------------------------------------------------------------------------------------


@functools.cache
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled); a pure memo of constant SQL."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresConnection(Connection):
    """A psycopg 3 connection with autocommit off: psycopg opens a transaction at the first statement."""

    def __init__(self, raw: psycopg.Connection[Row]) -> None:
        self._raw = raw

    def begin(self, *, write: bool) -> None:
        pass  # implicit; row locks (FOR UPDATE) and unique indexes order concurrent writers

    def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return self._raw.execute(_pyformat(sql), params).fetchall()

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._raw.execute(_pyformat(sql), params).rowcount

    def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        with self._raw.cursor() as cursor:
            cursor.executemany(_pyformat(sql), rows)

    def commit(self) -> None:
        self._raw.commit()

    def rollback(self) -> None:
        with contextlib.suppress(psycopg.Error):  # a broken connection has no transaction left
            self._raw.rollback()

    def close(self) -> None:
        self._raw.close()

    @property
    def broken(self) -> bool:
        return self._raw.broken or self._raw.closed


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3: for several gateway processes on one database."""

    name = "postgresql"
    driver_errors = (psycopg.Error,)
    _types = {"bytes": "BYTEA", "id_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}  # noqa: RUF012 - read only

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._conninfo = url

    def connect(self) -> Connection:
        try:
            raw = psycopg.connect(self._conninfo, autocommit=False, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
        except psycopg.Error as err:
            raise StoreError(f"cannot open {self.url}: {str(err).strip()}") from err
        return PostgresConnection(raw)

    def lock_schema(self, connection: Connection) -> None:
        # Released by the transaction's end: a second gateway starting at the same moment waits, then
        # finds the schema migrated and does nothing.
        connection.fetch_all("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))

    @property
    def for_update(self) -> str:
        return " FOR UPDATE"

    def _is_conflict(self, err: Exception) -> bool:
        # A deadlock or serialization failure between two gateways' batches is a lost race as well:
        # judging the batch again against what the winner committed is the right answer to all three.
        return isinstance(
            err, psycopg.IntegrityError | psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure
        )


def dialect_for(url: str) -> Dialect:
    """The dialect for a store URL, or :class:`ConfigError` saying what is wrong with the URL."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _sqlite_dialect(url)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_dialect(url)
    shown = redacted(url) if scheme else url
    raise ConfigError(
        f"store url {shown!r}: unknown kind of database {scheme or '(no scheme)'!r}; "
        "use sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host:port/dbname"
    )


def _sqlite_dialect(url: str) -> Dialect:
    if url[: len(_SQLITE_PREFIX)].lower() != _SQLITE_PREFIX:
        raise ConfigError(
            f"store url {url!r}: a SQLite URL has three slashes before the path "
            "(sqlite:///relative/path.db or sqlite:////absolute/path.db)"
        )
    path = url[len(_SQLITE_PREFIX) :]
    if not path or path.endswith("/"):
        raise ConfigError(f"store url {url!r}: no database file named after sqlite:///")
    if path == ":memory:" or path.startswith("file:") or "?" in path:
        # Each thread has its own connection, and an in-memory database is private to its connection.
        raise ConfigError(f"store url {url!r}: only a database file path is supported (no :memory:, no options)")
    return SqliteDialect(url, Path(path))


def _postgres_dialect(url: str) -> Dialect:
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as err:
        raise ConfigError(f"store url {shown!r}: {err}") from err
    if not parts.path.strip("/"):
        raise ConfigError(f"store url {shown!r}: no database name (postgresql://user@host:port/dbname)")
    try:
        conninfo_to_dict(url)
    except psycopg.Error as err:
        raise ConfigError(f"store url {shown!r}: {err}") from err
    return PostgresDialect(url)
