"""What the replay report shades and lists: each record's kind, its number among its kind, its times."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

RECORD_KINDS = ("trip", "charge")


@dataclass(frozen=True, slots=True)
class Span:
    """A trip or charge session: its kind, its number among its kind (from 1), its times (unix seconds)."""

    kind: str
    number: int
    start_s: float
    end_s: float


def record_spans(records: Sequence[Mapping[str, object]]) -> list[Span]:
    """The span of each record, in order; ValueError naming the record if its type or a time is bad."""
    counts = dict.fromkeys(RECORD_KINDS, 0)
    spans = []
    for index, record in enumerate(records, 1):
        kind = record.get("type")
        if not isinstance(kind, str) or kind not in counts:
            raise ValueError(f"record {index} has type {kind!r}; a report shows {' and '.join(RECORD_KINDS)} records")
        counts[kind] += 1
        start_s, end_s = (_unix_seconds(record, index, field) for field in ("start_at", "end_at"))
        spans.append(Span(kind, counts[kind], start_s, end_s))
    return spans


def _unix_seconds(record: Mapping[str, object], index: int, field: str) -> float:
    value = record.get(field)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"record {index} has {field} {value!r}; expected an ISO 8601 time with its offset (…Z)")
    return moment.timestamp()
