"""candump ``-L`` logs (can-utils; python-can's ``.log``), read id first.

One frame per line (can-utils ``lib.c``; python-can's ``CanutilsLogWriter`` adds `` R``/`` T`` for
the direction)::

    (1436509052.249713) can0 123#DEADBEEF        standard id: 3 hex digits; 0-8 data bytes in hex
    (1436509052.249713) can0 18FF5021#0102 R     extended id: 8 hex digits
    (1436509052.249713) can0 123#R2              remote frame (optional length)
    (1436509052.249713) can0 123##301020304      CAN FD: a hex digit of flags (1 BRS, 2 ESI), then data
    (1436509052.249713) can0 20000080#0000...    error frame: CAN_ERR_FLAG (0x20000000) in the id

The hot loop cuts the id out with a ``find`` and an ``rfind`` and looks it up in the log's
``IdTable``; only lines of wanted ids are split into fields and built into a ``can.Message``.
"""

import binascii
import math
from collections.abc import Iterator

import can

from agent.replay.logs.can_frames import id_fits, is_hex, payload_fits
from agent.replay.logs.id_table import SKIP, IdTable, Key
from agent.replay.logs.report import LogReport
from agent.replay.logs.sources import LogSource, line_blocks, not_a_frame, unreadable

CAN_ERR_FLAG = 0x20000000
"""Linux SocketCAN's flag for an error frame (``linux/can.h``)."""
CANFD_BRS = 0x01
CANFD_ESI = 0x02
_FIELDS_WITHOUT_DIRECTION = 3
_FIELDS_WITH_DIRECTION = 4
_STANDARD_DIGITS = 3


def read_candump(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and channels, in file order; every line counted in ``report``."""
    known = ids.spellings.get
    for lines in line_blocks(source, report):
        report.frames_read += len(lines)
        for line in lines:
            hash_at = line.find(b"#")
            verdict = known(line[line.rfind(b" ", 0, hash_at) + 1 : hash_at])
            if verdict is SKIP:
                continue
            if verdict is None:
                verdict = _learn(line, ids, report)
                if verdict is None or verdict is SKIP:
                    continue
            frame = _frame(line, verdict, channels, report)
            if frame is not None:
                yield frame


def _learn(line: bytes, ids: IdTable, report: LogReport) -> Key | None:
    """The verdict on a line whose id spelling is new; None (and counted) when it is no frame."""
    fields = line.split()
    if not fields:
        not_a_frame(report)
        return None
    if len(fields) not in {_FIELDS_WITHOUT_DIRECTION, _FIELDS_WITH_DIRECTION} or b"#" not in fields[2]:
        unreadable(report, "garbage")
        return None
    ident = fields[2].partition(b"#")[0]
    if not is_hex(ident) or len(ident) > 8:  # noqa: PLR2004 - 8 hex digits are 32 bits, the most an id field holds
        unreadable(report, "bad_id")
        return None
    value, extended = int(ident, 16), len(ident) > _STANDARD_DIGITS
    if extended and value & CAN_ERR_FLAG:
        ids.skip_always(ident)  # an error frame: read, never wanted, no unknown id
        return SKIP
    if not id_fits(value, extended):
        unreadable(report, "bad_id")
        return None
    return ids.learn(ident, value, extended)


def _frame(line: bytes, key: Key, channels: frozenset[str] | None, report: LogReport) -> can.Message | None:
    """The frame of a line of a wanted id; None when its channel is not selected or the line is bad."""
    fields = line.split()
    if len(fields) not in {_FIELDS_WITHOUT_DIRECTION, _FIELDS_WITH_DIRECTION} or b"#" not in fields[2]:
        unreadable(report, "garbage")
        return None
    stamp, payload = fields[0], fields[2].partition(b"#")[2]
    try:
        timestamp = float(stamp[1:-1]) if stamp[:1] == b"(" and stamp[-1:] == b")" else math.nan
    except ValueError:
        timestamp = math.nan
    if not math.isfinite(timestamp):
        unreadable(report, "bad_timestamp")
        return None
    channel = fields[1].decode("ascii", "replace")
    if channels is not None and channel not in channels:
        return None
    is_fd = payload[:1] == b"#"
    flags = 0
    try:
        if is_fd:
            flags, payload = int(payload[1:2], 16), payload[2:]
        remote = payload[:1] in {b"R", b"r"}
        data = b"" if remote else binascii.unhexlify(payload)
        dlc = (int(payload[1:]) if len(payload) > 1 else 0) if remote else len(data)
    except ValueError:
        unreadable(report, "bad_data")
        return None
    if not payload_fits(dlc, fd=is_fd) or (remote and is_fd):
        unreadable(report, "bad_data")
        return None
    return can.Message(
        timestamp=timestamp,
        arbitration_id=key[0],
        is_extended_id=key[1],
        is_remote_frame=remote,
        is_fd=is_fd,
        bitrate_switch=bool(flags & CANFD_BRS),
        error_state_indicator=bool(flags & CANFD_ESI),
        is_rx=len(fields) == _FIELDS_WITHOUT_DIRECTION or fields[3] != b"T",
        dlc=dlc,
        data=data,
        channel=channel,
    )
