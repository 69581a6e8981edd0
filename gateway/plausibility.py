"""The gateway's plausibility checks: could a signed, well-formed record have happened at all.

Values in, a value out (h11-style): a record, its vehicle's class, the device's previous accepted
record and the time the record was received go in; the first failing check comes out as a
:class:`Finding`, or ``None``. No clock is read: "now" is ``received_at``. The checks run cheapest
first, in this order, each naming its rejection reason (``docs/protocol.md`` §6.1):

1. ``clock_skew``: the record ends too far after it was received, or ended too long before.
2. ``time_order``: it starts before the previous record ended (trips and charges alike).
3. ``odometer_rollback``: its odometer starts below the previous record's end reading.
4. ``implausible_distance``: a trip's distance disagrees with its odometer; a charge's odometer moved.
5. ``implausible_speed``: distance over duration is faster than the class can go.
6. ``implausible_energy``: a trip's net energy is outside the class's bounds for its distance and
   duration; a charge received energy faster than the class can charge.
7. ``implausible_soc``: no battery capacity of the class explains the SOC change by the energy moved.
8. ``implausible_charge_efficiency``: battery energy over grid energy is outside the bounds.

A reading the vehicle does not have (``None``) skips every check that needs it. The thresholds, and
where each default comes from, are in :mod:`gateway.plausibility_settings` and docs/plausibility.md.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from carbonlink.reasons import RejectionReason
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.vehicles import VehicleClass
from gateway.model import ChainHead
from gateway.plausibility_settings import ClassBounds, PlausibilitySettings, plausibility_from_table

MAX_DETAIL_CHARS = 200
"""An ack's detail is one printable line of at most 200 characters (protocol §6)."""
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """Why a record is implausible: its rejection reason and a line for a human."""

    reason: RejectionReason
    detail: str
    """One printable line of at most 200 characters that names the figures and the bound."""


@dataclass(frozen=True, slots=True)
class _Case:
    """One record under judgement, with everything the checks compare it against."""

    record: Record
    vehicle_class: VehicleClass
    bounds: ClassBounds
    previous: ChainHead | None
    received_at: datetime
    settings: PlausibilitySettings

    @property
    def duration_s(self) -> float:
        return (self.record.end_at - self.record.start_at).total_seconds()


def _figure(value: float, decimals: int = 0) -> str:
    """A number for a human: thousands separated, exponent notation when it is absurdly large."""
    return f"{value:,.{decimals}f}" if abs(value) < 1e12 else f"{value:.3g}"  # noqa: PLR2004 - display only


def _km(distance_m: float) -> str:
    return f"{_figure(distance_m / 1000, 3)} km"


def _duration(seconds: float) -> str:
    """``h:mm:ss.s`` up to two days (exact enough to see a bound crossed), then days."""
    if abs(seconds) >= 2 * SECONDS_PER_DAY:
        return f"{_figure(seconds / SECONDS_PER_DAY, 1)} d"
    sign, tenths = "-" if seconds < 0 else "", round(abs(seconds) * 10)
    hours, tenths = divmod(tenths, 36_000)
    minutes, tenths = divmod(tenths, 600)
    return f"{sign}{hours}:{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock_skew(case: _Case) -> Finding | None:
    record, settings = case.record, case.settings
    limit_s = settings.max_future_skew_s if record.clock_synced else settings.max_future_skew_unsynced_s
    ahead_s = (record.end_at - case.received_at).total_seconds()
    if ahead_s > limit_s:
        clock = "a synchronised" if record.clock_synced else "an unsynchronised"
        return Finding(
            reason=RejectionReason.CLOCK_SKEW,
            detail=f"ends {_time(record.end_at)}, {_figure(ahead_s, 3)} s after it was received "
            f"({_time(case.received_at)}); at most {_figure(limit_s)} s allowed for {clock} clock",
        )
    age_s = (case.received_at - record.end_at).total_seconds()
    if age_s > settings.max_record_age_days * SECONDS_PER_DAY:
        return Finding(
            reason=RejectionReason.CLOCK_SKEW,
            detail=f"ended {_time(record.end_at)}, {_duration(age_s)} before it was received "
            f"({_time(case.received_at)}); records older than {settings.max_record_age_days:g} d are refused",
        )
    return None


def _time_order(case: _Case) -> Finding | None:
    previous, record = case.previous, case.record
    if previous is None:
        return None
    early_s = (previous.end_at - record.start_at).total_seconds()
    if early_s > case.settings.time_order_tolerance_s:
        return Finding(
            reason=RejectionReason.TIME_ORDER,
            detail=f"starts {_time(record.start_at)}, {_duration(early_s)} before the previous record "
            f"(sequence {previous.sequence}) ended at {_time(previous.end_at)}; "
            f"tolerance {case.settings.time_order_tolerance_s:g} s",
        )
    return None


def _odometer_rollback(case: _Case) -> Finding | None:
    start_m = case.record.odometer_start_m
    previous_m = None if case.previous is None else case.previous.odometer_end_m
    if start_m is None or previous_m is None:
        return None
    back_m = previous_m - start_m
    if back_m > case.settings.odometer_resolution_m:
        return Finding(
            reason=RejectionReason.ODOMETER_ROLLBACK,
            detail=f"odometer starts at {_km(start_m)}, {_figure(back_m)} m below the previous record's end "
            f"reading of {_km(previous_m)}; tolerance {case.settings.odometer_resolution_m:g} m",
        )
    return None


def _distance(case: _Case) -> Finding | None:
    record, settings = case.record, case.settings
    if record.odometer_start_m is None or record.odometer_end_m is None:
        return None
    moved_m = record.odometer_end_m - record.odometer_start_m
    resolution_m = settings.odometer_resolution_m
    if isinstance(record, ChargeRecord):
        if abs(moved_m) > resolution_m:
            return Finding(
                reason=RejectionReason.IMPLAUSIBLE_DISTANCE,
                detail=f"the odometer moved {_figure(moved_m)} m during a charge session; "
                f"at most {resolution_m:g} m (its resolution) allowed",
            )
        return None
    allowed_m = max(resolution_m, settings.distance_tolerance_fraction * record.distance_m)
    off_m = abs(record.distance_m - moved_m)
    if off_m > allowed_m:
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_DISTANCE,
            detail=f"distance {_km(record.distance_m)} but the odometer moved {_km(moved_m)}: {_figure(off_m)} m "
            f"apart, over the {_figure(allowed_m)} m allowed ({resolution_m:g} m or "
            f"{settings.distance_tolerance_fraction:.0%} of the distance)",
        )
    return None


def _speed(case: _Case) -> Finding | None:
    record = case.record
    if not isinstance(record, TripRecord):
        return None
    slack_m = case.settings.odometer_resolution_m
    judged_m = record.distance_m - slack_m  # an odometer difference may be one step more than was driven
    if judged_m <= 0:
        return None
    if case.duration_s <= 0:
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_SPEED,
            detail=f"{_km(record.distance_m)} in no time: the trip starts and ends at {_time(record.start_at)}",
        )
    speed_kph = judged_m / case.duration_s * 3.6
    limit_kph = case.bounds.max_average_speed_kph
    if speed_kph > limit_kph:
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_SPEED,
            detail=f"{_km(record.distance_m)} in {_duration(case.duration_s)} is at least {_figure(speed_kph, 1)} km/h "
            f"on average (less {slack_m:g} m of odometer resolution), over the {case.vehicle_class} bound "
            f"of {limit_kph:g} km/h",
        )
    return None


def _trip_energy(case: _Case, trip: TripRecord) -> Finding | None:
    bounds, settings = case.bounds, case.settings
    net_wh = trip.energy_out_wh - trip.energy_regen_wh
    slack_m = settings.odometer_resolution_m
    elevation_m = settings.max_elevation_change_m
    elevation_wh = bounds.elevation_wh(elevation_m)
    auxiliary_wh = bounds.max_auxiliary_power_kw * case.duration_s / 3.6
    ceiling_wh = bounds.max_energy_wh_per_km * (trip.distance_m + slack_m) / 1000 + auxiliary_wh + elevation_wh
    if net_wh > ceiling_wh:
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_ENERGY,
            detail=f"net {_figure(net_wh)} Wh over {_km(trip.distance_m)} in {_duration(case.duration_s)}: over the "
            f"{case.vehicle_class} bound of {_figure(ceiling_wh)} Wh ({bounds.max_energy_wh_per_km:g} Wh/km, "
            f"{bounds.max_auxiliary_power_kw:g} kW auxiliaries, {elevation_m:g} m climb)",
        )
    floor_wh = bounds.min_energy_wh_per_km * max(0.0, trip.distance_m - slack_m) / 1000 - elevation_wh
    if net_wh < floor_wh:
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_ENERGY,
            detail=f"net {_figure(net_wh)} Wh ({_figure(trip.energy_out_wh)} out, {_figure(trip.energy_regen_wh)} "
            f"regen) over {_km(trip.distance_m)}: under the {case.vehicle_class} floor of {_figure(floor_wh)} Wh "
            f"({bounds.min_energy_wh_per_km:g} Wh/km, {elevation_m:g} m descent)",
        )
    return None


def _charge_power(case: _Case, charge: ChargeRecord) -> Finding | None:
    energy_wh = charge.energy_in_wh
    if energy_wh < case.settings.min_charge_energy_wh:
        return None
    limit_kw = case.bounds.max_charging_power_kw
    if energy_wh > limit_kw * case.duration_s / 3.6:
        power = "in no time" if case.duration_s <= 0 else f"is {_figure(energy_wh * 3.6 / case.duration_s)} kW"
        return Finding(
            reason=RejectionReason.IMPLAUSIBLE_ENERGY,
            detail=f"{_figure(energy_wh)} Wh into the battery in {_duration(case.duration_s)} {power} on average, "
            f"over the {case.vehicle_class} bound of {limit_kw:g} kW charging power",
        )
    return None


def _energy(case: _Case) -> Finding | None:
    record = case.record
    if isinstance(record, TripRecord):
        return _trip_energy(case, record)
    return _charge_power(case, record)


def _soc(case: _Case) -> Finding | None:
    record, bounds, settings = case.record, case.bounds, case.settings
    start_pct, end_pct = record.soc_start_pct, record.soc_end_pct
    if start_pct is None or end_pct is None:
        return None
    # Energy out of the battery against the SOC drop for a trip; energy in against the rise for a charge.
    if isinstance(record, TripRecord):
        change_pct, energy_wh, moved = start_pct - end_pct, record.energy_out_wh - record.energy_regen_wh, "net"
    else:
        change_pct, energy_wh, moved = end_pct - start_pct, record.energy_in_wh, "into the battery"
    if abs(change_pct) < settings.min_soc_change_pct:
        return None
    tolerance_pct = settings.soc_tolerance_pct
    capacities_wh = (bounds.min_battery_capacity_kwh * 1000, bounds.max_battery_capacity_kwh * 1000)
    low_wh = min((change_pct - tolerance_pct) * capacity_wh / 100 for capacity_wh in capacities_wh)
    high_wh = max((change_pct + tolerance_pct) * capacity_wh / 100 for capacity_wh in capacities_wh)
    if low_wh <= energy_wh <= high_wh:
        return None
    return Finding(
        reason=RejectionReason.IMPLAUSIBLE_SOC,
        detail=f"SOC {start_pct:.1f} -> {end_pct:.1f} % with {_figure(energy_wh)} Wh {moved}: "
        f"{bounds.min_battery_capacity_kwh:g}-{bounds.max_battery_capacity_kwh:g} kWh {case.vehicle_class} "
        f"batteries explain {_figure(low_wh)} to {_figure(high_wh)} Wh (+/-{tolerance_pct:g} points)",
    )


def _charge_efficiency(case: _Case) -> Finding | None:
    record, settings = case.record, case.settings
    if not isinstance(record, ChargeRecord) or record.grid_energy_wh is None:
        return None
    energy_wh, grid_wh = record.energy_in_wh, record.grid_energy_wh
    if energy_wh < settings.min_charge_energy_wh:
        return None
    efficiency = energy_wh / grid_wh if grid_wh > 0 else float("inf")
    if settings.min_charge_efficiency <= efficiency <= settings.max_charge_efficiency:
        return None
    return Finding(
        reason=RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY,
        detail=f"{_figure(energy_wh)} Wh into the battery from {_figure(grid_wh)} Wh drawn from the grid is "
        f"{efficiency:.1%} efficient, outside {settings.min_charge_efficiency:.0%} to "
        f"{settings.max_charge_efficiency:.0%}",
    )


_CHECKS: tuple[Callable[[_Case], Finding | None], ...] = (
    _clock_skew,
    _time_order,
    _odometer_rollback,
    _distance,
    _speed,
    _energy,
    _soc,
    _charge_efficiency,
)
"""The checks in the order they run (see the module docstring)."""


def check_plausibility(
    record: Record,
    *,
    vehicle_class: VehicleClass,
    previous: ChainHead | None,
    received_at: datetime,
    settings: PlausibilitySettings,
) -> Finding | None:
    """The first check ``record`` fails (see the module docstring), or None when it is plausible.

    ``previous`` is the device's last accepted record (None before its first); ``received_at`` is when
    the gateway received the record, the only "now" the checks know.
    """
    case = _Case(record, vehicle_class, settings.bounds(vehicle_class), previous, received_at, settings)
    for check in _CHECKS:
        finding = check(case)
        if finding is not None:
            return Finding(reason=finding.reason, detail=finding.detail[:MAX_DETAIL_CHARS])
    return None


__all__ = ["Finding", "PlausibilitySettings", "check_plausibility", "plausibility_from_table"]
