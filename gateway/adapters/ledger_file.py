"""Writing the ledger export (``carbonlink gateway export``): everything an auditor needs, one JSON per line.

The line model and its order are ``carbonlink.ledger_export``'s; this module reads the store and
writes the file. The file appears whole or not at all (a temporary file, fsynced, renamed), so an
interrupted export never leaves a file that looks complete.

The export is consistent without one long transaction: the ledger head is read first and only
entries and batches up to it are written; devices are read next, so every credited record's device
and key are known; a record committed later by a device (or with a key) registered after that
read is left out, which can only cut the end of a chain, never its middle.
"""

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from carbonlink.keys import PublicKey
from carbonlink.ledger_export import (
    ExportDevice,
    ExportEnd,
    ExportHeader,
    ExportKey,
    ExportLine,
    ExportRecord,
    export_line,
)
from carbonlink.reasons import RejectionReason
from gateway.errors import StoreError
from gateway.store.record_store import RecordStore

_PAGE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportCounts:
    """What one export wrote."""

    devices: int
    records: int
    entries: int
    batches: int
    devices_cut: int
    """Devices whose newest records (committed during the export) were left for the next export."""


def write_ledger_export(
    store: RecordStore, out: Path, *, exported_at: datetime, gateway_key: PublicKey | None
) -> ExportCounts:
    """Write the export to ``out`` atomically; :class:`StoreError` or :class:`OSError` on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            counts = _write(store, stream, exported_at=exported_at, gateway_key=gateway_key)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(out)
        directory = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return counts


def _write(store: RecordStore, stream: TextIO, *, exported_at: datetime, gateway_key: PublicKey | None) -> ExportCounts:
    ledger = store.ledger
    head_seq, head_batch = ledger.head()
    lines = 0

    def put(value: ExportLine) -> None:
        nonlocal lines
        stream.write(export_line(value))
        stream.write("\n")
        lines += 1

    put(
        ExportHeader(
            exported_at=exported_at,
            gateway_kid=None if gateway_key is None else gateway_key.kid,
            gateway_public_key=None if gateway_key is None else gateway_key.raw,
        )
    )
    devices = store.devices()
    known_kids: dict[str, set[bytes]] = {}
    for device in devices:
        known_kids[device.device_id] = {key.kid for key in device.keys}
        put(
            ExportDevice(
                device_id=device.device_id,
                vehicle_class=device.vehicle_class.value,
                vin_hash=device.vin_hash,
                status=device.status.value,
                keys=tuple(
                    ExportKey(
                        kid=key.kid,
                        public_key=key.public_key,
                        added_at=key.added_at,
                        retired_at=key.retired_at,
                        revoked_at=key.revoked_at,
                    )
                    for key in device.keys
                ),
            )
        )
    records = 0
    skipped: set[str] = set()
    for record in _records(store, known_kids, skipped):
        put(record)
        records += 1
    entries = batches = 0
    after = 0
    while after < head_seq:
        page = [entry for entry in ledger.entries(after_seq=after, limit=_PAGE) if entry.seq <= head_seq]
        if not page:
            raise StoreError(f"ledger entries after {after} are missing (the head says {head_seq})")
        for entry in page:
            put(entry)
        entries += len(page)
        after = page[-1].seq
    after = 0
    while after < head_batch:
        found = [batch for batch in ledger.batches(after_no=after, limit=_PAGE) if batch.batch_no <= head_batch]
        if not found:
            raise StoreError(f"ledger batches after {after} are missing (the head says {head_batch})")
        for batch in found:
            put(batch)
        batches += len(found)
        after = found[-1].batch_no
    put(ExportEnd(lines=lines))
    return ExportCounts(
        devices=len(devices), records=records, entries=entries, batches=batches, devices_cut=len(skipped)
    )


def _records(store: RecordStore, known_kids: dict[str, set[bytes]], skipped: set[str]) -> Iterator[ExportRecord]:
    """Every record of a device read before, signed with a key read before; ``skipped`` collects the rest's devices."""
    after: tuple[str, int] | None = None
    while True:
        rows = store.ledger.records_for_export(after=after, limit=_PAGE)
        if not rows:
            return
        for record_hash, device_id, sequence, refused_for, signed, kid in rows:
            if bytes(kid) not in known_kids.get(device_id, set()):
                skipped.add(device_id)  # registered (or rotated) after the devices were read: the chain's end
                continue
            if device_id in skipped:
                raise StoreError(
                    f"record {sequence} of {device_id} follows a record signed with a key the export has not read "
                    "(a key was rotated during the export): export again"
                )
            yield ExportRecord(
                record_hash=bytes(record_hash),
                device_id=device_id,
                sequence=int(sequence),
                refused_for=None if refused_for is None else RejectionReason(refused_for),
                signed=bytes(signed),
            )
        after = (rows[-1][1], int(rows[-1][2]))
