"""Vector ASC logs (CANalyzer/CANoe ASCII; python-can's ``.asc``), read id first.

A header, then one event per line, its time in seconds from the start of the trigger block::

    date Tue Nov 24 07:30:00.000 2026
    base hex  timestamps absolute
    internal events logged
    Begin Triggerblock Tue Nov 24 07:30:00.000 2026
       0.000000 Start of measurement
       0.012345 1  123             Rx   d 8 01 02 03 04 05 06 07 08
       0.012400 2  18FF5021x       Tx   d 2 0A 0B
       0.012500 1  123             Rx   r 8
       0.013000 1  ErrorFrame
       0.014000 CANFD   1 Rx        123  Name  1 0 f 64 00 01 ... (then duration, length, flags, CRC, ...)
    End TriggerBlock

Times are made absolute as python-can's reader does with ``relative_timestamp=False`` (which the
agent uses for a live ASC log): offset + the trigger block's date (else the ``date`` line's), read
as local time, so that a replay and the agent see the same times. ``base dec`` logs have decimal
ids and bytes. ``timestamps relative`` is read like ``absolute``, as python-can does. Channels are
the log's own numbers (``"1"`` for the first), not python-can's 0-based ones.

The hot loop splits a line once (``split(None, 3)``: time, channel, id, rest) and looks the id up
in the log's ``IdTable``. Lines of other ids go no further; headers, events and CAN FD lines take
the slow path, where each new id spelling is learnt.
"""

import math
from collections.abc import Iterator
from datetime import datetime

import can

from agent.replay.logs.can_frames import dlc_to_length, id_fits, is_hex, payload_fits
from agent.replay.logs.id_table import SKIP, IdTable, Key
from agent.replay.logs.report import LogReport
from agent.replay.logs.sources import LogSource, line_blocks, not_a_frame, unreadable

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("Jan",),
            ("Feb",),
            ("Mar", "Mär"),
            ("Apr",),
            ("May", "Mai"),
            ("Jun",),
            ("Jul",),
            ("Aug",),
            ("Sep",),
            ("Oct", "Okt"),
            ("Nov",),
            ("Dec", "Dez"),
        ),
        start=1,
    )
    for name in names
}
"""Month abbreviations of ASC dates: CANoe writes them in the language of the PC (English, German)."""
_DATE_FORMATS = ("%m %d %I:%M:%S.%f %p %Y", "%m %d %I:%M:%S %p %Y", "%m %d %H:%M:%S.%f %Y", "%m %d %H:%M:%S %Y")
_SKIPPED_HEADERS = (b"//", b"end triggerblock", b"internal events logged", b"no internal events logged")
_DIRECTIONS = (b"Rx", b"Tx")
_PARTS_OF_FRAME_LINE = 4
_FD_MIN_TOKENS = 9  # time CANFD channel direction id brs esi dlc length
_CHANNEL_LIKE_DIGITS = 2


class _AscReader:
    """The state of one ASC read: number base and start time from the header, the ids met."""

    __slots__ = ("base", "channels", "ids", "report", "start_s")

    def __init__(self, ids: IdTable, channels: frozenset[str] | None, report: LogReport) -> None:
        self.ids = ids
        self.channels = channels
        self.report = report
        self.base = 16
        self.start_s = 0.0

    def frames(self, source: LogSource) -> Iterator[can.Message]:
        known = self.ids.spellings.get
        report = self.report
        for lines in line_blocks(source, report):
            report.frames_read += len(lines)
            for line in lines:
                parts = line.split(None, 3)
                try:
                    verdict = known(parts[2])
                except IndexError:
                    verdict = None
                if verdict is SKIP:
                    continue
                frame = self.slow(line, parts) if verdict is None else self.frame(parts, verdict)
                if frame is not None:
                    yield frame

    def slow(self, line: bytes, parts: list[bytes]) -> can.Message | None:
        """A line whose id spelling is not known yet: a header, an event, a CAN FD frame or a new id."""
        if not parts:
            not_a_frame(self.report)
            return None
        if len(parts) > 2 and parts[1] == b"CANFD":  # noqa: PLR2004 - time, CANFD, channel
            return self.fd_frame(line)
        try:
            float(parts[0])
        except ValueError:
            self.header(line.strip())
            return None
        if len(parts) == _PARTS_OF_FRAME_LINE and parts[3][:2] in _DIRECTIONS:
            verdict = self.learn(parts[2])
            return None if verdict is None or verdict is SKIP else self.frame(parts, verdict)
        if len(parts) > 2 and parts[2].lower() == b"errorframe":  # noqa: PLR2004 - time, channel, ErrorFrame
            self.ids.skip_always(parts[2])  # a frame on the bus, never wanted, no unknown id
            return None
        not_a_frame(self.report)  # another event: start of measurement, statistics, chip status, ...
        return None

    def header(self, text: bytes) -> None:
        """A line that does not start with a time: header, comment, trigger block, or garbage."""
        lower = text.lower()
        if lower.startswith(b"begin triggerblock"):
            self.start_at(text[len(b"begin triggerblock") :])
        elif lower.startswith(b"date "):
            self.start_at(text[len(b"date ") :])
        elif lower.startswith(b"base "):
            words = lower.split()
            self.base = 10 if words[1:2] == [b"dec"] else 16
            not_a_frame(self.report)
        elif lower.startswith(_SKIPPED_HEADERS):
            not_a_frame(self.report)
        else:
            unreadable(self.report, "garbage")

    def start_at(self, text: bytes) -> None:
        """The start time of a ``date`` or ``Begin Triggerblock`` line (after the keyword); a bare one keeps it."""
        words = text.decode("utf-8", "replace").split(None, 1)
        if len(words) < 2:  # noqa: PLR2004 - weekday, then the date
            not_a_frame(self.report)
            return
        start_s = _local_time_s(words[1])
        if start_s is None:
            unreadable(self.report, "bad_timestamp")
            return
        self.start_s = start_s
        not_a_frame(self.report)

    def learn(self, ident: bytes) -> Key | None:
        """The verdict on a new id spelling (``123``, ``18FF5021x``); None, counted, when it is no id."""
        parsed = self._id_value(ident)
        if parsed is None:
            return None
        value, extended = parsed
        # A CAN FD line has its channel where a classic line has its id: never remember a spelling
        # that could be a channel number, or a CAN FD line would be taken for a frame of that id.
        channel_like = ident.isdigit() and len(ident) <= _CHANNEL_LIKE_DIGITS
        return self.ids.learn(ident, value, extended, remember=not channel_like)

    def frame(self, parts: list[bytes], key: Key) -> can.Message | None:
        """The frame of a classic line of a wanted id (``time channel id dir d|r dlc data...``)."""
        report = self.report
        if len(parts) < _PARTS_OF_FRAME_LINE:
            unreadable(report, "garbage")
            return None
        try:
            timestamp = float(parts[0]) + self.start_s
        except ValueError:
            timestamp = math.nan
        if not math.isfinite(timestamp):
            unreadable(report, "bad_timestamp")
            return None
        channel = parts[1].decode("ascii", "replace")
        if self.channels is not None and channel not in self.channels:
            return None
        rest = parts[3].split()
        if len(rest) < 2 or rest[0] not in _DIRECTIONS:  # noqa: PLR2004 - direction and frame type
            unreadable(report, "garbage")
            return None
        kind = rest[1].lower()
        try:
            if kind == b"r":
                remote, data = True, b""
                dlc = int(rest[2], self.base) if len(rest) > 2 and rest[2].isdigit() else 0  # noqa: PLR2004
            elif kind == b"d":
                length = dlc_to_length(int(rest[2], self.base), fd=False)
                remote, data, dlc = False, self.payload(rest[3 : 3 + length], length), length
            else:
                raise ValueError(kind)  # noqa: TRY301 - a field out of range is bad data, like one that does not parse
        except (ValueError, IndexError):
            unreadable(report, "bad_data")
            return None
        return can.Message(
            timestamp=timestamp,
            arbitration_id=key[0],
            is_extended_id=key[1],
            is_remote_frame=remote,
            is_rx=rest[0] == b"Rx",
            dlc=dlc,
            data=data,
            channel=channel,
        )

    def fd_frame(self, line: bytes) -> can.Message | None:
        """A CAN FD line: ``time CANFD channel dir id [name] brs esi dlc length data...``."""
        report = self.report
        tokens = line.split()
        if len(tokens) < _FD_MIN_TOKENS or tokens[3] not in _DIRECTIONS:
            unreadable(report, "garbage")
            return None
        verdict = self.learn_fd(tokens[4])
        if verdict is None or verdict is SKIP:
            return None
        try:
            timestamp = float(tokens[0]) + self.start_s
        except ValueError:
            timestamp = math.nan
        if not math.isfinite(timestamp):
            unreadable(report, "bad_timestamp")
            return None
        channel = tokens[2].decode("ascii", "replace")
        if self.channels is not None and channel not in self.channels:
            return None
        at = 5 if tokens[5].isdigit() else 6  # a symbolic name may stand between the id and BRS
        try:
            brs, esi, dlc_text, length_text = tokens[at : at + 4]
            dlc, length = int(dlc_text, self.base), int(length_text)
            data = self.payload(tokens[at + 4 : at + 4 + length], length)
            if length != 0 and dlc_to_length(dlc, fd=True) != length:
                raise ValueError(dlc)  # noqa: TRY301 - a field out of range is bad data, like one that does not parse
        except ValueError:
            unreadable(report, "bad_data")
            return None
        return can.Message(
            timestamp=timestamp,
            arbitration_id=verdict[0],
            is_extended_id=verdict[1],
            is_fd=True,
            is_remote_frame=length == 0,  # python-can writes a remote frame as data length 0
            bitrate_switch=brs == b"1",
            error_state_indicator=esi == b"1",
            is_rx=tokens[3] == b"Rx",
            dlc=dlc_to_length(dlc, fd=True) if length == 0 else length,
            data=data,
            channel=channel,
        )

    def learn_fd(self, ident: bytes) -> Key | None:
        """The verdict on the id of a CAN FD line (not remembered: these lines all take the slow path)."""
        parsed = self._id_value(ident)
        return None if parsed is None else self.ids.verdict(*parsed)

    def _id_value(self, ident: bytes) -> tuple[int, bool] | None:
        """An id spelling's value and extended flag (a trailing ``x``); None, counted, when it is no CAN id."""
        extended = ident[-1:] in {b"x", b"X"}
        digits = ident[:-1] if extended else ident
        if not (is_hex(digits) if self.base == 16 else digits.isdigit()):  # noqa: PLR2004 - the number base
            unreadable(self.report, "bad_id")
            return None
        value = int(digits, self.base)
        if not id_fits(value, extended):
            unreadable(self.report, "bad_id")
            return None
        return value, extended

    def payload(self, tokens: list[bytes], length: int) -> bytes:
        """``length`` data bytes written as hex (or decimal, ``base dec``) numbers; ValueError when short or bad."""
        if len(tokens) < length:
            raise ValueError(f"{length} data bytes announced, {len(tokens)} found")
        if self.base == 16:  # noqa: PLR2004 - the number base
            if any(len(token) != 2 for token in tokens):  # noqa: PLR2004 - two hex digits a byte
                raise ValueError("a data byte is not two hex digits")
            data = bytes.fromhex(b" ".join(tokens).decode("ascii"))
        else:
            data = bytes(int(token) for token in tokens)
        if not payload_fits(len(data), fd=length > 8):  # noqa: PLR2004 - classic CAN's 8 bytes
            raise ValueError(f"{len(data)} data bytes")
        return data


def read_asc(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and channels, in file order; every line counted in ``report``."""
    return _AscReader(ids, channels, report).frames(source)


def _local_time_s(text: str) -> float | None:
    """POSIX seconds of an ASC date (``Nov 24 07:30:00.000 2026``, ``... 07:30:00.000 am 2026``), local time."""
    month, _, rest = text.strip().partition(" ")
    number = _MONTHS.get(month.capitalize())
    if number is None:
        return None
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(f"{number:02d} {rest.strip()}", pattern).timestamp()  # noqa: DTZ007 - ASC dates are the logging PC's local time
        except ValueError:
            continue
    return None
