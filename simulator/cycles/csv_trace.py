"""Speed traces as CSV text: ``time_s,speed_kph`` and optionally ``grade_pct``, one breakpoint a row.

The parser takes text, the caller reads the file. Blank lines and ``#`` comments (whole lines or the
end of a line) are allowed; the first other line is the header. Times need not start at 0: the trace
is shifted to start there. Every error names the line it is about, counting from 1.

    # a short hop
    time_s,speed_kph,grade_pct
    0,0,0
    10,36,1.5
    20,0,0
"""

import math

from simulator.cycles.trace import KPH_PER_MPS, MIN_POINTS, SpeedTrace
from simulator.errors import CycleError

COLUMNS = ("time_s", "speed_kph")
COLUMNS_WITH_GRADE = (*COLUMNS, "grade_pct")

MAX_ACCEL_MPS2 = 10.0
"""No road vehicle changes speed faster than this (about 1 g): a faster change is a broken trace."""

_COMMENT = "#"
_BOM = "\ufeff"


def parse_speed_trace_csv(text: str, name: str) -> SpeedTrace:
    """The speed trace the CSV text describes, named ``name``; CycleError naming the line at fault."""
    label = f"speed trace {name!r}"
    columns: tuple[str, ...] = ()
    header_line = 0
    start_s = 0.0  # the first row's time, which becomes 0
    rows: list[tuple[float, ...]] = []  # time shifted to start at 0, speed, grade if any
    previous = (0, "")  # line and time text of the last row
    for number, line in enumerate(text.removeprefix(_BOM).splitlines(), start=1):
        content = line.split(_COMMENT, 1)[0].strip()
        if not content:
            continue
        fields = [field.strip() for field in content.split(",")]
        if not columns:
            columns, header_line = _header(label, number, fields), number
            continue
        if len(fields) != len(columns):
            raise CycleError(
                f"{label}, line {number}: {len(fields)} column{'' if len(fields) == 1 else 's'};"
                f" the header ({','.join(columns)}, line {header_line}) has {len(columns)}"
            )
        values = _numbers(label, number, fields, columns)
        if not rows:
            start_s = values[0]
        row = (values[0] - start_s, *values[1:])
        if rows:
            _check_step(f"{label}, line {number}", rows[-1], row, fields[0], previous)
        rows.append(row)
        previous = (number, fields[0])
    if not columns:
        raise CycleError(f"{label}: no header; expected {','.join(COLUMNS)!r} on the first line")
    if len(rows) < MIN_POINTS:
        raise CycleError(
            f"{label}: {len(rows)} data row{'' if len(rows) == 1 else 's'} after the header (line {header_line});"
            f" at least {MIN_POINTS} are needed"
        )
    return SpeedTrace(
        name=name,
        time_s=tuple(row[0] for row in rows),
        speed_kph=tuple(row[1] for row in rows),
        grade_pct=tuple(row[2] for row in rows) if len(columns) == len(COLUMNS_WITH_GRADE) else None,
    )


def format_speed_trace_csv(trace: SpeedTrace) -> str:
    """The CSV text of a trace, exact (shortest round-trip floats), that parses back to the same trace."""
    columns = COLUMNS if trace.grade_pct is None else COLUMNS_WITH_GRADE
    lines = [",".join(columns)]
    for i, time in enumerate(trace.time_s):
        fields = [time, trace.speed_kph[i]] + ([] if trace.grade_pct is None else [trace.grade_pct[i]])
        lines.append(",".join(repr(value) for value in fields))
    return "\n".join(lines) + "\n"


def _header(label: str, line: int, fields: list[str]) -> tuple[str, ...]:
    columns = tuple(field.lower() for field in fields)
    if columns not in (COLUMNS, COLUMNS_WITH_GRADE):
        raise CycleError(
            f"{label}, line {line}: expected the header {','.join(COLUMNS)!r} or {','.join(COLUMNS_WITH_GRADE)!r},"
            f" got {','.join(fields)!r}"
        )
    return columns


def _numbers(label: str, line: int, fields: list[str], columns: tuple[str, ...]) -> tuple[float, ...]:
    """The row's values, each a finite number; the speed not negative."""
    values: list[float] = []
    for column, field in zip(columns, fields, strict=True):
        try:
            value = float(field)
        except ValueError:
            raise CycleError(f"{label}, line {line}: {column} {field!r} is not a number") from None
        if not math.isfinite(value):
            raise CycleError(f"{label}, line {line}: {column} is {field!r}, not a finite number")
        values.append(value)
    if values[1] < 0.0:
        raise CycleError(f"{label}, line {line}: speed_kph {fields[1]!r} is negative")
    return tuple(values)


def _check_step(
    where: str, before: tuple[float, ...], after: tuple[float, ...], time_text: str, previous: tuple[int, str]
) -> None:
    """Times strictly increasing and a speed change a road vehicle can make (times already from 0)."""
    dt_s = after[0] - before[0]
    if not dt_s > 0.0:
        raise CycleError(f"{where}: time_s {time_text} is not after {previous[1]} on line {previous[0]}")
    accel_mps2 = abs(after[1] - before[1]) / KPH_PER_MPS / dt_s
    if accel_mps2 > MAX_ACCEL_MPS2:
        raise CycleError(
            f"{where}: the speed goes from {before[1]!r} to {after[1]!r} km/h in {dt_s:g} s"
            f" ({accel_mps2:.3g} m/s²), more than the {MAX_ACCEL_MPS2:g} m/s² a road vehicle can manage"
        )
