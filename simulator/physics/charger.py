"""The charger: how much power reaches the battery at a given SOC, and what the grid gives for it.

Charging follows a simplified constant-current/constant-voltage (CC-CV) curve, expressed as
battery-side power::

    P(SOC) = max_power_w                                        SOC ≤ taper_start_soc_pct
    P(SOC) = max_power_w - (max_power_w - min_taper_power_w)
             · (SOC - taper_start_soc_pct) / (100 - taper_start_soc_pct)   above it

constant up to the taper start (the CC phase, where the charger or the battery's current limit
binds), then falling linearly to ``min_taper_power_w`` at 100 % (standing in for the CV phase, in
which the current decays as the cell voltage nears its limit). Real curves step and bend; this one
keeps the shape and the energy roughly right.

Losses between the grid and the battery (on-board charger or charging station, cables, the
battery's cooling while charging) are one efficiency: ``grid power = battery power / efficiency``.
"""

from dataclasses import dataclass

from carbonlink.records import ChargerKind
from simulator.errors import ParameterError
from simulator.physics.checks import is_finite_number

__all__ = ["ChargerKind", "ChargerParams", "charge_power_w", "grid_power_w"]

_FULL_PCT = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerParams:
    """An AC or DC charger as the battery sees it: power limit, taper, efficiency."""

    kind: ChargerKind
    """``ChargerKind.AC`` (on-board charger) or ``ChargerKind.DC`` (off-board station)."""
    max_power_w: float
    """Most power the battery receives (battery side of the losses)."""
    efficiency: float
    """Battery energy ÷ grid energy, in (0, 1]."""
    taper_start_soc_pct: float
    """SOC at which the power starts to fall, in [0, 100)."""
    min_taper_power_w: float
    """Battery-side power left at 100 % SOC, between 0 and ``max_power_w``."""

    def __post_init__(self) -> None:
        try:
            kind = ChargerKind(self.kind)  # configuration may say "ac" or "dc": stored as the enum
        except ValueError:
            kind = ChargerKind.UNKNOWN
        if kind is ChargerKind.UNKNOWN:
            raise ParameterError(f"kind must be 'ac' or 'dc', got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        if not (is_finite_number(self.max_power_w) and self.max_power_w > 0.0):
            raise ParameterError(f"max_power_w must be a positive finite number, got {self.max_power_w!r}")
        if not (is_finite_number(self.efficiency) and 0.0 < self.efficiency <= 1.0):
            raise ParameterError(f"efficiency must be in (0, 1], got {self.efficiency!r}")
        if not (is_finite_number(self.taper_start_soc_pct) and 0.0 <= self.taper_start_soc_pct < _FULL_PCT):
            raise ParameterError(f"taper_start_soc_pct must be in [0, 100), got {self.taper_start_soc_pct!r}")
        if not (is_finite_number(self.min_taper_power_w) and 0.0 <= self.min_taper_power_w <= self.max_power_w):
            raise ParameterError(
                f"min_taper_power_w must be between 0 and max_power_w ({self.max_power_w}), "
                f"got {self.min_taper_power_w!r}"
            )


def charge_power_w(params: ChargerParams, soc_pct: float) -> float:
    """Battery-side charging power (W, a positive number) at ``soc_pct``: the simplified CC-CV curve."""
    if soc_pct <= params.taper_start_soc_pct:
        return params.max_power_w
    if soc_pct >= _FULL_PCT:
        return params.min_taper_power_w
    fraction = (soc_pct - params.taper_start_soc_pct) / (_FULL_PCT - params.taper_start_soc_pct)
    return params.max_power_w - (params.max_power_w - params.min_taper_power_w) * fraction


def grid_power_w(params: ChargerParams, battery_power_w: float) -> float:
    """Power drawn from the grid (W) while ``battery_power_w`` reaches the battery: battery power / efficiency."""
    return battery_power_w / params.efficiency
