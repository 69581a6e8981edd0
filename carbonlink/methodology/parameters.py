"""The methodology's parameters: the versioned parameter file, and the exact values one credit used.

The parameter file (``parameters.toml``, package data) is a list of ``[[parameter]]`` tables, each
with a dotted ``name``, ``value``, ``unit``, ``source``, ``vintage`` (the year the value describes)
and ``note``. A name may appear once per vintage. The names a file may hold::

    fuel.<fuel>.co2_g_per_l                   CO2 of burning one litre of the fuel
    baseline.<class>.<fuel>.l_per_100km       reference ICE fuel use of a vehicle class
    technology_improvement.factor_per_year    IR: the baseline's yearly improvement (≤ 1)
    grid.<region>.co2_g_per_kwh               grid emission factor of a region
    grid.<region>.loss_fraction               T&D losses to add to it (0 if consumption-side)
    charging.efficiency                       battery energy ÷ grid energy when nothing is metered
    leakage.co2e_g                            leakage per credited trip

:func:`resolve_parameters` picks, for one trip, the newest vintage of each parameter that is not
after the crediting year (else the oldest) and returns them as :class:`CreditParameters`, which a
credit stores whole: recomputing a credit never needs the parameter file again.
"""

import math
import re
import tomllib
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

from carbonlink.methodology.errors import ParameterError
from carbonlink.strict_json import decimal_float, exact_fields
from carbonlink.vehicles import VehicleClass

BASELINE_CLASSES = (VehicleClass.COMPACT, VehicleClass.SUV, VehicleClass.VAN, VehicleClass.BUS)
"""The classes with a baseline of their own; ``unspecified`` takes the lowest of theirs."""

TECHNOLOGY_IMPROVEMENT = "technology_improvement.factor_per_year"
CHARGING_EFFICIENCY = "charging.efficiency"
LEAKAGE = "leakage.co2e_g"

_WORD = r"[a-z0-9_]+"
_REGION = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_FUEL_FACTOR = re.compile(rf"fuel\.(?P<fuel>{_WORD})\.co2_g_per_l")
_BASELINE = re.compile(rf"baseline\.(?P<vehicle_class>{_WORD})\.(?P<fuel>{_WORD})\.l_per_100km")
_GRID_FACTOR = re.compile(rf"grid\.(?P<region>{_REGION})\.co2_g_per_kwh")
_GRID_LOSS = re.compile(rf"grid\.(?P<region>{_REGION})\.loss_fraction")
_SINGLE = (TECHNOLOGY_IMPROVEMENT, CHARGING_EFFICIENCY, LEAKAGE)

_PARAMETER_FIELDS = ("name", "value", "unit", "source", "vintage", "note")
_FILE_KEYS = ("methodology_version", "parameters_version", "parameter")


def json_object(value: object, where: str, names: Sequence[str]) -> Mapping[str, object]:
    """``value`` as a JSON object with exactly the fields ``names``, else :class:`ParameterError`."""
    return exact_fields(value, where, names, ParameterError)


def json_float(value: object, where: str) -> float:
    """A JSON number with a decimal point (one spelling, so one hash), else :class:`ParameterError`."""
    return decimal_float(value, where, ParameterError)


def amount(value: object, where: str) -> float:
    """``value`` as a finite float ≥ 0 (an int is taken, a bool is not), else :class:`ParameterError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ParameterError(f"{where} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{where} must be non-empty text, got {value!r}")
    return value


def _year(value: object, where: str) -> int:
    # ``type(...) is int``: a bool must not pass for a year.
    if type(value) is not int or value < 1:
        raise ParameterError(f"{where} must be a year (a positive integer), got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """One published value with its unit, source and the year it describes."""

    name: str
    """Dotted, e.g. ``fuel.gasoline.co2_g_per_l`` (see the module docstring for the names)."""
    value: float
    unit: str
    source: str
    """Publisher, document, table and year; the URL where known."""
    vintage: int
    """The year the value describes."""
    note: str = ""
    """Why this value, and which conservative choice it is."""

    def __post_init__(self) -> None:
        _text(self.name, "parameter name")
        where = f"parameter {self.name}"
        object.__setattr__(self, "value", amount(self.value, f"{where}: value"))
        _text(self.unit, f"{where}: unit")
        _text(self.source, f"{where}: source")
        _year(self.vintage, f"{where}: vintage")
        if not isinstance(self.note, str):
            raise ParameterError(f"{where}: note must be text, got {self.note!r}")

    @property
    def key(self) -> str:
        """How a :class:`ParameterSet` keys it: ``<name>@<vintage>``."""
        return f"{self.name}@{self.vintage}"

    def to_json(self) -> dict[str, object]:
        return {field: getattr(self, field) for field in _PARAMETER_FIELDS}

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s object back; :class:`ParameterError` naming the field."""
        fields = json_object(value, "parameter", _PARAMETER_FIELDS)
        name = _text(fields["name"], "parameter name")
        where = f"parameter {name}"
        note = fields["note"]
        if not isinstance(note, str):
            raise ParameterError(f"{where}: note must be text, got {note!r}")
        return cls(
            name=name,
            value=json_float(fields["value"], f"{where}: value"),
            unit=_text(fields["unit"], f"{where}: unit"),
            source=_text(fields["source"], f"{where}: source"),
            vintage=_year(fields["vintage"], f"{where}: vintage"),
            note=note,
        )


def _check_role(parameter: Parameter, role: str) -> None:
    """Ranges beyond ≥ 0 for the parameters that are factors or fractions."""
    value = parameter.value
    if role in {TECHNOLOGY_IMPROVEMENT, CHARGING_EFFICIENCY} and not 0.0 < value <= 1.0:
        raise ParameterError(f"parameter {parameter.key}: value must be in (0, 1], got {value!r}")
    if role == "loss" and not value < 1.0:
        raise ParameterError(f"parameter {parameter.key}: value must be in [0, 1), got {value!r}")


def _role(name: str) -> str:
    """The kind of a parameter name; :class:`ParameterError` for a name the methodology does not use."""
    if name in _SINGLE:
        return name
    for role, pattern in (("fuel", _FUEL_FACTOR), ("baseline", _BASELINE), ("grid", _GRID_FACTOR)):
        if pattern.fullmatch(name):
            return role
    if _GRID_LOSS.fullmatch(name):
        return "loss"
    raise ParameterError(f"unknown parameter name {name!r} (a misspelt name is never ignored)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterSet:
    """A whole parameter file: every vintage of every parameter, checked complete and in range."""

    methodology_version: str
    """The rules' version, e.g. ``carbonlink-ev/1.0``."""
    parameters_version: str
    """The values' version, e.g. ``2026.1``."""
    parameters: Mapping[str, Parameter]
    """Keyed ``<name>@<vintage>`` (:attr:`Parameter.key`)."""

    def __post_init__(self) -> None:
        _text(self.methodology_version, "methodology_version")
        _text(self.parameters_version, "parameters_version")
        object.__setattr__(self, "parameters", types.MappingProxyType(dict(self.parameters)))
        entries: Mapping[str, object] = self.parameters  # checked: a caller may pass anything
        for key, parameter in entries.items():
            if not isinstance(parameter, Parameter) or parameter.key != key:
                raise ParameterError(f"parameters[{key!r}] must be a Parameter keyed <name>@<vintage>")
            _check_role(parameter, _role(parameter.name))
        self._check_complete()

    def _check_complete(self) -> None:
        names = {parameter.name for parameter in self.parameters.values()}
        for name in _SINGLE:
            if name not in names:
                raise ParameterError(f"parameter {name} is missing")
        baselines = _matches(names, _BASELINE)
        for name, match in baselines.items():
            if match["vehicle_class"] not in BASELINE_CLASSES:
                known = ", ".join(BASELINE_CLASSES)
                raise ParameterError(f"parameter {name}: vehicle class must be one of {known}")
            if f"fuel.{match['fuel']}.co2_g_per_l" not in names:
                raise ParameterError(f"parameter {name}: fuel.{match['fuel']}.co2_g_per_l is missing")
        for vehicle_class in BASELINE_CLASSES:
            if not any(match["vehicle_class"] == vehicle_class for match in baselines.values()):
                raise ParameterError(f"parameter baseline.{vehicle_class}.<fuel>.l_per_100km is missing")
        factors = {match["region"] for match in _matches(names, _GRID_FACTOR).values()}
        losses = {match["region"] for match in _matches(names, _GRID_LOSS).values()}
        for region in sorted(factors ^ losses):
            kind = "loss_fraction" if region in factors else "co2_g_per_kwh"
            raise ParameterError(f"parameter grid.{region}.{kind} is missing (factor and loss go together)")

    def vintages(self, name: str) -> tuple[Parameter, ...]:
        """Every vintage of the parameter ``name``, oldest first (empty when there is none)."""
        found = [parameter for parameter in self.parameters.values() if parameter.name == name]
        return tuple(sorted(found, key=lambda parameter: parameter.vintage))

    @property
    def grid_regions(self) -> tuple[str, ...]:
        """The regions with a grid emission factor, sorted."""
        names = {parameter.name for parameter in self.parameters.values()}
        return tuple(sorted({match["region"] for match in _matches(names, _GRID_FACTOR).values()}))


def _matches(names: set[str], pattern: re.Pattern[str]) -> dict[str, re.Match[str]]:
    return {name: match for name in sorted(names) if (match := pattern.fullmatch(name))}


def parse_parameter_file(text: str) -> ParameterSet:
    """The parameter set a parameter file's text holds; :class:`ParameterError` naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ParameterError(f"not valid TOML: {err}") from err
    unknown = sorted(set(raw) - set(_FILE_KEYS))
    if unknown:
        raise ParameterError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_FILE_KEYS)}")
    for key in _FILE_KEYS:
        if key not in raw:
            raise ParameterError(f"key {key} is missing")
    entries = raw["parameter"]
    if not isinstance(entries, list) or not entries:
        raise ParameterError("parameter must be an array of tables ([[parameter]])")
    parameters: dict[str, Parameter] = {}
    for index, entry in enumerate(entries):
        parameter = _parameter_from_table(entry, index)
        if parameter.key in parameters:
            raise ParameterError(f"parameter[{index}]: {parameter.name} vintage {parameter.vintage} appears twice")
        parameters[parameter.key] = parameter
    return ParameterSet(
        methodology_version=_text(raw["methodology_version"], "methodology_version"),
        parameters_version=_text(raw["parameters_version"], "parameters_version"),
        parameters=parameters,
    )


def _parameter_from_table(entry: object, index: int) -> Parameter:
    where = f"parameter[{index}]"
    if not isinstance(entry, dict):
        raise ParameterError(f"{where} must be a table")
    if isinstance(entry.get("name"), str):
        where = f"{where} ({entry['name']})"
    unknown = sorted(set(entry) - set(_PARAMETER_FIELDS))
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in _PARAMETER_FIELDS[:-1]:  # note is optional
        if key not in entry:
            raise ParameterError(f"{where}: key {key} is missing")
    for key in ("name", "unit", "source", "note"):
        if key in entry and not isinstance(entry[key], str):
            raise ParameterError(f"{where}: {key} must be text, got {entry[key]!r}")
    return Parameter(
        name=entry["name"],
        value=amount(entry["value"], f"{where}: value"),
        unit=entry["unit"],
        source=entry["source"],
        vintage=_year(entry["vintage"], f"{where}: vintage"),
        note=entry.get("note", ""),
    )


_ROLES: Mapping[str, tuple[str, Callable[[str], object]]] = {
    "baseline_fuel_l_per_100km": ("baseline", _BASELINE.fullmatch),
    "fuel_co2_g_per_l": ("fuel", _FUEL_FACTOR.fullmatch),
    "technology_improvement_per_year": (TECHNOLOGY_IMPROVEMENT, TECHNOLOGY_IMPROVEMENT.__eq__),
    "grid_co2_g_per_kwh": ("grid", _GRID_FACTOR.fullmatch),
    "grid_loss_fraction": ("loss", _GRID_LOSS.fullmatch),
    "charging_efficiency": (CHARGING_EFFICIENCY, CHARGING_EFFICIENCY.__eq__),
    "leakage_co2e_g": (LEAKAGE, LEAKAGE.__eq__),
}
_CREDIT_FIELDS = ("methodology_version", "parameters_version", "vehicle_class", "grid_region", "crediting_year")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditParameters:
    """The exact parameters one credit used: stored with the credit, enough to recompute it."""

    methodology_version: str
    parameters_version: str
    vehicle_class: str
    """A :class:`~carbonlink.vehicles.VehicleClass` value."""
    grid_region: str
    """e.g. ``cn``, ``cn-east``, ``eu-27``, ``us``."""
    crediting_year: int
    """The year of the trip's ``end_at`` (UTC)."""
    baseline_fuel_l_per_100km: Parameter
    """Reference ICE of the class; its vintage is the baseline year."""
    fuel_co2_g_per_l: Parameter
    """Of the baseline's fuel."""
    technology_improvement_per_year: Parameter
    grid_co2_g_per_kwh: Parameter
    grid_loss_fraction: Parameter
    charging_efficiency: Parameter
    leakage_co2e_g: Parameter

    def __post_init__(self) -> None:
        _text(self.methodology_version, "methodology_version")
        _text(self.parameters_version, "parameters_version")
        if self.vehicle_class not in tuple(VehicleClass):
            raise ParameterError(f"vehicle_class {self.vehicle_class!r} is not a vehicle class")
        region: object = self.grid_region  # checked: from_json passes what the JSON held
        if not isinstance(region, str) or re.fullmatch(_REGION, region) is None:
            raise ParameterError(f"grid_region {self.grid_region!r} is not a region name")
        _year(self.crediting_year, "crediting_year")
        for field, (role, fits) in _ROLES.items():
            parameter = getattr(self, field)
            if not isinstance(parameter, Parameter):
                raise ParameterError(f"{field} must be a Parameter, got {type(parameter).__name__}")
            if not fits(parameter.name):
                raise ParameterError(f"{field}: parameter {parameter.name!r} does not hold that value")
            _check_role(parameter, role)

    def to_json(self) -> dict[str, object]:
        plain: dict[str, object] = {field: getattr(self, field) for field in _CREDIT_FIELDS}
        return plain | {field: getattr(self, field).to_json() for field in _ROLES}

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Read :meth:`to_json`'s object back; :class:`ParameterError` naming the field."""
        fields = json_object(value, "parameters", (*_CREDIT_FIELDS, *_ROLES))

        def parameter(field: str) -> Parameter:
            try:
                return Parameter.from_json(fields[field])
            except ParameterError as err:
                raise ParameterError(f"{field}: {err}") from err

        return cls(
            methodology_version=_text(fields["methodology_version"], "methodology_version"),
            parameters_version=_text(fields["parameters_version"], "parameters_version"),
            vehicle_class=_text(fields["vehicle_class"], "vehicle_class"),
            grid_region=_text(fields["grid_region"], "grid_region"),
            crediting_year=_year(fields["crediting_year"], "crediting_year"),
            baseline_fuel_l_per_100km=parameter("baseline_fuel_l_per_100km"),
            fuel_co2_g_per_l=parameter("fuel_co2_g_per_l"),
            technology_improvement_per_year=parameter("technology_improvement_per_year"),
            grid_co2_g_per_kwh=parameter("grid_co2_g_per_kwh"),
            grid_loss_fraction=parameter("grid_loss_fraction"),
            charging_efficiency=parameter("charging_efficiency"),
            leakage_co2e_g=parameter("leakage_co2e_g"),
        )


def _pick(parameter_set: ParameterSet, name: str, year: int) -> Parameter:
    """The newest vintage not after ``year``, else the oldest (a year before any published value)."""
    vintages = parameter_set.vintages(name)
    if not vintages:
        raise ParameterError(f"parameter {name} is missing")
    usable = [parameter for parameter in vintages if parameter.vintage <= year]
    return usable[-1] if usable else vintages[0]


def resolve_parameters(
    parameter_set: ParameterSet, *, vehicle_class: VehicleClass, grid_region: str, year: int
) -> CreditParameters:
    """The parameters a trip of ``vehicle_class`` charged in ``grid_region`` ending in ``year`` uses.

    ``unspecified`` gets the lowest baseline (g CO2 per km in ``year``) of all classes, and a class
    with baselines for several fuels the lowest of those: the conservative choice.
    :class:`ParameterError` for an unknown class or region.
    """
    try:
        chosen_class = VehicleClass(vehicle_class)
    except ValueError as err:
        raise ParameterError(f"unknown vehicle class {vehicle_class!r}") from err
    _year(year, "year")
    if grid_region not in parameter_set.grid_regions:
        known = ", ".join(parameter_set.grid_regions)
        raise ParameterError(f"unknown grid region {grid_region!r}; the parameter file has {known}")
    improvement = _pick(parameter_set, TECHNOLOGY_IMPROVEMENT, year)
    classes = BASELINE_CLASSES if chosen_class is VehicleClass.UNSPECIFIED else (chosen_class,)
    names = {parameter.name for parameter in parameter_set.parameters.values()}
    options = []
    for name, match in _matches(names, _BASELINE).items():
        if match["vehicle_class"] in classes:
            baseline = _pick(parameter_set, name, year)
            fuel = _pick(parameter_set, f"fuel.{match['fuel']}.co2_g_per_l", year)
            per_km = baseline.value * fuel.value * improvement.value ** max(0, year - baseline.vintage)
            options.append((per_km, name, baseline, fuel))
    if not options:
        raise ParameterError(f"no baseline for vehicle class {chosen_class.value}")
    _, _, baseline, fuel = min(options, key=lambda option: (option[0], option[1]))
    return CreditParameters(
        methodology_version=parameter_set.methodology_version,
        parameters_version=parameter_set.parameters_version,
        vehicle_class=chosen_class.value,
        grid_region=grid_region,
        crediting_year=year,
        baseline_fuel_l_per_100km=baseline,
        fuel_co2_g_per_l=fuel,
        technology_improvement_per_year=improvement,
        grid_co2_g_per_kwh=_pick(parameter_set, f"grid.{grid_region}.co2_g_per_kwh", year),
        grid_loss_fraction=_pick(parameter_set, f"grid.{grid_region}.loss_fraction", year),
        charging_efficiency=_pick(parameter_set, CHARGING_EFFICIENCY, year),
        leakage_co2e_g=_pick(parameter_set, LEAKAGE, year),
    )
