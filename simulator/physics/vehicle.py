"""Longitudinal vehicle dynamics: the power at the wheels, and what the battery gives or takes for it.

Road load at the wheels, for speed ``v`` (forward, ≥ 0), acceleration ``a`` and grade angle
``θ = atan(grade_pct / 100)``::

    F = ½·rho·CdA·v²  +  Crr·m·g·cos θ  +  m·g·sin θ  +  k·m·a        P_wheel = F·v

aero, rolling (only while moving), grade and inertia, where ``k`` (``rotating_mass_factor``) adds
the inertia of wheels, motor and gears to the vehicle's mass. ``P_wheel`` is negative when the road
load asks for braking.

Battery terminal power (positive = the battery discharges, the convention of
:mod:`simulator.physics.battery`)::

    motoring (P_wheel ≥ 0):  P_batt = min(P_wheel / η_drive, max_motor_power_w)             + aux
    braking  (P_wheel < 0):  P_batt = max(P_wheel · η_regen, -max_regen_power_w) · fade(v)  + aux

Both caps apply at the battery terminals. Braking power beyond the regen cap, and all of it as the
vehicle comes to rest, goes to the friction brakes. ``fade(v)`` rises linearly from 0 at standstill
to 1 at :data:`REGEN_FADE_SPEED_MPS` (5 km/h): motors recover little at walking pace, and vehicles
blend to the friction brakes to stop. When the motoring cap binds, the vehicle could not follow the
requested speed trace; the function reports the capped power and leaves the trace to the caller.
"""

import math
from dataclasses import dataclass

from simulator.errors import ParameterError
from simulator.physics.battery import BatteryParams
from simulator.physics.checks import require

REGEN_FADE_SPEED_MPS = 5.0 / 3.6
"""Below this speed (5 km/h) regenerative braking fades linearly to zero at standstill."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleParams:
    """One vehicle: body, tyres, drivetrain, auxiliaries and battery."""

    name: str
    vehicle_class: str
    """The preset class it stands for: ``compact``, ``suv``, ``van``, ``bus``, or any label."""
    mass_kg: float
    """Test mass: the vehicle ready to drive plus driver and payload, as the preset's sources state."""
    drag_area_m2: float
    """Drag coefficient × frontal area (Cd·A)."""
    rolling_resistance: float
    """Rolling resistance coefficient Crr (dimensionless)."""
    rotating_mass_factor: float
    """Effective inertial mass ÷ mass, ≥ 1 (typically 1.03–1.10)."""
    drivetrain_efficiency: float
    """Battery → wheels while motoring: inverter, motor and gear together, in (0, 1]."""
    regen_efficiency: float
    """Wheels → battery while braking regeneratively, in (0, 1]."""
    max_motor_power_w: float
    """Most the drivetrain draws from the battery while motoring."""
    max_regen_power_w: float
    """Most regenerative braking returns to the battery."""
    aux_power_w: float
    """Auxiliary load while the vehicle is ready (HVAC, 12 V/24 V system), drawn from the battery."""
    battery: BatteryParams
    air_density_kg_m3: float = 1.2
    gravity_m_s2: float = 9.81

    def __post_init__(self) -> None:
        for name in ("name", "vehicle_class"):
            if not getattr(self, name).strip():
                raise ParameterError(f"{name} must not be empty")
        for name in ("mass_kg", "max_motor_power_w", "max_regen_power_w", "air_density_kg_m3", "gravity_m_s2"):
            require(name, getattr(self, name), "a positive finite number", lambda value: value > 0.0)
        for name in ("drag_area_m2", "rolling_resistance", "aux_power_w"):
            require(name, getattr(self, name), "a non-negative finite number", lambda value: value >= 0.0)
        require("rotating_mass_factor", self.rotating_mass_factor, "at least 1", lambda value: value >= 1.0)
        for name in ("drivetrain_efficiency", "regen_efficiency"):
            require(name, getattr(self, name), "in (0, 1]", lambda value: 0.0 < value <= 1.0)
        if not isinstance(self.battery, BatteryParams):
            raise ParameterError(f"battery must be a BatteryParams, got {type(self.battery).__name__}")


def road_load_w(params: VehicleParams, speed_mps: float, accel_mps2: float, grade_pct: float) -> float:
    """Tractive power at the wheels (W): aero + rolling + grade + inertia; negative when braking.

    The model drives forward only: at ``speed_mps <= 0`` the vehicle stands and the power is zero.
    """
    if speed_mps <= 0.0:
        return 0.0
    weight_n = params.mass_kg * params.gravity_m_s2
    if grade_pct == 0.0:
        grade_n = 0.0
        rolling_n = params.rolling_resistance * weight_n
    else:
        angle = math.atan(grade_pct / 100.0)
        grade_n = weight_n * math.sin(angle)
        rolling_n = params.rolling_resistance * weight_n * math.cos(angle)
    aero_n = 0.5 * params.air_density_kg_m3 * params.drag_area_m2 * speed_mps * speed_mps
    inertia_n = params.rotating_mass_factor * params.mass_kg * accel_mps2
    return (aero_n + rolling_n + grade_n + inertia_n) * speed_mps


def battery_power_w(params: VehicleParams, speed_mps: float, accel_mps2: float, grade_pct: float) -> float:
    """Battery terminal power (W): positive to drive the wheels and auxiliaries, negative under regen."""
    wheel_w = road_load_w(params, speed_mps, accel_mps2, grade_pct)
    if wheel_w >= 0.0:
        traction_w = min(wheel_w / params.drivetrain_efficiency, params.max_motor_power_w)
    else:
        traction_w = max(wheel_w * params.regen_efficiency, -params.max_regen_power_w)
        if speed_mps < REGEN_FADE_SPEED_MPS:
            traction_w *= speed_mps / REGEN_FADE_SPEED_MPS
    return traction_w + params.aux_power_w
