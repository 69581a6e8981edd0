"""Speed traces, the seeded synthetic cycles and the registry of drive cycles."""

import dataclasses
import itertools
import math
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.cycles import CYCLES, cycle_by_name, synthetic
from simulator.cycles.nedc import nedc
from simulator.cycles.trace import MAX_SAMPLES, SpeedTrace
from simulator.errors import CycleError

# --- strategies ----------------------------------------------------------------------------------


@st.composite
def traces(draw: st.DrawFn) -> SpeedTrace:
    """Valid traces of up to 20 breakpoints, at most about half an hour long, with or without grade."""
    count = draw(st.integers(2, 20))
    gaps_s = draw(st.lists(st.floats(0.05, 100.0), min_size=count - 1, max_size=count - 1))
    time_s = [0.0]
    for gap_s in gaps_s:
        time_s.append(time_s[-1] + gap_s)
    speed_kph = draw(st.lists(st.floats(0.0, 200.0), min_size=count, max_size=count))
    grade_pct = draw(st.none() | st.lists(st.floats(-20.0, 20.0), min_size=count, max_size=count))
    return SpeedTrace(
        name="drawn",
        time_s=tuple(time_s),
        speed_kph=tuple(speed_kph),
        grade_pct=None if grade_pct is None else tuple(grade_pct),
    )


steps_s = st.floats(0.05, 50.0)
seeds = st.integers(0, 2**32 - 1)

HOP = SpeedTrace(name="hop", time_s=(0.0, 10.0, 20.0), speed_kph=(0.0, 36.0, 0.0), grade_pct=(0.0, 2.0, -2.0))
"""Up to 10 m/s at 1 m/s² and back down: 100 m in 20 s."""


def slopes_mps2(trace: SpeedTrace) -> list[float]:
    return [
        (trace.speed_kph[i + 1] - trace.speed_kph[i]) / 3.6 / (trace.time_s[i + 1] - trace.time_s[i])
        for i in range(len(trace.time_s) - 1)
    ]


# --- SpeedTrace: values --------------------------------------------------------------------------


def test_distance_is_the_integral_of_the_linear_speed() -> None:
    """Distance is the area under the straight lines between breakpoints, in metres."""
    assert HOP.distance_m == pytest.approx(100.0)
    assert HOP.duration_s == 20.0
    assert HOP.average_speed_kph == pytest.approx(18.0)


def test_speed_is_interpolated_inside_and_zero_outside() -> None:
    """The speed runs straight between breakpoints and is 0 before the start and after the end."""
    assert HOP.speed_kph_at(5.0) == pytest.approx(18.0)
    assert HOP.speed_kph_at(10.0) == 36.0
    assert HOP.speed_kph_at(15.0) == pytest.approx(18.0)
    assert HOP.speed_kph_at(-0.1) == 0.0
    assert HOP.speed_kph_at(20.1) == 0.0
    assert HOP.speed_kph_at(math.nan) == 0.0


def test_grade_is_interpolated_inside_and_held_outside() -> None:
    """The grade runs straight between breakpoints; beyond the trace the road keeps its end grades."""
    assert HOP.grade_pct_at(5.0) == pytest.approx(1.0)
    assert HOP.grade_pct_at(15.0) == pytest.approx(0.0)
    assert HOP.grade_pct_at(-5.0) == 0.0
    assert HOP.grade_pct_at(25.0) == -2.0
    flat = dataclasses.replace(HOP, grade_pct=None)
    assert flat.grade_pct_at(5.0) == 0.0


def test_a_trace_is_frozen() -> None:
    """A trace cannot be changed once built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        HOP.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"name": ""}, "needs a name"),
        ({"time_s": (0.0,), "speed_kph": (0.0,), "grade_pct": None}, "1 points"),
        ({"speed_kph": (0.0, 1.0)}, "2 speeds for 3 times"),
        ({"grade_pct": (0.0,)}, "1 grades for 3 times"),
        ({"time_s": (1.0, 10.0, 20.0)}, "time_s[0]"),
        ({"time_s": (0.0, 10.0, 10.0)}, "time_s[2]"),
        ({"time_s": (0.0, 10.0, 5.0)}, "time_s[2]"),
        ({"time_s": (0.0, math.inf, 20.0)}, "time_s[1]"),
        ({"time_s": (0.0, math.nan, 20.0)}, "time_s[1]"),
        ({"speed_kph": (0.0, -1.0, 0.0)}, "speed_kph[1]"),
        ({"speed_kph": (0.0, 1.0, math.nan)}, "speed_kph[2]"),
        ({"speed_kph": (math.inf, 1.0, 0.0)}, "speed_kph[0]"),
        ({"grade_pct": (0.0, math.nan, 0.0)}, "grade_pct[1]"),
    ],
)
def test_a_malformed_trace_is_refused_naming_the_index(fields: dict[str, Any], fragment: str) -> None:
    """Building a trace that breaks a rule raises CycleError naming the field and index at fault."""
    with pytest.raises(CycleError) as caught:
        dataclasses.replace(HOP, **fields)
    assert fragment in str(caught.value)


# --- SpeedTrace.sampled ----------------------------------------------------------------------------


def test_sampled_gives_speeds_and_the_slope_of_each_segment() -> None:
    """Samples at 0, 5, 10, 15, 20 s: speeds in m/s, each with the slope of the segment it starts."""
    speeds_mps, accels_mps2 = HOP.sampled(5.0)
    assert speeds_mps == pytest.approx((0.0, 5.0, 10.0, 5.0, 0.0))
    assert accels_mps2 == pytest.approx((1.0, 1.0, -1.0, -1.0, -1.0))


def test_sampled_stops_at_the_last_step_before_the_end() -> None:
    """With a step that does not divide the duration, the last sample is the last step inside it."""
    speeds_mps, _ = HOP.sampled(3.0)
    assert len(speeds_mps) == 7  # 0, 3, …, 18 s
    assert speeds_mps[-1] == pytest.approx(2.0)


def test_sampled_keeps_the_end_despite_float_rounding() -> None:
    """3 × 0.1 is a hair over 0.3 in floating point; the sample at the end is still there."""
    trace = SpeedTrace(name="short", time_s=(0.0, 0.3), speed_kph=(0.0, 3.6))
    speeds_mps, accels_mps2 = trace.sampled(0.1)
    assert len(speeds_mps) == 4
    assert speeds_mps[-1] == 1.0
    assert accels_mps2 == pytest.approx((1 / 0.3,) * 4)


@pytest.mark.parametrize("step_s", [0.0, -0.01, math.nan, math.inf])
def test_sampled_refuses_a_step_that_is_not_positive(step_s: float) -> None:
    """The sampling step must be a positive finite number of seconds."""
    with pytest.raises(CycleError, match="sampling step"):
        HOP.sampled(step_s)


def test_sampled_refuses_more_samples_than_its_bound() -> None:
    """A trace is never sampled into more than MAX_SAMPLES values."""
    long = SpeedTrace(name="long", time_s=(0.0, MAX_SAMPLES * 0.01), speed_kph=(0.0, 0.0))
    with pytest.raises(CycleError, match="samples"):
        long.sampled(0.01)


@given(traces(), steps_s)
def test_sampled_speeds_agree_with_speed_at_the_sample_times(trace: SpeedTrace, step_s: float) -> None:
    """Sample k is the speed at min(k·step, duration), in m/s; the samples cover the whole trace."""
    speeds_mps, accels_mps2 = trace.sampled(step_s)
    assert len(speeds_mps) == len(accels_mps2)
    assert (len(speeds_mps) - 1) * step_s <= trace.duration_s * (1 + 1e-12) + 1e-6 * step_s
    assert len(speeds_mps) * step_s > trace.duration_s
    expected_mps = [trace.speed_kph_at(min(k * step_s, trace.duration_s)) / 3.6 for k in range(len(speeds_mps))]
    assert list(speeds_mps) == expected_mps
    assert min(speeds_mps) >= 0.0


@given(traces(), steps_s)
def test_sampled_accelerations_are_the_slope_of_the_segment_holding_each_sample(
    trace: SpeedTrace, step_s: float
) -> None:
    """The acceleration of sample k is the slope of the segment that starts at or before k·step."""
    _, accels_mps2 = trace.sampled(step_s)
    slopes = slopes_mps2(trace)
    for k, accel_mps2 in enumerate(accels_mps2):
        segment = min(bisect_right(trace.time_s, k * step_s) - 1, len(slopes) - 1)
        assert accel_mps2 == slopes[segment]


@given(traces(), steps_s)
def test_sampled_speeds_times_step_approximate_the_distance(trace: SpeedTrace, step_s: float) -> None:
    """The sum of speed × step is the distance, within what one step of each speed change can add."""
    speeds_mps, _ = trace.sampled(step_s)
    changes_mps = sum(abs(b - a) for a, b in itertools.pairwise(trace.speed_kph)) / 3.6
    top_mps = max(trace.speed_kph) / 3.6
    bound_m = step_s * (changes_mps + 2 * top_mps) + 1e-6
    assert abs(math.fsum(speeds_mps) * step_s - trace.distance_m) <= bound_m


def test_sampled_is_one_forward_walk() -> None:
    """A 4-hour mixed cycle at the simulator's 0.01 s step: 1.44 million samples, every speed plausible."""
    trace = synthetic.mixed(7, 4 * 3600.0)
    speeds_mps, accels_mps2 = trace.sampled(0.01)
    assert len(speeds_mps) == 4 * 360_000 + 1
    assert max(speeds_mps) <= 130 / 3.6
    assert max(abs(a) for a in accels_mps2) <= synthetic.DECEL_MAX_MPS2


# --- synthetic cycles ------------------------------------------------------------------------------

Generator = Callable[[int, float], SpeedTrace]
KINDS: list[tuple[Generator, float, float, float]] = [
    # generator, average speed range (km/h, stops included), top speed (km/h)
    (synthetic.urban, 10.0, 35.0, 50.0),
    (synthetic.suburban, 35.0, 75.0, 80.0),
    (synthetic.highway, 80.0, 125.0, 130.0),
    (synthetic.mixed, 30.0, 80.0, 130.0),
]
GENERATORS = [kind[0] for kind in KINDS]
DEFAULT_DURATION_S: dict[Generator, float] = {
    synthetic.urban: synthetic.URBAN.default_duration_s,
    synthetic.suburban: synthetic.SUBURBAN.default_duration_s,
    synthetic.highway: synthetic.HIGHWAY.default_duration_s,
    synthetic.mixed: synthetic.MIXED_DEFAULT_DURATION_S,
}


def stands_s(trace: SpeedTrace) -> tuple[list[float], float]:
    """How long each stop inside the trace lasts, and how long it stands at the end."""
    stands: list[float] = []
    start_s: float | None = None
    for i in range(len(trace.time_s) - 1):
        if trace.speed_kph[i] == 0.0 and trace.speed_kph[i + 1] == 0.0:
            start_s = trace.time_s[i] if start_s is None else start_s
        elif start_s is not None:
            stands.append(trace.time_s[i] - start_s)
            start_s = None
    return stands, 0.0 if start_s is None else trace.duration_s - start_s


@pytest.mark.parametrize(("generate", "low_kph", "high_kph", "top_kph"), KINDS)
@given(seed=seeds)
def test_synthetic_speeds_are_those_of_their_road(
    generate: Generator, low_kph: float, high_kph: float, top_kph: float, seed: int
) -> None:
    """Each kind of cycle has an average speed typical of its road and never exceeds its top speed."""
    trace = generate(seed, DEFAULT_DURATION_S[generate])
    assert low_kph <= trace.average_speed_kph <= high_kph
    assert max(trace.speed_kph) <= top_kph


@pytest.mark.parametrize("generate", GENERATORS)
@given(seed=seeds, duration_s=st.floats(synthetic.MIN_DURATION_S, 7200.0))
def test_synthetic_cycles_start_and_end_at_standstill_and_last_the_duration(
    generate: Generator, seed: int, duration_s: float
) -> None:
    """Every synthetic cycle starts and ends standing still and lasts exactly the duration asked for."""
    trace = generate(seed, duration_s)
    assert trace.speed_kph[0] == 0.0
    assert trace.speed_kph[-1] == 0.0
    assert trace.duration_s == duration_s


@pytest.mark.parametrize("generate", GENERATORS)
@given(seed=seeds, duration_s=st.floats(synthetic.MIN_DURATION_S, 7200.0))
def test_synthetic_accelerations_are_within_comfortable_limits(
    generate: Generator, seed: int, duration_s: float
) -> None:
    """Every change of speed is at 0.5–2.5 m/s² up and 0.5–3 m/s² down."""
    for slope in slopes_mps2(generate(seed, duration_s)):
        if slope > 0.0:
            assert synthetic.ACCEL_MIN_MPS2 * (1 - 1e-9) <= slope <= synthetic.ACCEL_MAX_MPS2 * (1 + 1e-9)
        elif slope < 0.0:
            assert synthetic.DECEL_MIN_MPS2 * (1 - 1e-9) <= -slope <= synthetic.DECEL_MAX_MPS2 * (1 + 1e-9)


@pytest.mark.parametrize("generate", GENERATORS)
@given(seed=seeds)
def test_synthetic_grades_are_mild(generate: Generator, seed: int) -> None:
    """The road stays within ±3 % and changes by at most 1 % from one breakpoint to the next."""
    grades = generate(seed, DEFAULT_DURATION_S[generate]).grade_pct
    assert grades is not None
    assert all(abs(grade) <= synthetic.GRADE_MAX_PCT for grade in grades)
    assert all(abs(b - a) <= synthetic.GRADE_STEP_MAX_PCT + 1e-12 for a, b in itertools.pairwise(grades))


@pytest.mark.parametrize("generate", GENERATORS)
@given(seed=seeds)
def test_synthetic_stops_last_a_few_seconds_to_a_minute(generate: Generator, seed: int) -> None:
    """Stops inside a cycle last 3–60 s; the stand at the end is at most a minute and a few seconds."""
    stands, final_s = stands_s(generate(seed, DEFAULT_DURATION_S[generate]))
    assert all(synthetic.IDLE_MIN_S - 1e-9 <= stand <= synthetic.IDLE_MAX_S + 1e-9 for stand in stands)
    assert synthetic.FINAL_IDLE_S - 1e-6 <= final_s <= synthetic.IDLE_MAX_S + 10.0


def test_highway_cycles_stop_rarely_and_urban_ones_often() -> None:
    """Over 100 seeds, a highway cycle stops less than once on average, an urban one at least 8 times."""
    highway_stops = [len(stands_s(synthetic.highway(seed))[0]) for seed in range(100)]
    urban_stops = [len(stands_s(synthetic.urban(seed))[0]) for seed in range(100)]
    assert sum(highway_stops) / 100 < 1.0
    assert sum(urban_stops) / 100 >= 8.0


@pytest.mark.parametrize("generate", GENERATORS)
@given(seed=seeds, other=seeds)
def test_synthetic_cycles_depend_on_the_seed_alone(generate: Generator, seed: int, other: int) -> None:
    """The same seed gives the same trace; another seed gives another trace."""
    assert generate(seed, 600.0) == generate(seed, 600.0)
    if other != seed:
        assert generate(other, 600.0).speed_kph != generate(seed, 600.0).speed_kph


@pytest.mark.parametrize("generate", GENERATORS)
@pytest.mark.parametrize("duration_s", [59.9, 86_400.1, math.nan, math.inf, -1.0])
def test_synthetic_cycles_refuse_durations_out_of_range(generate: Generator, duration_s: float) -> None:
    """A synthetic cycle lasts a minute to a day."""
    with pytest.raises(CycleError, match="synthetic cycle lasts"):
        generate(1, duration_s)


@pytest.mark.parametrize("generate", GENERATORS)
def test_synthetic_cycles_refuse_negative_seeds(generate: Generator) -> None:
    """Seeds are non-negative: Random would draw the same numbers for n and -n."""
    with pytest.raises(CycleError, match="non-negative"):
        generate(-1, 600.0)


@pytest.mark.parametrize("profile", synthetic.PROFILES)
def test_road_profiles_lie_within_the_comfortable_limits(profile: synthetic.RoadProfile) -> None:
    """Each road profile draws its rates and stops from inside the global limits."""
    assert synthetic.ACCEL_MIN_MPS2 <= profile.accel_mps2[0] <= profile.accel_mps2[1] <= synthetic.ACCEL_MAX_MPS2
    assert synthetic.DECEL_MIN_MPS2 <= profile.decel_mps2[0] <= profile.decel_mps2[1] <= synthetic.DECEL_MAX_MPS2
    assert synthetic.IDLE_MIN_S <= profile.idle_s[0] <= profile.idle_s[1] <= synthetic.IDLE_MAX_S
    assert 0.0 <= profile.stop_probability <= 1.0


# --- registry --------------------------------------------------------------------------------------


def test_the_registry_names_every_built_in_cycle() -> None:
    """The registry holds the four synthetic cycles and the NEDC."""
    assert set(CYCLES) == {"urban", "suburban", "highway", "mixed", "nedc"}


@pytest.mark.parametrize(
    ("name", "generate", "duration_s"),
    [
        ("urban", synthetic.urban, 1200.0),
        ("suburban", synthetic.suburban, 1200.0),
        ("highway", synthetic.highway, 1800.0),
        ("mixed", synthetic.mixed, 2400.0),
    ],
)
def test_cycle_by_name_builds_synthetic_cycles_with_their_default_duration(
    name: str, generate: Generator, duration_s: float
) -> None:
    """A synthetic cycle by name, any case, is the generator's trace for the seed and default duration."""
    trace = cycle_by_name(f" {name.upper()} ", 3)
    assert trace == generate(3, duration_s)
    assert trace.duration_s == duration_s
    assert cycle_by_name(name, 3, 300.0) == generate(3, 300.0)


def test_cycle_by_name_builds_the_nedc_whatever_the_seed_and_duration() -> None:
    """The NEDC is fixed: seed and duration make no difference."""
    assert cycle_by_name("nedc", 1) == cycle_by_name("NEDC", 99, 60.0) == nedc()


def test_cycle_by_name_lists_the_known_names_for_an_unknown_one() -> None:
    """An unknown name raises CycleError that names it and every known cycle."""
    with pytest.raises(CycleError) as caught:
        cycle_by_name("wltp", 1)
    message = str(caught.value)
    assert "'wltp'" in message
    assert all(name in message for name in CYCLES)
