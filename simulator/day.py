"""A simulated day: trips and charge sessions at given times, parked (bus asleep) in between."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.cycles.trace import SpeedTrace
from simulator.errors import ParameterError
from simulator.physics.charger import ChargerParams

FLAP_PERIOD_S = 1.0
"""One ignition flap: ready off for FLAP_OFF_S, then on again for the rest of the period."""
FLAP_OFF_S = 0.4


@dataclass(frozen=True, slots=True, kw_only=True)
class Trip:
    """Ready on, stand, drive the cycle, stand, ready off."""

    cycle: SpeedTrace
    start_s: float
    """Ready-on time, seconds after the day's start."""
    ready_before_s: float = 8.0
    """Standing with ready on before moving off (seat belt, mirrors, navigation)."""
    ready_after_s: float = 5.0
    ignition_flaps: int = 0
    """Ready off/on toggles in the first seconds (a fault: a loose contact, an impatient driver)."""

    def __post_init__(self) -> None:
        if self.ignition_flaps < 0 or self.ignition_flaps * FLAP_PERIOD_S > self.ready_before_s:
            raise ParameterError(
                f"{self.ignition_flaps} ignition flaps do not fit in {self.ready_before_s} s "
                "of standing before the trip"
            )

    @property
    def end_s(self) -> float:
        return self.start_s + self.ready_before_s + self.cycle.duration_s + self.ready_after_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """Plug in, hand-shake, charge to a target (or until the next activity), stay plugged a while."""

    charger: ChargerParams
    start_s: float
    """Plug-in time, seconds after the day's start."""
    target_soc_pct: float = 80.0
    handshake_s: float = 20.0
    plugged_after_s: float = 30.0


Activity = Trip | Charge


@dataclass(frozen=True, slots=True, kw_only=True)
class InitialState:
    """The vehicle as the day finds it."""

    soc_pct: float = 80.0
    odometer_m: float = 48_210_000.0
    energy_discharged_wh: float = 9_120_500.0
    energy_charged_wh: float = 8_900_100.0
    ambient_c: float = 18.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_pct <= 100.0:  # noqa: PLR2004 - percent bounds
            raise ParameterError(f"initial soc_pct must be between 0 and 100, got {self.soc_pct}")
        for name in ("odometer_m", "energy_discharged_wh", "energy_charged_wh"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ParameterError(f"initial {name} must be a finite non-negative number, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DayPlan:
    """What the vehicle does, in time order, from ``start_at`` (aware UTC)."""

    start_at: datetime
    activities: tuple[Activity, ...]
    initial: InitialState = InitialState()

    def __post_init__(self) -> None:
        if self.start_at.utcoffset() != timedelta(0):
            raise ParameterError(f"start_at must be an aware UTC time, got {self.start_at!r}")
        if not self.activities:
            raise ParameterError("a day needs at least one trip or charge session")
        previous_start = -math.inf
        for index, activity in enumerate(self.activities):
            if activity.start_s < 0 or activity.start_s <= previous_start:
                raise ParameterError(
                    f"activity {index} starts at {activity.start_s} s: activities must be in time order"
                )
            previous_start = activity.start_s
        for index, (activity, following) in enumerate(zip(self.activities, self.activities[1:], strict=False)):
            if isinstance(activity, Trip) and activity.end_s > following.start_s:
                raise ParameterError(
                    f"trip {index} ends at {activity.end_s:.0f} s, after activity {index + 1} starts "
                    f"at {following.start_s:.0f} s"
                )
            if isinstance(activity, Charge) and activity.start_s + activity.handshake_s >= following.start_s:
                raise ParameterError(f"charge {index} has no time to charge before activity {index + 1}")
        for index, activity in enumerate(self.activities):
            if isinstance(activity, Charge) and not 0.0 < activity.target_soc_pct <= 100.0:  # noqa: PLR2004
                raise ParameterError(
                    f"charge {index} target_soc_pct must be in (0, 100], got {activity.target_soc_pct}"
                )
