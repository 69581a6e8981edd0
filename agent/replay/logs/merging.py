"""Several logs of one vehicle as one stream of frames in time order, still streaming."""

import heapq
from collections.abc import Iterator, Sequence
from operator import attrgetter
from pathlib import Path

import can

from agent.replay.logs.formats import detect_format
from agent.replay.logs.id_table import Key
from agent.replay.logs.python_can_readers import require_mf4_support
from agent.replay.logs.reading import read_log_frames
from agent.replay.logs.report import LogReport


def merge_logs(
    paths: Sequence[Path], wanted: frozenset[Key], *, channels: frozenset[str] | None = None
) -> tuple[Iterator[can.Message], list[LogReport]]:
    """The wanted frames of all ``paths`` merged by time, and one report per path in the order given.

    Logs may be given in any order and may overlap in time (two buses of the same drive); frames of
    equal time keep the order of ``paths``. Every format is detected before any frame is read, so
    an unknown or missing log raises ``LogFormatError`` at once. Each log holds one file open
    while the merge runs.
    """
    detected = [(path, *detect_format(path)) for path in paths]
    for path, log_format, _ in detected:
        if log_format == "mf4":
            require_mf4_support(path)
    reports = [LogReport(str(path), log_format, compressed) for path, log_format, compressed in detected]
    streams = [
        read_log_frames(path, wanted, report, channels=channels, format=report.format)
        for (path, _, _), report in zip(detected, reports, strict=True)
    ]
    if len(streams) == 1:
        return streams[0], reports
    return heapq.merge(*streams, key=attrgetter("timestamp")), reports
