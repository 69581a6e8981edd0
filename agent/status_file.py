"""The running agent's status, as a small JSON file beside its outbox, for ``carbonlink agent status``.

The outbox has one writer (its lock), so a second process cannot open it while the agent runs;
the agent therefore writes what an operator asks about — outbox counts, the rejected list, the
last ack, the last error, what the bus delivered — to ``<outbox>.status.json`` every few seconds,
after each sealed record and when it stops. The file is replaced atomically (temporary file and
rename) so a reader never sees half of it; it is informational, so it is not fsynced: a power cut
may leave the previous version, which says when it was written.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agent.errors import AgentError

STATUS_FORMAT = 1
STATUS_SUFFIX = ".status.json"


class StatusFileError(AgentError, OSError):
    """The status file is missing, unreadable or not one this agent wrote."""


def status_path(outbox_path: Path) -> Path:
    """Where the agent using ``outbox_path`` writes its status."""
    return outbox_path.with_name(outbox_path.name + STATUS_SUFFIX)


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file with ``status`` (plus its format number), atomically."""
    body = json.dumps({"format": STATUS_FORMAT, **status}, indent=2, sort_keys=True, default=str)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(body + "\n")
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> dict[str, Any]:
    """The status an agent last wrote to ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise StatusFileError(f"no agent status at {path}: the agent has not run with this outbox yet") from err
    except (OSError, UnicodeDecodeError) as err:
        raise StatusFileError(f"cannot read agent status {path}: {err}") from err
    try:
        status = json.loads(text)
    except json.JSONDecodeError as err:
        raise StatusFileError(f"{path} is not an agent status file (not JSON: {err})") from err
    if not isinstance(status, dict) or status.get("format") != STATUS_FORMAT:
        raise StatusFileError(f"{path} is not an agent status file of format {STATUS_FORMAT}")
    return status
