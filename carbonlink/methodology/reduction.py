"""The reduction of one trip: ER = max(0, BE - PE - LE) × credited share.

This function is the definition: the gateway computes every credit with it and the auditor
recomputes every credit with it, from the parameters and charges the credit stores::

    battery  = max(0, energy out - regen)
    share    = 1 - Σ excluded charges' energy in ÷ Σ all charges' energy in   (1 without charges)
    grid     = battery × Σ grid energy ÷ Σ energy in      when the charges are metered (below)
             = battery ÷ charging efficiency              otherwise
    BE       = km × L/100 km ÷ 100 × g CO2/L × IR^max(0, crediting year - baseline vintage)
    PE       = grid kWh × g CO2/kWh ÷ (1 - grid loss fraction)
    LE       = leakage

The charges are metered when there is at least one, every one has its grid energy, Σ energy in
> 0, Σ grid energy ≥ Σ energy in (an efficiency above 1 does not reconcile) and Σ energy in ≥
battery (they cover the trip). Both sums run over *all* the charges, excluded ones too: whether
a charge was credited elsewhere changes only the share, never the grid energy, so marking a
charge excluded can only lower a credit.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Self

from carbonlink.methodology.errors import ParameterError
from carbonlink.methodology.parameters import CreditParameters, amount, json_float, json_object

HASH_BYTES = 32
"""A charge is named by its record hash (SHA-256)."""


class GridEnergyMethod(StrEnum):
    """How the grid energy behind a trip's battery energy was found."""

    METERED_CHARGE = "metered_charge"
    """From the charges' own grid-side meter readings."""
    BATTERY_OVER_EFFICIENCY = "battery_over_efficiency"
    """Battery energy ÷ the conservative default charging efficiency."""


def _set_amounts(owner: object, where: str, *names: str) -> None:
    # Frozen dataclasses: normalise int to float (one JSON spelling) while validating.
    for name in names:
        object.__setattr__(owner, name, amount(getattr(owner, name), f"{where}.{name}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TripEnergy:
    """What the methodology takes from a trip record."""

    distance_m: float
    energy_out_wh: float
    energy_regen_wh: float

    def __post_init__(self) -> None:
        _set_amounts(self, "trip", "distance_m", "energy_out_wh", "energy_regen_wh")


_CHARGE_FIELDS = ("record_hash", "energy_in_wh", "grid_energy_wh", "excluded")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeEnergy:
    """What the methodology takes from one of the vehicle's charge records."""

    record_hash: bytes
    energy_in_wh: float
    """Into the battery."""
    grid_energy_wh: float | None
    """Drawn from the grid, where the charger metered it."""
    excluded: bool
    """Marked by an operator as credited elsewhere."""

    def __post_init__(self) -> None:
        record_hash: object = self.record_hash  # checked: from_json and callers may pass anything
        if not isinstance(record_hash, bytes) or len(record_hash) != HASH_BYTES:
            raise ParameterError(f"charge.record_hash must be {HASH_BYTES} bytes, got {self.record_hash!r}")
        _set_amounts(self, "charge", "energy_in_wh")
        if self.grid_energy_wh is not None:
            _set_amounts(self, "charge", "grid_energy_wh")
        if not isinstance(self.excluded, bool):
            raise ParameterError(f"charge.excluded must be true or false, got {self.excluded!r}")

    def to_json(self) -> dict[str, object]:
        return {
            "record_hash": self.record_hash.hex(),
            "energy_in_wh": self.energy_in_wh,
            "grid_energy_wh": self.grid_energy_wh,
            "excluded": self.excluded,
        }

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s object back; :class:`ParameterError` naming the field."""
        fields = json_object(value, "charge", _CHARGE_FIELDS)
        record_hash = fields["record_hash"]
        if not isinstance(record_hash, str) or record_hash != record_hash.lower():
            raise ParameterError(f"charge.record_hash must be lowercase hex, got {record_hash!r}")
        try:
            hash_bytes = bytes.fromhex(record_hash)
        except ValueError as err:
            raise ParameterError(f"charge.record_hash must be lowercase hex, got {record_hash!r}") from err
        grid = fields["grid_energy_wh"]
        excluded = fields["excluded"]
        if type(excluded) is not bool:
            raise ParameterError(f"charge.excluded must be true or false, got {excluded!r}")
        return cls(
            record_hash=hash_bytes,
            energy_in_wh=json_float(fields["energy_in_wh"], "charge.energy_in_wh"),
            grid_energy_wh=None if grid is None else json_float(grid, "charge.grid_energy_wh"),
            excluded=excluded,
        )


_REDUCTION_AMOUNTS = (
    "battery_energy_wh",
    "grid_energy_wh",
    "credited_share",
    "baseline_co2e_g",
    "project_co2e_g",
    "leakage_co2e_g",
    "reduction_co2e_g",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reduction:
    """One trip's emission reduction and every intermediate figure behind it."""

    battery_energy_wh: float
    """max(0, energy out - regen)."""
    grid_energy_wh: float
    grid_energy_method: GridEnergyMethod
    credited_share: float
    """1 - the share of the charges' energy credited elsewhere, in [0, 1]."""
    baseline_co2e_g: float
    project_co2e_g: float
    leakage_co2e_g: float
    reduction_co2e_g: float
    """Never negative."""

    def __post_init__(self) -> None:
        _set_amounts(self, "reduction", *_REDUCTION_AMOUNTS)
        if self.credited_share > 1.0:
            raise ParameterError(f"reduction.credited_share must be in [0, 1], got {self.credited_share!r}")
        if not isinstance(self.grid_energy_method, GridEnergyMethod):
            raise ParameterError(f"reduction.grid_energy_method {self.grid_energy_method!r} is not a method")

    def to_json(self) -> dict[str, object]:
        fields: dict[str, object] = {name: getattr(self, name) for name in _REDUCTION_AMOUNTS}
        return fields | {"grid_energy_method": self.grid_energy_method.value}

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s object back; :class:`ParameterError` naming the field."""
        fields = json_object(value, "reduction", (*_REDUCTION_AMOUNTS, "grid_energy_method"))
        method = fields["grid_energy_method"]
        if not isinstance(method, str) or method not in tuple(GridEnergyMethod):
            known = ", ".join(GridEnergyMethod)
            raise ParameterError(f"reduction.grid_energy_method must be one of {known}, got {method!r}")
        amounts = {name: json_float(fields[name], f"reduction.{name}") for name in _REDUCTION_AMOUNTS}
        return cls(grid_energy_method=GridEnergyMethod(method), **amounts)


def _grid_energy(
    battery_wh: float, charges: Sequence[ChargeEnergy], efficiency: float
) -> tuple[float, GridEnergyMethod]:
    metered = [charge.grid_energy_wh for charge in charges]
    energy_in_wh = math.fsum(charge.energy_in_wh for charge in charges)
    if charges and energy_in_wh > 0.0 and energy_in_wh >= battery_wh and None not in metered:
        grid_wh = math.fsum(value for value in metered if value is not None)
        if grid_wh >= energy_in_wh:
            return battery_wh * grid_wh / energy_in_wh, GridEnergyMethod.METERED_CHARGE
    return battery_wh / efficiency, GridEnergyMethod.BATTERY_OVER_EFFICIENCY


def compute_reduction(trip: TripEnergy, charges: Sequence[ChargeEnergy], parameters: CreditParameters) -> Reduction:
    """The reduction of ``trip`` given the vehicle's ``charges`` before it (see the module docstring)."""
    battery_wh = max(0.0, trip.energy_out_wh - trip.energy_regen_wh)
    total_in_wh = math.fsum(charge.energy_in_wh for charge in charges)
    excluded_in_wh = math.fsum(charge.energy_in_wh for charge in charges if charge.excluded)
    share = min(1.0, max(0.0, 1.0 - excluded_in_wh / total_in_wh)) if total_in_wh > 0.0 else 1.0
    grid_wh, method = _grid_energy(battery_wh, charges, parameters.charging_efficiency.value)
    baseline = parameters.baseline_fuel_l_per_100km
    years = max(0, parameters.crediting_year - baseline.vintage)
    improvement = parameters.technology_improvement_per_year.value**years
    baseline_g = trip.distance_m / 1000.0 * baseline.value / 100.0 * parameters.fuel_co2_g_per_l.value * improvement
    project_g = grid_wh / 1000.0 * parameters.grid_co2_g_per_kwh.value / (1.0 - parameters.grid_loss_fraction.value)
    leakage_g = parameters.leakage_co2e_g.value
    return Reduction(
        battery_energy_wh=battery_wh,
        grid_energy_wh=grid_wh,
        grid_energy_method=method,
        credited_share=share,
        baseline_co2e_g=baseline_g,
        project_co2e_g=project_g,
        leakage_co2e_g=leakage_g,
        reduction_co2e_g=max(0.0, baseline_g - project_g - leakage_g) * share,
    )


def crediting_period(end_at: datetime) -> str:
    """The crediting period of a trip: ``YYYY-MM`` of the UTC month its ``end_at`` falls in."""
    if end_at.utcoffset() is None:
        raise ParameterError(f"end_at must be an aware datetime, got {end_at!r}")
    moment = end_at.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"
