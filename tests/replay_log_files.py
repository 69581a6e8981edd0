"""CAN log files for the replay readers' tests: frames written by python-can's own writers, or as SavvyCAN writes them.

Each format has a writer here and the precision its timestamps keep, so a round trip can be judged
to that precision and no finer. SavvyCAN's CSV is written after the layout SavvyCAN's
``saveNativeCSVFile`` produces (``agent/replay/logs/savvycan.py`` describes it).
"""

import gzip
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import can

from agent.replay.logs import LogReport, read_log_frames

START_S = 1_795_500_000.25
"""A time in November 2026, POSIX seconds, with a fraction (ASC and BLF headers keep milliseconds only)."""

SUFFIXES = {
    "candump": ".log",
    "asc": ".asc",
    "blf": ".blf",
    "trc": ".trc",
    "csv": ".csv",
    "mf4": ".mf4",
    "savvycan": ".csv",
}
TIME_PRECISION_S = {
    "candump": 1e-6,  # "%f": microseconds
    "asc": 1e-3,  # offsets in µs from a start date that keeps milliseconds
    "blf": 1e-3,  # offsets in ns from a SYSTEMTIME start that keeps milliseconds
    "trc": 1e-5,  # offsets in ms with 3 decimals from a start in (float) days
    "csv": 1e-9,  # repr of the float
    "mf4": 1e-6,
    "savvycan": 1e-6,  # integer microseconds
}
_PYTHON_CAN_WRITERS: dict[str, type[can.io.generic.MessageWriter]] = {
    "candump": can.CanutilsLogWriter,
    "asc": can.ASCWriter,
    "blf": can.BLFWriter,
    "trc": can.TRCWriter,
    "csv": can.CSVWriter,
    "mf4": can.MF4Writer,
}
SAVVYCAN_HEADER = "Time Stamp,ID,Extended,Dir,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8"
SAVVYCAN_HEADER_WITHOUT_DIR = "Time Stamp,ID,Extended,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8"


def frame(
    at_s: float, arbitration_id: int, data: bytes = b"", *, extended: bool = False, channel: int = 0
) -> can.Message:
    """A data frame as a bus (or the simulator) hands it out."""
    return can.Message(
        timestamp=START_S + at_s,
        arbitration_id=arbitration_id,
        is_extended_id=extended,
        data=data,
        dlc=len(data),
        channel=channel,
    )


def mixed_frames(count: int = 60, *, channels: int = 2) -> list[can.Message]:
    """Frames of standard and extended ids, every payload length 0–8, on ``channels`` channels, 10 ms apart."""
    ids = ((0x101, False), (0x132, False), (0x7FF, False), (0x18FF5021, True), (0x0000ABC, True))
    return [
        frame(
            index * 0.01,
            ids[index % len(ids)][0],
            bytes((index + byte) % 256 for byte in range(index % 9)),
            extended=ids[index % len(ids)][1],
            channel=index % channels,
        )
        for index in range(count)
    ]


def keys(frames: Iterable[can.Message]) -> frozenset[tuple[int, bool]]:
    """The (id, extended) pairs of ``frames``: a profile that wants all of them."""
    return frozenset((message.arbitration_id, message.is_extended_id) for message in frames)


def write_log(path: Path, log_format: str, frames: Iterable[can.Message]) -> Path:
    """``frames`` written to ``path`` in ``log_format`` by python-can's writer (SavvyCAN by ``write_savvycan``)."""
    if log_format == "savvycan":
        return write_savvycan(path, frames)
    writer = _PYTHON_CAN_WRITERS[log_format](str(path))
    for message in frames:
        writer.on_message_received(message)
    writer.stop()
    return path


def write_savvycan(path: Path, frames: Iterable[can.Message], *, with_direction: bool = True) -> Path:
    """A SavvyCAN CSV: microsecond times, 8-digit hex ids, eight byte columns padded with 00, a comma at the end."""
    lines = [SAVVYCAN_HEADER if with_direction else SAVVYCAN_HEADER_WITHOUT_DIR]
    for message in frames:
        padded = [f"{byte:02X}" for byte in message.data] + ["00"] * (8 - len(message.data))
        direction = ["Rx" if message.is_rx else "Tx"] if with_direction else []
        fields = [
            str(round(message.timestamp * 1_000_000)),
            f"{message.arbitration_id:08X}",
            "true" if message.is_extended_id else "false",
            *direction,
            str(message.channel),
            str(len(message.data)),
            *padded,
        ]
        lines.append(",".join(fields) + ",")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def gzipped(path: Path, target: Path | None = None) -> Path:
    """A gzip copy of ``path`` (``path`` + ``.gz`` unless named)."""
    target = target or path.with_name(path.name + ".gz")
    with path.open("rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def read_all(
    path: Path,
    wanted: frozenset[tuple[int, bool]],
    *,
    channels: frozenset[str] | None = None,
    log_format: str | None = None,
) -> tuple[list[can.Message], LogReport]:
    """Every frame ``read_log_frames`` gives for ``path``, and its report."""
    report = LogReport(str(path), "", compressed=False)
    frames = list(read_log_frames(path, wanted, report, channels=channels, format=log_format))
    return frames, report


def channel_names(log_format: str, channels: Sequence[object]) -> list[str | None]:
    """The channel names a log of ``log_format`` gives to frames sent on python-can ``channels``."""
    if log_format == "candump":
        return [f"can{channel}" for channel in channels]
    if log_format in {"asc", "blf", "trc"}:
        return [str(int(str(channel)) + 1) for channel in channels]  # Vector and PEAK count from 1
    if log_format == "csv":
        return [None for _ in channels]  # python-can's CSV has no channel column
    return [str(channel) for channel in channels]  # mf4, savvycan: as stored
