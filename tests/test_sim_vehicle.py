"""The vehicle model: road load at the wheels and the battery power behind it, regen caps and fade."""

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from simulator.errors import ParameterError
from simulator.physics.battery import BatteryParams
from simulator.physics.vehicle import REGEN_FADE_SPEED_MPS, VehicleParams, battery_power_w, road_load_w

BATTERY = BatteryParams(
    capacity_ah=150.0,
    series_cells=100,
    internal_resistance_ohm=0.1,
    max_discharge_current_a=500.0,
    max_charge_current_a=300.0,
)
# Round numbers: weight 20,000 N, rolling 200 N, aero ½·1.2·0.5·v² = 0.3·v² N.
CAR = VehicleParams(
    name="test car",
    vehicle_class="compact",
    mass_kg=2_000.0,
    drag_area_m2=0.5,
    rolling_resistance=0.01,
    rotating_mass_factor=1.05,
    drivetrain_efficiency=0.8,
    regen_efficiency=0.5,
    max_motor_power_w=150_000.0,
    max_regen_power_w=60_000.0,
    aux_power_w=500.0,
    battery=BATTERY,
    air_density_kg_m3=1.2,
    gravity_m_s2=10.0,
)
# The same car with caps no trace below reaches, so that only the efficiencies act.
UNCAPPED = replace(CAR, max_motor_power_w=1e9, max_regen_power_w=1e9)

STOP_GO_KPH = [(0.0, 0.0), (5.0, 0.0), (18.8889, 50.0), (48.8889, 50.0), (62.7778, 0.0), (72.0, 0.0)]
"""Stand 5 s, accelerate at 1 m/s² to 50 km/h, cruise 30 s, brake at 1 m/s² to a stop, stand."""


def _sample(trace_kph: list[tuple[float, float]], dt_s: float) -> list[tuple[float, float]]:
    """(speed_mps, accel_mps2) at the middle of each step of a piecewise-linear speed trace."""
    samples = []
    segment = 0
    for k in range(round(trace_kph[-1][0] / dt_s)):
        mid_s = (k + 0.5) * dt_s
        while trace_kph[segment + 1][0] < mid_s:
            segment += 1
        (t0_s, v0_kph), (t1_s, v1_kph) = trace_kph[segment], trace_kph[segment + 1]
        accel_mps2 = (v1_kph - v0_kph) / 3.6 / (t1_s - t0_s)
        samples.append(((v0_kph + (v1_kph - v0_kph) * (mid_s - t0_s) / (t1_s - t0_s)) / 3.6, accel_mps2))
    return samples


def test_vehicle_params_are_frozen() -> None:
    """Parameters cannot change after construction."""
    with pytest.raises(FrozenInstanceError):
        CAR.mass_kg = 1.0  # type: ignore[misc]


def test_road_load_at_constant_speed_is_aero_plus_rolling() -> None:
    """At 20 m/s on the flat: (0.3·400 + 200) N × 20 m/s = 6,400 W."""
    assert road_load_w(CAR, 20.0, 0.0, 0.0) == pytest.approx(6_400.0)


def test_road_load_adds_inertia_with_the_rotating_mass() -> None:
    """Accelerating at 1 m/s² adds 1.05 × 2,000 kg × 1 m/s² of force."""
    assert road_load_w(CAR, 10.0, 1.0, 0.0) == pytest.approx((30.0 + 200.0 + 2_100.0) * 10.0)


def test_road_load_adds_the_grade() -> None:
    """A 10 % climb adds m·g·sin θ and scales rolling resistance by cos θ."""
    angle = math.atan(0.1)
    expected_n = 0.3 * 100.0 + 200.0 * math.cos(angle) + 20_000.0 * math.sin(angle)
    assert road_load_w(CAR, 10.0, 0.0, 10.0) == pytest.approx(expected_n * 10.0)
    assert road_load_w(CAR, 10.0, 0.0, -10.0) < 0.0


def test_road_load_is_negative_when_braking() -> None:
    """Decelerating harder than drag and rolling slow the car asks for braking power."""
    assert road_load_w(CAR, 10.0, -1.0, 0.0) == pytest.approx((30.0 + 200.0 - 2_100.0) * 10.0)


def test_a_standing_vehicle_needs_no_tractive_power() -> None:
    """At rest there is no rolling resistance and no power, whatever the acceleration or grade."""
    assert road_load_w(CAR, 0.0, 2.0, 8.0) == 0.0
    assert road_load_w(CAR, -3.0, 0.0, 0.0) == 0.0


def test_a_standing_vehicle_draws_only_its_auxiliaries() -> None:
    """Ready and at rest, the battery feeds the auxiliaries and nothing else."""
    assert battery_power_w(CAR, 0.0, 0.0, 0.0) == 500.0
    assert battery_power_w(CAR, 0.0, -3.0, 0.0) == 500.0


def test_motoring_draws_wheel_power_over_the_drivetrain_efficiency() -> None:
    """The battery gives the wheel power divided by the drivetrain efficiency, plus the auxiliaries."""
    assert battery_power_w(CAR, 20.0, 0.0, 0.0) == pytest.approx(6_400.0 / 0.8 + 500.0)


def test_motoring_is_capped_at_the_motor_power() -> None:
    """A demand beyond the motor's power is cut to it."""
    assert road_load_w(CAR, 30.0, 3.0, 0.0) / 0.8 > 150_000.0
    assert battery_power_w(CAR, 30.0, 3.0, 0.0) == pytest.approx(150_000.0 + 500.0)


def test_braking_returns_wheel_power_times_the_regen_efficiency() -> None:
    """Above the fade speed, regen returns the braking power times the regen efficiency."""
    assert battery_power_w(CAR, 10.0, -1.0, 0.0) == pytest.approx(-18_700.0 * 0.5 + 500.0)


def test_regen_is_capped() -> None:
    """Hard braking at speed returns no more than the regen cap; the friction brakes take the rest."""
    assert road_load_w(CAR, 30.0, -5.0, 0.0) * 0.5 < -60_000.0
    assert battery_power_w(CAR, 30.0, -5.0, 0.0) == pytest.approx(-60_000.0 + 500.0)


def test_regen_fades_linearly_below_five_kph() -> None:
    """At half the fade speed, regen is half what it would be; at standstill it is zero."""
    half_mps = REGEN_FADE_SPEED_MPS / 2.0
    assert pytest.approx(5.0 / 3.6) == REGEN_FADE_SPEED_MPS
    unfaded_w = road_load_w(CAR, half_mps, -1.0, 0.0) * 0.5
    assert battery_power_w(CAR, half_mps, -1.0, 0.0) - 500.0 == pytest.approx(unfaded_w / 2.0)
    assert battery_power_w(CAR, 0.0, -1.0, 0.0) - 500.0 == 0.0


@given(
    speed_mps=st.floats(min_value=0.0, max_value=60.0),
    accel_mps2=st.floats(min_value=-10.0, max_value=5.0),
    grade_pct=st.floats(min_value=-20.0, max_value=20.0),
)
def test_battery_power_stays_within_the_caps(speed_mps: float, accel_mps2: float, grade_pct: float) -> None:
    """Whatever the driving, the battery never gives more than motor cap + aux nor takes more than the regen cap."""
    power_w = battery_power_w(CAR, speed_mps, accel_mps2, grade_pct)
    assert -60_000.0 + 500.0 <= power_w <= 150_000.0 + 500.0


def test_battery_energy_over_a_stop_go_trace_is_conserved() -> None:
    """Energy out - regen equals the road's energy through the efficiencies, plus the auxiliaries.

    The road side is computed here from first principles on a 1.5 % climb at 10 ms steps, the
    motoring and braking parts apart; the battery side sums battery_power_w as the simulator does.
    """
    dt_s = 0.01
    grade = math.atan(0.015)
    weight_n = 2_000.0 * 10.0
    energy_out_j = energy_regen_j = 0.0
    motoring_j = braking_j = 0.0
    samples = _sample(STOP_GO_KPH, dt_s)
    for speed_mps, accel_mps2 in samples:
        power_w = battery_power_w(UNCAPPED, speed_mps, accel_mps2, 1.5)
        if power_w >= 0.0:
            energy_out_j += power_w * dt_s
        else:
            energy_regen_j -= power_w * dt_s
        force_n = (
            0.5 * 1.2 * 0.5 * speed_mps**2
            + 0.01 * weight_n * math.cos(grade)
            + weight_n * math.sin(grade)
            + 1.05 * 2_000.0 * accel_mps2
        )
        wheel_w = force_n * speed_mps
        if wheel_w >= 0.0:
            motoring_j += wheel_w * dt_s
        else:
            braking_j += wheel_w * dt_s * min(1.0, speed_mps / (5.0 / 3.6))
    assert energy_regen_j > 0.0
    expected_j = motoring_j / 0.8 + braking_j * 0.5 + 500.0 * dt_s * len(samples)
    assert energy_out_j - energy_regen_j == pytest.approx(expected_j, rel=1e-6)


def _energy_per_km_wh(vehicle: VehicleParams, samples: list[tuple[float, float]], dt_s: float) -> float:
    energy_j = sum(battery_power_w(vehicle, speed, accel, 0.0) for speed, accel in samples) * dt_s
    distance_m = sum(speed for speed, _ in samples) * dt_s
    return energy_j / 3600.0 / (distance_m / 1000.0)


_COARSE_STOP_GO = _sample(STOP_GO_KPH, 0.1)


@given(light_kg=st.floats(min_value=800.0, max_value=40_000.0), heavy_kg=st.floats(min_value=800.0, max_value=40_000.0))
def test_more_mass_costs_more_energy_per_km(light_kg: float, heavy_kg: float) -> None:
    """On the same stop-go trace, a heavier vehicle needs more battery energy per km."""
    light_kg, heavy_kg = min(light_kg, heavy_kg), max(light_kg, heavy_kg)
    assume(heavy_kg - light_kg > 1.0)
    light = _energy_per_km_wh(replace(UNCAPPED, mass_kg=light_kg), _COARSE_STOP_GO, 0.1)
    heavy = _energy_per_km_wh(replace(UNCAPPED, mass_kg=heavy_kg), _COARSE_STOP_GO, 0.1)
    assert heavy > light


@given(slow_mps=st.floats(min_value=0.5, max_value=60.0), fast_mps=st.floats(min_value=0.5, max_value=60.0))
def test_higher_speed_costs_more_aero_power(slow_mps: float, fast_mps: float) -> None:
    """At constant speed, the aero share of the road load grows with the cube of speed, and so does the total."""
    slow_mps, fast_mps = min(slow_mps, fast_mps), max(slow_mps, fast_mps)
    assume(fast_mps - slow_mps > 0.01)
    rolling_n = 0.01 * 20_000.0
    slow_aero_w = road_load_w(CAR, slow_mps, 0.0, 0.0) - rolling_n * slow_mps
    fast_aero_w = road_load_w(CAR, fast_mps, 0.0, 0.0) - rolling_n * fast_mps
    assert fast_aero_w > slow_aero_w
    assert fast_aero_w / slow_aero_w == pytest.approx((fast_mps / slow_mps) ** 3, rel=1e-9)
    assert battery_power_w(CAR, fast_mps, 0.0, 0.0) > battery_power_w(CAR, slow_mps, 0.0, 0.0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"vehicle_class": ""}, "vehicle_class"),
        ({"mass_kg": -1_500.0}, "mass_kg"),
        ({"mass_kg": 0.0}, "mass_kg"),
        ({"mass_kg": math.nan}, "mass_kg"),
        ({"drag_area_m2": -0.1}, "drag_area_m2"),
        ({"rolling_resistance": -0.01}, "rolling_resistance"),
        ({"rotating_mass_factor": 0.95}, "rotating_mass_factor"),
        ({"drivetrain_efficiency": 0.0}, "drivetrain_efficiency"),
        ({"drivetrain_efficiency": 1.05}, "drivetrain_efficiency"),
        ({"regen_efficiency": -0.2}, "regen_efficiency"),
        ({"regen_efficiency": 1.5}, "regen_efficiency"),
        ({"max_motor_power_w": 0.0}, "max_motor_power_w"),
        ({"max_regen_power_w": -1.0}, "max_regen_power_w"),
        ({"aux_power_w": -100.0}, "aux_power_w"),
        ({"aux_power_w": math.inf}, "aux_power_w"),
        ({"air_density_kg_m3": 0.0}, "air_density_kg_m3"),
        ({"gravity_m_s2": -9.81}, "gravity_m_s2"),
        ({"battery": "NMC"}, "battery"),
    ],
)
def test_impossible_parameters_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    """Every impossible vehicle parameter raises ParameterError, and the message names the field."""
    with pytest.raises(ParameterError, match=rf"^{field} "):
        replace(CAR, **overrides)


def test_efficiency_of_one_is_allowed() -> None:
    """A lossless drivetrain is an idealisation, not an impossibility."""
    lossless = replace(CAR, drivetrain_efficiency=1.0, regen_efficiency=1.0)
    assert battery_power_w(lossless, 20.0, 0.0, 0.0) == pytest.approx(6_400.0 + 500.0)
