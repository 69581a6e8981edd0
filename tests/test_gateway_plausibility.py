"""The gateway's plausibility checks: each fault gets its reason, real records pass, thresholds load from TOML.

Faults are built from the shipped sample records with one field changed, so each test states only
what it is about. The last test runs the simulator and the agent's real pipeline for each vehicle
class and judges every record the agent seals.
"""

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.reasons import RejectionReason
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.testing import SAMPLE_DEVICE_ID, SAMPLE_START_AT, sample_charge, sample_trip
from carbonlink.vehicles import VehicleClass
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.model import ChainHead
from gateway.plausibility import (
    MAX_DETAIL_CHARS,
    Finding,
    PlausibilitySettings,
    check_plausibility,
    plausibility_from_table,
)
from gateway.plausibility_settings import ClassBounds
from simulator.cycles import cycle_by_name
from simulator.day import Charge, DayPlan, InitialState, Trip
from simulator.presets import preset

from records_factory import records
from sim_runs import START_AT, run_agent, simulate

SETTINGS = PlausibilitySettings()
COMPACT = VehicleClass.COMPACT
CLASSES = [cls for cls in VehicleClass if cls is not VehicleClass.UNSPECIFIED]
DOC = Path(__file__).resolve().parent.parent / "docs" / "plausibility.md"


def judge(
    record: Record,
    *,
    vehicle_class: VehicleClass = COMPACT,
    previous: ChainHead | None = None,
    received_at: datetime | None = None,
    settings: PlausibilitySettings = SETTINGS,
) -> Finding | None:
    """Judge ``record`` as intake would, received a minute after it ended unless told otherwise."""
    return check_plausibility(
        record,
        vehicle_class=vehicle_class,
        previous=previous,
        received_at=record.end_at + timedelta(minutes=1) if received_at is None else received_at,
        settings=settings,
    )


def head(**overrides: Any) -> ChainHead:  # noqa: ANN401 - any field of ChainHead
    """The device's previous record: ended an hour before the sample records start, where their odometer starts."""
    values: dict[str, Any] = {
        "device_id": SAMPLE_DEVICE_ID,
        "sequence": 41,
        "record_hash": bytes(32),
        "record_id": "previous-record",
        "end_at": SAMPLE_START_AT - timedelta(hours=1),
        "odometer_end_m": 48_210_000.0,
    }
    return ChainHead(**(values | overrides))


def plausible_charge(**overrides: Any) -> ChargeRecord:  # noqa: ANN401 - any field of ChargeRecord
    """The sample charge with a SOC that rises: sample_charge() copies the sample trip's falling SOC.

    7,150 Wh over 12 points is a 60 kWh battery.
    """
    return sample_charge(**({"soc_start_pct": 61.5, "soc_end_pct": 73.5} | overrides))


def assert_finding(finding: Finding | None, reason: RejectionReason, *figures: str) -> None:
    assert finding is not None, f"expected {reason}, the record passed"
    assert finding.reason is reason, finding
    assert finding.detail.isprintable(), finding.detail
    assert len(finding.detail) <= MAX_DETAIL_CHARS, finding.detail
    for figure in figures:
        assert figure in finding.detail, f"{figure!r} not in {finding.detail!r}"


# --- typical records pass --------------------------------------------------------------------------


def test_the_sample_trip_passes_for_a_compact() -> None:
    """The shipped sample trip (12.4 km in 31 min, 1,550 Wh net, SOC 80 -> 73.5 %) is plausible for a compact."""
    assert judge(sample_trip()) is None
    assert judge(sample_trip(), previous=head()) is None


def test_the_sample_charge_passes_for_a_compact() -> None:
    """The shipped sample charge (7,150 Wh from 7,900 Wh at the grid) is plausible with a SOC that rises."""
    assert judge(plausible_charge()) is None
    assert judge(plausible_charge(), previous=head()) is None


def test_the_sample_charge_soc_as_shipped_falls_during_a_charge() -> None:
    """sample_charge() as shipped lets the SOC fall 6.5 points while 7,150 Wh go in: implausible_soc."""
    assert_finding(judge(sample_charge()), RejectionReason.IMPLAUSIBLE_SOC, "80.0 -> 73.5 %", "7,150 Wh")


@pytest.mark.parametrize("vehicle_class", list(VehicleClass), ids=str)
def test_a_record_without_optional_readings_passes_for_every_class(vehicle_class: VehicleClass) -> None:
    """Without odometer, SOC and grid readings, and after a record without an odometer, nothing is judged on them."""
    missing = {"odometer_start_m": None, "odometer_end_m": None, "soc_start_pct": None, "soc_end_pct": None}
    previous = head(odometer_end_m=None)
    assert judge(sample_trip(**missing), vehicle_class=vehicle_class, previous=previous) is None
    charge = sample_charge(**missing, grid_energy_wh=None, energy_in_wh=20_000.0)
    assert judge(charge, vehicle_class=vehicle_class, previous=previous) is None


# --- one fault per reason, and the order in which they are found --------------------------------


@dataclass
class Scenario:
    """A sample trip, its predecessor and when it arrives, for a fault to change."""

    overrides: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    received_early: timedelta | None = None
    """Received this long before the record ends (a clock running ahead)."""

    def judge(self) -> Finding | None:
        record = sample_trip(**self.overrides)
        received_at = None if self.received_early is None else record.end_at - self.received_early
        return judge(record, previous=head(**self.previous), received_at=received_at)


def _clock_ahead(s: Scenario) -> None:
    s.received_early = timedelta(hours=1)


def _starts_before_previous_end(s: Scenario) -> None:
    s.previous["end_at"] = SAMPLE_START_AT + timedelta(minutes=10)


def _odometer_below_previous(s: Scenario) -> None:
    s.previous["odometer_end_m"] = 48_260_000.0


def _odometer_disagrees(s: Scenario) -> None:
    s.overrides["odometer_end_m"] = 48_240_000.0


def _two_minutes(s: Scenario) -> None:
    s.overrides["end_at"] = SAMPLE_START_AT + timedelta(minutes=2)


def _forty_kwh(s: Scenario) -> None:
    s.overrides["energy_out_wh"] = 40_000.0


def _soc_rises_while_driving(s: Scenario) -> None:
    s.overrides |= {"soc_start_pct": 20.0, "soc_end_pct": 90.0}


TRIP_FAULTS: list[tuple[RejectionReason, Callable[[Scenario], None], tuple[str, ...]]] = [
    (RejectionReason.CLOCK_SKEW, _clock_ahead, ("3,600.000 s after it was received", "300 s allowed")),
    (RejectionReason.TIME_ORDER, _starts_before_previous_end, ("0:10:00.0 before", "sequence 41")),
    (RejectionReason.ODOMETER_ROLLBACK, _odometer_below_previous, ("48,210.000 km", "50,000 m below", "1000 m")),
    (RejectionReason.IMPLAUSIBLE_DISTANCE, _odometer_disagrees, ("12.400 km", "30.000 km", "17,600 m", "3,100 m")),
    (RejectionReason.IMPLAUSIBLE_SPEED, _two_minutes, ("12.400 km in 0:02:00.0", "342.0 km/h", "200 km/h")),
    (RejectionReason.IMPLAUSIBLE_ENERGY, _forty_kwh, ("net 39,690 Wh", "12.400 km", "11,823 Wh", "450 Wh/km")),
    (RejectionReason.IMPLAUSIBLE_SOC, _soc_rises_while_driving, ("20.0 -> 90.0 %", "1,550 Wh", "15-110 kWh")),
]


@pytest.mark.parametrize(("reason", "fault", "figures"), TRIP_FAULTS, ids=[str(f[0]) for f in TRIP_FAULTS])
def test_a_trip_with_one_fault_is_rejected_for_it(
    reason: RejectionReason, fault: Callable[[Scenario], None], figures: tuple[str, ...]
) -> None:
    """A trip with exactly one fault gets that fault's reason, with a detail naming the figures and the bound."""
    scenario = Scenario()
    fault(scenario)
    assert_finding(scenario.judge(), reason, *figures)


@pytest.mark.parametrize("first", range(len(TRIP_FAULTS)), ids=[str(f[0]) for f in TRIP_FAULTS])
def test_the_first_failing_check_in_the_documented_order_wins(first: int) -> None:
    """A trip with several faults is rejected for the one whose check comes first."""
    scenario = Scenario()
    for _reason, fault, _figures in TRIP_FAULTS[first:]:
        fault(scenario)
    assert_finding(scenario.judge(), TRIP_FAULTS[first][0])


def test_a_charge_with_a_falling_soc_is_rejected_before_its_efficiency() -> None:
    """SOC comes before efficiency: a charge with both faults is implausible_soc, with one the other."""
    efficiency_fault = {"grid_energy_wh": 3_000.0}
    assert_finding(judge(sample_charge(**efficiency_fault)), RejectionReason.IMPLAUSIBLE_SOC)
    assert_finding(
        judge(plausible_charge(**efficiency_fault)),
        RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY,
        "7,150 Wh",
        "3,000 Wh",
        "238.3%",
        "65% to 103%",
    )


# --- each check's rule and its boundary -----------------------------------------------------------


def test_clock_skew_allows_five_minutes_ahead_for_a_synchronised_clock() -> None:
    """A synced record may end 300 s after it was received, not a millisecond more."""
    trip = sample_trip()
    assert judge(trip, received_at=trip.end_at - timedelta(seconds=300)) is None
    late = trip.end_at - timedelta(seconds=300, milliseconds=1)
    assert_finding(judge(trip, received_at=late), RejectionReason.CLOCK_SKEW, "300.001 s after", "300 s allowed")


def test_clock_skew_allows_a_day_ahead_for_an_unsynchronised_clock() -> None:
    """An unsynced clock (say, kept in local time) may run up to a day ahead; a synced one may not."""
    received_at = sample_trip().end_at - timedelta(hours=14)
    assert judge(sample_trip(clock_synced=False), received_at=received_at) is None
    assert_finding(judge(sample_trip(), received_at=received_at), RejectionReason.CLOCK_SKEW, "50,400.000 s after")
    too_far = sample_trip().end_at - timedelta(days=1, seconds=1)
    assert_finding(
        judge(sample_trip(clock_synced=False), received_at=too_far),
        RejectionReason.CLOCK_SKEW,
        "86,401.000 s",
        "86,400 s allowed",
    )


def test_a_record_older_than_400_days_is_clock_skew() -> None:
    """A record that ended 400 days before it arrived passes; a second older is refused."""
    trip = sample_trip()
    assert judge(trip, received_at=trip.end_at + timedelta(days=400)) is None
    finding = judge(trip, received_at=trip.end_at + timedelta(days=400, seconds=1))
    assert_finding(finding, RejectionReason.CLOCK_SKEW, "400.0 d before", "older than 400 d")


def test_time_order_tolerates_one_second_of_clock_stepping() -> None:
    """A record may start 1 s before its predecessor's end (a clock stepped back), not more."""
    trip = sample_trip()
    assert judge(trip, previous=head(end_at=trip.start_at)) is None
    assert judge(trip, previous=head(end_at=trip.start_at + timedelta(seconds=1))) is None
    late = head(end_at=trip.start_at + timedelta(seconds=1, milliseconds=1))
    assert_finding(judge(trip, previous=late), RejectionReason.TIME_ORDER, "0:00:01.0 before", "tolerance 1 s")


def test_a_charge_may_not_overlap_the_trip_before_it() -> None:
    """Trips and charges share one time line: a charge that starts before the last trip ended is time_order."""
    charge = plausible_charge()
    assert_finding(
        judge(charge, previous=head(end_at=charge.start_at + timedelta(minutes=5))), RejectionReason.TIME_ORDER
    )


def test_odometer_rollback_tolerates_one_odometer_step() -> None:
    """The odometer may start up to 1,000 m (a 1 km odometer's step) below the previous end, not more."""
    trip = sample_trip()
    assert judge(trip, previous=head(odometer_end_m=48_211_000.0)) is None
    finding = judge(trip, previous=head(odometer_end_m=48_211_001.0))
    assert_finding(finding, RejectionReason.ODOMETER_ROLLBACK, "48,210.000 km", "1,001 m below", "48,211.001 km")


def test_a_forward_jump_of_the_odometer_between_records_is_not_a_fault() -> None:
    """Kilometres driven with the agent off are not this record's: a trip that starts 500 km on still passes."""
    assert judge(sample_trip(), previous=head(odometer_end_m=47_710_000.0)) is None


def test_distance_may_differ_from_the_odometer_by_a_quarter_or_one_odometer_step() -> None:
    """Distance vs odometer: 12.4 km may be off by the larger of 1,000 m and 25 % (3,100 m)."""
    assert judge(sample_trip(odometer_end_m=48_210_000.0 + 12_400.0 + 3_100.0)) is None
    assert judge(sample_trip(odometer_end_m=48_210_000.0 + 12_400.0 - 3_100.0)) is None
    assert_finding(
        judge(sample_trip(odometer_end_m=48_210_000.0 + 12_400.0 + 3_100.5)),
        RejectionReason.IMPLAUSIBLE_DISTANCE,
        "12.400 km",
        "3,100 m allowed",
    )
    short = {"distance_m": 600.0, "energy_out_wh": 150.0, "energy_regen_wh": 20.0, "soc_end_pct": 79.0}
    assert judge(sample_trip(**short, odometer_end_m=48_211_600.0)) is None
    assert_finding(judge(sample_trip(**short, odometer_end_m=48_211_601.0)), RejectionReason.IMPLAUSIBLE_DISTANCE)


def test_an_odometer_reading_backwards_within_a_trip_is_implausible_distance() -> None:
    """A trip whose odometer ends below where it started disagrees with any distance driven."""
    finding = judge(sample_trip(odometer_end_m=48_197_600.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_DISTANCE, "-12.400 km")


def test_the_odometer_moves_at_most_one_step_during_a_charge() -> None:
    """A charge session's odometer may tick over once (1,000 m), not more: a charging car does not drive."""
    assert judge(plausible_charge(odometer_end_m=48_211_000.0)) is None
    finding = judge(plausible_charge(odometer_end_m=48_211_001.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_DISTANCE, "1,001 m during a charge")


def test_average_speed_is_judged_on_the_distance_less_one_odometer_step() -> None:
    """11 km, less 1 km of odometer resolution, in 180 s is 200 km/h: the compact's bound, passes; faster fails."""
    trip = {"distance_m": 11_000.0, "odometer_end_m": 48_221_000.0, "soc_start_pct": None}
    assert judge(sample_trip(**trip, end_at=SAMPLE_START_AT + timedelta(seconds=180))) is None
    finding = judge(sample_trip(**trip, end_at=SAMPLE_START_AT + timedelta(seconds=179.9)))
    assert_finding(
        finding, RejectionReason.IMPLAUSIBLE_SPEED, "11.000 km in 0:02:59.9", "200.1 km/h", "bound of 200 km/h"
    )


@pytest.mark.parametrize(
    ("vehicle_class", "limit_kph"), [(VehicleClass.BUS, 120), (VehicleClass.VAN, 160), (VehicleClass.SUV, 200)]
)
def test_each_class_has_its_own_speed_bound(vehicle_class: VehicleClass, limit_kph: int) -> None:
    """A bus may average 120 km/h, a van 160, an SUV 200: 100 km at just over that is refused."""
    trip = {"distance_m": 101_000.0, "odometer_end_m": 48_311_000.0, "soc_start_pct": None, "energy_out_wh": 40_000.0}
    hours = 100 / limit_kph
    at_limit = sample_trip(**trip, end_at=SAMPLE_START_AT + timedelta(hours=hours * 1.001))
    assert judge(at_limit, vehicle_class=vehicle_class) is None
    over = sample_trip(**trip, end_at=SAMPLE_START_AT + timedelta(hours=hours * 0.999))
    assert_finding(judge(over, vehicle_class=vehicle_class), RejectionReason.IMPLAUSIBLE_SPEED, f"{limit_kph} km/h")


def test_a_trip_of_no_duration_is_implausible_speed() -> None:
    """Any distance beyond one odometer step in zero time is impossible."""
    finding = judge(sample_trip(end_at=SAMPLE_START_AT))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_SPEED, "12.400 km in no time")
    tiny: dict[str, Any] = {"distance_m": 900.0, "odometer_end_m": 48_210_900.0, "soc_start_pct": None}
    tiny |= {"energy_out_wh": 20.0, "energy_regen_wh": 0.0}
    assert judge(sample_trip(**tiny, end_at=SAMPLE_START_AT)) is None


def _compact_ceiling_wh(distance_m: float, duration_s: float) -> float:
    bounds = SETTINGS.compact
    return (
        bounds.max_energy_wh_per_km * (distance_m + 1_000.0) / 1000
        + bounds.max_auxiliary_power_kw * duration_s / 3.6
        + bounds.elevation_wh(100.0)
    )


def test_trip_energy_ceiling_adds_auxiliaries_per_hour_and_a_climb() -> None:
    """12.4 km in 31 min may use 450 Wh/km (over 13.4 km), 10 kW for 31 min and a 100 m climb: 11,823 Wh, no more."""
    ceiling_wh = _compact_ceiling_wh(12_400.0, 31 * 60)
    assert round(ceiling_wh) == 11_823
    no_soc = {"soc_start_pct": None, "energy_regen_wh": 0.0}
    assert judge(sample_trip(**no_soc, energy_out_wh=ceiling_wh - 0.5)) is None
    finding = judge(sample_trip(**no_soc, energy_out_wh=ceiling_wh + 0.5))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_ENERGY, "11,823 Wh", "10 kW auxiliaries", "100 m climb")


def test_a_winter_traffic_jam_is_not_implausible() -> None:
    """Two kilometres in two hours of jam with 8 kW of heating (16.4 kWh) is far over any Wh/km, and passes."""
    jam = sample_trip(
        distance_m=2_000.0,
        odometer_end_m=48_212_000.0,
        end_at=SAMPLE_START_AT + timedelta(hours=2),
        energy_out_wh=16_500.0,
        energy_regen_wh=100.0,
        soc_start_pct=80.0,
        soc_end_pct=52.0,
    )
    assert judge(jam) is None


def test_zero_energy_over_a_long_trip_is_implausible_energy() -> None:
    """50 km on no energy at all (a dead current sensor, a forged figure) is under the compact's floor."""
    trip = sample_trip(
        distance_m=50_000.0,
        odometer_end_m=48_260_000.0,
        end_at=SAMPLE_START_AT + timedelta(minutes=45),
        energy_out_wh=0.0,
        energy_regen_wh=0.0,
        soc_start_pct=None,
    )
    assert_finding(judge(trip), RejectionReason.IMPLAUSIBLE_ENERGY, "net 0 Wh", "50.000 km", "55 Wh/km")


def test_trip_energy_floor_is_55_wh_per_km_less_a_descent() -> None:
    """The compact floor over 50 km: 55 Wh/km over 49 km less a 100 m descent (627 Wh)."""
    floor_wh = 55.0 * 49 - SETTINGS.compact.elevation_wh(100.0)
    trip = {"distance_m": 50_000.0, "odometer_end_m": 48_260_000.0, "soc_start_pct": None, "energy_regen_wh": 0.0}
    assert judge(sample_trip(**trip, energy_out_wh=floor_wh + 0.5)) is None
    assert_finding(judge(sample_trip(**trip, energy_out_wh=floor_wh - 0.5)), RejectionReason.IMPLAUSIBLE_ENERGY)


def test_a_short_trip_downhill_may_regenerate_more_than_it_used() -> None:
    """Down a hill, regen exceeds energy out by what 100 m of descent gives back; beyond that it is refused."""
    downhill = {"distance_m": 1_500.0, "odometer_end_m": 48_211_500.0, "soc_start_pct": None}
    assert judge(sample_trip(**downhill, energy_out_wh=60.0, energy_regen_wh=400.0)) is None
    finding = judge(sample_trip(**downhill, energy_out_wh=60.0, energy_regen_wh=1_400.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_ENERGY, "net -1,340 Wh", "60 out", "1,400 regen")


def test_charge_power_above_the_class_bound_is_implausible_energy() -> None:
    """7,150 Wh in 25 s is 1,030 kW: over a compact's 1,000 kW; in 26 s, 990 kW, it passes (on energy)."""
    charge = {"soc_start_pct": None, "grid_energy_wh": None}
    assert judge(plausible_charge(**charge, end_at=SAMPLE_START_AT + timedelta(seconds=26))) is None
    finding = judge(plausible_charge(**charge, end_at=SAMPLE_START_AT + timedelta(seconds=25)))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_ENERGY, "7,150 Wh", "1,030 kW", "1000 kW")


def test_a_small_charge_is_not_judged_for_power_or_efficiency() -> None:
    """Under 500 Wh, ramp-up and meter steps dominate: no power or efficiency bound applies."""
    tiny = plausible_charge(
        energy_in_wh=499.0, grid_energy_wh=50.0, end_at=SAMPLE_START_AT, soc_start_pct=None, soc_end_pct=None
    )
    assert judge(tiny) is None


def test_soc_change_is_judged_against_every_capacity_of_the_class() -> None:
    """A 10-point drop fits 7 to 13 points of a 15-110 kWh battery: 1,050 to 14,300 Wh, nothing outside."""
    long_trip = {
        "distance_m": 100_000.0,
        "odometer_end_m": 48_310_000.0,
        "end_at": SAMPLE_START_AT + timedelta(hours=1),
        "soc_start_pct": 80.0,
        "soc_end_pct": 70.0,
        "energy_regen_wh": 0.0,
    }
    assert judge(sample_trip(**long_trip, energy_out_wh=14_300.0)) is None
    finding = judge(sample_trip(**long_trip, energy_out_wh=14_301.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_SOC, "80.0 -> 70.0 %", "1,050 to 14,300 Wh")
    short_trip = {"soc_start_pct": 80.0, "soc_end_pct": 70.0, "energy_regen_wh": 0.0}
    assert judge(sample_trip(**short_trip, energy_out_wh=1_050.0)) is None
    assert_finding(judge(sample_trip(**short_trip, energy_out_wh=1_049.0)), RejectionReason.IMPLAUSIBLE_SOC)


def test_a_small_soc_change_is_never_judged() -> None:
    """Under 5 points the SOC says nothing against a 3-point error: 4.9 points with 40 kWh in passes, 5 does not."""
    charge = {"energy_in_wh": 40_000.0, "grid_energy_wh": 44_000.0, "end_at": SAMPLE_START_AT + timedelta(hours=5)}
    assert judge(plausible_charge(**charge, soc_start_pct=50.0, soc_end_pct=54.9)) is None
    finding = judge(plausible_charge(**charge, soc_start_pct=50.0, soc_end_pct=55.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_SOC, "40,000 Wh into the battery", "300 to 8,800 Wh")


def test_a_charge_whose_soc_rises_without_energy_is_implausible_soc() -> None:
    """Ten points more SOC with 100 Wh received: no battery of the class is that small."""
    charge = plausible_charge(energy_in_wh=100.0, grid_energy_wh=None, soc_start_pct=50.0, soc_end_pct=60.0)
    assert_finding(judge(charge), RejectionReason.IMPLAUSIBLE_SOC, "100 Wh into the battery")


@pytest.mark.parametrize(
    ("grid_energy_wh", "plausible"),
    [
        (11_000.0 / 0.65 - 1.0, True),
        (11_000.0 / 0.65 + 1.0, False),
        (11_000.0 / 1.03 + 1.0, True),
        (11_000.0 / 1.03 - 1.0, False),
    ],
)
def test_charge_efficiency_is_between_65_and_103_percent(grid_energy_wh: float, *, plausible: bool) -> None:
    """Battery energy over grid energy: 65 % (slow AC, a cold battery) to 103 % (meter tolerance)."""
    charge = plausible_charge(energy_in_wh=11_000.0, grid_energy_wh=grid_energy_wh, soc_start_pct=None)
    if plausible:
        assert judge(charge) is None
    else:
        assert_finding(judge(charge), RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY, "11,000 Wh", "65% to 103%")


def test_a_charge_with_no_grid_energy_is_implausible_charge_efficiency() -> None:
    """Energy into the battery with none drawn from the grid is infinitely efficient."""
    finding = judge(plausible_charge(grid_energy_wh=0.0))
    assert_finding(finding, RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY, "from 0 Wh", "inf%")


# --- properties ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TripShape:
    """A trip inside its class's bounds per km and per hour, before the slack for odometer steps and hills."""

    distance_m: float
    duration_s: float
    energy_out_wh: float
    energy_regen_wh: float
    soc_drop_pct: float
    with_odometer: bool

    def record(self, scale: float = 1.0, *, keep: frozenset[str] = frozenset({"odometer", "soc"})) -> TripRecord:
        """The trip with distance, duration and energies times ``scale``; readings not in ``keep`` left out."""
        drop_pct = self.soc_drop_pct * scale
        soc = "soc" in keep and drop_pct <= 99.0
        odometer = "odometer" in keep and self.with_odometer
        return sample_trip(
            distance_m=self.distance_m * scale,
            end_at=SAMPLE_START_AT + timedelta(seconds=self.duration_s * scale),
            energy_out_wh=self.energy_out_wh * scale,
            energy_regen_wh=self.energy_regen_wh * scale,
            odometer_end_m=48_210_000.0 + self.distance_m * scale if odometer else None,
            odometer_start_m=48_210_000.0 if odometer else None,
            soc_start_pct=100.0 if soc else None,
            soc_end_pct=100.0 - drop_pct if soc else None,
        )


@st.composite
def trip_shapes(draw: st.DrawFn, vehicle_class: VehicleClass) -> TripShape:
    bounds = SETTINGS.bounds(vehicle_class)
    distance_m = draw(st.floats(1_000.0, 300_000.0))
    speed_kph = draw(st.floats(5.0, 0.95 * bounds.max_average_speed_kph))
    duration_s = distance_m / speed_kph * 3.6
    per_km_wh = draw(st.floats(bounds.min_energy_wh_per_km, bounds.max_energy_wh_per_km))
    auxiliary_wh = draw(st.floats(0.0, 1.0)) * bounds.max_auxiliary_power_kw * duration_s / 3.6
    net_wh = per_km_wh * distance_m / 1000 + auxiliary_wh
    regen_share = draw(st.floats(0.0, 0.5))
    capacity_kwh = draw(st.floats(bounds.min_battery_capacity_kwh, bounds.max_battery_capacity_kwh))
    return TripShape(
        distance_m=distance_m,
        duration_s=duration_s,
        energy_out_wh=net_wh / (1 - regen_share),
        energy_regen_wh=net_wh / (1 - regen_share) - net_wh,
        soc_drop_pct=net_wh / (capacity_kwh * 10),
        with_odometer=draw(st.booleans()),
    )


@given(st.sampled_from(CLASSES).flatmap(lambda cls: st.tuples(st.just(cls), trip_shapes(cls))), st.floats(0.05, 20.0))
def test_scaling_a_plausible_trip_keeps_it_plausible(shape: tuple[VehicleClass, TripShape], scale: float) -> None:
    """Distance, duration and energies times the same factor stay plausible, for the class and for unspecified."""
    vehicle_class, trip = shape
    assert judge(trip.record(), vehicle_class=vehicle_class) is None
    assert judge(trip.record(scale), vehicle_class=vehicle_class) is None
    assert judge(trip.record(scale), vehicle_class=VehicleClass.UNSPECIFIED) is None


@given(
    st.sampled_from(CLASSES).flatmap(lambda cls: st.tuples(st.just(cls), trip_shapes(cls))),
    st.sets(st.sampled_from(["odometer", "soc"])),
)
def test_leaving_readings_out_never_makes_a_record_implausible(
    shape: tuple[VehicleClass, TripShape], kept: set[str]
) -> None:
    """A plausible trip stays plausible without any of its optional readings: None is never judged."""
    vehicle_class, trip = shape
    assert judge(trip.record(keep=frozenset(kept)), vehicle_class=vehicle_class) is None


_offsets = st.timedeltas(min_value=timedelta(days=-1000), max_value=timedelta(days=1000))
_odometers = st.none() | st.floats(0.0, 1e12)


@given(records, st.sampled_from(VehicleClass), st.none() | st.tuples(_offsets, _odometers), _offsets)
def test_the_checks_never_raise(
    record: Record,
    vehicle_class: VehicleClass,
    previous_end: tuple[timedelta, float | None] | None,
    received_after: timedelta,
) -> None:
    """Any valid record, whatever its figures: a Finding with a short printable detail, or None."""
    previous = None
    if previous_end is not None:
        previous = head(end_at=record.start_at + previous_end[0], odometer_end_m=previous_end[1])
    finding = judge(record, vehicle_class=vehicle_class, previous=previous, received_at=record.end_at + received_after)
    if finding is not None:
        assert finding.detail, finding
        assert finding.detail.isprintable(), finding
        assert len(finding.detail) <= MAX_DETAIL_CHARS, finding


# --- the agent's real records, simulated for each class ---------------------------------------------

SECOND_CYCLE = {"compact": "highway", "suv": "highway", "van": "highway", "bus": "suburban"}
"""A faster second trip per class; a city bus keeps off the motorway."""


@pytest.mark.parametrize("vehicle_class", CLASSES, ids=str)
def test_every_record_the_agent_seals_from_a_simulated_day_is_plausible(
    vehicle_class: VehicleClass, tmp_path: Path
) -> None:
    """Each class's preset: an urban trip, a faster one and a DC charge of 6 points, sealed by the real agent, pass.

    Each record is judged after the one before it, as intake does; the trips are long enough for the
    energy bounds to bite and the charge moves the SOC enough for the SOC check to judge it.
    """
    vehicle = preset(vehicle_class.value)
    plan = DayPlan(
        start_at=START_AT,
        activities=(
            Trip(cycle=cycle_by_name("urban", 21, duration_s=240.0), start_s=7.5 * 3600),
            Trip(cycle=cycle_by_name(SECOND_CYCLE[vehicle_class.value], 22, duration_s=300.0), start_s=12.25 * 3600),
            Charge(charger=vehicle.charger("dc"), start_s=19.0 * 3600, target_soc_pct=66.0),
        ),
        initial=InitialState(soc_pct=60.0),
    )
    sealed = run_agent(simulate(plan, vehicle_class.value).frames, tmp_path / "outbox.json").sealed
    assert [record.RECORD_TYPE for record in sealed] == ["trip", "trip", "charge"]
    trips = [record for record in sealed if isinstance(record, TripRecord)]
    assert min(trip.distance_m for trip in trips) > SETTINGS.odometer_resolution_m
    charge = sealed[-1]
    assert charge.soc_start_pct is not None
    assert charge.soc_end_pct is not None
    assert charge.soc_end_pct - charge.soc_start_pct >= SETTINGS.min_soc_change_pct
    previous: ChainHead | None = None
    findings = []
    for record in sealed:
        findings.append(judge(record, vehicle_class=vehicle_class, previous=previous))
        previous = head(
            sequence=record.sequence,
            record_id=record.record_id,
            end_at=record.end_at,
            odometer_end_m=record.odometer_end_m,
        )
    assert findings == [None, None, None]


# --- settings from gateway.toml ---------------------------------------------------------------------


def test_an_empty_table_gives_the_defaults() -> None:
    """No [plausibility] keys: every default."""
    assert plausibility_from_table({}) == PlausibilitySettings()


def test_a_class_table_overrides_only_the_keys_it_names() -> None:
    """[plausibility.bus] max_average_speed_kph = 100 changes the bus's speed bound and nothing else."""
    settings = plausibility_from_table({"max_future_skew_s": 60, "bus": {"max_average_speed_kph": 100}})
    assert settings.max_future_skew_s == 60.0
    assert settings.bus == dataclasses.replace(SETTINGS.bus, max_average_speed_kph=100.0)
    assert (settings.compact, settings.suv, settings.van) == (SETTINGS.compact, SETTINGS.suv, SETTINGS.van)


def test_unspecified_takes_the_widest_bound_of_every_class() -> None:
    """A device without a class is judged by the lowest floors and the highest ceilings of all four classes."""
    widest = SETTINGS.bounds(VehicleClass.UNSPECIFIED)
    for item in dataclasses.fields(ClassBounds):
        values = [getattr(SETTINGS.bounds(cls), item.name) for cls in CLASSES]
        expected = min(values) if item.name.startswith("min_") else max(values)
        assert getattr(widest, item.name) == expected, item.name


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_future_skew": 60}, "[plausibility] unknown key 'max_future_skew'"),
        ({"bus": {"max_speed_kph": 100}}, "[plausibility.bus] unknown key 'max_speed_kph'"),
        ({"truck": {}}, "[plausibility] unknown key 'truck'"),
        ({"unspecified": {}}, "[plausibility] unknown key 'unspecified'"),
        ({"bus": 100}, "[plausibility.bus] must be a table"),
        ({"max_future_skew_s": "5 min"}, "[plausibility] max_future_skew_s must be a number"),
        ({"min_charge_efficiency": True}, "[plausibility] min_charge_efficiency must be a number"),
        ({"van": {"max_mass_kg": "heavy"}}, "[plausibility.van] max_mass_kg must be a number"),
        ({"max_charge_efficiency": 0.9}, "[plausibility] max_charge_efficiency must be a number from 1 to 2"),
        ({"soc_tolerance_pct": math.nan}, "[plausibility] soc_tolerance_pct must be a number from 0 to 100"),
        ({"van": {"min_energy_wh_per_km": -1}}, "[plausibility.van] min_energy_wh_per_km must be a number from 0"),
        ({"compact": {"min_battery_capacity_kwh": 200}}, "min_battery_capacity_kwh must not exceed"),
        ({"max_future_skew_s": 100_000}, "[plausibility] max_future_skew_s must not exceed max_future_skew_unsynced_s"),
    ],
)
def test_a_bad_table_is_a_config_error_naming_the_key(table: dict[str, Any], message: str) -> None:
    """Unknown keys, wrong types and values out of range are refused, never replaced by a default."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        plausibility_from_table(table)


def test_gateway_toml_and_the_environment_set_the_thresholds(tmp_path: Path) -> None:
    """gateway.toml's [plausibility] table and a CARBONLINK_GATEWAY__PLAUSIBILITY__... variable reach the settings."""
    text = (
        "[api]\nenabled = false\n[plausibility]\nmin_charge_efficiency = 0.7\n[plausibility.van]\nmax_mass_kg = 3500\n"
    )
    environ = {"CARBONLINK_GATEWAY__PLAUSIBILITY__BUS__MAX_AVERAGE_SPEED_KPH": "100"}
    settings = parse_config(text, tmp_path, environ).plausibility
    assert (settings.min_charge_efficiency, settings.van.max_mass_kg) == (0.7, 3_500.0)
    assert settings.bus.max_average_speed_kph == 100.0
    with pytest.raises(ConfigError, match=re.escape("[plausibility.bus] max_average_speed_kph must be")):
        parse_config(text, tmp_path, environ | {"CARBONLINK_GATEWAY__PLAUSIBILITY__BUS__MAX_AVERAGE_SPEED_KPH": "0"})


def test_the_example_in_docs_plausibility_md_is_a_valid_table() -> None:
    """The [plausibility] example operators copy from docs/plausibility.md loads as it stands."""
    blocks = re.findall(r"^```toml\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert blocks, "docs/plausibility.md shows no toml example"
    for block in blocks:
        settings = plausibility_from_table(tomllib.loads(block)["plausibility"])
        assert settings != PlausibilitySettings()
