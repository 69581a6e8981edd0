"""Where frames go: any python-can bus (paced in real time or faster), or any log file python-can writes."""

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import can

from simulator.errors import SimulatorError

LOG_SUFFIXES = (".asc", ".blf", ".csv", ".log", ".trc", ".mf4")
"""Log formats chosen by file name (python-can's writers)."""


class FrameSink(Protocol):
    """Takes frames in time order; ``close`` flushes and releases the target."""

    def write(self, frames: Iterable[can.Message]) -> int: ...
    def close(self) -> None: ...


class LogFileSink:
    """Writes frames to a log file in the format its suffix names."""

    def __init__(self, path: Path) -> None:
        if path.suffix.lower() not in LOG_SUFFIXES:
            raise SimulatorError(f"{path}: unknown log format {path.suffix!r}; use one of {', '.join(LOG_SUFFIXES)}")
        if not path.parent.is_dir():
            raise SimulatorError(f"cannot write {path}: directory {path.parent} does not exist")
        try:
            self._writer = can.Logger(str(path))
        except (OSError, ValueError, ImportError) as err:
            raise SimulatorError(f"cannot open {path} for writing: {err}") from err
        self.path = path

    def write(self, frames: Iterable[can.Message]) -> int:
        count = 0
        on_message = self._writer.on_message_received
        try:
            for frame in frames:
                on_message(frame)
                count += 1
        except OSError as err:
            raise SimulatorError(f"writing {self.path} failed: {err}") from err
        return count

    def close(self) -> None:
        self._writer.stop()


class BusSink:
    """Sends frames on a python-can bus, paced so that ``speed`` seconds of simulation take one second.

    ``speed`` 0 sends as fast as the bus takes them. Frames keep their simulated timestamps.
    """

    def __init__(self, bus: can.BusABC, speed: float) -> None:
        if speed < 0:
            raise SimulatorError(f"--speed must be 0 (as fast as possible) or positive, got {speed}")
        self._bus = bus
        self._speed = speed
        self._first_frame_s: float | None = None
        self._started_wall_s = 0.0

    def write(self, frames: Iterable[can.Message]) -> int:
        count = 0
        for frame in frames:
            if self._speed > 0:
                self._pace(frame.timestamp)
            try:
                self._bus.send(frame, timeout=1.0)
            except can.CanError as err:
                raise SimulatorError(f"sending on the bus failed: {err}") from err
            count += 1
        return count

    def _pace(self, frame_s: float) -> None:
        if self._first_frame_s is None:
            self._first_frame_s, self._started_wall_s = frame_s, time.monotonic()
            return
        due_wall_s = self._started_wall_s + (frame_s - self._first_frame_s) / self._speed
        delay_s = due_wall_s - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)

    def close(self) -> None:
        self._bus.shutdown()


def open_bus(interface: str, channel: str, bitrate: int | None, *, fd: bool) -> can.BusABC:
    """A python-can bus, with python-can's errors translated into one clear SimulatorError."""
    options: dict[str, object] = {"interface": interface, "channel": channel, "fd": fd}
    if bitrate is not None:
        options["bitrate"] = bitrate
    if interface == "virtual":
        # python-can's virtual bus stamps frames with the sending time unless told otherwise; the
        # simulated time is the truth (at --speed 0 a day goes by in seconds). A real interface
        # stamps frames on receipt, which matches the simulation only at --speed 1.
        options["preserve_timestamps"] = True
    try:
        return can.Bus(**options)  # type: ignore[arg-type]
    except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as err:
        raise SimulatorError(f"cannot open CAN interface {interface!r} channel {channel!r}: {err}") from err
