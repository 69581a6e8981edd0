"""What reading one log found: frames read and kept, ids the profile does not need, lines it could not read."""

from dataclasses import dataclass, field

BAD_LINE_KINDS = ("garbage", "bad_id", "bad_timestamp", "bad_data")
"""The kinds of unreadable line counted in ``LogReport.bad_lines``, by the first thing wrong with a line.

- **garbage**: not shaped like a frame line of the log's format (binary junk, a stray text line, a
  "line" of more than ``MAX_LINE_BYTES``);
- **bad_id**: a frame line whose id is not a CAN id (not hex, too large for its kind);
- **bad_timestamp**: a frame line whose time is not a finite number;
- **bad_data**: a frame line whose length, payload bytes or flags do not read.

Only lines of the profile's ids are read field by field: a line of an id the profile does not need
is judged by its id alone, so a damaged payload there is not counted (nor needed).
"""


@dataclass(slots=True)
class LogReport:
    """Counts of one input log, updated while it is read (a progress display may read them meanwhile)."""

    path: str
    format: str
    """One of ``LOG_FORMATS``."""
    compressed: bool
    """The file is gzip-compressed (read through without unpacking it to disk)."""
    frames_read: int = 0
    """Frames the file held, kept or skipped; unreadable lines are not frames and not counted here."""
    frames_kept: int = 0
    """Frames passed on: an id the profile needs, a selected channel, a time not before the last kept one."""
    unknown_ids: int = 0
    """Distinct (id, extended) pairs seen that the profile does not need."""
    bad_lines: dict[str, int] = field(default_factory=dict)
    """Unreadable lines by kind (``BAD_LINE_KINDS``); each was skipped and the read went on."""
    backwards: int = 0
    """Frames of needed ids dropped because their time was before the last frame kept from this log."""
    first_at_s: float | None = None
    """Time of the first kept frame (POSIX seconds when the log has absolute times)."""
    last_at_s: float | None = None
    """Time of the last kept frame."""
    error: str | None = None
    """Why the file ended early or could not be read on (cut short, damaged); frames before it were delivered."""
    size_bytes: int = 0
    """The file's size on disk (compressed, for gzip), when it was opened: the progress bar's total."""
    position_bytes: int = 0
    """How far into the file on disk the read got: the text formats (TRC too) move it per block; BLF
    and MF4, which python-can reads itself, jump from 0 to ``size_bytes`` at their end."""

    def count_bad(self, kind: str) -> None:
        """One more unreadable line of ``kind``."""
        self.bad_lines[kind] = self.bad_lines.get(kind, 0) + 1

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "format": self.format,
            "compressed": self.compressed,
            "frames_read": self.frames_read,
            "frames_kept": self.frames_kept,
            "unknown_ids": self.unknown_ids,
            "bad_lines": dict(sorted(self.bad_lines.items())),
            "backwards": self.backwards,
            "first_at_s": self.first_at_s,
            "last_at_s": self.last_at_s,
            "error": self.error,
        }
