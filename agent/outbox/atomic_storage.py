"""A tinydb storage that replaces its JSON file atomically, so a crash never leaves a torn file.

tinydb hands its storage the whole database on every write. ``AtomicJsonStorage`` writes it to a
temporary file in the same directory, flushes and fsyncs it, ``os.replace``-s it over the target
and fsyncs the directory. Whatever instant the process dies (or the power fails, given a
filesystem that honours fsync), the target holds either the previous or the new document.

- **One writer.** The storage takes an exclusive ``flock`` on ``<file>.lock`` while open and keeps
  the document in memory, so reads never touch the disk after the first; a second process
  opening the same file gets :class:`~agent.errors.OutboxError`. The lock dies with its process,
  so a crashed writer never blocks its successor.
- **Transactions.** Inside ``with storage.transaction():`` tinydb's writes update the in-memory
  document only; leaving the block writes the file once. Changes to several tables (a record and
  the chain head) therefore reach the disk together or not at all; an exception inside the block
  discards them.
- **Reading.** A missing file is an empty database. A file that cannot be read or is not a JSON
  object of tables raises :class:`~agent.errors.OutboxError` naming the path: the storage never
  starts empty over data it does not understand, because that would silently lose records.
- **Failing writes** (disk full, permissions) raise :class:`~agent.errors.OutboxError`, remove the
  temporary file and leave both the file and the in-memory document as they were.
- **Leftovers.** A process killed mid-write leaves a temporary file (``.<name>.<random>.tmp``),
  never read; the next open, holding the lock, deletes them.
"""

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from agent.errors import OutboxError

Tables = dict[str, dict[str, Any]]
"""tinydb's document: table name → document id (as text) → document."""

_TEMP_SUFFIX = ".tmp"


def _copy_tables(tables: Tables) -> Tables:
    """A copy tinydb may change freely: tables and documents copied, field values shared.

    tinydb replaces a document's fields but never edits a field's value in place, so copying one
    level into each document keeps the stored state safe at a fraction of a deep copy's cost.
    """
    return {name: {doc_id: dict(doc) for doc_id, doc in table.items()} for name, table in tables.items()}


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicJsonStorage(Storage):
    """tinydb storage in one JSON file, replaced atomically on every write (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self._path = Path(path)
        self._lock_fd = self._lock()
        try:
            self._remove_leftover_temp_files()
            self._tables: Tables | None = self._load()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._pending: Tables | None = None
        self._in_transaction = False
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    # --- tinydb's Storage interface ----------------------------------------------------------

    def read(self) -> Tables | None:
        self._check_open()
        current = self._pending if self._pending is not None else self._tables
        return None if current is None else _copy_tables(current)

    def write(self, data: Tables) -> None:
        self._check_open()
        if self._in_transaction:
            self._pending = data
        else:
            self._commit(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._lock_fd)  # closing the descriptor releases the flock

    # --- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Collect tinydb's writes inside the block and write the file once when it ends.

        Raises :class:`OutboxError` when that write fails; the file and the document read back
        are then the ones from before the block. Transactions do not nest.
        """
        self._check_open()
        if self._in_transaction:
            raise RuntimeError("AtomicJsonStorage transactions do not nest")
        self._in_transaction = True
        try:
            yield
            if self._pending is not None:
                self._commit(self._pending)
        finally:
            self._in_transaction = False
            self._pending = None

    # --- the file ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxError(f"the storage of {self._path} is closed")

    def _lock(self) -> int:
        lock_path = self._path.with_name(self._path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise OutboxError(f"cannot open the lock file {lock_path}: {err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise OutboxError(
                f"{self._path} is in use by another process (lock {lock_path} is held): "
                "only one agent may write an outbox"
            ) from err
        return fd

    def _temp_prefix(self) -> str:
        return f".{self._path.name}."

    def _remove_leftover_temp_files(self) -> None:
        prefix = self._temp_prefix()
        for leftover in self._path.parent.glob(f"{prefix}*{_TEMP_SUFFIX}"):
            # Written by a process that died before renaming it: never the database, never read.
            # One that cannot be removed is harmless, and the next open tries again.
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _load(self) -> Tables | None:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise OutboxError(f"cannot read the outbox {self._path}: {err}") from err
        try:
            tables = json.loads(text)
        except json.JSONDecodeError as err:
            raise self._corrupt(f"it is not valid JSON ({err})") from err
        if not isinstance(tables, dict) or not all(
            isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
            for table in tables.values()
        ):
            raise self._corrupt("it is not a JSON object of tables of documents")
        return tables

    def _corrupt(self, why: str) -> OutboxError:
        return OutboxError(
            f"the outbox {self._path} is corrupt: {why}. It was left untouched and the agent will not start "
            "over it with an empty outbox, which would lose its records: an operator must move it aside "
            "(keeping a copy) or restore it"
        )

    def _commit(self, tables: Tables) -> None:
        """Write ``tables`` to a temp file, fsync, rename it over the target, fsync the directory."""
        # ASCII-only JSON: any str, even a lone surrogate from a decoded ack, encodes without error.
        encoded = json.dumps(tables, separators=(",", ":")).encode("ascii")
        directory = self._path.parent
        try:
            fd, temp_name = tempfile.mkstemp(prefix=self._temp_prefix(), suffix=_TEMP_SUFFIX, dir=directory)
        except OSError as err:
            raise self._write_failed(err) from err
        replaced = False
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(encoded)
                temp.flush()
                os.fsync(temp.fileno())
            Path(temp_name).replace(self._path)
            replaced = True
        except OSError as err:
            raise self._write_failed(err) from err
        finally:
            if not replaced:
                with contextlib.suppress(OSError):  # it may not exist, or the disk may refuse; never read
                    Path(temp_name).unlink()
        # The file now holds the new document: from here on, so does memory.
        self._tables = tables
        try:
            _fsync_directory(directory)
        except OSError as err:
            raise OutboxError(
                f"the outbox {self._path} was replaced but its directory could not be synced ({err}): "
                "the change may not survive a power loss"
            ) from err

    def _write_failed(self, err: OSError) -> OutboxError:
        return OutboxError(f"cannot write the outbox {self._path}: {err}; its previous state is kept")
