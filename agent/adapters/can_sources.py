"""Where frames come from: a live python-can bus (filtered to the profile's ids) or a log file (streamed)."""

from collections.abc import Iterable, Iterator
from pathlib import Path

import can
from can.typechecking import CanFilter

from agent.errors import SourceError

STANDARD_MASK = 0x7FF
EXTENDED_MASK = 0x1FFFFFFF


def receive_filters(frame_ids: Iterable[tuple[int, bool]]) -> list[CanFilter]:
    """Kernel/driver filters passing exactly the given (id, is_extended) frames."""
    return [
        {"can_id": frame_id, "can_mask": EXTENDED_MASK if extended else STANDARD_MASK, "extended": extended}
        for frame_id, extended in sorted(frame_ids)
    ]


def open_bus(
    interface: str, channel: str, *, bitrate: int | None, fd: bool, frame_ids: Iterable[tuple[int, bool]]
) -> can.BusABC:
    """A python-can bus that only brings up the profile's frames; python-can's errors translated."""
    options: dict[str, object] = {"interface": interface, "channel": channel, "fd": fd}
    if bitrate is not None:
        options["bitrate"] = bitrate
    try:
        bus = can.Bus(**options)  # type: ignore[arg-type]
        bus.set_filters(receive_filters(frame_ids))
    except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as err:
        raise SourceError(f"cannot open CAN interface {interface!r} channel {channel!r}: {err}") from err
    return bus


def read_log(path: Path) -> Iterator[can.Message]:
    """Frames of a log file in any format python-can reads, streamed (constant memory)."""
    if not path.is_file():
        raise SourceError(f"CAN log {path} does not exist")
    try:
        # ASC files state their start date; python-can reads them relative to it unless told not to,
        # and the records need the real time. The other readers ignore the option.
        reader = can.LogReader(str(path), relative_timestamp=False)
    except (OSError, ValueError, ImportError, NotImplementedError) as err:
        raise SourceError(f"cannot read CAN log {path}: {err}") from err
    try:
        yield from reader
    except (OSError, ValueError, EOFError) as err:
        raise SourceError(f"CAN log {path} is damaged: {err}") from err
    finally:
        reader.stop()
