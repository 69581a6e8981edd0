"""The NEDC against the published figures of UN ECE Regulation No. 83 and the cycle's literature."""

import itertools
import math

import pytest

from simulator.cycles.nedc import ECE15, EUDC, URBAN_REPEATS, nedc
from simulator.cycles.trace import SpeedTrace

ECE15_S = 195
EUDC_S = 400
URBAN_S = URBAN_REPEATS * ECE15_S

# The regulation's operation tables integrated by hand, operation by operation (mean speed × duration):
# 3666 km/h·s per urban cycle, 25 037.5 km/h·s for the EUDC.
ECE15_TABLE_M = 3666.0 / 3.6
EUDC_TABLE_M = 25037.5 / 3.6


@pytest.fixture(scope="module")
def cycle() -> SpeedTrace:
    return nedc()


def distance_m(trace: SpeedTrace, start_s: int, end_s: int) -> float:
    """Distance between two whole seconds.

    Every breakpoint is on a whole second, so trapezoids over 1 s steps are exact.
    """
    speeds_kph = [trace.speed_kph_at(t) for t in range(start_s, end_s + 1)]
    return math.fsum((a + b) / 2 for a, b in itertools.pairwise(speeds_kph)) / 3.6


def test_nedc_lasts_1180_s(cycle: SpeedTrace) -> None:
    """Four 195 s urban cycles and the 400 s EUDC: 1180 s."""
    assert cycle.duration_s == 1180.0
    assert math.fsum(op.duration_s for op in ECE15) == ECE15_S
    assert math.fsum(op.duration_s for op in EUDC) == EUDC_S


def test_nedc_distance_is_that_of_the_regulation_tables(cycle: SpeedTrace) -> None:
    """11 028 m, the integral of the tables; the regulation's summary 11.007 km is 0.2 % less."""
    assert cycle.distance_m == pytest.approx(URBAN_REPEATS * ECE15_TABLE_M + EUDC_TABLE_M, abs=0.01)
    assert cycle.distance_m / 1000 == pytest.approx(11.007, abs=0.025)


def test_nedc_parts_cover_their_published_distances(cycle: SpeedTrace) -> None:
    """Urban part 4 × 1018 m (published: 4 × 1.013 km); EUDC 6955 m (published: 6.955 km)."""
    for repeat in range(URBAN_REPEATS):
        start_s = repeat * ECE15_S
        urban_m = distance_m(cycle, start_s, start_s + ECE15_S)
        assert urban_m == pytest.approx(ECE15_TABLE_M, abs=1e-9)
        assert urban_m / 1000 == pytest.approx(1.013, rel=0.006)
    extra_urban_m = distance_m(cycle, URBAN_S, URBAN_S + EUDC_S)
    assert extra_urban_m == pytest.approx(EUDC_TABLE_M, abs=1e-9)
    assert extra_urban_m / 1000 == pytest.approx(6.955, abs=0.001)


def test_nedc_average_speed_is_33_6_kph(cycle: SpeedTrace) -> None:
    """Distance over duration, stops included: 33.6 km/h."""
    assert round(cycle.average_speed_kph, 1) == 33.6


def test_nedc_tops_out_at_50_kph_in_town_and_120_kph_outside(cycle: SpeedTrace) -> None:
    """The urban part peaks at 50 km/h, the EUDC at 120 km/h, held for 10 s."""
    assert max(cycle.speed_kph) == 120.0
    assert max(cycle.speed_kph_at(t) for t in range(URBAN_S + 1)) == 50.0
    at_top = [t for t in range(URBAN_S, URBAN_S + EUDC_S + 1) if cycle.speed_kph_at(t) == 120.0]
    assert (at_top[0], at_top[-1]) == (URBAN_S + 336, URBAN_S + 346)


def test_nedc_repeats_the_urban_cycle_four_times(cycle: SpeedTrace) -> None:
    """The speed at each second of the urban part is the same in all four repeats."""
    first = [cycle.speed_kph_at(t) for t in range(ECE15_S)]
    for repeat in range(1, URBAN_REPEATS):
        assert [cycle.speed_kph_at(repeat * ECE15_S + t) for t in range(ECE15_S)] == first


def test_nedc_hits_the_published_breakpoints(cycle: SpeedTrace) -> None:
    """Spot checks against the tables: 15 km/h at 15 s, 32 km/h from 61 to 85 s, 70 km/h at 61 s of the EUDC."""
    assert cycle.speed_kph_at(15) == 15.0
    assert cycle.speed_kph_at(61) == cycle.speed_kph_at(85) == 32.0
    assert cycle.speed_kph_at(143) == cycle.speed_kph_at(155) == 50.0
    assert cycle.speed_kph_at(URBAN_S + 61) == 70.0
    assert cycle.speed_kph_at(URBAN_S + 119) == cycle.speed_kph_at(URBAN_S + 188) == 50.0
    assert cycle.speed_kph_at(URBAN_S + 286) == cycle.speed_kph_at(URBAN_S + 316) == 100.0
    assert cycle.speed_kph_at(URBAN_S + 380) == 0.0


def test_nedc_accelerations_are_the_published_extremes(cycle: SpeedTrace) -> None:
    """The steepest acceleration is 1.04 m/s² (0–15 km/h in 4 s), the steepest deceleration 1.39 m/s²."""
    _, accels_mps2 = cycle.sampled(0.5)
    assert max(accels_mps2) == pytest.approx(1.04, abs=0.005)
    assert min(accels_mps2) == pytest.approx(-1.39, abs=0.005)


def test_nedc_starts_and_ends_standing_on_a_flat_road(cycle: SpeedTrace) -> None:
    """The cycle starts and ends at standstill, and has no grade."""
    assert cycle.speed_kph[0] == cycle.speed_kph[-1] == 0.0
    assert cycle.grade_pct is None
    assert cycle.name == "nedc"


def test_nedc_is_the_same_every_time() -> None:
    """Building the NEDC twice gives equal traces."""
    assert nedc() == nedc()
