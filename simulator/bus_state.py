"""What the reference EV's control units report at one instant: the input of the frame encoder."""

from dataclasses import dataclass
from enum import IntEnum


class ReadyState(IntEnum):
    """VCU_ReadyState: ignition and high-voltage state."""

    OFF = 0
    ACCESSORY = 1
    READY = 2


class Gear(IntEnum):
    """VCU_Gear."""

    P = 0
    R = 1
    N = 2
    D = 3


class BmsState(IntEnum):
    """BMS_State."""

    STANDBY = 0
    DRIVE = 1
    CHARGE = 2


class ChargerState(IntEnum):
    """OBC_State."""

    UNPLUGGED = 0
    PLUGGED = 1
    CHARGING = 2
    COMPLETE = 3


class ChargerType(IntEnum):
    """OBC_Type."""

    NONE = 0
    AC = 1
    DC = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class BusState:
    """Every quantity the reference bus carries, in physical units, at one instant."""

    speed_kph: float
    ready: ReadyState
    gear: Gear
    brake_pressed: bool
    accel_pedal_pct: float
    pack_voltage_v: float
    pack_current_a: float
    """Positive when the pack discharges."""
    soc_pct: float
    bms_state: BmsState
    pack_temp_min_c: float
    pack_temp_max_c: float
    cell_voltage_min_v: float
    cell_voltage_max_v: float
    inverter_power_kw: float
    motor_speed_rpm: float
    inverter_temp_c: float
    odometer_m: float
    energy_discharged_wh: float
    """Lifetime energy out of the pack terminals."""
    energy_charged_wh: float
    """Lifetime energy into the pack terminals (charging and regeneration)."""
    charger_state: ChargerState
    charger_type: ChargerType
    grid_power_w: float
    grid_voltage_v: float
