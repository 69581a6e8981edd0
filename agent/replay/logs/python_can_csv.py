"""python-can's own CSV logs (``can.CSVWriter``), read id first and line by line.

python-can's ``CSVReader`` stops at the first line it cannot split or parse; here a bad line is
counted and skipped like in every other text format. The layout (python-can's documentation of
``CSVWriter``)::

    timestamp,arbitration_id,extended,remote,error,dlc,data
    1700000000.123456,0x101,0,0,0,8,AQIDBAUGBwg=

``arbitration_id`` in hex with ``0x``; ``extended``, ``remote`` and ``error`` as ``1``/``0``; the
payload in base64. The format has no channel: frames carry channel None (no channel selection
matches them). The hot loop cuts out the text between the first and the third comma (``0x101,0``:
id and kind together) and looks it up in the log's ``IdTable``.
"""

import binascii
import math
from collections.abc import Iterator

import can

from agent.replay.logs.can_frames import id_fits, is_hex, payload_fits
from agent.replay.logs.id_table import SKIP, IdTable, Key
from agent.replay.logs.report import LogReport
from agent.replay.logs.sources import LogSource, line_blocks, not_a_frame, unreadable

HEADER = b"timestamp,arbitration_id,extended,remote,error,dlc,data"
_COLUMNS = 7
_FLAGS = {b"0": False, b"1": True}


def read_python_can_csv(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids, in file order (none when channels are selected); every line counted."""
    known = ids.spellings.get
    for lines in line_blocks(source, report):
        report.frames_read += len(lines)
        for line in lines:
            after_time = line.find(b",") + 1
            spelling = line[after_time : line.find(b",", line.find(b",", after_time) + 1)]
            verdict = known(spelling)
            if verdict is SKIP:
                continue
            if verdict is None:
                verdict = _learn(line, spelling, ids, report)
                if verdict is None or verdict is SKIP:
                    continue
            frame = _frame(line, verdict, report)
            if frame is not None and (channels is None or str(frame.channel) in channels):
                yield frame


def _learn(line: bytes, spelling: bytes, ids: IdTable, report: LogReport) -> Key | None:
    """The verdict on a line whose id and kind are spelled in a new way; None when it is no frame."""
    text = line.strip()
    if not text or text == HEADER:
        not_a_frame(report)
        return None
    fields = text.split(b",")
    if len(fields) != _COLUMNS:
        unreadable(report, "garbage")
        return None
    ident = fields[1][2:] if fields[1][:2].lower() == b"0x" else fields[1]
    extended = _FLAGS.get(fields[2])
    if not is_hex(ident) or extended is None:
        unreadable(report, "bad_id")
        return None
    value = int(ident, 16)
    if not id_fits(value, extended):
        unreadable(report, "bad_id")
        return None
    if fields[4] == b"1":
        return SKIP  # an error frame; not remembered, so that data frames spelled alike are still learnt
    return ids.learn(spelling, value, extended)


def _frame(line: bytes, key: Key, report: LogReport) -> can.Message | None:
    """The frame of a line of a wanted id; None (counted) when the line is bad."""
    fields = line.strip().split(b",")
    if len(fields) != _COLUMNS:
        unreadable(report, "garbage")
        return None
    try:
        timestamp = float(fields[0])
    except ValueError:
        timestamp = math.nan
    if not math.isfinite(timestamp):
        unreadable(report, "bad_timestamp")
        return None
    remote, error = _FLAGS.get(fields[3]), _FLAGS.get(fields[4])
    try:
        dlc = int(fields[5])
        data = binascii.a2b_base64(fields[6], strict_mode=True)
        if remote is None or error is None or (not remote and dlc != len(data)):
            raise ValueError(fields[3:6])  # noqa: TRY301 - a field out of range is bad data, like one that does not parse
    except ValueError:
        unreadable(report, "bad_data")
        return None
    if error:
        return None  # an error frame of a wanted id's spelling: read, never passed on
    if not payload_fits(len(data), fd=True):
        unreadable(report, "bad_data")
        return None
    return can.Message(
        timestamp=timestamp,
        arbitration_id=key[0],
        is_extended_id=key[1],
        is_remote_frame=remote,
        is_fd=len(data) > 8,  # noqa: PLR2004 - classic CAN's 8 bytes
        dlc=dlc,
        data=data,
        channel=None,
    )
