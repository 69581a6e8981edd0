"""The vehicle presets: complete, self-consistent, and consuming what their class consumes in the real world.

The consumption test drives each preset over three traces with a small integrator of its own (0.1 s
steps, speed interpolated linearly between (time_s, speed_kph) breakpoints) and checks the battery
terminal energy per km against the ranges that docs/simulator.md gives and sources.
"""

import itertools
import re
from dataclasses import replace
from pathlib import Path

import pytest

from simulator.errors import ParameterError
from simulator.physics.battery import soc_after, terminal_for_power
from simulator.physics.charger import ChargerKind
from simulator.physics.vehicle import VehicleParams, battery_power_w
from simulator.presets import PRESETS, VehiclePreset, preset

DOC = (Path(__file__).resolve().parent.parent / "docs" / "simulator.md").read_text(encoding="utf-8")

STEP_S = 0.1


def _urban_trace_kph() -> list[tuple[float, float]]:
    """Five stop-go blocks: stand 20 s, 1 m/s² to 50 km/h, cruise 30 s, brake at 1 m/s² to a stop; stand 20 s."""
    ramp_s = 50.0 / 3.6 / 1.0
    trace = [(0.0, 0.0)]
    time_s = 0.0
    for _ in range(5):
        for duration_s, speed_kph in ((20.0, 0.0), (ramp_s, 50.0), (30.0, 50.0), (ramp_s, 0.0)):
            time_s += duration_s
            trace.append((time_s, speed_kph))
    trace.append((time_s + 20.0, 0.0))
    return trace


TRACES_KPH: dict[str, list[tuple[float, float]]] = {
    "constant 50 km/h": [(0.0, 50.0), (600.0, 50.0)],
    "constant 100 km/h": [(0.0, 100.0), (600.0, 100.0)],
    "urban stop-go": _urban_trace_kph(),
}

RANGES_WH_PER_KM: dict[tuple[str, str], tuple[float, float]] = {
    ("compact", "constant 50 km/h"): (75.0, 120.0),
    ("compact", "constant 100 km/h"): (140.0, 190.0),
    ("compact", "urban stop-go"): (130.0, 180.0),
    ("suv", "constant 50 km/h"): (85.0, 135.0),
    ("suv", "constant 100 km/h"): (160.0, 220.0),
    ("suv", "urban stop-go"): (140.0, 230.0),
    ("van", "constant 50 km/h"): (130.0, 210.0),
    ("van", "constant 100 km/h"): (250.0, 380.0),
    ("van", "urban stop-go"): (200.0, 300.0),
    ("bus", "constant 50 km/h"): (550.0, 900.0),
    ("bus", "constant 100 km/h"): (900.0, 1500.0),
    ("bus", "urban stop-go"): (1000.0, 1600.0),
}
"""The ranges of docs/simulator.md, "Consumption check": published class figures where there are some."""


def _consumption_wh_per_km(vehicle: VehicleParams, trace_kph: list[tuple[float, float]]) -> float:
    """Battery terminal energy (out - regen) per km over the trace, SOC starting at 80 %."""
    soc_pct = 80.0
    energy_j = distance_m = 0.0
    segment = 0
    for k in range(round(trace_kph[-1][0] / STEP_S)):
        mid_s = (k + 0.5) * STEP_S
        while trace_kph[segment + 1][0] < mid_s:
            segment += 1
        (t0_s, v0_kph), (t1_s, v1_kph) = trace_kph[segment], trace_kph[segment + 1]
        accel_mps2 = (v1_kph - v0_kph) / 3.6 / (t1_s - t0_s)
        speed_mps = (v0_kph + (v1_kph - v0_kph) * (mid_s - t0_s) / (t1_s - t0_s)) / 3.6
        power_w = battery_power_w(vehicle, speed_mps, accel_mps2, 0.0)
        voltage_v, current_a = terminal_for_power(vehicle.battery, soc_pct, power_w)
        energy_j += voltage_v * current_a * STEP_S
        soc_pct = soc_after(vehicle.battery, soc_pct, current_a, STEP_S)
        distance_m += speed_mps * STEP_S
    return energy_j / 3600.0 / (distance_m / 1000.0)


def test_there_is_one_preset_per_class() -> None:
    """The four classes are there, each under its own class name."""
    assert set(PRESETS) == {"compact", "suv", "van", "bus"}
    for name, entry in PRESETS.items():
        assert entry.vehicle.vehicle_class == name
        assert preset(name) is entry


def test_an_unknown_preset_is_refused_listing_the_known_ones() -> None:
    """Asking for a preset that does not exist names the ones that do."""
    with pytest.raises(ParameterError, match=r"'truck'.*bus, compact, suv, van"):
        preset("truck")


def test_the_presets_cannot_be_replaced() -> None:
    """The preset table is read-only."""
    with pytest.raises(TypeError):
        PRESETS["compact"] = PRESETS["bus"]  # type: ignore[index]


def test_a_preset_names_its_charger_by_kind() -> None:
    """A charge session asks the preset for its "ac" or "dc" charger by name."""
    van = PRESETS["van"]
    assert van.charger("ac") is van.ac_charger
    assert van.charger(ChargerKind.DC) is van.dc_charger
    with pytest.raises(ParameterError, match=r"^charger kind .*'wireless'"):
        van.charger("wireless")


def test_each_preset_has_an_ac_and_a_dc_charger() -> None:
    """Every preset charges by default from AC and from DC, and refuses them swapped."""
    for entry in PRESETS.values():
        assert entry.ac_charger.kind is ChargerKind.AC
        assert entry.dc_charger.kind is ChargerKind.DC
        assert entry.dc_charger.max_power_w > entry.ac_charger.max_power_w
    compact = PRESETS["compact"]
    with pytest.raises(ParameterError, match=r"^ac_charger "):
        VehiclePreset(vehicle=compact.vehicle, ac_charger=compact.dc_charger, dc_charger=compact.dc_charger)
    with pytest.raises(ParameterError, match=r"^dc_charger "):
        VehiclePreset(vehicle=compact.vehicle, ac_charger=compact.ac_charger, dc_charger=compact.ac_charger)


@pytest.mark.parametrize(("name", "usable_kwh"), [("compact", 58.0), ("suv", 72.6), ("van", 68.0), ("bus", 240.0)])
def test_battery_energy_matches_the_sources(name: str, usable_kwh: float) -> None:
    """Each preset's nominal battery energy is the usable energy its sources state, within 1 %."""
    assert PRESETS[name].vehicle.battery.nominal_energy_wh / 1000.0 == pytest.approx(usable_kwh, rel=0.01)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rated_motor_and_dc_power_pass_at_low_soc(name: str) -> None:
    """At 10 % SOC the battery can give the motor's full power and take the DC charger's, without a limit cutting in."""
    entry = PRESETS[name]
    vehicle, battery = entry.vehicle, entry.vehicle.battery
    drive_w = vehicle.max_motor_power_w + vehicle.aux_power_w
    voltage_v, current_a = terminal_for_power(battery, 10.0, drive_w)
    assert voltage_v * current_a == pytest.approx(drive_w)
    assert current_a < battery.max_discharge_current_a
    voltage_v, current_a = terminal_for_power(battery, 10.0, -entry.dc_charger.max_power_w)
    assert voltage_v * current_a == pytest.approx(-entry.dc_charger.max_power_w)
    assert -current_a < battery.max_charge_current_a


@pytest.mark.parametrize(("name", "trace"), sorted(RANGES_WH_PER_KM))
def test_consumption_lands_in_the_documented_range(name: str, trace: str) -> None:
    """Each preset's battery energy per km on each trace lies in the range docs/simulator.md gives."""
    low, high = RANGES_WH_PER_KM[name, trace]
    consumption = _consumption_wh_per_km(PRESETS[name].vehicle, TRACES_KPH[trace])
    assert low <= consumption <= high


def test_the_doc_shows_the_measured_consumption_and_the_ranges() -> None:
    """docs/simulator.md's consumption table gives, per preset and trace, today's figure and the tested range."""
    for (name, trace), (low, high) in RANGES_WH_PER_KM.items():
        consumption = _consumption_wh_per_km(PRESETS[name].vehicle, TRACES_KPH[trace])
        row = re.compile(
            rf"^\| {name} \| {re.escape(trace)} \| {consumption:.0f} \| {low:.0f}[–-]{high:.0f} \|", re.MULTILINE
        )
        assert row.search(DOC), f"docs/simulator.md lacks the row for {name} on {trace}: {consumption:.0f} Wh/km"


def test_the_urban_trace_is_what_the_doc_says() -> None:
    """The urban trace covers five 610 m blocks at 1 m/s², about 27 km/h on average, 29 % of its time standing."""
    trace = TRACES_KPH["urban stop-go"]
    duration_s = trace[-1][0]
    distance_m = sum((t1 - t0) * (v0 + v1) / 2.0 / 3.6 for (t0, v0), (t1, v1) in itertools.pairwise(trace))
    assert distance_m == pytest.approx(5 * (2 * 0.5 * (50 / 3.6) ** 2 + 30 * 50 / 3.6))
    assert distance_m / duration_s * 3.6 == pytest.approx(26.8, abs=0.1)
    standing_s = 6 * 20.0
    assert standing_s / duration_s == pytest.approx(0.293, abs=0.005)


def test_the_bus_motor_limit_binds_only_briefly_on_the_urban_trace() -> None:
    """At 1 m/s² the bus asks for more than 250 kW near 50 km/h; lifting the cap adds under 2 % of energy."""
    bus = PRESETS["bus"].vehicle
    capped = _consumption_wh_per_km(bus, TRACES_KPH["urban stop-go"])
    uncapped = _consumption_wh_per_km(replace(bus, max_motor_power_w=1e9), TRACES_KPH["urban stop-go"])
    assert capped < uncapped < capped * 1.02
