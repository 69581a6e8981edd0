"""One log's frames of the profile's ids, streamed, in any format read here, with its counts kept up to date.

Every format reader yields the frames of wanted ids and selected channels in file order. Here the
frames whose time goes back before the last frame kept are dropped (and counted: a replay feeds
the agent's pipeline, whose time comes from the frames), the kept ones counted, and a read that
fails part-way (a damaged BLF container, a deflate error) ends with ``report.error`` set and the
frames before it delivered.
"""

import math
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import can

from agent.replay.logs.asc import read_asc
from agent.replay.logs.candump import read_candump
from agent.replay.logs.formats import LOG_FORMATS, LogFormatError, detect_format
from agent.replay.logs.id_table import IdTable, Key
from agent.replay.logs.python_can_csv import read_python_can_csv
from agent.replay.logs.python_can_readers import read_blf, read_mf4, read_trc, require_mf4_support
from agent.replay.logs.report import LogReport
from agent.replay.logs.savvycan import read_savvycan
from agent.replay.logs.sources import LogSource, open_source

FormatReader = Callable[[LogSource, IdTable, frozenset[str] | None, LogReport], Iterator[can.Message]]
"""Frames of wanted ids and channels from an open log, in file order, counting into the report."""

READERS: dict[str, FormatReader] = {
    "candump": read_candump,
    "asc": read_asc,
    "blf": read_blf,
    "trc": read_trc,
    "csv": read_python_can_csv,
    "mf4": read_mf4,
    "savvycan": read_savvycan,
}
"""The reader of each of ``LOG_FORMATS``."""

DAMAGE_ERRORS = (OSError, EOFError, ValueError, struct.error, zlib.error, can.CanError, NotImplementedError)
"""What python-can's readers raise on a damaged file part-way through (BLFParseError is a CanError;
NotImplementedError: a TRC file version python-can does not read)."""


def read_log_frames(
    path: Path,
    wanted: frozenset[Key],
    report: LogReport,
    *,
    channels: frozenset[str] | None = None,
    format: str | None = None,  # noqa: A002 - the name the callers use
) -> Iterator[can.Message]:
    """The frames of ``path`` whose (id, extended) is in ``wanted`` and channel in ``channels``, streamed.

    ``format`` None detects it from the content now (``LogFormatError`` for an unknown format or a
    missing file); a given format is trusted, and the file is opened only when iteration starts
    (so a pipe can be read). ``report`` is updated while frames are read: its format and
    compression are set, lines counted, bad lines and backward times counted and skipped; a read
    that cannot go on sets ``report.error`` and ends.
    """
    if format is None:
        format, report.compressed = detect_format(path)  # noqa: A001
    elif format not in READERS:
        raise LogFormatError(f"{path}: unknown log format {format!r}; one of {', '.join(LOG_FORMATS)}")
    elif not path.exists():
        raise LogFormatError(f"{path}: no such CAN log")
    if format == "mf4":
        require_mf4_support(path)
    report.format = format
    return _kept_frames(path, READERS[format], wanted, report, channels)


def _kept_frames(
    path: Path, reader: FormatReader, wanted: frozenset[Key], report: LogReport, channels: frozenset[str] | None
) -> Iterator[can.Message]:
    source = open_source(path)
    report.compressed = source.compressed
    report.size_bytes = source.size()
    last_s = -math.inf
    try:
        if source.is_empty():
            report.error = "the file is empty"
            return
        frames = reader(source, IdTable(wanted, report), channels, report)
        for frame in frames:
            timestamp = frame.timestamp
            if timestamp < last_s:
                report.backwards += 1
                continue
            if report.first_at_s is None:
                report.first_at_s = timestamp
            last_s = report.last_at_s = timestamp
            report.frames_kept += 1
            yield frame
        report.position_bytes = report.size_bytes  # to its end (python-can's readers say nothing before)
    except DAMAGE_ERRORS as err:
        report.error = source.damage(err)
        report.position_bytes = report.size_bytes  # as far as it can be read
    finally:
        source.close()
