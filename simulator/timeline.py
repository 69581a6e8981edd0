"""The day's time loop: physics step by step, bus states out, ground truth kept.

Driving is stepped at 10 ms (the fastest message's cycle), charging at 1 s (power changes
slowly; the bus still repeats the latest state at each message's own cycle). While parked the
bus is asleep: no states, no frames, nothing changes.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

from carbonlink.records import ChargerKind
from simulator.bus_state import BmsState, BusState, ChargerState, ChargerType, Gear, ReadyState
from simulator.day import FLAP_OFF_S, FLAP_PERIOD_S, Charge, DayPlan, Trip
from simulator.physics.battery import open_circuit_voltage_v, soc_after, terminal_for_power
from simulator.physics.charger import charge_power_w, grid_power_w
from simulator.physics.vehicle import VehicleParams, battery_power_w
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES
from simulator.truth import TruthEntry, TruthMeter

DRIVE_STEP_S = 0.01
CHARGE_STEP_S = 1.0
SECONDS_PER_HOUR = 3600.0

# Reference drivetrain geometry, only for the motor-speed signal (no effect on energy).
WHEEL_RADIUS_M = 0.33
GEAR_RATIO = 9.0
_RPM_PER_MPS = GEAR_RATIO * 60.0 / (2.0 * math.pi * WHEEL_RADIUS_M)

MAX_COMFORT_ACCEL_MPS2 = 2.5
"""Acceleration taken as a fully pressed pedal, only for the pedal signal."""
BRAKE_DECEL_MPS2 = -0.3
"""Deceleration beyond which the driver is taken to press the brake pedal."""
AC_GRID_VOLTAGE_V = 230.0
CURRENT_SENSOR_NOISE_A = 0.05
"""Standard deviation of the pack-current sensor's noise, as reported on the bus (never in the
physics or the ground truth). Half the signal's 0.1 A step: like a real sensor's noise it dithers
the quantisation, so a steady current is not rounded the same way for minutes on end."""


@dataclass(frozen=True, slots=True)
class Step:
    """The bus state over ``[time_s, time_s + step_s)`` and which messages are on the bus."""

    time_s: float
    step_s: float
    state: BusState
    messages: tuple[str, ...]


@dataclass(slots=True)
class _Vehicle:
    """The mutable physical state the loop advances."""

    soc_pct: float
    odometer_m: float
    energy_discharged_wh: float
    energy_charged_wh: float


class DaySimulation:
    """Runs a day plan for one vehicle; iterate :meth:`steps`, then read :attr:`truth`."""

    def __init__(self, vehicle: VehicleParams, plan: DayPlan, seed: int = 0) -> None:
        self.vehicle = vehicle
        self.plan = plan
        self._sensor_noise = random.Random(seed).gauss  # noqa: S311 - sensor noise, not cryptography
        self.truth: list[TruthEntry] = []
        self._ambient_c = plan.initial.ambient_c
        self._now = _Vehicle(
            soc_pct=plan.initial.soc_pct,
            odometer_m=plan.initial.odometer_m,
            energy_discharged_wh=plan.initial.energy_discharged_wh,
            energy_charged_wh=plan.initial.energy_charged_wh,
        )

    def steps(self) -> Iterator[Step]:
        """Every step of the day in time order; the ground truth grows as activities end."""
        activities = self.plan.activities
        for index, activity in enumerate(activities):
            next_start_s = activities[index + 1].start_s if index + 1 < len(activities) else math.inf
            last: Step | None = None
            for last in self._trip(activity) if isinstance(activity, Trip) else self._charge(activity, next_start_s):
                yield last
            if last is not None:
                # The activity is over and the bus falls asleep: no message until the next one.
                yield Step(last.time_s + last.step_s, 0.0, last.state, ())

    # --- driving ---------------------------------------------------------------------------

    def _trip(self, trip: Trip) -> Iterator[Step]:
        now = self._now
        meter = TruthMeter(start_s=trip.start_s, soc_start_pct=now.soc_pct, odometer_start_m=now.odometer_m)
        speeds_mps, accels_mps2 = trip.cycle.sampled(DRIVE_STEP_S)
        standing_before = round(trip.ready_before_s / DRIVE_STEP_S)
        standing_after = round(trip.ready_after_s / DRIVE_STEP_S)
        total = standing_before + len(speeds_mps) + standing_after
        has_grade = trip.cycle.grade_pct is not None
        flapping_s = trip.ignition_flaps * FLAP_PERIOD_S
        for k in range(total):
            time_s = trip.start_s + k * DRIVE_STEP_S
            driving = standing_before <= k < standing_before + len(speeds_mps)
            speed_mps = speeds_mps[k - standing_before] if driving else 0.0
            accel_mps2 = accels_mps2[k - standing_before] if driving else 0.0
            grade_pct = (
                trip.cycle.grade_pct_at(time_s - trip.start_s - trip.ready_before_s) if has_grade and driving else 0.0
            )
            state = self._drive_step(meter, speed_mps, accel_mps2, grade_pct, moving_phase=driving)
            into_trip_s = k * DRIVE_STEP_S
            if into_trip_s < flapping_s and into_trip_s % FLAP_PERIOD_S < FLAP_OFF_S:
                state = replace(state, ready=ReadyState.OFF)
            yield Step(time_s, DRIVE_STEP_S, state, DRIVE_MESSAGES)
        self.truth.append(self._entry("trip", meter, trip.end_s))

    def _drive_step(
        self, meter: TruthMeter, speed_mps: float, accel_mps2: float, grade_pct: float, *, moving_phase: bool
    ) -> BusState:
        now, vehicle = self._now, self.vehicle
        power_w = battery_power_w(vehicle, speed_mps, accel_mps2, grade_pct)
        voltage_v, current_a = terminal_for_power(vehicle.battery, now.soc_pct, power_w)
        terminal_w = voltage_v * current_a
        state = BusState(
            speed_kph=speed_mps * 3.6,
            ready=ReadyState.READY,
            gear=Gear.D if moving_phase else Gear.P,
            brake_pressed=accel_mps2 < BRAKE_DECEL_MPS2 or (not moving_phase),
            accel_pedal_pct=min(100.0, max(0.0, accel_mps2 / MAX_COMFORT_ACCEL_MPS2 * 100.0)),
            pack_voltage_v=voltage_v,
            pack_current_a=current_a + self._sensor_noise(0.0, CURRENT_SENSOR_NOISE_A),
            soc_pct=now.soc_pct,
            bms_state=BmsState.DRIVE,
            pack_temp_min_c=self._ambient_c + 2.0,
            pack_temp_max_c=self._ambient_c + 4.0,
            cell_voltage_min_v=voltage_v / vehicle.battery.series_cells - 0.004,
            cell_voltage_max_v=voltage_v / vehicle.battery.series_cells + 0.004,
            inverter_power_kw=(terminal_w - vehicle.aux_power_w) / 1000.0,
            motor_speed_rpm=speed_mps * _RPM_PER_MPS,
            inverter_temp_c=self._ambient_c + 12.0,
            odometer_m=now.odometer_m,
            energy_discharged_wh=now.energy_discharged_wh,
            energy_charged_wh=now.energy_charged_wh,
            charger_state=ChargerState.UNPLUGGED,
            charger_type=ChargerType.NONE,
            grid_power_w=0.0,
            grid_voltage_v=0.0,
        )
        energy_wh = terminal_w * DRIVE_STEP_S / SECONDS_PER_HOUR
        if energy_wh >= 0.0:
            meter.energy_out_wh += energy_wh
            now.energy_discharged_wh += energy_wh
        else:
            meter.energy_regen_wh -= energy_wh
            now.energy_charged_wh -= energy_wh
        now.soc_pct = soc_after(vehicle.battery, now.soc_pct, current_a, DRIVE_STEP_S)
        now.odometer_m += speed_mps * DRIVE_STEP_S
        return state

    # --- charging --------------------------------------------------------------------------

    def _charge(self, charge: Charge, next_start_s: float) -> Iterator[Step]:
        now = self._now
        meter = TruthMeter(start_s=charge.start_s, soc_start_pct=now.soc_pct, odometer_start_m=now.odometer_m)
        # Unplug in time for the next activity even if the target is not reached.
        latest_end_s = next_start_s - charge.plugged_after_s - CHARGE_STEP_S
        time_s = charge.start_s
        for _ in range(round(charge.handshake_s / CHARGE_STEP_S)):
            yield Step(
                time_s, CHARGE_STEP_S, self._charge_state(charge, ChargerState.PLUGGED, 0.0, 0.0), CHARGE_MESSAGES
            )
            time_s += CHARGE_STEP_S
        while now.soc_pct < charge.target_soc_pct and time_s < latest_end_s:
            yield Step(time_s, CHARGE_STEP_S, self._charge_step(charge, meter), CHARGE_MESSAGES)
            time_s += CHARGE_STEP_S
        for _ in range(round(charge.plugged_after_s / CHARGE_STEP_S)):
            yield Step(
                time_s, CHARGE_STEP_S, self._charge_state(charge, ChargerState.COMPLETE, 0.0, 0.0), CHARGE_MESSAGES
            )
            time_s += CHARGE_STEP_S
        self.truth.append(self._entry("charge", meter, time_s))

    def _charge_step(self, charge: Charge, meter: TruthMeter) -> BusState:
        now, battery = self._now, self.vehicle.battery
        wanted_w = charge_power_w(charge.charger, now.soc_pct)
        voltage_v, current_a = terminal_for_power(battery, now.soc_pct, -wanted_w)
        into_battery_w = -voltage_v * current_a
        grid_w = grid_power_w(charge.charger, into_battery_w)
        state = self._charge_state(charge, ChargerState.CHARGING, voltage_v, current_a, grid_w)
        energy_in_wh = into_battery_w * CHARGE_STEP_S / SECONDS_PER_HOUR
        meter.energy_in_wh += energy_in_wh
        meter.grid_energy_wh += grid_w * CHARGE_STEP_S / SECONDS_PER_HOUR
        now.energy_charged_wh += energy_in_wh
        now.soc_pct = soc_after(battery, now.soc_pct, current_a, CHARGE_STEP_S)
        return state

    def _charge_state(
        self, charge: Charge, charger_state: ChargerState, voltage_v: float, current_a: float, grid_w: float = 0.0
    ) -> BusState:
        now, battery = self._now, self.vehicle.battery
        if current_a == 0.0:
            voltage_v = open_circuit_voltage_v(battery, now.soc_pct)
        is_ac = charge.charger.kind is ChargerKind.AC
        return BusState(
            speed_kph=0.0,
            ready=ReadyState.OFF,
            gear=Gear.P,
            brake_pressed=False,
            accel_pedal_pct=0.0,
            pack_voltage_v=voltage_v,
            pack_current_a=current_a,
            soc_pct=now.soc_pct,
            bms_state=BmsState.CHARGE,
            pack_temp_min_c=self._ambient_c + 3.0,
            pack_temp_max_c=self._ambient_c + 6.0,
            cell_voltage_min_v=voltage_v / battery.series_cells - 0.003,
            cell_voltage_max_v=voltage_v / battery.series_cells + 0.003,
            inverter_power_kw=0.0,
            motor_speed_rpm=0.0,
            inverter_temp_c=self._ambient_c,
            odometer_m=now.odometer_m,
            energy_discharged_wh=now.energy_discharged_wh,
            energy_charged_wh=now.energy_charged_wh,
            charger_state=charger_state,
            charger_type=ChargerType.AC if is_ac else ChargerType.DC,
            grid_power_w=grid_w,
            grid_voltage_v=AC_GRID_VOLTAGE_V if is_ac else voltage_v,
        )

    # --- truth -----------------------------------------------------------------------------

    def _entry(self, kind: str, meter: TruthMeter, end_s: float) -> TruthEntry:
        start_at = self.plan.start_at
        return TruthEntry(
            type="trip" if kind == "trip" else "charge",
            start_at=start_at + timedelta(seconds=meter.start_s),
            end_at=start_at + timedelta(seconds=end_s),
            distance_m=self._now.odometer_m - meter.odometer_start_m,
            energy_out_wh=meter.energy_out_wh,
            energy_regen_wh=meter.energy_regen_wh,
            energy_in_wh=meter.energy_in_wh,
            grid_energy_wh=meter.grid_energy_wh,
            soc_start_pct=meter.soc_start_pct,
            soc_end_pct=self._now.soc_pct,
            odometer_start_m=meter.odometer_start_m,
            odometer_end_m=self._now.odometer_m,
        )
