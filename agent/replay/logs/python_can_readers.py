"""BLF, TRC and MF4 logs through python-can's own readers, filtered after reading.

These formats are binary or rarely full-bus text, so python-can parses every frame and the filter
comes after. What is added here:

- **channels as the log numbers them**: BLF stores Vector's 1-based channel and python-can hands it
  out 0-based, so 1 is added back (channel ``"1"`` of a BLF is channel ``"1"`` of the same
  recording's ASC); TRC and MF4 channels come as stored;
- **a TRC line that does not parse is counted and skipped** (python-can's reader would stop on
  it), and its lines come from ``line_blocks`` like the other text formats' (bounded length, a
  file cut in the middle of a line reported);
- **a BLF cut short is reported**: python-can ends quietly where the data ends, so the bytes read
  are compared with the size its header states.
"""

import gzip
import importlib
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO, TextIO, cast

import can

from agent.replay.logs.formats import LogFormatError
from agent.replay.logs.id_table import SKIP, IdTable
from agent.replay.logs.report import LogReport
from agent.replay.logs.sources import LogSource, line_blocks


def require_mf4_support(path: object) -> None:
    """Raise ``LogFormatError`` when MF4 cannot be read here (python-can needs asammdf for it)."""
    try:
        importlib.import_module("asammdf")
    except ImportError as err:
        raise LogFormatError(
            f"{path}: reading MF4 logs needs the asammdf package: pip install asammdf ({err})"
        ) from err


def read_blf(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and channels, in file order; a file shorter than its header says is reported."""
    counted = _CountedReads(source.stream)
    reader = can.BLFReader(cast("BinaryIO", counted))
    try:
        yield from _wanted(reader, ids, channels, report, _one_based)
        if reader.file_size and counted.bytes_read < reader.file_size:
            report.error = (
                f"cut short: its header gives {reader.file_size:,} bytes, the file has {counted.bytes_read:,}"
            )
    finally:
        reader.stop()


def read_trc(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and channels, in file order; every unparsable line counted as garbage."""
    reader = _LineTolerantTrcReader(cast("TextIO", _DecodedLines(source, report)), report)
    try:
        yield from _wanted(reader, ids, channels, report, _as_stored)
    finally:
        reader.stop()


def read_mf4(
    source: LogSource, ids: IdTable, channels: frozenset[str] | None, report: LogReport
) -> Iterator[can.Message]:
    """The frames of wanted ids and channels, in time order (python-can merges the file's groups)."""
    require_mf4_support(source.path)
    damaged: type[Exception] = importlib.import_module("asammdf.blocks.utils").MdfException
    try:
        # From the path asammdf reads what it needs; from a stream (a gzip file) python-can reads it all into memory.
        reader = can.MF4Reader(cast("BinaryIO", source.stream) if source.compressed else source.path)
    except damaged as err:
        report.error = source.damage(err)
        return
    try:
        yield from _wanted(reader, ids, channels, report, _as_stored)
    except damaged as err:
        report.error = source.damage(err)
    finally:
        reader.stop()


def _wanted(
    frames: can.io.generic.MessageReader,
    ids: IdTable,
    channels: frozenset[str] | None,
    report: LogReport,
    channel_name: Callable[[object], str | None],
) -> Iterator[can.Message]:
    for frame in frames:
        report.frames_read += 1
        if frame.is_error_frame or ids.verdict(frame.arbitration_id, frame.is_extended_id) is SKIP:
            continue
        frame.channel = channel_name(frame.channel)
        if channels is not None and frame.channel not in channels:
            continue
        yield frame


class _CountedReads:
    """The stream python-can reads a BLF from, counting the bytes it gets; closing it is left to the source."""

    def __init__(self, stream: io.BufferedReader | gzip.GzipFile) -> None:
        self._stream = stream
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        """python-can closes its file when it reaches the end; the ``LogSource`` closes the real one."""


def _one_based(channel: object) -> str | None:
    return None if channel is None else str(int(channel) + 1)  # type: ignore[call-overload]  # python-can gives an int


def _as_stored(channel: object) -> str | None:
    return None if channel is None else str(channel)


class _DecodedLines:
    """A text log's lines for python-can's reader, from ``line_blocks``: bounded in length, a cut end reported."""

    def __init__(self, source: LogSource, report: LogReport) -> None:
        self._lines = (line.decode("utf-8", "replace") for lines in line_blocks(source, report) for line in lines)

    def __iter__(self) -> "_DecodedLines":
        return self  # python-can iterates twice (header, then frames): both times on from where it was

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        """python-can closes its file when it reaches the end; the ``LogSource`` closes the real one."""


class _LineTolerantTrcReader(can.TRCReader):
    """python-can's TRC reader, but a frame line that does not parse is counted as garbage, not fatal."""

    def __init__(self, file: TextIO, report: LogReport) -> None:
        super().__init__(file)
        self._report = report

    def _parse_line(self, line: str) -> can.Message | None:
        # python-can's own _parse_line catches IndexError only; a ValueError would end the whole read.
        try:
            return self._parse_cols(tuple(line.split(maxsplit=self._num_columns)))
        except (IndexError, ValueError):
            self._report.count_bad("garbage")
            return None
