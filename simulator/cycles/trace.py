"""A speed trace: the speed and road grade a vehicle follows over time, straight between breakpoints.

Every drive cycle (synthetic, NEDC, or a user's CSV) is one :class:`SpeedTrace`. The simulator's time
loop asks it once for its speeds and accelerations on a fixed step (:meth:`SpeedTrace.sampled`).
"""

import math
from bisect import bisect_right
from dataclasses import dataclass

from simulator.errors import CycleError

KPH_PER_MPS = 3.6
"""Kilometres per hour in one metre per second."""

MIN_POINTS = 2
"""A trace needs a start and an end."""

MAX_SAMPLES = 10_000_000
"""The most samples :meth:`SpeedTrace.sampled` returns: a little over a day at 0.01 s (about 0.6 GB)."""

_STEP_TOLERANCE = 1e-6
"""A sample within this fraction of a step past the end still counts as the sample at the end."""


@dataclass(frozen=True, slots=True)
class SpeedTrace:
    """Speed (and optionally road grade) at breakpoints in time, linear in between.

    ``time_s`` starts at 0.0 and increases strictly; ``speed_kph`` holds a finite, non-negative speed
    for each time; ``grade_pct`` holds the road grade at each time (positive uphill), or is ``None``
    for a flat road. Building a trace that breaks any of this raises :class:`CycleError`.
    """

    name: str
    time_s: tuple[float, ...]
    speed_kph: tuple[float, ...]
    grade_pct: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check(self)

    @property
    def duration_s(self) -> float:
        return self.time_s[-1]

    @property
    def distance_m(self) -> float:
        """The exact integral of the piecewise-linear speed."""
        times, speeds = self.time_s, self.speed_kph
        return math.fsum((speeds[i] + speeds[i + 1]) * (times[i + 1] - times[i]) for i in range(len(times) - 1)) / (
            2 * KPH_PER_MPS
        )

    @property
    def average_speed_kph(self) -> float:
        """Distance over duration, stops included."""
        return self.distance_m / self.duration_s * KPH_PER_MPS

    def speed_kph_at(self, t_s: float) -> float:
        """The speed at ``t_s`` seconds from the start; 0 before the start and after the end."""
        times = self.time_s
        if not times[0] <= t_s <= times[-1]:  # also NaN
            return 0.0
        # Rounding must not take a deceleration below standstill.
        return max(0.0, _interpolate(times, self.speed_kph, t_s))

    def grade_pct_at(self, t_s: float) -> float:
        """The road grade at ``t_s``; 0 on a flat trace.

        Before the start and after the end the road keeps the grade of its first and last breakpoints.
        """
        grades = self.grade_pct
        if grades is None:
            return 0.0
        times = self.time_s
        if not t_s > times[0]:  # also NaN
            return grades[0]
        if t_s >= times[-1]:
            return grades[-1]
        return _interpolate(times, grades, t_s)

    def sampled(self, step_s: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Speeds (m/s) and accelerations (m/s²) at t = 0, step, 2·step, … up to the duration.

        The speed of sample k is ``speed_kph_at(min(k·step, duration)) / 3.6``; its acceleration is the
        slope of the segment that holds k·step, the one that starts at or before it (the acceleration
        over the step that follows). A sample within a millionth of a step past the end is the sample
        at the end. One forward walk over the breakpoints, a list comprehension per segment.
        """
        if not (math.isfinite(step_s) and step_s > 0.0):
            raise CycleError(f"speed trace {self.name!r}: sampling step {step_s!r} s is not a positive number")
        times, speeds = self.time_s, self.speed_kph
        duration_s = times[-1]
        count = math.floor(duration_s / step_s + _STEP_TOLERANCE) + 1
        if count > MAX_SAMPLES:
            raise CycleError(
                f"speed trace {self.name!r}: {duration_s} s at {step_s} s steps is {count} samples,"
                f" more than the {MAX_SAMPLES} a trace may be sampled into"
            )
        speeds_mps: list[float] = []
        accels_mps2: list[float] = []
        k = 0
        accel_mps2 = 0.0
        for i in range(len(times) - 1):
            t0_s, t1_s = times[i], times[i + 1]
            v0_kph = speeds[i]
            dv_kph = speeds[i + 1] - v0_kph
            dt_s = t1_s - t0_s
            accel_mps2 = dv_kph / KPH_PER_MPS / dt_s
            end = _first_sample_at_or_after(t1_s, step_s, k, count)
            ks = range(k, end)
            if dv_kph < 0.0:  # as in speed_kph_at: not below standstill
                speeds_mps.extend(max(0.0, v0_kph + dv_kph * ((j * step_s - t0_s) / dt_s)) / KPH_PER_MPS for j in ks)
            else:
                speeds_mps.extend((v0_kph + dv_kph * ((j * step_s - t0_s) / dt_s)) / KPH_PER_MPS for j in ks)
            accels_mps2.extend([accel_mps2] * len(ks))
            k = end
        # The samples at the end (at most one): the last speed, the last segment's slope.
        speeds_mps.extend([speeds[-1] / KPH_PER_MPS] * (count - k))
        accels_mps2.extend([accel_mps2] * (count - k))
        return tuple(speeds_mps), tuple(accels_mps2)


def _first_sample_at_or_after(t_s: float, step_s: float, start: int, count: int) -> int:
    """The least k in [start, count] with k·step ≥ t_s, or count when there is none.

    Decided by the same float comparison the interpolation uses, so that samples and segments agree.
    """
    k = max(start, math.ceil(t_s / step_s))
    while k > start and (k - 1) * step_s >= t_s:
        k -= 1
    while k < count and k * step_s < t_s:
        k += 1
    return min(k, count)


def _interpolate(times: tuple[float, ...], values: tuple[float, ...], t_s: float) -> float:
    """The value at ``t_s`` (within the trace), on the segment that starts at or before it."""
    i = bisect_right(times, t_s) - 1
    if i >= len(times) - 1:
        return values[-1]
    v0 = values[i]
    return v0 + (values[i + 1] - v0) * ((t_s - times[i]) / (times[i + 1] - times[i]))


def _check(trace: SpeedTrace) -> None:
    """Raise CycleError naming the first thing wrong with the trace, and its index."""
    if not trace.name:
        raise CycleError("a speed trace needs a name")
    label = f"speed trace {trace.name!r}"
    _check_lengths(label, trace)
    _check_times(label, trace.time_s)
    for i, speed in enumerate(trace.speed_kph):
        if not math.isfinite(speed):
            raise CycleError(f"{label}: speed_kph[{i}] is {speed!r}, not a finite speed")
        if speed < 0.0:
            raise CycleError(f"{label}: speed_kph[{i}] is {speed!r}; speeds are not negative")
    for i, grade in enumerate(trace.grade_pct or ()):
        if not math.isfinite(grade):
            raise CycleError(f"{label}: grade_pct[{i}] is {grade!r}, not a finite grade")


def _check_lengths(label: str, trace: SpeedTrace) -> None:
    count = len(trace.time_s)
    if count < MIN_POINTS:
        raise CycleError(f"{label}: {count} points; at least {MIN_POINTS} are needed")
    if len(trace.speed_kph) != count:
        raise CycleError(f"{label}: {len(trace.speed_kph)} speeds for {count} times")
    if trace.grade_pct is not None and len(trace.grade_pct) != count:
        raise CycleError(f"{label}: {len(trace.grade_pct)} grades for {count} times")


def _check_times(label: str, times: tuple[float, ...]) -> None:
    if times[0] != 0.0:
        raise CycleError(f"{label}: time_s[0] is {times[0]!r}; a trace starts at 0.0 s")
    for i in range(1, len(times)):
        if not math.isfinite(times[i]):
            raise CycleError(f"{label}: time_s[{i}] is {times[i]!r}, not a finite time")
        if not times[i] > times[i - 1]:
            raise CycleError(f"{label}: time_s[{i}] = {times[i]!r} s is not after time_s[{i - 1}] = {times[i - 1]!r} s")
