"""Synthetic drive cycles, seeded: urban stop-and-go, suburban, highway cruise, and a mix of the three.

A cycle is a chain of manoeuvres drawn from a road profile: move off to a cruising speed, hold it,
then either stop (and stand a few seconds to a minute) or change to another cruising speed. Rates of
acceleration and deceleration stay within what a passenger car does comfortably, and the road
climbs and falls gently (within ±3 %). Every cycle starts and ends at standstill and lasts exactly
the duration asked for: near the end, the last manoeuvre that fits is followed by an unhurried stop.

The only randomness is ``random.Random(seed)``: the same seed and duration give the same trace.
Seeds are non-negative, since ``Random`` draws the same numbers for n and -n.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator.cycles.trace import KPH_PER_MPS, SpeedTrace
from simulator.errors import CycleError

# Comfortable limits of a passenger car: every segment's slope lies within them.
ACCEL_MIN_MPS2 = 0.5
ACCEL_MAX_MPS2 = 2.5
DECEL_MIN_MPS2 = 0.5
DECEL_MAX_MPS2 = 3.0

GRADE_MAX_PCT = 3.0
"""Roads climb and fall within ±3 %."""
GRADE_STEP_MAX_PCT = 1.0
"""The most the grade changes from one breakpoint to the next."""
ELEVATION_BAND_M = 25.0
"""Roads wander up and down within ±25 m of where the cycle started (a day's routes are not
a descent from a mountain): the grade steers back toward a target inside this band."""

IDLE_MIN_S = 3.0
IDLE_MAX_S = 60.0
"""A stop lasts a few seconds (a give-way) to a minute (a long red light)."""

FINAL_DECEL_MPS2 = 1.0
"""The last stop of a cycle, unhurried."""
FINAL_IDLE_S = 3.0
"""Standing still at the end before the cycle closes."""
MIN_SPEED_CHANGE_KPH = 2.0
"""A drawn cruising speed closer than this to the current one just extends the cruise."""
MIN_FINAL_HOP_KPH = 5.0
"""Near the end, a standing vehicle moves off again only if it can reach this speed and stop in time."""
MIN_PHASE_S = 0.01
"""A final cruise shorter than this is left out, so that breakpoints stay well apart."""

MIN_DURATION_S = 60.0
MAX_DURATION_S = 86_400.0
"""A synthetic cycle lasts a minute to a day."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoadProfile:
    """How traffic flows on one kind of road: the ranges each manoeuvre is drawn from."""

    name: str
    cruise_kph: tuple[float, float]
    cruise_s: tuple[float, float]
    stop_probability: float
    """The chance that a moving vehicle's next manoeuvre is a stop rather than a change of speed."""
    accel_mps2: tuple[float, float]
    decel_mps2: tuple[float, float]
    idle_s: tuple[float, float]
    default_duration_s: float


URBAN = RoadProfile(
    name="urban",
    cruise_kph=(20.0, 50.0),
    cruise_s=(5.0, 40.0),
    stop_probability=0.5,
    accel_mps2=(0.8, 2.0),
    decel_mps2=(0.8, 2.5),
    idle_s=(IDLE_MIN_S, IDLE_MAX_S),
    default_duration_s=1200.0,
)
SUBURBAN = RoadProfile(
    name="suburban",
    cruise_kph=(50.0, 80.0),
    cruise_s=(15.0, 90.0),
    stop_probability=0.2,
    accel_mps2=(0.6, 1.8),
    decel_mps2=(0.6, 2.5),
    idle_s=(IDLE_MIN_S, 45.0),
    default_duration_s=1200.0,
)
HIGHWAY = RoadProfile(
    name="highway",
    cruise_kph=(90.0, 130.0),
    cruise_s=(30.0, 240.0),
    stop_probability=0.03,
    accel_mps2=(ACCEL_MIN_MPS2, 1.2),
    decel_mps2=(DECEL_MIN_MPS2, 2.0),
    idle_s=(IDLE_MIN_S, 30.0),
    default_duration_s=1800.0,
)
PROFILES = (URBAN, SUBURBAN, HIGHWAY)

MIXED_ROUTE = (URBAN, SUBURBAN, HIGHWAY, SUBURBAN)
"""A mixed cycle drives these stretches in turn (out of town and back in), starting over if time is left."""
MIXED_STRETCH_S = (240.0, 600.0)
"""How long each stretch of a mixed cycle lasts."""
MIXED_DEFAULT_DURATION_S = 2400.0

ProfileAt = Callable[[float], RoadProfile]
"""The road profile that applies at a time (seconds from the start)."""
_Phase = tuple[float, float, bool]
"""(duration s, end speed km/h, grade held): one straight piece of a manoeuvre."""


def urban(seed: int, duration_s: float = URBAN.default_duration_s) -> SpeedTrace:
    """City driving: 20–50 km/h between frequent stops."""
    return _generate(URBAN.name, seed, duration_s, lambda _t_s: URBAN)


def suburban(seed: int, duration_s: float = SUBURBAN.default_duration_s) -> SpeedTrace:
    """Arterial roads: 50–80 km/h, an occasional stop."""
    return _generate(SUBURBAN.name, seed, duration_s, lambda _t_s: SUBURBAN)


def highway(seed: int, duration_s: float = HIGHWAY.default_duration_s) -> SpeedTrace:
    """Motorway: 90–130 km/h, speed changes with traffic, few stops."""
    return _generate(HIGHWAY.name, seed, duration_s, lambda _t_s: HIGHWAY)


def mixed(seed: int, duration_s: float = MIXED_DEFAULT_DURATION_S) -> SpeedTrace:
    """Stretches of urban, suburban, highway, suburban driving in turn, each 4–10 minutes."""
    _check_seed_and_duration(seed, duration_s)
    rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation, not cryptography
    ends_s: list[float] = []
    end_s = 0.0
    while end_s < duration_s:
        end_s += rng.uniform(*MIXED_STRETCH_S)
        ends_s.append(end_s)

    def profile_at(t_s: float) -> RoadProfile:
        index = next((i for i, end in enumerate(ends_s) if t_s < end), len(ends_s) - 1)
        return MIXED_ROUTE[index % len(MIXED_ROUTE)]

    return _generate("mixed", seed, duration_s, profile_at, rng)


def _check_seed_and_duration(seed: int, duration_s: float) -> None:
    if seed < 0:
        raise CycleError(f"the seed of a synthetic cycle is a non-negative integer, not {seed}")
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:  # also NaN
        raise CycleError(f"a synthetic cycle lasts {MIN_DURATION_S:g} to {MAX_DURATION_S:g} s, not {duration_s!r} s")


class _TraceBuilder:
    """Breakpoints under construction, and the seeded draws that extend them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.time_s = [0.0]
        self.speed_kph = [0.0]
        self.grade_pct = [rng.uniform(-GRADE_MAX_PCT, GRADE_MAX_PCT)]
        self.elevation_m = 0.0

    @property
    def t_s(self) -> float:
        return self.time_s[-1]

    @property
    def v_kph(self) -> float:
        return self.speed_kph[-1]

    def add(self, phase: _Phase) -> None:
        duration_s, end_speed_kph, hold_grade = phase
        start_grade_pct = grade_pct = self.grade_pct[-1]
        distance_m = (self.v_kph + end_speed_kph) / 2 / KPH_PER_MPS * duration_s
        if not hold_grade:
            # Steer toward a random elevation inside the band, at most one grade step at a time.
            target_m = self.rng.uniform(-ELEVATION_BAND_M, ELEVATION_BAND_M)
            wanted_pct = (target_m - self.elevation_m) / distance_m * 100 if distance_m > 0 else grade_pct
            step_pct = min(GRADE_STEP_MAX_PCT, max(-GRADE_STEP_MAX_PCT, wanted_pct - grade_pct))
            grade_pct = min(GRADE_MAX_PCT, max(-GRADE_MAX_PCT, grade_pct + step_pct))
        self.elevation_m += distance_m * (start_grade_pct + grade_pct) / 200
        self.time_s.append(self.t_s + duration_s)
        self.speed_kph.append(end_speed_kph)
        self.grade_pct.append(grade_pct)

    def next_manoeuvre(self, profile: RoadProfile) -> list[_Phase]:
        """Move off, stop, or change speed, each followed by a cruise or a stand."""
        rng, v_kph = self.rng, self.v_kph
        if v_kph > 0.0 and rng.random() < profile.stop_probability:
            decel_mps2 = rng.uniform(*profile.decel_mps2)
            return [(v_kph / KPH_PER_MPS / decel_mps2, 0.0, False), (rng.uniform(*profile.idle_s), 0.0, True)]
        target_kph = rng.uniform(*profile.cruise_kph)
        cruise = (rng.uniform(*profile.cruise_s), target_kph, False)
        change_kph = target_kph - v_kph
        if abs(change_kph) < MIN_SPEED_CHANGE_KPH:
            return [(cruise[0], v_kph, False)]
        rate_mps2 = rng.uniform(*(profile.accel_mps2 if change_kph > 0.0 else profile.decel_mps2))
        return [(abs(change_kph) / KPH_PER_MPS / rate_mps2, target_kph, False), cruise]

    def finish(self, profile: RoadProfile, duration_s: float) -> None:
        """Close the trace at standstill at exactly ``duration_s``, from a state that leaves time to stop."""
        if self.v_kph == 0.0:
            # Standing, with too little time left for a whole manoeuvre: move off if there is time to
            # reach a useful speed and stop again.
            accel_mps2 = self.rng.uniform(*profile.accel_mps2)
            spare_s = duration_s - FINAL_IDLE_S - self.t_s
            peak_kph = min(
                self.rng.uniform(*profile.cruise_kph),
                spare_s / (1.0 / accel_mps2 + 1.0 / FINAL_DECEL_MPS2) * KPH_PER_MPS,
            )
            if peak_kph >= MIN_FINAL_HOP_KPH:
                self.add((peak_kph / KPH_PER_MPS / accel_mps2, peak_kph, False))
        v_kph = self.v_kph
        if v_kph > 0.0:
            cruise_s = duration_s - _time_to_stop_s(v_kph) - self.t_s
            if cruise_s >= MIN_PHASE_S:
                self.add((cruise_s, v_kph, False))
            self.add((v_kph / KPH_PER_MPS / FINAL_DECEL_MPS2, 0.0, False))
        self.add((duration_s - self.t_s, 0.0, True))
        self.time_s[-1] = duration_s  # exactly, whatever the rounding of the sums before


def _time_to_stop_s(v_kph: float) -> float:
    """The time the final stop takes from ``v_kph``, standing at the end included."""
    return v_kph / KPH_PER_MPS / FINAL_DECEL_MPS2 + FINAL_IDLE_S


def _generate(
    name: str, seed: int, duration_s: float, profile_at: ProfileAt, rng: random.Random | None = None
) -> SpeedTrace:
    """Manoeuvres while each still leaves time for the final stop, then the final stop."""
    _check_seed_and_duration(seed, duration_s)
    builder = _TraceBuilder(rng if rng is not None else random.Random(seed))  # noqa: S311 -- as above
    while True:
        profile = profile_at(builder.t_s)
        phases = builder.next_manoeuvre(profile)
        end_s = builder.t_s + math.fsum(phase[0] for phase in phases)
        if end_s + _time_to_stop_s(phases[-1][1]) > duration_s:
            break
        for phase in phases:
            builder.add(phase)
    builder.finish(profile_at(builder.t_s), duration_s)
    return SpeedTrace(
        name=f"{name}-{seed}",
        time_s=tuple(builder.time_s),
        speed_kph=tuple(builder.speed_kph),
        grade_pct=tuple(builder.grade_pct),
    )
