"""Cutting the stream of readings into trips and charge sessions: a pure state machine.

Feed readings in time order (time from frame timestamps); closed segments come out. A trip runs
while the vehicle is ready and not charging; a charge session while energy flows in from a
charger. Hysteresis keeps one trip whole across short ready-off moments (a stop at a shop, an
ignition that flaps): a segment ends only when its state has been off for the hysteresis time,
and then ends at the last moment it was on. A silence longer than ``split_gap_s`` (the bus slept,
the logger lost it) ends a segment too. Candidates too short to be trips (an ignition flap with
the car standing) are discarded and counted, never sealed.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

from agent.errors import ConfigError
from agent.integration import Integrator, Totals
from agent.readings import Quantity, Reading


class SegmentKind(StrEnum):
    """What a segment is."""

    TRIP = "trip"
    CHARGE = "charge"


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmenterSettings:
    """Thresholds of segmentation; defaults chosen for passenger cars and buses alike."""

    ready_off_hysteresis_s: float = 120.0
    """A ready-off shorter than this (a quick stop, a restart) does not end a trip."""
    charge_off_hysteresis_s: float = 120.0
    """A charging pause shorter than this (a charger re-negotiating) does not end a session."""
    split_gap_s: float = 600.0
    """No reading at all for this long ends any open segment (the bus slept or was lost)."""
    min_trip_duration_s: float = 30.0
    min_trip_distance_m: float = 50.0
    """A trip shorter than both minimums is discarded (ready on, never driven)."""
    min_charge_duration_s: float = 30.0
    min_charge_energy_wh: float = 10.0
    """A charge shorter than ``min_charge_duration_s`` that put less than this into the pack is
    discarded (a charger that gave up at once); one that did deliver energy is always sealed."""
    max_gap_s: float = 1.0
    """A hole in the power samples longer than this is not bridged; it is counted as a gap."""
    max_voltage_age_s: float = 0.5
    """Pack current is multiplied by a voltage read at most this long before it."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"segmentation {name} must be a finite non-negative number, got {value}")


@dataclass(frozen=True, slots=True)
class Segment:
    """A closed trip or charge session with its figures."""

    kind: SegmentKind
    totals: Totals


class Segmenter:
    """The state machine. Not thread-safe; one per vehicle."""

    def __init__(self, settings: SegmenterSettings | None = None) -> None:
        self.settings = settings or SegmenterSettings()
        self.discarded = 0
        """Candidates too short to be sealed, since start."""
        self._ready: bool | None = None
        self._charging: bool | None = None
        self._open: SegmentKind | None = None
        self._integrator: Integrator | None = None
        self._off_since_s: float | None = None
        self._checkpoint: Totals | None = None
        self._last_time_s: float | None = None

    def feed(self, reading: Reading) -> list[Segment]:
        """Take one reading; return the segments it closes (usually none)."""
        time_s = reading.time_s
        # Off for the hysteresis time closes a segment whatever this reading says: after ready-off the
        # bus often sleeps, and the first frame after the silence may already say ready again (as
        # tick() would have closed the segment during the silence, a replay without ticks must too).
        closed = self._expire(time_s)
        self._last_time_s = time_s
        self._update_states(reading)
        wanted = self._wanted()
        if self._open is not None and self._integrator is not None:
            if wanted is self._open:
                self._off_since_s, self._checkpoint = None, None
            elif wanted is not None:
                closed += self._close()  # a trip turns into a charge session or back, at once
            elif self._off_since_s is None:
                self._off_since_s, self._checkpoint = time_s, self._integrator.snapshot()
        if self._open is None and wanted is not None:
            self._open = wanted
            self._integrator = Integrator(
                time_s, max_gap_s=self.settings.max_gap_s, max_voltage_age_s=self.settings.max_voltage_age_s
            )
        if self._integrator is not None:
            self._integrator.add(reading)
        return closed

    def tick(self, time_s: float) -> list[Segment]:
        """Time passed with no reading (a quiet bus): close what that silence ends.

        A live bus falls silent when the car sleeps, often within the ready-off hysteresis; without
        this a finished trip would wait for the next morning's first frame to be sealed.
        """
        if self._last_time_s is None or time_s <= self._last_time_s:
            return []
        return self._expire(time_s)

    def _expire(self, time_s: float) -> list[Segment]:
        """Close the open segment if, by ``time_s``, the bus was silent or the state off long enough."""
        if self._open is None:
            return []
        if self._last_time_s is not None and time_s - self._last_time_s > self.settings.split_gap_s:
            return self._close()
        if self._off_since_s is not None and time_s - self._off_since_s >= self._hysteresis_s():
            return self._close()
        return []

    def finish(self) -> list[Segment]:
        """The end of the stream: close what is open."""
        return self._close()

    def _update_states(self, reading: Reading) -> None:
        # A reading that does not carry a state, or carries it as "not available", leaves it as it was.
        ready = reading.values.get(Quantity.READY)
        if ready is not None:
            self._ready = ready >= 0.5  # noqa: PLR2004 - state quantities are 0 or 1
        charging = reading.values.get(Quantity.CHARGING)
        if charging is not None:
            self._charging = charging >= 0.5  # noqa: PLR2004 - state quantities are 0 or 1

    def _wanted(self) -> SegmentKind | None:
        if self._charging:
            return SegmentKind.CHARGE
        if self._ready:
            return SegmentKind.TRIP
        return None

    def _hysteresis_s(self) -> float:
        settings = self.settings
        return settings.charge_off_hysteresis_s if self._open is SegmentKind.CHARGE else settings.ready_off_hysteresis_s

    def _close(self) -> list[Segment]:
        kind, integrator, checkpoint = self._open, self._integrator, self._checkpoint
        self._open, self._integrator, self._off_since_s, self._checkpoint = None, None, None, None
        if kind is None or integrator is None:
            return []
        totals = checkpoint if checkpoint is not None else integrator.snapshot()
        if self._too_short(kind, totals):
            self.discarded += 1
            return []
        return [Segment(kind, totals)]

    def _too_short(self, kind: SegmentKind, totals: Totals) -> bool:
        settings = self.settings
        if kind is SegmentKind.TRIP:
            return totals.duration_s < settings.min_trip_duration_s and totals.distance_m < settings.min_trip_distance_m
        charged_wh = totals.energy_regen_wh - totals.energy_out_wh
        return totals.duration_s < settings.min_charge_duration_s and charged_wh < settings.min_charge_energy_wh
