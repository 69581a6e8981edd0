"""A user's speed-trace CSV: parsed into a SpeedTrace, or refused with the line at fault."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.cycles.csv_trace import MAX_ACCEL_MPS2, format_speed_trace_csv, parse_speed_trace_csv
from simulator.cycles.synthetic import urban
from simulator.cycles.trace import SpeedTrace
from simulator.errors import CycleError

# A speed may change by at most this many km/h per second (a hair under 10 m/s²).
MAX_CHANGE_KPH_PER_S = MAX_ACCEL_MPS2 * 3.6 * 0.999


# Gaps between rows: 10 ms to a quarter of an hour.
any_gaps_s = st.floats(0.01, 1000.0)


@st.composite
def traces(draw: st.DrawFn, gaps_s: st.SearchStrategy[float] = any_gaps_s) -> SpeedTrace:
    """Valid traces a road vehicle can drive: up to 30 breakpoints, speed changes under 10 m/s²."""
    count = draw(st.integers(2, 30))
    time_s = [0.0]
    speed_kph = [draw(st.floats(0.0, 250.0))]
    for _ in range(count - 1):
        gap_s = draw(gaps_s)
        reach_kph = MAX_CHANGE_KPH_PER_S * gap_s
        time_s.append(time_s[-1] + gap_s)
        speed_kph.append(draw(st.floats(max(0.0, speed_kph[-1] - reach_kph), min(250.0, speed_kph[-1] + reach_kph))))
    grade_pct = draw(st.none() | st.lists(st.floats(-30.0, 30.0), min_size=count, max_size=count))
    return SpeedTrace(
        name="drawn",
        time_s=tuple(time_s),
        speed_kph=tuple(speed_kph),
        grade_pct=None if grade_pct is None else tuple(grade_pct),
    )


def test_a_trace_with_comments_and_blank_lines_parses() -> None:
    """Comments (whole lines and line ends), blank lines and spaces around fields are ignored."""
    text = "# recorded on the ring road\n\ntime_s, speed_kph\n0, 0\n\n10,36  # first light\n20,0\n"
    trace = parse_speed_trace_csv(text, "ring")
    assert trace == SpeedTrace(name="ring", time_s=(0.0, 10.0, 20.0), speed_kph=(0.0, 36.0, 0.0))
    assert trace.distance_m == pytest.approx(100.0)


def test_a_grade_column_is_read() -> None:
    """A third column grade_pct gives the road grade at each row."""
    trace = parse_speed_trace_csv("time_s,speed_kph,grade_pct\n0,0,1.5\n10,36,-2\n", "hill")
    assert trace.grade_pct == (1.5, -2.0)
    assert trace.grade_pct_at(5.0) == pytest.approx(-0.25)


def test_a_header_in_other_case_and_a_byte_order_mark_are_accepted() -> None:
    """Spreadsheets write a byte order mark and may capitalise the header."""
    trace = parse_speed_trace_csv("\ufeffTime_s,Speed_KPH\r\n0,0\r\n5,18\r\n", "excel")
    assert trace.speed_kph == (0.0, 18.0)


def test_times_are_shifted_to_start_at_zero() -> None:
    """A trace whose first time is not 0 is moved to start at 0, its intervals unchanged."""
    trace = parse_speed_trace_csv("time_s,speed_kph\n100,0\n110.5,20\n130,0\n", "late")
    assert trace.time_s == (0.0, 10.5, 30.0)


def test_a_trace_may_start_and_end_moving() -> None:
    """A recorded excerpt need not start or end at standstill."""
    trace = parse_speed_trace_csv("time_s,speed_kph\n0,50\n60,50\n", "excerpt")
    assert trace.distance_m == pytest.approx(50 / 3.6 * 60)


def test_a_change_of_exactly_10_m_s2_is_allowed() -> None:
    """36 km/h in 1 s is 10 m/s², the limit itself."""
    trace = parse_speed_trace_csv("time_s,speed_kph\n0,0\n1,36\n", "launch")
    assert trace.speed_kph == (0.0, 36.0)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["no header"]),
        ("# only a comment\n\n", ["no header"]),
        ("0,0\n1,1\n", ["line 1", "header"]),
        ("# note\n\ntime,speed\n0,0\n1,1\n", ["line 3", "header", "'time,speed'"]),
        ("time_s,speed_kph,grade\n0,0,0\n1,1,0\n", ["line 1", "header"]),
        ("time_s,speed_kph\n0,0\n1,2,3\n", ["line 3", "3 columns", "has 2"]),
        ("time_s,speed_kph,grade_pct\n0,0,0\n1,2\n", ["line 3", "2 columns", "has 3"]),
        ("time_s,speed_kph\n0,0\n1,fast\n", ["line 3", "speed_kph", "'fast' is not a number"]),
        ("time_s,speed_kph\n0,0\n\n1,\n", ["line 4", "speed_kph", "'' is not a number"]),
        ("time_s,speed_kph,grade_pct\n0,0,0\n1,1,steep\n", ["line 3", "grade_pct"]),
        ("time_s,speed_kph\n0,0\n1,-3\n", ["line 3", "negative"]),
        ("time_s,speed_kph\n0,0\n1,nan\n", ["line 3", "speed_kph", "not a finite number"]),
        ("time_s,speed_kph\n0,0\n1,inf\n", ["line 3", "speed_kph", "not a finite number"]),
        ("time_s,speed_kph\n0,0\ninf,1\n", ["line 3", "time_s", "not a finite number"]),
        ("time_s,speed_kph,grade_pct\n0,0,0\n1,1,nan\n", ["line 3", "grade_pct", "not a finite number"]),
        ("time_s,speed_kph\n0,0\n5,10\n5,20\n", ["line 4", "not after"]),
        ("time_s,speed_kph\n0,0\n5,10\n# pause\n4,20\n", ["line 5", "not after"]),
        ("time_s,speed_kph\n", ["0 data rows", "line 1"]),
        ("time_s,speed_kph\n0,0\n", ["1 data row ", "at least 2"]),
        ("time_s,speed_kph\n0,0\n1,40\n", ["line 3", "m/s²"]),
        ("time_s,speed_kph\n0,100\n10,100\n11,50\n", ["line 4", "from 100.0 to 50.0 km/h"]),
    ],
)
def test_a_malformed_csv_is_refused_naming_the_line(text: str, fragments: list[str]) -> None:
    """Each problem raises CycleError naming the trace and the line (counting from 1) at fault."""
    with pytest.raises(CycleError) as caught:
        parse_speed_trace_csv(text, "mine")
    message = str(caught.value)
    assert "'mine'" in message
    for fragment in fragments:
        assert fragment in message


@given(traces())
def test_a_trace_survives_the_round_trip_through_csv(trace: SpeedTrace) -> None:
    """Formatting a trace as CSV and parsing it back gives the same trace, float for float."""
    assert parse_speed_trace_csv(format_speed_trace_csv(trace), trace.name) == trace


# Times in eighths of a second: shifting them by whole eighths is exact in floating point.
eighths_s = st.integers(1, 8000).map(lambda n: n / 8)


@given(traces(gaps_s=eighths_s), st.integers(-80_000, 80_000).map(lambda n: n / 8))
def test_a_shifted_trace_parses_back_to_the_same_trace(trace: SpeedTrace, offset_s: float) -> None:
    """A trace whose times all carry an offset parses back to the trace, starting at 0."""
    header, *rows = format_speed_trace_csv(trace).splitlines()
    shifted = [header]
    for row in rows:
        time, *rest = row.split(",")
        shifted.append(",".join([repr(float(time) + offset_s), *rest]))
    assert parse_speed_trace_csv("\n".join(shifted), trace.name) == trace


def test_a_synthetic_cycle_survives_the_round_trip_through_csv() -> None:
    """A generated urban cycle, grade included, written and read back, is the same trace."""
    trace = urban(11)
    assert parse_speed_trace_csv(format_speed_trace_csv(trace), trace.name) == trace
