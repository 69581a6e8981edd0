"""The battery model: OCV table, terminal voltage and current for a power, coulomb counting, validation."""

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import ParameterError
from simulator.physics.battery import (
    LFP_OCV_CELL_V,
    LFP_OCV_SOC_PCT,
    NMC_OCV_CELL_V,
    NMC_OCV_SOC_PCT,
    BatteryParams,
    open_circuit_voltage_v,
    soc_after,
    terminal_for_power,
)

# A pack with round numbers: 100 cells from 3.0 V (empty) to 4.0 V (full) in a straight line,
# so its OCV is 300 V + 1 V per % SOC and its mean cell OCV is exactly 3.5 V.
LINEAR = BatteryParams(
    capacity_ah=100.0,
    series_cells=100,
    internal_resistance_ohm=0.1,
    max_discharge_current_a=400.0,
    max_charge_current_a=200.0,
    ocv_soc_pct=(0.0, 100.0),
    ocv_cell_v=(3.0, 4.0),
)
NMC = BatteryParams(
    capacity_ah=143.0,
    series_cells=108,
    internal_resistance_ohm=0.08,
    max_discharge_current_a=500.0,
    max_charge_current_a=300.0,
)

soc_values = st.floats(min_value=0.0, max_value=100.0)


def test_battery_params_are_frozen() -> None:
    """Parameters cannot change after construction."""
    with pytest.raises(FrozenInstanceError):
        LINEAR.capacity_ah = 1.0  # type: ignore[misc]


def test_ocv_is_linear_between_breakpoints_and_exact_at_them() -> None:
    """The pack OCV interpolates the per-cell table linearly and multiplies by the cells in series."""
    assert open_circuit_voltage_v(LINEAR, 0.0) == 300.0
    assert open_circuit_voltage_v(LINEAR, 25.0) == pytest.approx(325.0)
    assert open_circuit_voltage_v(LINEAR, 100.0) == 400.0
    for soc_pct, cell_v in zip(NMC_OCV_SOC_PCT, NMC_OCV_CELL_V, strict=True):
        assert open_circuit_voltage_v(NMC, soc_pct) == pytest.approx(cell_v * 108)
    halfway_v = (NMC_OCV_CELL_V[5] + NMC_OCV_CELL_V[6]) / 2 * 108
    assert open_circuit_voltage_v(NMC, (NMC_OCV_SOC_PCT[5] + NMC_OCV_SOC_PCT[6]) / 2) == pytest.approx(halfway_v)


def test_ocv_is_clamped_outside_the_table() -> None:
    """Below 0 % the OCV stays at the empty value, above 100 % at the full one."""
    assert open_circuit_voltage_v(LINEAR, -5.0) == 300.0
    assert open_circuit_voltage_v(LINEAR, 130.0) == 400.0


@given(low=soc_values, high=soc_values)
def test_ocv_never_falls_as_soc_rises(low: float, high: float) -> None:
    """More charge never means a lower open-circuit voltage, for both default tables."""
    low, high = min(low, high), max(low, high)
    lfp = replace(NMC, ocv_soc_pct=LFP_OCV_SOC_PCT, ocv_cell_v=LFP_OCV_CELL_V)
    for battery in (NMC, lfp):
        assert open_circuit_voltage_v(battery, low) <= open_circuit_voltage_v(battery, high)


def test_nominal_energy_is_capacity_times_mean_ocv_times_cells() -> None:
    """Nominal energy is capacity × the SOC-averaged cell OCV × cells in series."""
    assert LINEAR.nominal_energy_wh == pytest.approx(100.0 * 3.5 * 100)
    # A bent table: 3 V at 0 %, 3.8 V at 20 %, 4 V at 100 %: mean (20·3.4 + 80·3.9) / 100 = 3.8 V.
    bent = replace(LINEAR, ocv_soc_pct=(0.0, 20.0, 100.0), ocv_cell_v=(3.0, 3.8, 4.0))
    assert bent.nominal_energy_wh == pytest.approx(100.0 * 3.8 * 100)


def test_no_power_means_no_current_and_the_open_circuit_voltage() -> None:
    """A battery asked for nothing shows its OCV at its terminals."""
    assert terminal_for_power(LINEAR, 50.0, 0.0) == (350.0, 0.0)


def test_terminal_voltage_sags_under_discharge_and_rises_under_charge() -> None:
    """Discharging pulls the terminal voltage below the OCV, charging pushes it above."""
    ocv_v = open_circuit_voltage_v(NMC, 60.0)
    discharge_v, discharge_a = terminal_for_power(NMC, 60.0, 80_000.0)
    charge_v, charge_a = terminal_for_power(NMC, 60.0, -50_000.0)
    assert discharge_a > 0.0
    assert discharge_v < ocv_v
    assert discharge_v == pytest.approx(ocv_v - discharge_a * 0.08)
    assert charge_a < 0.0
    assert charge_v > ocv_v
    assert charge_v == pytest.approx(ocv_v - charge_a * 0.08)


def test_the_known_solution_of_the_quadratic() -> None:
    """At 350 V OCV and 0.1 Ω, 34 kW is delivered at exactly 100 A and 340 V."""
    assert terminal_for_power(LINEAR, 50.0, 34_000.0) == pytest.approx((340.0, 100.0))


@given(soc_pct=soc_values, fraction=st.floats(min_value=-1.0, max_value=1.0))
def test_power_is_delivered_exactly_when_no_limit_binds(soc_pct: float, fraction: float) -> None:
    """Within the current limits, voltage × current equals the requested power."""
    ocv_v = open_circuit_voltage_v(NMC, soc_pct)
    # The power at each current limit, computed from V = OCV - I·R.
    limit_w = (ocv_v - 500.0 * 0.08) * 500.0 if fraction >= 0.0 else (ocv_v + 300.0 * 0.08) * 300.0
    requested_w = fraction * limit_w * 0.999
    voltage_v, current_a = terminal_for_power(NMC, soc_pct, requested_w)
    assert voltage_v * current_a == pytest.approx(requested_w, rel=1e-9, abs=1e-6)
    assert voltage_v == pytest.approx(ocv_v - current_a * 0.08, rel=1e-12)
    assert -300.0 <= current_a <= 500.0


def test_discharge_is_cut_at_the_current_limit() -> None:
    """Asking for more than the current limit allows gives the limit, and less power than asked."""
    voltage_v, current_a = terminal_for_power(LINEAR, 50.0, 200_000.0)
    assert current_a == 400.0
    assert voltage_v == pytest.approx(350.0 - 400.0 * 0.1)
    assert voltage_v * current_a == pytest.approx(124_000.0)


def test_discharge_is_cut_at_the_maximum_power_point() -> None:
    """With a generous current limit, no request gets more than OCV²/4R, at half the OCV."""
    generous = replace(LINEAR, max_discharge_current_a=10_000.0)
    voltage_v, current_a = terminal_for_power(generous, 50.0, 1e9)
    assert current_a == pytest.approx(350.0 / 0.2)
    assert voltage_v == pytest.approx(175.0)
    assert voltage_v * current_a == pytest.approx(350.0**2 / 0.4)


def test_charge_is_cut_at_the_charge_current_limit() -> None:
    """Asking to charge faster than the limit charges at the limit, with less power than asked."""
    voltage_v, current_a = terminal_for_power(LINEAR, 50.0, -150_000.0)
    assert current_a == -200.0
    assert voltage_v == pytest.approx(350.0 + 200.0 * 0.1)
    assert -voltage_v * current_a == pytest.approx(74_000.0)


def test_soc_falls_by_exactly_the_coulombs_drawn() -> None:
    """50 A for 6 minutes draws 5 Ah, which is 5 % of a 100 Ah battery."""
    assert soc_after(LINEAR, 80.0, 50.0, 360.0) == pytest.approx(75.0, abs=1e-12)
    assert soc_after(LINEAR, 75.0, -50.0, 360.0) == pytest.approx(80.0, abs=1e-12)


def test_soc_stops_at_empty_and_full() -> None:
    """Half a per cent past either end is clamped to the end."""
    assert soc_after(LINEAR, 0.2, 50.0, 36.0) == 0.0
    assert soc_after(LINEAR, 99.9, -50.0, 36.0) == 100.0


@given(
    soc_pct=soc_values,
    current_a=st.floats(min_value=-500.0, max_value=500.0),
    duration_s=st.floats(min_value=0.0, max_value=3600.0),
)
def test_soc_counts_coulombs_and_stays_within_bounds(soc_pct: float, current_a: float, duration_s: float) -> None:
    """The SOC change is the charge moved over the capacity, clamped to 0-100 %."""
    expected = soc_pct - current_a * duration_s / (143.0 * 3600.0) * 100.0
    assert soc_after(NMC, soc_pct, current_a, duration_s) == pytest.approx(
        min(100.0, max(0.0, expected)), rel=1e-9, abs=1e-9
    )


def _pack(overrides: dict[str, Any]) -> BatteryParams:
    fields: dict[str, Any] = {
        "capacity_ah": 100.0,
        "series_cells": 96,
        "internal_resistance_ohm": 0.1,
        "max_discharge_current_a": 400.0,
        "max_charge_current_a": 200.0,
    }
    return BatteryParams(**(fields | overrides))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"capacity_ah": 0.0}, "capacity_ah"),
        ({"capacity_ah": -10.0}, "capacity_ah"),
        ({"capacity_ah": math.nan}, "capacity_ah"),
        ({"capacity_ah": math.inf}, "capacity_ah"),
        ({"series_cells": 0}, "series_cells"),
        ({"series_cells": 96.5}, "series_cells"),
        ({"series_cells": True}, "series_cells"),
        ({"internal_resistance_ohm": 0.0}, "internal_resistance_ohm"),
        ({"internal_resistance_ohm": -0.1}, "internal_resistance_ohm"),
        ({"max_discharge_current_a": 0.0}, "max_discharge_current_a"),
        ({"max_charge_current_a": -1.0}, "max_charge_current_a"),
        ({"ocv_soc_pct": (0.0, 50.0, 100.0), "ocv_cell_v": (3.0, 4.0)}, "ocv_soc_pct and ocv_cell_v"),
        ({"ocv_soc_pct": (0.0,), "ocv_cell_v": (3.0,)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (5.0, 100.0), "ocv_cell_v": (3.0, 4.0)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (0.0, 90.0), "ocv_cell_v": (3.0, 4.0)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (-10.0, 100.0), "ocv_cell_v": (3.0, 4.0)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (0.0, 60.0, 40.0, 100.0), "ocv_cell_v": (3.0, 3.5, 3.6, 4.0)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (0.0, 50.0, 50.0, 100.0), "ocv_cell_v": (3.0, 3.5, 3.6, 4.0)}, "ocv_soc_pct"),
        ({"ocv_soc_pct": (0.0, 100.0), "ocv_cell_v": (0.0, 4.0)}, "ocv_cell_v"),
        ({"ocv_soc_pct": (0.0, 100.0), "ocv_cell_v": (3.0, math.nan)}, "ocv_cell_v"),
        ({"ocv_soc_pct": (0.0, 50.0, 100.0), "ocv_cell_v": (3.0, 3.9, 3.8)}, "ocv_cell_v"),
        ({"ocv_soc_pct": (0.0, 50.0, 100.0), "ocv_cell_v": (3.0, 3.0, 4.0)}, "ocv_cell_v"),
    ],
)
def test_impossible_parameters_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    """Every impossible battery parameter raises ParameterError, and the message names the field."""
    with pytest.raises(ParameterError, match=rf"^{field} "):
        _pack(overrides)


def test_parameter_errors_are_value_errors() -> None:
    """Callers that only know the builtin can still catch a bad parameter."""
    with pytest.raises(ValueError, match="capacity_ah"):
        _pack({"capacity_ah": -1.0})
