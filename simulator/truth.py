"""Ground truth: what really happened in each trip and charge session, from the model itself.

The figures are integrated from the physics at its own time step, never read back from frames,
so a tool that decodes the frames can be judged against them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from carbonlink.wire import format_time


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthEntry:
    """One trip or charge session as it truly was."""

    type: Literal["trip", "charge"]
    start_at: datetime
    end_at: datetime
    distance_m: float
    energy_out_wh: float
    """Energy out of the pack terminals (trips; zero for charges)."""
    energy_regen_wh: float
    """Energy into the pack terminals from regenerative braking (trips)."""
    energy_in_wh: float
    """Energy into the pack terminals from the charger (charges)."""
    grid_energy_wh: float
    """Energy drawn from the grid, before the charger's losses (charges)."""
    soc_start_pct: float
    soc_end_pct: float
    odometer_start_m: float
    odometer_end_m: float

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "type": self.type,
            "start_at": format_time(self.start_at),
            "end_at": format_time(self.end_at),
            "distance_m": self.distance_m,
            "soc_start_pct": self.soc_start_pct,
            "soc_end_pct": self.soc_end_pct,
            "odometer_start_m": self.odometer_start_m,
            "odometer_end_m": self.odometer_end_m,
        }
        if self.type == "trip":
            body |= {"energy_out_wh": self.energy_out_wh, "energy_regen_wh": self.energy_regen_wh}
        else:
            body |= {"energy_in_wh": self.energy_in_wh, "grid_energy_wh": self.grid_energy_wh}
        return body


@dataclass(slots=True)
class TruthMeter:
    """Accumulates one activity's true figures step by step (mutable, owned by the time loop)."""

    start_s: float
    soc_start_pct: float
    odometer_start_m: float
    energy_out_wh: float = 0.0
    energy_regen_wh: float = 0.0
    energy_in_wh: float = 0.0
    grid_energy_wh: float = 0.0
