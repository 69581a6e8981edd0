"""What decoding yields: canonical quantities read at one frame's timestamp.

The decoder maps a brand's DBC signals to these quantities through the vehicle profile; the trip
segmenter and the integrator see only readings, never frames or signal names. A value of
``None`` means the vehicle said "signal not available" (or sent an out-of-range value): unknown,
never zero.
"""

from dataclasses import dataclass
from enum import StrEnum


class Quantity(StrEnum):
    """The canonical quantities a vehicle profile can map; units in the names."""

    PACK_VOLTAGE_V = "pack_voltage_v"
    PACK_CURRENT_A = "pack_current_a"
    """Positive when the pack discharges (the profile fixes up brands that count the other way)."""
    SOC_PCT = "soc_pct"
    SPEED_KPH = "speed_kph"
    ODOMETER_M = "odometer_m"
    READY = "ready"
    """1.0 when the vehicle is ready to drive (high voltage on, drive enabled), else 0.0."""
    CHARGING = "charging"
    """1.0 while energy flows in from a charger (AC or DC), else 0.0."""
    CHARGER_DC = "charger_dc"
    """1.0 for a DC charger, 0.0 for AC (only meaningful while charging)."""
    GRID_POWER_W = "grid_power_w"
    """Charger-side power, before the car's charging losses, where the vehicle reports it."""
    ENERGY_DISCHARGED_WH = "energy_discharged_wh"
    ENERGY_CHARGED_WH = "energy_charged_wh"


@dataclass(frozen=True, slots=True)
class Reading:
    """The quantities one frame carried, at that frame's timestamp (seconds)."""

    time_s: float
    values: dict[Quantity, float | None]
