"""Structured logs: every line is an event name followed by ``key=value`` fields.

The apps log ``"record.sealed type=%s sequence=%d"``-style messages; this module
renders them for the journal as one line each — ``logfmt`` for people and grep, or ``json``
(one object per line: time, level, logger, event and the fields) for log shippers.
"""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

LOG_FORMATS = ("logfmt", "json")
_FIELD = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LogfmtFormatter(logging.Formatter):
    """``2026-11-24T07:30:00.000Z INFO agent record.sealed type=trip sequence=3``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += " exception=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "event": ..., "fields": {...}}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        event, _, rest = record.getMessage().partition(" ")
        fields = {name: _unquote(value) for name, value in _FIELD.findall(rest)}
        body: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
            "fields": fields,
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":  # noqa: PLR2004 - two quote marks
        return value[1:-1]
    return value


def configure_logging(log_format: str, level: str, stream: TextIO = sys.stderr) -> None:
    """Send every log line of the process to ``stream`` in ``log_format`` (``logfmt`` or ``json``)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # paho logs through its own logger only when asked; python-can's are chatty at INFO.
    logging.getLogger("can").setLevel(max(logging.WARNING, root.level))
