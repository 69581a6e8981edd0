"""Which format a CAN log is in, told from its content: gzip magic first, then its first bytes or lines.

The file name is only a tie-break: a ``.csv`` may be python-can's CSV or a SavvyCAN export, a
``.log`` anything at all, and engineers rename files. Binary formats are known by their magic
bytes (BLF ``LOGG``, MDF ``MDF     `` or ``UnFinMF ``). A text log is known by the first line, among
the first ``HEAD_BYTES``, that looks like a header or a frame line of one format; lines before it
(a stray comment, a damaged first line) do not matter.
"""

import gzip
import re
import zlib
from pathlib import Path
from typing import Final

from agent.errors import SourceError

LOG_FORMATS: Final = ("candump", "asc", "blf", "trc", "csv", "mf4", "savvycan")
"""Every format read: candump ``-L``, Vector ASC and BLF, PEAK TRC, python-can's CSV, ASAM MDF 4, SavvyCAN CSV."""

HEAD_BYTES = 64 * 1024
"""How much of a log (after decompression) is looked at to tell its format."""
GZIP_MAGIC = b"\x1f\x8b"

_BY_SUFFIX: Final = {
    ".log": "candump",
    ".asc": "asc",
    ".blf": "blf",
    ".trc": "trc",
    ".csv": "csv",
    ".mf4": "mf4",
}
_BINARY_MAGIC: Final = ((b"LOGG", "blf"), (b"MDF     ", "mf4"), (b"UnFinMF ", "mf4"))
_TEXT_SIGNATURES: Final = (
    # (1436509052.249713) can0 123#DEADBEEF
    ("candump", re.compile(rb"\(\d+(?:\.\d+)?\)\s+\S+\s+[0-9A-Fa-f]{1,8}#")),
    # header keywords, or a frame line: 0.012345 1  123x  Rx   d 8 ... / 0.012345 CANFD 1 Rx ...
    (
        "asc",
        re.compile(
            rb"(?i:date\s|base\s+(?:hex|dec)\b|(?:no\s+)?internal\s+events\s+logged|begin\s+triggerblock\b)"
            rb"|\d+\.\d+\s+(?:\d+\s+[0-9A-Fa-f]+x?\s+(?:Rx|Tx)\s|CANFD\s)"
        ),
    ),
    # ;$FILEVERSION=2.1, a version 1.x frame line "1)  1841.0 ..." or a 2.x one "1  17535.400 DT ..."
    ("trc", re.compile(rb";\$FILEVERSION|\d+\)\s+\d+(?:\.\d+)?\s|\d+\s+\d+\.\d+\s+(?:DT|FD|FB|FE|BI|RR)\s")),
    ("csv", re.compile(rb"timestamp,arbitration_id,extended,remote,error,dlc,data\b")),
    ("savvycan", re.compile(rb"(?i:time\s*stamp\s*,\s*id\s*,\s*extended\s*,)")),
)


class LogFormatError(SourceError):
    """A log that cannot be read at all: missing, unreadable, or in no format this reader knows."""


def format_by_name(path: Path) -> str | None:
    """The format a file's suffix suggests (``.gz`` looked through), or None."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return _BY_SUFFIX.get(suffixes[-1]) if suffixes else None


def detect_format(path: Path) -> tuple[str, bool]:
    """(format, gzip-compressed) of a log, from its content; the suffix only breaks a tie.

    An empty file takes the format its suffix names (it holds no frames either way). Raises
    ``LogFormatError`` naming the file for a missing or unreadable file and for content in no
    format of ``LOG_FORMATS``.
    """
    head, compressed = read_head(path)
    by_name = format_by_name(path)
    if not head.strip():
        if by_name is None:
            raise LogFormatError(f"{path}: the file is empty, and its name does not say which CAN log format it is")
        return by_name, compressed
    detected = format_of_content(head, by_name)
    if detected is None:
        raise LogFormatError(
            f"{path}: not a CAN log in a format read here ({', '.join(LOG_FORMATS)}); "
            f"its {'uncompressed ' if compressed else ''}content begins {head[:48]!r}"
        )
    return detected, compressed


def format_of_content(head: bytes, by_name: str | None = None) -> str | None:
    """The format whose magic bytes or first recognisable line ``head`` shows; None when none fits."""
    for magic, name in _BINARY_MAGIC:
        if head.startswith(magic):
            return name
    for line in head.split(b"\n"):
        text = line.strip()
        if not text:
            continue
        matching = [name for name, signature in _TEXT_SIGNATURES if signature.match(text)]
        if matching:
            return by_name if by_name in matching else matching[0]
    return None


def read_head(path: Path) -> tuple[bytes, bool]:
    """The first ``HEAD_BYTES`` of a log (decompressed when it is gzip), and whether it was."""
    try:
        with path.open("rb") as raw:
            start = raw.read(HEAD_BYTES)
            if not start.startswith(GZIP_MAGIC):
                return start, False
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as unpacked:
                return _read_up_to(unpacked, HEAD_BYTES, path), True
    except FileNotFoundError:
        raise LogFormatError(f"{path}: no such CAN log") from None
    except IsADirectoryError:
        raise LogFormatError(f"{path}: is a directory, not a CAN log") from None
    except OSError as err:
        raise LogFormatError(f"{path}: cannot read the CAN log: {err.strerror or err}") from err


def _read_up_to(stream: gzip.GzipFile, size: int, path: Path) -> bytes:
    """Up to ``size`` bytes; a stream cut short gives what came before the cut."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        try:
            part = stream.read1(size - got)  # one step at a time: a cut loses nothing before it
        except EOFError:
            break  # a gzip cut short: its start still tells the format; the reader reports the cut
        except (gzip.BadGzipFile, zlib.error) as err:
            if got:
                break
            raise LogFormatError(f"{path}: a damaged gzip file: {err}") from err
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
