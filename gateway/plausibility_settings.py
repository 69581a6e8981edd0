"""The thresholds of the plausibility checks, where each default comes from, and their TOML table.

Every bound is wide on purpose: a record refused here is final, so a bound must catch what cannot
be (a unit error, a stuck sensor, a forged figure), never an unusual but real day. docs/plausibility.md
tabulates each default with its source. In gateway.toml, global keys sit in ``[plausibility]`` and
each vehicle class may override its own bounds in a sub-table; a key left out keeps its default::

    [plausibility]
    max_future_skew_s = 300
    [plausibility.bus]
    max_average_speed_kph = 100  # our fleet's limiters are set to 100 km/h

``unspecified`` has no table: a device registered without a class is judged by the widest bound of
every class, computed from the four tables.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from carbonlink.config_tables import settings_from_table
from carbonlink.vehicles import VehicleClass
from gateway.errors import ConfigError

STANDARD_GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassBounds:
    """The bounds of one vehicle class; the defaults below (per class) say where each comes from."""

    max_average_speed_kph: float
    """Distance over duration of a whole trip, the standing at both ends included."""
    min_energy_wh_per_km: float
    """Net battery energy (out - regen) per km on level ground: under it, energy went unmeasured."""
    max_energy_wh_per_km: float
    """Traction energy per km on level ground at the worst (motorway, winter tyres, full load)."""
    max_auxiliary_power_kw: float
    """Heating, cooling, battery conditioning: drawn for as long as a trip lasts, however far it goes."""
    max_mass_kg: float
    """Gross vehicle mass: what climbing or descending the allowed elevation change is worth."""
    min_battery_capacity_kwh: float
    max_battery_capacity_kwh: float
    """Usable capacities of the smallest and largest batteries of the class: SOC change vs energy."""
    max_charging_power_kw: float
    """Battery energy received per hour of a charge session, its ramp-up and taper included."""

    def elevation_wh(self, elevation_m: float) -> float:
        """Potential energy of lifting the class's gross mass by ``elevation_m``."""
        return self.max_mass_kg * STANDARD_GRAVITY_MPS2 * elevation_m / 3600.0


# Measured consumption per class (battery side, docs/simulator.md "Consumption check"): compact
# 140-180 Wh/km (ADAC 163-178 incl. charging losses; the preset 139 urban, 145 NEDC); suv 160-200
# (EPA Model Y 144 city, 166 highway); van 230-300 (E-Transit 215 claimed, ~300 in a short test);
# bus 1,000-1,300 (79 Dutch 12 m buses: 1,150 on average, +14 % in the cold). The floor is 40 % of
# the low end (the presets at a steady 50 km/h, the gentlest trace there is, use 95, 107, 169 and 693:
# all well above it); the traction ceiling 2.5 times the high end (a compact at a steady 180 km/h
# needs about 370 Wh/km). Heating and cooling are bounded per hour, not per km, because a short
# winter trip or a traffic jam spends most of its energy standing: a PTC cabin heater draws 5-7 kW
# and cold-battery conditioning a few kW more (cars 10-12 kW); UITP measured heating at more than
# half of a city bus's energy in Stockholm and Ottawa, i.e. 20+ kW at its ~20 kW average (bus 40 kW).
COMPACT_BOUNDS = ClassBounds(
    # Beyond any public road over a whole trip; the fastest compacts top out at 160-200 km/h.
    max_average_speed_kph=200.0,
    min_energy_wh_per_km=55.0,
    max_energy_wh_per_km=450.0,
    max_auxiliary_power_kw=10.0,
    max_mass_kg=2_300.0,  # gross mass of a VW ID.3-sized car (1.8 t kerb weight + 0.5 t payload)
    # Smart EQ fortwo 16.7 kWh usable (and 21-24 kWh Leaf, Zoe, 500e) up to 77-82 kWh sedans.
    min_battery_capacity_kwh=15.0,
    max_battery_capacity_kwh=110.0,
    # Average power over a session, never above the peak: BYD's 2025 platform peaks at 1,000 kW.
    max_charging_power_kw=1_000.0,
)
SUV_BOUNDS = ClassBounds(
    max_average_speed_kph=200.0,  # as the compact: the limit is the road, not the car
    min_energy_wh_per_km=65.0,
    max_energy_wh_per_km=500.0,
    max_auxiliary_power_kw=12.0,
    max_mass_kg=3_500.0,  # large electric SUVs weigh up to about 3.5 t gross
    # Mazda MX-30 30 kWh usable up to the 205 kWh of a Hummer EV.
    min_battery_capacity_kwh=25.0,
    max_battery_capacity_kwh=215.0,
    max_charging_power_kw=1_000.0,
)
VAN_BOUNDS = ClassBounds(
    max_average_speed_kph=160.0,  # electric vans top out at 120-160 km/h (eVito Tourer: 160)
    min_energy_wh_per_km=90.0,
    max_energy_wh_per_km=750.0,
    max_auxiliary_power_kw=12.0,
    max_mass_kg=4_250.0,  # the heaviest Ford E-Transit's gross mass
    # Nissan e-NV200 24 kWh (first models) up to the 113 kWh usable of the eSprinter.
    min_battery_capacity_kwh=20.0,
    max_battery_capacity_kwh=140.0,
    max_charging_power_kw=400.0,  # vans on sale charge at 115-200 kW peak
)
BUS_BOUNDS = ClassBounds(
    # EU speed limiters hold buses and coaches (M2, M3) to 100 km/h (Directive 92/6/EEC as amended
    # by 2002/85/EC); 20 % more allows for a distance integrated from a speedometer reading high.
    max_average_speed_kph=120.0,
    min_energy_wh_per_km=400.0,
    max_energy_wh_per_km=3_250.0,
    max_auxiliary_power_kw=40.0,
    max_mass_kg=19_500.0,  # 12 m buses: 18-19.5 t gross (Solaris Urbino 12 electric, BYD K9)
    # Opportunity-charged buses carry 76 kWh and up (Volvo 7900 Electric); 18 m buses up to ~700 kWh.
    min_battery_capacity_kwh=60.0,
    max_battery_capacity_kwh=800.0,
    max_charging_power_kw=1_000.0,  # pantographs 450-600 kW; megawatt charging for heavy vehicles
)

_CLASS_RANGES: Mapping[str, tuple[float, float]] = {
    "max_average_speed_kph": (1.0, 1_000.0),
    "min_energy_wh_per_km": (0.0, 10_000.0),
    "max_energy_wh_per_km": (1.0, 100_000.0),
    "max_auxiliary_power_kw": (0.0, 1_000.0),
    "max_mass_kg": (100.0, 100_000.0),
    "min_battery_capacity_kwh": (1.0, 10_000.0),
    "max_battery_capacity_kwh": (1.0, 10_000.0),
    "max_charging_power_kw": (1.0, 10_000.0),
}
_GLOBAL_RANGES: Mapping[str, tuple[float, float]] = {
    "max_future_skew_s": (0.0, 366 * 86_400.0),
    "max_future_skew_unsynced_s": (0.0, 366 * 86_400.0),
    "max_record_age_days": (1.0, 36_500.0),
    "time_order_tolerance_s": (0.0, 86_400.0),
    "odometer_resolution_m": (0.0, 10_000.0),
    "distance_tolerance_fraction": (0.0, 10.0),
    "max_elevation_change_m": (0.0, 9_000.0),
    "soc_tolerance_pct": (0.0, 100.0),
    "min_soc_change_pct": (0.0, 100.0),
    "min_charge_energy_wh": (0.0, 10_000_000.0),
    "min_charge_efficiency": (0.01, 1.0),
    "max_charge_efficiency": (1.0, 2.0),
}
_CLASS_TABLES = tuple(cls.value for cls in VehicleClass if cls is not VehicleClass.UNSPECIFIED)
"""The classes with their own sub-table: every class but ``unspecified``."""
_ORDERED_PAIRS = (
    ("min_energy_wh_per_km", "max_energy_wh_per_km"),
    ("min_battery_capacity_kwh", "max_battery_capacity_kwh"),
    ("max_future_skew_s", "max_future_skew_unsynced_s"),
)


def _check(table: str, values: object, ranges: Mapping[str, tuple[float, float]]) -> None:
    for key, (low, high) in ranges.items():
        value = getattr(values, key)
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"[{table}] {key} must be a number from {low:g} to {high:g}, not {value!r}")
    for low_key, high_key in _ORDERED_PAIRS:
        if low_key in ranges and getattr(values, low_key) > getattr(values, high_key):
            raise ConfigError(f"[{table}] {low_key} must not exceed {high_key}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlausibilitySettings:
    """Every threshold of the plausibility checks; a bad value raises ConfigError naming its key."""

    max_future_skew_s: float = 300.0
    """A synchronised clock (GNSS, NTP) is right within a second; 5 min is a wide margin."""
    max_future_skew_unsynced_s: float = 86_400.0
    """An unsynchronised real-time clock kept in local time runs up to 14 h ahead of UTC (UTC+14),
    plus drift (20 ppm is under a minute a month): a day."""
    max_record_age_days: float = 400.0
    """A vehicle offline for months still uploads; past a year and a month its record falls outside
    the yearly monitoring period it belongs to, and a clock reset to 1970 or 2000 lands far beyond."""
    time_order_tolerance_s: float = 1.0
    """A wall clock stepped back by its synchronisation: ntpd steps only past 128 ms, so 1 s is ample."""
    odometer_resolution_m: float = 1_000.0
    """The coarsest odometer a profile reads: 1 km on the VW cluster (opendbc's KBI_Kilometerstand;
    the reference DBC has 1 m). It is the slack of every comparison of odometer readings, and of every
    distance (an odometer difference may be up to one step off the true one)."""
    distance_tolerance_fraction: float = 0.25
    """Distance against the odometer: UN R39 lets a speedometer read up to 10 % + 4 km/h high (23 % at
    30 km/h), which a distance integrated from displayed speed inherits. A km/mile mix-up (61 %), a
    doubled or halved figure still fail."""
    max_elevation_change_m: float = 100.0
    """Net climb or descent a trip may have: its potential energy at the class's gross mass widens the
    energy bounds both ways, so a trip down a hill may regenerate more than it used."""
    soc_tolerance_pct: float = 3.0
    """Error of a BMS's SOC change between two readings, in percentage points."""
    min_soc_change_pct: float = 5.0
    """SOC changes under this are never judged: against a 3-point error they say nothing."""
    min_charge_energy_wh: float = 500.0
    """Charge sessions under this battery energy are not judged for efficiency or power: ramp-up,
    hand-shake and meter resolution (often 100 Wh) dominate their ratios."""
    min_charge_efficiency: float = 0.65
    """ADAC measured up to 24 % losses charging a Renault Zoe from a household socket (2.3 kW), and
    20 % for a BMW iX on 22 kW AC; battery heating in the cold and meter error come on top."""
    max_charge_efficiency: float = 1.03
    """More out than in is impossible; 3 % covers the charger's meter (MID class A: 2 %) and the
    agent's current sensor (~1 %)."""
    compact: ClassBounds = COMPACT_BOUNDS
    suv: ClassBounds = SUV_BOUNDS
    van: ClassBounds = VAN_BOUNDS
    bus: ClassBounds = BUS_BOUNDS

    def __post_init__(self) -> None:
        _check("plausibility", self, _GLOBAL_RANGES)
        for name in _CLASS_TABLES:
            _check(f"plausibility.{name}", getattr(self, name), _CLASS_RANGES)

    def bounds(self, vehicle_class: VehicleClass) -> ClassBounds:
        """The bounds of ``vehicle_class``; for ``unspecified``, the widest of every class."""
        if vehicle_class is VehicleClass.UNSPECIFIED:
            return _widest(self.compact, self.suv, self.van, self.bus)
        bounds: ClassBounds = getattr(self, vehicle_class.value)
        return bounds


@lru_cache(maxsize=16)
def _widest(*classes: ClassBounds) -> ClassBounds:
    """The bounds that let through whatever any of ``classes`` lets through."""
    lowest = {"min_energy_wh_per_km", "min_battery_capacity_kwh"}
    return ClassBounds(
        **{
            item.name: (min if item.name in lowest else max)(getattr(bounds, item.name) for bounds in classes)
            for item in dataclasses.fields(ClassBounds)
        }
    )


def _class_bounds(name: str, table: object) -> ClassBounds:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[plausibility.{name}] must be a table, not {table!r}")
    defaults: ClassBounds = getattr(PlausibilitySettings(), name)
    merged = dataclasses.asdict(defaults) | dict(table)
    return settings_from_table(ClassBounds, merged, name=f"plausibility.{name}", base_dir=Path(), error=ConfigError)


def plausibility_from_table(table: Mapping[str, Any]) -> PlausibilitySettings:
    """Read gateway.toml's ``[plausibility]`` table (and its class sub-tables) into checked settings."""
    nested = {name: partial(_class_bounds, name) for name in _CLASS_TABLES}
    return settings_from_table(
        PlausibilitySettings, table, name="plausibility", base_dir=Path(), error=ConfigError, nested=nested
    )
