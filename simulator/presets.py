"""Vehicle presets: one typical vehicle per class, with its default AC and DC chargers.

Each number says where it comes from. "Typical value for the class" marks an engineering estimate
that no source at hand confirms for the named vehicle; named sources are the ones checked while
writing this file (manufacturer figures as quoted by the press, tests, papers). The presets stand
for a class, not for a homologated vehicle: docs/simulator.md compares their consumption on
simple traces with published real-world figures.

Shared assumptions: the battery's ``capacity_ah`` is chosen so that ``nominal_energy_wh`` matches
the usable energy the sources give; current limits are sized so that the rated motor power and
the DC charging power pass at low SOC; the pack resistance is a typical value for the class (about
1 mΩ per large cell, times cells in series, divided by cells in parallel, plus connections).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from simulator.errors import ParameterError
from simulator.physics.battery import LFP_OCV_CELL_V, LFP_OCV_SOC_PCT, BatteryParams
from simulator.physics.charger import ChargerKind, ChargerParams
from simulator.physics.vehicle import VehicleParams

# Charging efficiencies (battery energy ÷ grid energy), shared by the presets. Level-2 AC charging
# averages about 89-90 % and DC fast charging is often above 90 %, up to about 93 % (NenPower,
# "How does the efficiency of Level 2 chargers compare to public charging stations", summarising
# published studies); a Norwegian empty-to-full test measured 9.5 % and 15.9 % charging losses for
# a Hyundai Ioniq and a Tesla Model 3 (quoted on ioniqforum.com). We take the middle of the ranges.
AC_CHARGING_EFFICIENCY = 0.89
DC_CHARGING_EFFICIENCY = 0.93


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePreset:
    """A vehicle with the AC and DC chargers it uses by default."""

    vehicle: VehicleParams
    ac_charger: ChargerParams
    dc_charger: ChargerParams

    def charger(self, kind: str) -> ChargerParams:
        """The default charger of ``kind``: ``"ac"`` or ``"dc"`` (a :class:`ChargerKind` is such a string)."""
        if kind == ChargerKind.AC:
            return self.ac_charger
        if kind == ChargerKind.DC:
            return self.dc_charger
        raise ParameterError(f"charger kind must be 'ac' or 'dc', got {kind!r}")

    def __post_init__(self) -> None:
        if self.ac_charger.kind is not ChargerKind.AC:
            raise ParameterError(f"ac_charger must be an AC charger, got {self.ac_charger.kind}")
        if self.dc_charger.kind is not ChargerKind.DC:
            raise ParameterError(f"dc_charger must be a DC charger, got {self.dc_charger.kind}")


COMPACT = VehiclePreset(
    # A VW ID.3 Pro (58 kWh, 150 kW)-like compact hatchback.
    vehicle=VehicleParams(
        name="compact hatchback (VW ID.3 Pro-like)",
        vehicle_class="compact",
        # 1,719 kg DIN kerb weight of the 58 kWh launch edition (more8x.blogspot.com, 2019) + 75 kg
        # driver + 100 kg payload.
        mass_kg=1_900.0,
        # Cd 0.267 (more8x.blogspot.com) × frontal area ≈ 0.85 × 1.81 m × 1.55 m
        # (width and height: heise Autos) = 2.38 m²; the 0.85 fill factor is a common approximation.
        drag_area_m2=0.64,
        # Low-rolling-resistance EV tyres; passenger tyres measured 0.007-0.017, about 0.010 on average
        # (a US tyre study as summarised on ecomodder.com).
        rolling_resistance=0.009,
        rotating_mass_factor=1.05,  # typical value for the class (single-speed drivetrain)
        # The electric drive loses 15-20 % of the energy (fueleconomy.gov, "Where the energy goes:
        # electric cars"); 0.85 sits at the better end, as suits a current permanent-magnet drive.
        drivetrain_efficiency=0.85,
        regen_efficiency=0.75,  # typical value for the class: motor, inverter and gear run backwards, plus blending
        # 150 kW, 310 Nm rear motor (VW, quoted by Luxemburger Wort and limmattalerzeitung.ch).
        max_motor_power_w=150_000.0,
        max_regen_power_w=80_000.0,  # typical value for the class
        aux_power_w=800.0,  # typical value for the class: 12 V system (~300 W) plus mild-weather climate control
        battery=BatteryParams(
            # 58 kWh usable of 62 kWh gross, 9 modules of 24 cells (Škoda Storyboard, "Get to know the
            # MEB platform"); 108 in series, 2 in parallel is our reading of those 216 cells for a
            # 400 V class pack. 143 Ah × 3.76 V mean OCV × 108 = 58.1 kWh.
            capacity_ah=143.0,
            series_cells=108,
            internal_resistance_ohm=0.08,  # typical value for the class
            max_discharge_current_a=500.0,
            max_charge_current_a=300.0,
        ),
    ),
    ac_charger=ChargerParams(
        kind=ChargerKind.AC,
        # An 11 kW three-phase on-board charger (typical value for the class), battery side 11 kW × 0.89.
        max_power_w=9_800.0,
        efficiency=AC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=90.0,  # typical value: AC power is limited by the on-board charger until near full
        min_taper_power_w=2_000.0,
    ),
    dc_charger=ChargerParams(
        kind=ChargerKind.DC,
        # 100 kW CCS (VW, quoted by limmattalerzeitung.ch; 50-125 kW by version: grenchnertagblatt.ch).
        max_power_w=100_000.0,
        efficiency=DC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=50.0,  # typical value for the class
        min_taper_power_w=10_000.0,
    ),
)

SUV = VehiclePreset(
    # A Hyundai Ioniq 5 (72.6 kWh, RWD) / Tesla Model Y-like crossover.
    vehicle=VehicleParams(
        name="crossover SUV (Hyundai Ioniq 5 / Tesla Model Y-like)",
        vehicle_class="suv",
        mass_kg=2_150.0,  # typical value for the class: about 2 t kerb weight + driver + payload
        # Typical value for the class: Tesla claims Cd 0.23 for the Model Y, a figure Autocar calls
        # optimistic; with about 2.6 m² of frontal area and a boxier Ioniq 5 we take Cd·A ≈ 0.70 m².
        drag_area_m2=0.70,
        rolling_resistance=0.009,  # as the compact: see there
        rotating_mass_factor=1.05,  # typical value for the class
        drivetrain_efficiency=0.85,  # fueleconomy.gov: electric drive losses 15-20 %
        regen_efficiency=0.75,  # typical value for the class
        # 214 CV (160 kW) rear motor with the 72.6 kWh battery (autoprove.it).
        max_motor_power_w=160_000.0,
        max_regen_power_w=100_000.0,  # typical value for the class
        aux_power_w=900.0,  # typical value for the class, as the compact with a larger cabin
        battery=BatteryParams(
            # 72.6 kWh in 30 modules of 12 pouch cells, 360 cells, on an 800 V platform (InsideEVs, BASTRO
            # teardown of the Ioniq 5 pack); 180 in series, 2 in parallel fits 800 V. 107 Ah × 3.76 V × 180.
            capacity_ah=107.0,
            series_cells=180,
            internal_resistance_ohm=0.12,  # typical value for the class
            max_discharge_current_a=400.0,
            max_charge_current_a=400.0,
        ),
    ),
    ac_charger=ChargerParams(
        kind=ChargerKind.AC,
        max_power_w=9_800.0,  # an 11 kW on-board charger (typical value for the class), × 0.89
        efficiency=AC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=90.0,  # typical value
        min_taper_power_w=2_000.0,
    ),
    dc_charger=ChargerParams(
        kind=ChargerKind.DC,
        # 220 kW peak (Hyundai, quoted by greenfuture.pt; held for four minutes from about 30 % in a
        # Battery Life test quoted by autoevolution.com), 10-80 % in 18 minutes.
        max_power_w=220_000.0,
        efficiency=DC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=50.0,  # typical value for the class
        min_taper_power_w=15_000.0,
    ),
)

VAN = VehiclePreset(
    # A Ford E-Transit (68 kWh, 135 kW) / Mercedes eVito-like panel van.
    vehicle=VehicleParams(
        name="panel van (Ford E-Transit / Mercedes eVito-like)",
        vehicle_class="van",
        # Typical value for the class: about 2.6 t kerb weight + driver + 300 kg of load, well under
        # the 3.5-4.25 t gross weights of the E-Transit (Vision Mobility test report).
        mass_kg=3_000.0,
        drag_area_m2=1.40,  # typical value for the class: Cd about 0.35 over about 4 m² of frontal area
        rolling_resistance=0.010,  # light-truck tyres at load: typical value for the class
        rotating_mass_factor=1.05,  # typical value for the class
        drivetrain_efficiency=0.85,  # fueleconomy.gov: electric drive losses 15-20 %
        regen_efficiency=0.75,  # typical value for the class
        max_motor_power_w=135_000.0,  # 135 kW, the smaller of the E-Transit's two motors (Vision Mobility)
        max_regen_power_w=80_000.0,  # typical value for the class
        aux_power_w=1_000.0,  # typical value for the class: 12 V system plus climate control of a large cab
        battery=BatteryParams(
            # 68 kWh usable (77 kWh gross) (Vision Mobility); 96 in series for a 400 V class pack is
            # a typical value for the class. 188 Ah × 3.76 V × 96 = 67.9 kWh.
            capacity_ah=188.0,
            series_cells=96,
            internal_resistance_ohm=0.07,  # typical value for the class
            max_discharge_current_a=500.0,
            max_charge_current_a=350.0,
        ),
    ),
    ac_charger=ChargerParams(
        kind=ChargerKind.AC,
        max_power_w=10_000.0,  # 11.3 kW three-phase on-board charger (Vision Mobility, thedriven.io), × 0.89
        efficiency=AC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=90.0,  # typical value
        min_taper_power_w=2_000.0,
    ),
    dc_charger=ChargerParams(
        kind=ChargerKind.DC,
        max_power_w=115_000.0,  # 115 kW DC (Vision Mobility, thedriven.io)
        efficiency=DC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=50.0,  # typical value for the class
        min_taper_power_w=10_000.0,
    ),
)

BUS = VehiclePreset(
    # A 12 m low-floor city bus, Solaris Urbino 12 electric / BYD K9-like, with an LFP battery.
    vehicle=VehicleParams(
        name="12 m city bus (Solaris Urbino 12 electric / BYD K9-like)",
        vehicle_class="bus",
        # 13.5 t kerb weight (BYD K9 as tested in Madrid and Barcelona, Bergé Automoción) + about
        # 30 passengers at 68 kg with the driver; gross weights are 18-19.5 t (Wikipedia's
        # Solaris Urbino 12 electric and BYD K9 articles, electrive.net).
        mass_kg=15_500.0,
        # Typical value for the class: Cd about 0.6 over 2.55 m × 3.3 m (BYD K9 width and height,
        # enviweb.cz) ≈ 8.4 m² of frontal area, less the rounded corners.
        drag_area_m2=4.9,
        # Truck and bus tyres on asphalt: 0.006-0.01 (Engineering ToolBox, "Rolling resistance").
        rolling_resistance=0.007,
        rotating_mass_factor=1.05,  # typical value for the class
        drivetrain_efficiency=0.85,  # typical value for the class, as the cars (fueleconomy.gov)
        regen_efficiency=0.75,  # typical value for the class
        max_motor_power_w=250_000.0,  # ZF AVE 130 axle, 2 × 125 kW (busnetz.de, electrive.net)
        max_regen_power_w=150_000.0,  # typical value for the class
        # Typical value for the class in mild weather: air compressor, steering pump, ventilation,
        # 24 V system, doors; heating or air conditioning adds far more.
        aux_power_w=8_000.0,
        battery=BatteryParams(
            # 240 kWh "Solaris High Energy" battery of the Urbino 12 electric for Bergamo and Milan
            # (busnetz.de); LFP cells (CATL, since 2022: electrive.net; BYD K9: LiFePO4). 192 in
            # series is a typical value for a 600 V class pack. 380 Ah × 3.29 V × 192 = 240 kWh.
            capacity_ah=380.0,
            series_cells=192,
            internal_resistance_ohm=0.10,  # typical value for the class
            max_discharge_current_a=600.0,
            max_charge_current_a=400.0,
            ocv_soc_pct=LFP_OCV_SOC_PCT,
            ocv_cell_v=LFP_OCV_CELL_V,
        ),
    ),
    ac_charger=ChargerParams(
        kind=ChargerKind.AC,
        # BYD's published K9 specifications give overnight charging at up to 60 kW (as listed by
        # Wikipedia's BYD electric bus article); taken
        # here as the AC default, × 0.89 on the battery side.
        max_power_w=53_000.0,
        efficiency=AC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=90.0,  # typical value
        min_taper_power_w=10_000.0,
    ),
    dc_charger=ChargerParams(
        kind=ChargerKind.DC,
        max_power_w=150_000.0,  # a 150 kW plug-in depot charger: typical value for the class
        efficiency=DC_CHARGING_EFFICIENCY,
        taper_start_soc_pct=60.0,  # typical value for the class
        min_taper_power_w=20_000.0,
    ),
)

PRESETS: Mapping[str, VehiclePreset] = MappingProxyType(
    {
        "compact": COMPACT,
        "suv": SUV,
        "van": VAN,
        "bus": BUS,
    }
)
"""The presets by class name (read-only)."""


def preset(name: str) -> VehiclePreset:
    """The preset called ``name``; :class:`ParameterError` listing the known names if there is none."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ParameterError(f"unknown vehicle preset {name!r}; known presets: {known}") from None
