"""How the reference EV fills each signal of ``dbc/carbonlink_ev.dbc`` from its bus state.

Counters and checksums are not listed: the frame encoder fills them for every message that has
signals ending in ``_Counter`` and ``_Checksum``.
"""

from collections.abc import Callable

from simulator.bus_state import BusState

SignalSource = Callable[[BusState], float]

REFERENCE_SIGNALS: dict[str, SignalSource] = {
    "VCU_VehicleSpeed": lambda s: s.speed_kph,
    "VCU_ReadyState": lambda s: int(s.ready),
    "VCU_Gear": lambda s: int(s.gear),
    "VCU_BrakePressed": lambda s: int(s.brake_pressed),
    "VCU_AccelPedal": lambda s: s.accel_pedal_pct,
    "BMS_PackVoltage": lambda s: s.pack_voltage_v,
    "BMS_PackCurrent": lambda s: s.pack_current_a,
    "MCU_DcPower": lambda s: s.inverter_power_kw,
    "MCU_MotorSpeed": lambda s: s.motor_speed_rpm,
    "MCU_InverterTemp": lambda s: s.inverter_temp_c,
    "BMS_SOC": lambda s: s.soc_pct,
    "BMS_State": lambda s: int(s.bms_state),
    "BMS_PackTempMin": lambda s: s.pack_temp_min_c,
    "BMS_PackTempMax": lambda s: s.pack_temp_max_c,
    "BMS_CellVoltageMin": lambda s: s.cell_voltage_min_v,
    "BMS_CellVoltageMax": lambda s: s.cell_voltage_max_v,
    "BMS_EnergyDischarged": lambda s: s.energy_discharged_wh,
    "BMS_EnergyCharged": lambda s: s.energy_charged_wh,
    "VCU_Odometer": lambda s: s.odometer_m,
    "OBC_State": lambda s: int(s.charger_state),
    "OBC_Type": lambda s: int(s.charger_type),
    "OBC_GridPower": lambda s: s.grid_power_w,
    "OBC_GridVoltage": lambda s: s.grid_voltage_v,
}

DRIVE_MESSAGES = ("VCU_Drive", "BMS_Pack", "MCU_Inverter", "BMS_Status", "BMS_Energy", "VCU_Odometer")
"""Messages on the bus while the vehicle is ready (driving or standing with ignition on)."""

CHARGE_MESSAGES = ("VCU_Drive", "BMS_Pack", "BMS_Status", "BMS_Energy", "VCU_Odometer", "OBC_Charger")
"""Messages on the bus while plugged in: the inverter sleeps, the charger talks."""
