"""Bus states for simulator tests, and the reference DBC loaded once."""

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import cantools.database
from hypothesis import strategies as st

from simulator.bus_state import BmsState, BusState, ChargerState, ChargerType, Gear, ReadyState
from simulator.frames import load_dbc

REFERENCE_DBC = Path(__file__).resolve().parent.parent / "dbc" / "carbonlink_ev.dbc"


@cache
def reference_database() -> cantools.database.can.Database:
    return load_dbc(REFERENCE_DBC)


def bus_state(**overrides: Any) -> BusState:  # noqa: ANN401 - any field of BusState
    state = BusState(
        speed_kph=48.25,
        ready=ReadyState.READY,
        gear=Gear.D,
        brake_pressed=False,
        accel_pedal_pct=20.0,
        pack_voltage_v=396.42,
        pack_current_a=37.4,
        soc_pct=76.3,
        bms_state=BmsState.DRIVE,
        pack_temp_min_c=20.0,
        pack_temp_max_c=22.0,
        cell_voltage_min_v=3.668,
        cell_voltage_max_v=3.676,
        inverter_power_kw=14.5,
        motor_speed_rpm=3_650.0,
        inverter_temp_c=30.0,
        odometer_m=48_212_345.0,
        energy_discharged_wh=9_120_611.0,
        energy_charged_wh=8_900_155.0,
        charger_state=ChargerState.UNPLUGGED,
        charger_type=ChargerType.NONE,
        grid_power_w=0.0,
        grid_voltage_v=0.0,
    )
    return replace(state, **overrides)


def _within(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


bus_states = st.builds(
    bus_state,
    speed_kph=_within(0, 300),
    ready=st.sampled_from(ReadyState),
    gear=st.sampled_from(Gear),
    brake_pressed=st.booleans(),
    accel_pedal_pct=_within(0, 100),
    pack_voltage_v=_within(0, 1000),
    pack_current_a=_within(-2000, 2000),
    soc_pct=_within(0, 100),
    bms_state=st.sampled_from(BmsState),
    pack_temp_min_c=_within(-40, 120),
    pack_temp_max_c=_within(-40, 120),
    cell_voltage_min_v=_within(0, 4.09),
    cell_voltage_max_v=_within(0, 4.09),
    inverter_power_kw=_within(-327, 327),
    motor_speed_rpm=_within(-20000, 20000),
    inverter_temp_c=_within(-40, 215),
    odometer_m=_within(0, 4_000_000_000),
    energy_discharged_wh=_within(0, 4_000_000_000),
    energy_charged_wh=_within(0, 4_000_000_000),
    charger_state=st.sampled_from(ChargerState),
    charger_type=st.sampled_from(ChargerType),
    grid_power_w=_within(0, 650_000),
    grid_voltage_v=_within(0, 1022),
)


def decode(message: cantools.database.can.Message, data: bytes) -> dict[str, float]:
    """A frame's signals as raw-scaled numbers (no value names), typed for the tests."""
    decoded = message.decode(data, decode_choices=False)
    if not isinstance(decoded, dict):
        raise TypeError(f"{message.name} decoded to {type(decoded).__name__}, not a signal map")
    return {name: float(value) for name, value in decoded.items() if isinstance(value, int | float)}
