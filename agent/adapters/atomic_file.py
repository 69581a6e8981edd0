"""Replace a file's content all at once: readers see the old file or the new one, never half of one."""

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    Raises OSError (the target untouched, the temporary file removed) when the directory is
    missing or not writable, or the disk is full.
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            # mkstemp makes the file private (0600); an output file gets the usual mode, as open() would.
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # The only way to read the umask is to set it; set it straight back.
    current = os.umask(0o022)
    os.umask(current)
    return current
