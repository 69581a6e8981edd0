"""Integrating one trip or charge session from readings: energy, distance, SOC, counters, quality.

Pure and incremental: feed readings in time order, take a snapshot at any moment. Energy is the
trapezoid integral of pack voltage × current, split into discharge and regeneration (an interval
whose power changes sign is split at the zero crossing); an interval longer than ``max_gap_s``
is not bridged but counted. "Not available" values are unknown, never zero.
"""

from dataclasses import dataclass

from agent.readings import Quantity, Reading

SECONDS_PER_HOUR = 3600.0
KPH_PER_MPS = 3.6


@dataclass(frozen=True, slots=True)
class Totals:
    """The figures of a segment so far: a frozen snapshot, cheap to keep as a checkpoint."""

    start_s: float
    end_s: float
    energy_out_wh: float = 0.0
    energy_regen_wh: float = 0.0
    grid_energy_wh: float = 0.0
    speed_distance_m: float = 0.0
    odometer_start_m: float | None = None
    odometer_end_m: float | None = None
    soc_start_pct: float | None = None
    soc_end_pct: float | None = None
    discharged_start_wh: float | None = None
    discharged_end_wh: float | None = None
    charged_start_wh: float | None = None
    charged_end_wh: float | None = None
    power_samples: int = 0
    gaps: int = 0
    gap_duration_s: float = 0.0
    covered_s: float = 0.0
    unavailable: int = 0
    charger_dc: bool | None = None
    grid_power_seen: bool = False

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def distance_m(self) -> float:
        """Odometer difference where the vehicle has one, else the integral of speed."""
        if self.odometer_start_m is not None and self.odometer_end_m is not None:
            return max(0.0, self.odometer_end_m - self.odometer_start_m)
        return self.speed_distance_m

    @property
    def coverage_pct(self) -> float:
        return 100.0 if self.duration_s <= 0 else min(100.0, 100.0 * self.covered_s / self.duration_s)


def _split_trapezoid(p0: float, p1: float, hours: float) -> tuple[float, float]:
    """(discharge Wh, regen Wh) of a linear power ramp from p0 to p1 over ``hours``."""
    if p0 >= 0 and p1 >= 0:
        return (p0 + p1) / 2 * hours, 0.0
    if p0 <= 0 and p1 <= 0:
        return 0.0, -(p0 + p1) / 2 * hours
    positive, negative = (p0, -p1) if p0 > 0 else (p1, -p0)
    total = positive + negative
    return positive * positive / total / 2 * hours, negative * negative / total / 2 * hours


class Integrator:
    """Accumulates one segment in plain attributes (mutable, owned by the segmenter).

    :meth:`snapshot` freezes the figures so far.
    """

    def __init__(self, start_s: float, *, max_gap_s: float, max_voltage_age_s: float) -> None:
        self.max_gap_s = max_gap_s
        self.max_voltage_age_s = max_voltage_age_s
        self.start_s = self.end_s = start_s
        self.energy_out_wh = self.energy_regen_wh = self.grid_energy_wh = self.speed_distance_m = 0.0
        self.power_samples = self.gaps = self.unavailable = 0
        self.gap_duration_s = self.covered_s = 0.0
        self.first: dict[Quantity, float] = {}
        self.last: dict[Quantity, float] = {}
        self.charger_dc: bool | None = None
        self.grid_power_seen = False
        self._voltage: tuple[float, float] | None = None
        self._last_power: tuple[float, float] | None = None
        self._last_speed: tuple[float, float] | None = None
        self._last_grid: tuple[float, float] | None = None

    def add(self, reading: Reading) -> None:
        """Take one reading into the segment (readings arrive in time order)."""
        time_s = reading.time_s
        self.end_s = max(self.end_s, time_s)
        for quantity, value in reading.values.items():
            if value is None:
                self.unavailable += 1
                continue
            if quantity in _FIRST_AND_LAST:
                self.first.setdefault(quantity, value)
                self.last[quantity] = value
            elif quantity is Quantity.PACK_VOLTAGE_V:
                self._voltage = (time_s, value)
            elif quantity is Quantity.SPEED_KPH:
                self._add_speed(time_s, value)
            elif quantity is Quantity.GRID_POWER_W:
                self._add_grid(time_s, value)
            elif quantity is Quantity.CHARGER_DC:
                self.charger_dc = value >= 0.5  # noqa: PLR2004 - a state quantity is 0 or 1
        current = reading.values.get(Quantity.PACK_CURRENT_A)
        voltage = self._voltage
        if current is not None and voltage is not None and time_s - voltage[0] <= self.max_voltage_age_s:
            self._add_power(time_s, voltage[1] * current)

    def _add_power(self, time_s: float, power_w: float) -> None:
        self.power_samples += 1
        if self._last_power is not None:
            last_s, last_w = self._last_power
            interval_s = time_s - last_s
            if interval_s > self.max_gap_s:
                self.gaps += 1
                self.gap_duration_s += interval_s
            elif interval_s > 0:
                out_wh, regen_wh = _split_trapezoid(last_w, power_w, interval_s / SECONDS_PER_HOUR)
                self.energy_out_wh += out_wh
                self.energy_regen_wh += regen_wh
                self.covered_s += interval_s
        self._last_power = (time_s, power_w)

    def _add_speed(self, time_s: float, speed_kph: float) -> None:
        if self._last_speed is not None:
            last_s, last_kph = self._last_speed
            interval_s = time_s - last_s
            if 0 < interval_s <= self.max_gap_s:
                self.speed_distance_m += (last_kph + speed_kph) / 2 / KPH_PER_MPS * interval_s
        self._last_speed = (time_s, speed_kph)

    def _add_grid(self, time_s: float, grid_w: float) -> None:
        self.grid_power_seen = True
        if self._last_grid is not None:
            last_s, last_w = self._last_grid
            interval_s = time_s - last_s
            if 0 < interval_s <= self.max_gap_s:
                self.grid_energy_wh += (last_w + grid_w) / 2 * interval_s / SECONDS_PER_HOUR
        self._last_grid = (time_s, grid_w)

    def snapshot(self) -> Totals:
        """The figures so far, frozen."""
        first, last = self.first, self.last
        return Totals(
            start_s=self.start_s,
            end_s=self.end_s,
            energy_out_wh=self.energy_out_wh,
            energy_regen_wh=self.energy_regen_wh,
            grid_energy_wh=self.grid_energy_wh,
            speed_distance_m=self.speed_distance_m,
            odometer_start_m=first.get(Quantity.ODOMETER_M),
            odometer_end_m=last.get(Quantity.ODOMETER_M),
            soc_start_pct=first.get(Quantity.SOC_PCT),
            soc_end_pct=last.get(Quantity.SOC_PCT),
            discharged_start_wh=first.get(Quantity.ENERGY_DISCHARGED_WH),
            discharged_end_wh=last.get(Quantity.ENERGY_DISCHARGED_WH),
            charged_start_wh=first.get(Quantity.ENERGY_CHARGED_WH),
            charged_end_wh=last.get(Quantity.ENERGY_CHARGED_WH),
            power_samples=self.power_samples,
            gaps=self.gaps,
            gap_duration_s=self.gap_duration_s,
            covered_s=self.covered_s,
            unavailable=self.unavailable,
            charger_dc=self.charger_dc,
            grid_power_seen=self.grid_power_seen,
        )


_FIRST_AND_LAST = frozenset(
    {Quantity.ODOMETER_M, Quantity.SOC_PCT, Quantity.ENERGY_DISCHARGED_WH, Quantity.ENERGY_CHARGED_WH}
)
