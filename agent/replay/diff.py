"""``carbonlink replay diff A.json B.json``: two replays of the same logs, trip by trip.

For a profile change or a new agent version: which trips and charges appeared or vanished, and how
far each figure moved. Records are paired by type and by the longest overlap in time (the same
drive cut a little differently still pairs); what has no partner is listed as only in one run.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.errors import AgentError
from agent.replay.output import REPLAY_FORMAT
from carbonlink.text_table import aligned_rows

FIGURES = ("distance_m", "energy_out_wh", "energy_regen_wh", "energy_in_wh", "wh_per_km", "soc_end_pct")
"""The figures compared, in the order shown."""


class DiffError(AgentError):
    """A file that is not a replay's ``--json`` output."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One record of A and its partner in B; either side is None when it has no partner."""

    kind: str
    a: Mapping[str, object] | None
    b: Mapping[str, object] | None

    def delta(self, figure: str) -> float | None:
        """B minus A for a figure both records have."""
        if self.a is None or self.b is None:
            return None
        before, after = self.a.get(figure), self.b.get(figure)
        if not isinstance(before, int | float) or not isinstance(after, int | float):
            return None
        return float(after) - float(before)

    def differs(self, tolerance_pct: float) -> bool:
        if self.a is None or self.b is None:
            return True
        for figure in FIGURES:
            before, change = self.a.get(figure), self.delta(figure)
            if change is None:
                if self.b.get(figure) != before:
                    return True
                continue
            scale = abs(float(before)) if isinstance(before, int | float) else 0.0
            if abs(change) > scale * tolerance_pct / 100:
                return True
        return False


def load_run(path: Path) -> list[Mapping[str, object]]:
    """The records of a replay's JSON output; :class:`DiffError` naming the file when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DiffError(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise DiffError(f"{path} is not JSON: {err}") from err
    if not isinstance(document, dict) or document.get("format") != REPLAY_FORMAT:
        raise DiffError(f"{path} is not the output of 'carbonlink replay --json' (format {REPLAY_FORMAT})")
    records = document.get("records")
    if not isinstance(records, list) or not all(_is_record(record) for record in records):
        raise DiffError(f"{path}: 'records' must be a list of records with type, start_at and end_at")
    return records


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(key), str) for key in ("type", "start_at", "end_at"))


def pair_runs(a: Sequence[Mapping[str, object]], b: Sequence[Mapping[str, object]]) -> list[Pair]:
    """Every record of both runs, paired where they overlap in time, in time order."""
    pairs: list[Pair] = []
    unpaired_b = list(b)
    for record in a:
        partner = max(
            (other for other in unpaired_b if other["type"] == record["type"] and _overlap_s(record, other) > 0),
            key=lambda other: _overlap_s(record, other),
            default=None,
        )
        if partner is not None:
            unpaired_b.remove(partner)
        pairs.append(Pair(str(record["type"]), record, partner))
    pairs.extend(Pair(str(record["type"]), None, record) for record in unpaired_b)
    return sorted(pairs, key=lambda pair: _start(pair.a if pair.a is not None else pair.b))


def _overlap_s(one: Mapping[str, object], other: Mapping[str, object]) -> float:
    start = max(_time(one["start_at"]), _time(other["start_at"]))
    end = min(_time(one["end_at"]), _time(other["end_at"]))
    return (end - start).total_seconds()


def _start(record: Mapping[str, object] | None) -> datetime:
    assert record is not None  # noqa: S101 - a pair has at least one side
    return _time(record["start_at"])


def _time(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


_HEADER = ("TYPE", "START", "A", "B", "Δ KM", "Δ KWH OUT", "Δ KWH REGEN", "Δ KWH IN", "Δ WH/KM", "Δ SOC END")


def render_diff(pairs: Sequence[Pair], tolerance_pct: float) -> list[str]:
    """The table of pairs (only those that differ, unless none do) and a closing summary line."""
    differing = [pair for pair in pairs if pair.differs(tolerance_pct)]
    lines = aligned_rows(_HEADER, [_row(pair) for pair in differing]) if differing else []
    only_a = sum(1 for pair in pairs if pair.b is None)
    only_b = sum(1 for pair in pairs if pair.a is None)
    lines.append(
        f"{len(pairs) - only_a - only_b} paired, {only_a} only in A, {only_b} only in B, "
        f"{len(differing)} differ (tolerance {tolerance_pct:g} %)"
    )
    return lines


def _row(pair: Pair) -> tuple[str, ...]:
    record = pair.a if pair.a is not None else pair.b
    assert record is not None  # noqa: S101 - a pair has at least one side
    scales = {"distance_m": 1000, "energy_out_wh": 1000, "energy_regen_wh": 1000, "energy_in_wh": 1000}
    cells = []
    for figure in FIGURES:
        change = pair.delta(figure)
        cells.append("" if change is None else f"{change / scales.get(figure, 1):+.3f}")
    return (
        pair.kind,
        _time(record["start_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "yes" if pair.a is not None else "-",
        "yes" if pair.b is not None else "-",
        *cells,
    )
