"""The traction battery: open-circuit voltage against state of charge, one series resistance, coulombs.

The pack is modelled as an ideal voltage source, its open-circuit voltage (OCV) read from a per-cell
table against state of charge (SOC) and multiplied by the cells in series, behind one resistance
that stands for the whole pack (cells, busbars, contactors)::

    V = OCV(SOC) - I·R          P = V·I

Sign convention, used throughout the simulator: **current and power are positive while the battery
discharges** (gives energy at its terminals) and negative while it charges (takes energy in, from
regenerative braking or a charger). A charging current therefore *raises* the terminal voltage
above the OCV, and a discharging one makes it sag.

SOC is coulomb-counted against ``capacity_ah``. The table and the capacity describe the *usable*
window the vehicle shows as 0–100 %, not the cells' absolute limits.

Everything here is plain float arithmetic on values computed once in ``__post_init__``: the
simulator calls these functions about 100 times per simulated second.
"""

import itertools
import math
from bisect import bisect_right
from dataclasses import dataclass, field

from simulator.errors import ParameterError
from simulator.physics.checks import require_positive

SECONDS_PER_HOUR = 3600.0
_FULL_PCT = 100.0

NMC_OCV_SOC_PCT: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0)
NMC_OCV_CELL_V: tuple[float, ...] = (3.30, 3.45, 3.53, 3.60, 3.65, 3.69, 3.74, 3.80, 3.87, 3.95, 4.04, 4.15)
"""OCV of an NMC/graphite cell over a usable window: a typical shape (steep below 10 %, a gentle
slope through the middle, steeper again towards full), not a measured curve of a named cell."""

LFP_OCV_SOC_PCT: tuple[float, ...] = NMC_OCV_SOC_PCT
LFP_OCV_CELL_V: tuple[float, ...] = (3.00, 3.17, 3.22, 3.26, 3.28, 3.29, 3.30, 3.31, 3.32, 3.33, 3.34, 3.45)
"""OCV of an LFP/graphite cell: a typical shape, flat (about 3.26–3.33 V) from 20 to 80 % SOC."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryParams:
    """A traction battery pack: capacity, cells in series, OCV table per cell, resistance, current limits."""

    capacity_ah: float
    """Usable charge of the whole pack (all parallel strings together), 0 → 100 % SOC."""
    series_cells: int
    """Cells (or parallel cell groups) in series: pack OCV = cell OCV × series_cells."""
    internal_resistance_ohm: float
    """Resistance of the whole pack, terminal to terminal."""
    max_discharge_current_a: float
    """Largest discharge current the battery management allows (a positive number)."""
    max_charge_current_a: float
    """Largest charge current the battery management allows (a positive number)."""
    ocv_soc_pct: tuple[float, ...] = NMC_OCV_SOC_PCT
    """SOC breakpoints of the OCV table: strictly increasing from 0 to 100."""
    ocv_cell_v: tuple[float, ...] = NMC_OCV_CELL_V
    """OCV of one cell at each breakpoint: strictly increasing."""

    pack_ocv_v: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """Derived: pack OCV at each breakpoint."""
    ocv_slope_v_per_pct: tuple[float, ...] = field(init=False, repr=False, compare=False)
    """Derived: pack OCV slope of each table segment."""
    soc_pct_per_coulomb: float = field(init=False, repr=False, compare=False)
    """Derived: SOC change of one coulomb (ampere-second)."""

    def __post_init__(self) -> None:
        require_positive("capacity_ah", self.capacity_ah)
        series_cells: object = self.series_cells  # typed int, but configuration may hand in a float or a bool
        if type(series_cells) is not int or series_cells < 1:
            raise ParameterError(f"series_cells must be a positive whole number, got {self.series_cells!r}")
        require_positive("internal_resistance_ohm", self.internal_resistance_ohm)
        require_positive("max_discharge_current_a", self.max_discharge_current_a)
        require_positive("max_charge_current_a", self.max_charge_current_a)
        _check_table(self.ocv_soc_pct, self.ocv_cell_v)

        pack_v = tuple(cell_v * self.series_cells for cell_v in self.ocv_cell_v)
        slopes = tuple(
            (v_high - v_low) / (soc_high - soc_low)
            for (v_low, v_high), (soc_low, soc_high) in zip(
                itertools.pairwise(pack_v), itertools.pairwise(self.ocv_soc_pct), strict=True
            )
        )
        # The dataclass is frozen: derived values are set once, here, as the constructor's last step.
        object.__setattr__(self, "pack_ocv_v", pack_v)
        object.__setattr__(self, "ocv_slope_v_per_pct", slopes)
        object.__setattr__(self, "soc_pct_per_coulomb", _FULL_PCT / (self.capacity_ah * SECONDS_PER_HOUR))

    @property
    def nominal_energy_wh(self) -> float:
        """Energy of a full usable discharge at vanishing current: capacity × mean cell OCV × cells in series.

        The mean OCV is the average of the (piecewise-linear) OCV over SOC from 0 to 100 %, i.e. the
        integral of the table by the trapezoid rule, which is exact for linear interpolation. It is the
        energy the pack would give with no resistive loss; real discharges give less.
        """
        soc, cell_v = self.ocv_soc_pct, self.ocv_cell_v
        area_v_pct = sum((soc[k + 1] - soc[k]) * (cell_v[k + 1] + cell_v[k]) / 2.0 for k in range(len(soc) - 1))
        return self.capacity_ah * (area_v_pct / _FULL_PCT) * self.series_cells


def open_circuit_voltage_v(params: BatteryParams, soc_pct: float) -> float:
    """Pack OCV at ``soc_pct``: linear interpolation in the table, clamped to its ends outside 0–100 %."""
    breakpoints = params.ocv_soc_pct
    if soc_pct <= breakpoints[0]:
        return params.pack_ocv_v[0]
    if soc_pct >= breakpoints[-1]:
        return params.pack_ocv_v[-1]
    k = bisect_right(breakpoints, soc_pct) - 1
    return params.pack_ocv_v[k] + params.ocv_slope_v_per_pct[k] * (soc_pct - breakpoints[k])


def terminal_for_power(params: BatteryParams, soc_pct: float, power_w: float) -> tuple[float, float]:
    """``(voltage_v, current_a)`` at the pack terminals for a requested terminal power.

    ``power_w`` is positive to discharge and negative to charge. With ``E`` the OCV and ``R`` the
    resistance, ``P = V·I`` and ``V = E - I·R`` give ``R·I² - E·I + P = 0``, whose physically
    meaningful root (the one that tends to ``P/E`` as ``R → 0``) is

        I = (E - √(E² - 4·R·P)) / (2·R) = 2·P / (E + √(E² - 4·R·P))

    computed in the second, rationalised form, which loses no precision for small ``P``.

    Limits: the current stays within ``-max_charge_current_a … max_discharge_current_a``, and a
    discharge never goes past the maximum power point ``I = E/(2R)`` (``P = E²/(4R)``). When a limit
    cuts the request, the returned ``voltage_v × current_a`` is the power actually delivered, which is
    less in magnitude than the request.
    """
    ocv_v = open_circuit_voltage_v(params, soc_pct)
    resistance_ohm = params.internal_resistance_ohm
    if power_w > 0.0:
        limit_a = min(params.max_discharge_current_a, ocv_v / (2.0 * resistance_ohm))
        if power_w >= (ocv_v - limit_a * resistance_ohm) * limit_a:
            return ocv_v - limit_a * resistance_ohm, limit_a
    current_a = 2.0 * power_w / (ocv_v + math.sqrt(ocv_v * ocv_v - 4.0 * resistance_ohm * power_w))
    current_a = max(current_a, -params.max_charge_current_a)
    return ocv_v - current_a * resistance_ohm, current_a


def soc_after(params: BatteryParams, soc_pct: float, current_a: float, duration_s: float) -> float:
    """SOC after ``current_a`` (positive = discharging) flowed for ``duration_s``, clamped to 0–100 %."""
    soc = soc_pct - current_a * duration_s * params.soc_pct_per_coulomb
    if soc < 0.0:
        return 0.0
    if soc > _FULL_PCT:
        return _FULL_PCT
    return soc


def _check_table(soc_pct: tuple[float, ...], cell_v: tuple[float, ...]) -> None:
    if len(soc_pct) != len(cell_v):
        raise ParameterError(
            f"ocv_soc_pct and ocv_cell_v must have the same length, got {len(soc_pct)} and {len(cell_v)}"
        )
    if len(soc_pct) < 2:  # noqa: PLR2004 - a table needs two ends
        raise ParameterError(f"ocv_soc_pct needs at least 2 breakpoints, got {len(soc_pct)}")
    if not all(math.isfinite(value) for value in soc_pct) or soc_pct[0] != 0.0 or soc_pct[-1] != _FULL_PCT:
        raise ParameterError(f"ocv_soc_pct must run from 0 to 100, got {soc_pct}")
    if any(later <= earlier for earlier, later in itertools.pairwise(soc_pct)):
        raise ParameterError(f"ocv_soc_pct must be strictly increasing, got {soc_pct}")
    if not all(math.isfinite(value) and value > 0.0 for value in cell_v):
        raise ParameterError(f"ocv_cell_v must hold positive finite voltages, got {cell_v}")
    if any(later <= earlier for earlier, later in itertools.pairwise(cell_v)):
        raise ParameterError(f"ocv_cell_v must be strictly increasing with SOC, got {cell_v}")
