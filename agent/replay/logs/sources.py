"""A log file open for streaming: gzip read through when its magic bytes say so, text cut into blocks of lines.

Lines come in blocks (a list per ``BLOCK_BYTES`` read) so that the format readers run their loop
over a list, the cheapest iteration Python has, and count frames per block rather than per line.
Memory stays bounded whatever the file: one block, plus at most ``MAX_LINE_BYTES`` of a line that
crosses blocks; a longer "line" (binary junk without line ends) is read past and counted as garbage.
"""

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.replay.logs.formats import GZIP_MAGIC, LogFormatError
from agent.replay.logs.report import LogReport

BLOCK_BYTES = 256 * 1024
"""Bytes read at a time (decompressed, for gzip)."""
MAX_LINE_BYTES = 64 * 1024
"""The longest line kept whole across two blocks; far beyond any CAN log's line."""
STREAM_ERRORS = (OSError, EOFError, zlib.error)
"""What reading a damaged or truncated file raises (gzip: EOFError, BadGzipFile, zlib.error)."""


@dataclass(slots=True)
class LogSource:
    """An open log: the binary stream to read (decompressed when the file is gzip) and how far it got."""

    path: Path
    stream: io.BufferedReader | gzip.GzipFile
    """The file, or the gzip stream over it."""
    compressed: bool
    bytes_read: int = 0
    """Bytes read so far from ``stream`` by ``line_blocks``."""
    raw: io.BufferedReader | None = None
    """The file on disk under the gzip stream (None: ``stream`` is the file): where progress is measured."""

    def size(self) -> int:
        """The file's size on disk (0 for a pipe)."""
        file = self.raw or self.stream
        try:
            return max(os.fstat(file.fileno()).st_size, 0)
        except (OSError, ValueError):
            return 0

    def position(self) -> int:
        """How far into the file on disk reading got (gzip: its compressed bytes, read ahead by a buffer)."""
        file = self.raw or self.stream
        try:
            return file.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self.stream.close()

    def is_empty(self) -> bool:
        """Whether the file (decompressed) holds no byte at all; reads nothing."""
        return not self.stream.peek(1)

    def damage(self, err: BaseException) -> str:
        """What to report when reading stopped on ``err`` (where, when the bytes were counted here)."""
        if not self.bytes_read:
            return f"damaged or cut short: {err}"
        where = f"{self.bytes_read:,} bytes{' (decompressed)' if self.compressed else ''}"
        return f"damaged or cut short after {where}: {err}"


def open_source(path: Path) -> LogSource:
    """Open ``path`` for reading, through gzip when it starts with the gzip magic bytes.

    Peeks rather than reads, so a pipe works too: nothing is consumed before the reader starts.
    """
    try:
        raw = path.open("rb")
    except OSError as err:
        raise LogFormatError(f"{path}: cannot open the CAN log: {err.strerror or err}") from err
    try:
        compressed = raw.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC
    except OSError as err:
        raw.close()
        raise LogFormatError(f"{path}: cannot read the CAN log: {err.strerror or err}") from err
    if not compressed:
        return LogSource(path, raw, compressed=False)
    # GzipFile does not own a file object it is given: close() must close both.
    return LogSource(path, _OwningGzipFile(raw), compressed=True, raw=raw)


class _OwningGzipFile(gzip.GzipFile):
    """A GzipFile that also closes the file it reads from (a plain GzipFile leaves a given file open)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def line_blocks(source: LogSource, report: LogReport) -> Iterator[list[bytes]]:
    """The file's lines (without their line feed; a carriage return may remain), a block at a time.

    A read that fails (a gzip cut short, a damaged deflate stream) ends the lines and sets
    ``report.error``; so does a last line without a line end, which is still given (it is often
    whole), since a log that a tool finished writing ends with one.
    """
    stream = source.stream
    carry = b""
    skipping = False  # inside a line longer than MAX_LINE_BYTES: read on to its end
    while True:
        try:
            block = stream.read1(BLOCK_BYTES)  # at most one read: a pipe gives what it has
        except STREAM_ERRORS as err:
            report.error = source.damage(err)
            break
        if not block:
            break
        source.bytes_read += len(block)
        report.position_bytes = source.position()
        if skipping:
            end = block.find(b"\n")
            if end < 0:
                continue
            block = block[end + 1 :]
            skipping = False
        lines = (carry + block).split(b"\n") if carry else block.split(b"\n")
        carry = lines.pop()
        if len(carry) > MAX_LINE_BYTES:
            report.count_bad("garbage")
            carry, skipping = b"", True
        if lines:
            yield lines
    if carry.strip():
        if report.error is None:
            report.error = "the file ends in the middle of a line: it may have been cut short"
        yield [carry]


# The text readers add a whole block's lines to ``frames_read`` before looking at them (a counter
# per line would cost more than the look-up that skips it) and take back each line that turns out
# to be no frame: a header, a comment, an event, a blank or an unreadable line.


def not_a_frame(report: LogReport) -> None:
    """A line of the block just counted was no frame (a header, comment, event or blank line)."""
    report.frames_read -= 1


def unreadable(report: LogReport, kind: str) -> None:
    """A line of the block just counted could not be read: counted as a bad line of ``kind``, not a frame."""
    report.frames_read -= 1
    report.count_bad(kind)
