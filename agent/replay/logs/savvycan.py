"""SavvyCAN / GVRET CSV logs ("GVRET Logs" in SavvyCAN's save dialog), which python-can does not read.

The layout, as SavvyCAN writes and reads it (``framefileio.cpp``, ``saveNativeCSVFile``)::

    Time Stamp,ID,Extended,Dir,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8
    39747828,000005EB,false,Rx,0,8,E8,45,85,4B,4A,28,36,69,

- **Time Stamp**: an integer count of microseconds (since the capture started, or POSIX time when
  SavvyCAN uses the system clock); read here as seconds;
- **ID**: hex, SavvyCAN pads it to 8 digits whatever the kind; other tools add ``0x``;
- **Extended**: ``true``/``false``; **Dir**: ``Rx``/``Tx``; **Bus**: the bus number, the frame's channel;
- **LEN**: the payload length; **D1**…: the bytes in hex (SavvyCAN always writes 8, padding with
  ``00``, and ends the line with a comma). More ``D`` columns carry CAN FD payloads.

Older SavvyCAN versions wrote no ``Dir`` column (``Time Stamp,ID,Extended,Bus,LEN,D1,...``): the
header says which, and both are read. Columns are found by their names in the header.

The hot loop cuts out the text between the first and the third comma (``000005EB,false``: id and
kind together) and looks it up in the log's ``IdTable``.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass

import can

from agent.replay.logs.can_frames import id_fits, is_hex, payload_fits
from agent.replay.logs.id_table import SKIP, IdTable, Key
from agent.replay.logs.report import LogReport
from agent.replay.logs.sources import LogSource, line_blocks, not_a_frame, unreadable

MICROSECONDS_PER_S = 1_000_000
_TRUE = frozenset((b"true", b"1"))
_FALSE = frozenset((b"false", b"0"))


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where the header puts each field (``dir`` and ``bus`` may be missing)."""

    direction: int | None
    bus: int | None
    length: int
    first_byte: int

    @classmethod
    def of_header(cls, fields: list[bytes]) -> "_Columns | None":
        names = [field.strip().lower() for field in fields]
        if names[:3] != [b"time stamp", b"id", b"extended"] or b"len" not in names or b"d1" not in names:
            return None
        return cls(
            direction=names.index(b"dir") if b"dir" in names else None,
            bus=names.index(b"bus") if b"bus" in names else None,
            length=names.index(b"len"),
            first_byte=names.index(b"d1"),
        )


class _SavvyCanReader:
    """The state of one read: the header's columns and the ids met."""

    __slots__ = ("channels", "columns", "ids", "report")

    def __init__(self, ids: IdTable, channels: frozenset[str] | None, report: LogReport) -> None:
        self.ids = ids
        self.channels = channels
        self.report = report
        self.columns: _Columns | None = None

    def frames(self, source: LogSource) -> Iterator[can.Message]:
        known = self.ids.spellings.get
        report = self.report
        for lines in line_blocks(source, report):
            report.frames_read += len(lines)
            for line in lines:
                after_time = line.find(b",") + 1
                spelling = line[after_time : line.find(b",", line.find(b",", after_time) + 1)]
                verdict = known(spelling)
                if verdict is SKIP:
                    continue
                if verdict is None:
                    verdict = self.learn(line, spelling)
                    if verdict is None or verdict is SKIP:
                        continue
                frame = self.frame(line, verdict)
                if frame is not None:
                    yield frame

    def learn(self, line: bytes, spelling: bytes) -> Key | None:
        """The verdict on a line whose id and kind are spelled in a new way; None when it is no frame."""
        fields = line.split(b",")
        if not line.strip():
            not_a_frame(self.report)
            return None
        columns = _Columns.of_header(fields)
        if columns is not None:
            self.columns = columns
            not_a_frame(self.report)
            return None
        if self.columns is None or len(fields) <= self.columns.length:
            unreadable(self.report, "garbage")
            return None
        ident, kind = fields[1].strip(), fields[2].strip().lower()
        ident = ident[2:] if ident[:2].lower() == b"0x" else ident
        if not is_hex(ident) or (kind not in _TRUE and kind not in _FALSE):
            unreadable(self.report, "bad_id")
            return None
        value, extended = int(ident, 16), kind in _TRUE
        if not id_fits(value, extended):
            unreadable(self.report, "bad_id")
            return None
        return self.ids.learn(spelling, value, extended)

    def frame(self, line: bytes, key: Key) -> can.Message | None:
        """The frame of a line of a wanted id; None when its bus is not selected or the line is bad."""
        report, columns = self.report, self.columns
        fields = line.split(b",")
        if columns is None or len(fields) <= columns.length:
            unreadable(report, "garbage")
            return None
        try:
            timestamp = float(fields[0]) / MICROSECONDS_PER_S
        except ValueError:
            timestamp = math.nan
        if not math.isfinite(timestamp):
            unreadable(report, "bad_timestamp")
            return None
        channel = None if columns.bus is None else fields[columns.bus].strip().decode("ascii", "replace")
        if self.channels is not None and channel not in self.channels:
            return None
        try:
            length = int(fields[columns.length])
            tokens = fields[columns.first_byte : columns.first_byte + length]
            if len(tokens) < length or not payload_fits(length, fd=True):
                raise ValueError(length)  # noqa: TRY301 - a field out of range is bad data, like one that does not parse
            data = bytes(int(token, 16) for token in tokens)
        except ValueError:
            unreadable(report, "bad_data")
            return None
        direction = b"Rx" if columns.direction is None else fields[columns.direction].strip()
        return can.Message(
            timestamp=timestamp,
            arbitration_id=key[0],
            is_extended_id=key[1],
            is_fd=length > 8,  # noqa: PLR2004 - classic CAN's 8 bytes
            is_rx=not direction.startswith(b"T"),
            dlc=length,
            data=data,
            channel=channel,
        )


def read_savvycan(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and buses, in file order; every line counted in ``report``."""
    return _SavvyCanReader(ids, channels, report).frames(source)
