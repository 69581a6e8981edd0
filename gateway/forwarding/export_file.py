"""The export file sink: each issued credit appended as one JSON line, on disk before it counts as delivered.

Each line is canonical JSON: ``{"credit":<the payload>,"idempotency_key":"<key>"}``. The file is read
once when the sink first opens it, to learn the keys it holds; a key already there is not written
again, so a credit delivered twice (a retry after a crash between the write and the outbox's update)
still appears once. A line cut short by a crash mid-write (no newline at the end: it was never
reported delivered) is cut off at that open, and its credit is written again whole.

A full disk, a missing permission or any other I/O error is a retryable :class:`SinkError` naming
the path; the file is opened afresh (and read again) on the next attempt. One gateway process per
file: processes sharing one file do not see each other's keys.
"""

import contextlib
import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import BinaryIO

from gateway.forwarding.model import Delivery, SinkError

log = logging.getLogger("carbonlink.gateway.forwarding")

_KEY_FIELD = "idempotency_key"


class ExportFileSink:
    """Appends each delivery's payload as one JSON line to ``path`` (see the module docstring)."""

    name: str

    def __init__(self, path: Path, *, name: str = "export_file") -> None:
        self.name = name
        self.path = path
        self._file: BinaryIO | None = None
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def deliver(self, delivery: Delivery) -> None:
        """Append the delivery's line and fsync it, unless its idempotency key is in the file already."""
        line = export_line(delivery)
        with self._lock:
            try:
                file = self._open()
                if delivery.idempotency_key in self._keys:
                    log.debug("forwarding.export_file.repeat delivery=%d", delivery.delivery_id)
                    return
                file.write(line)
                file.flush()
                os.fsync(file.fileno())
            except OSError as err:
                # The write may have left part of a line: open afresh next time, which cuts it off.
                self._close()
                raise SinkError(f"export file {self.path}: {err.strerror or err}", retryable=True) from err
            self._keys.add(delivery.idempotency_key)

    def close(self) -> None:
        """Close the file (the next delivery opens it again, reading its keys afresh)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # a failed flush is reported already; the descriptor closes anyway
                self._file.close()
            self._file = None

    def _open(self) -> BinaryIO:
        if self._file is not None:
            return self._file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        keys: set[str] = set()
        if not created and stat.S_ISREG(self.path.stat().st_mode):  # a device or pipe has nothing to read back
            keys = self._scan()
        file = self.path.open("ab")
        if created:
            _fsync_directory(self.path.parent)
        self._keys, self._file = keys, file
        return file

    def _scan(self) -> set[str]:
        """The keys in the file; cuts off a last line that has no newline (a write cut short)."""
        keys: set[str] = set()
        whole_bytes = 0
        with self.path.open("rb") as file:
            for line_no, line in enumerate(file, start=1):
                if not line.endswith(b"\n"):
                    break
                whole_bytes += len(line)
                key = _key_of(line)
                if key is None:
                    log.warning("forwarding.export_file.bad_line path=%s line=%d", self.path, line_no)
                else:
                    keys.add(key)
            torn_bytes = file.seek(0, os.SEEK_END) - whole_bytes
        if torn_bytes:
            log.warning(
                "forwarding.export_file.torn_line_cut path=%s offset=%d bytes=%d", self.path, whole_bytes, torn_bytes
            )
            os.truncate(self.path, whole_bytes)
        return keys


def export_line(delivery: Delivery) -> bytes:
    """The delivery's line, newline included; a not-retryable :class:`SinkError` when the payload is not JSON."""
    try:
        credit = json.loads(delivery.payload)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise SinkError(f"delivery {delivery.delivery_id}: its payload is not JSON: {err}", retryable=False) from err
    payload = delivery.payload.strip()
    if b"\n" in payload or b"\r" in payload:  # not canonical: spell it on one line
        payload = json.dumps(credit, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    key = json.dumps(delivery.idempotency_key, ensure_ascii=False).encode("utf-8")
    # Keys in sorted order ("credit" < "idempotency_key"), so a canonical payload makes a canonical line.
    return b'{"credit":' + payload + b',"' + _KEY_FIELD.encode() + b'":' + key + b"}\n"


def _key_of(line: bytes) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    key = value.get(_KEY_FIELD) if isinstance(value, dict) else None
    return key if isinstance(key, str) else None


def _fsync_directory(path: Path) -> None:
    """Make a new file's directory entry durable (the file's own fsync does not cover it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
