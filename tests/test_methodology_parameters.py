"""The parameter file and the parameters a credit stores: parsing, validation, vintages, JSON."""

import json
import math
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.errors import CarbonlinkError
from carbonlink.methodology import (
    BASELINE_CLASSES,
    CreditParameters,
    Parameter,
    ParameterError,
    ParameterSet,
    parse_parameter_file,
    resolve_parameters,
)
from carbonlink.vehicles import VehicleClass

SHIPPED_TEXT = resources.files("carbonlink.methodology").joinpath("parameters.toml").read_text(encoding="utf-8")
SHIPPED = parse_parameter_file(SHIPPED_TEXT)

Entry = dict[str, Any]


def entry(name: str, value: float, vintage: int = 2022, unit: str = "u") -> Entry:
    return {"name": name, "value": value, "unit": unit, "source": "a test", "vintage": vintage, "note": "why"}


def minimal_entries() -> list[Entry]:
    return [
        entry("fuel.gasoline.co2_g_per_l", 2347.697, 2011),
        entry("fuel.diesel.co2_g_per_l", 2689.271, 2011),
        entry("baseline.compact.gasoline.l_per_100km", 7.0),
        entry("baseline.suv.gasoline.l_per_100km", 9.0),
        entry("baseline.van.diesel.l_per_100km", 8.0),
        entry("baseline.bus.diesel.l_per_100km", 30.0, 2019),
        entry("technology_improvement.factor_per_year", 0.99),
        entry("grid.cn.co2_g_per_kwh", 556.8, 2021),
        entry("grid.cn.co2_g_per_kwh", 536.6, 2022),
        entry("grid.cn.loss_fraction", 0.05, 2014),
        entry("charging.efficiency", 0.758),
        entry("leakage.co2e_g", 0.0),
    ]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def toml_text(entries: list[Entry], **top: object) -> str:
    header = {"methodology_version": "carbonlink-ev/1.0", "parameters_version": "test.1"} | top
    lines = [f"{key} = {_toml_value(value)}" for key, value in header.items() if value is not None]
    for item in entries:
        lines.append("\n[[parameter]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in item.items())
    return "\n".join(lines) + "\n"


def edited(index: int, **changes: object) -> list[Entry]:
    entries = minimal_entries()
    entries[index] = entries[index] | changes
    return entries


def test_the_minimal_file_parses() -> None:
    """The test's own minimal file is valid, so each error below comes from its one change."""
    parameter_set = parse_parameter_file(toml_text(minimal_entries()))
    assert parameter_set.parameters_version == "test.1"
    assert len(parameter_set.parameters) == len(minimal_entries())


def test_the_shipped_file_parses_with_its_versions() -> None:
    """The shipped parameter file is valid and names both versions."""
    assert SHIPPED.methodology_version == "carbonlink-ev/1.0"
    assert SHIPPED.parameters_version == "2026.1"
    assert set(SHIPPED.grid_regions) >= {"cn", "cn-north", "cn-east", "cn-south", "eu-27", "us"}


def test_every_shipped_parameter_has_unit_source_and_note() -> None:
    """No shipped value comes without a unit, a source with a URL and a note saying why."""
    for parameter in SHIPPED.parameters.values():
        assert parameter.unit.strip()
        assert "http" in parameter.source or parameter.name == "leakage.co2e_g", parameter.name
        assert len(parameter.note) > 20, parameter.name


@pytest.mark.parametrize("region", SHIPPED.grid_regions)
@pytest.mark.parametrize("vehicle_class", list(VehicleClass))
@pytest.mark.parametrize("year", [2010, 2021, 2022, 2026, 2040])
def test_every_class_and_region_resolves(vehicle_class: VehicleClass, region: str, year: int) -> None:
    """Every class, including unspecified, resolves in every region for any year, in range."""
    resolved = resolve_parameters(SHIPPED, vehicle_class=vehicle_class, grid_region=region, year=year)
    assert resolved.vehicle_class == vehicle_class.value
    assert resolved.grid_region == region
    assert resolved.crediting_year == year
    assert resolved.grid_co2_g_per_kwh.name == f"grid.{region}.co2_g_per_kwh"
    assert 0.0 < resolved.charging_efficiency.value <= 1.0
    assert 0.0 <= resolved.grid_loss_fraction.value < 1.0


def _per_km(resolved: CreditParameters) -> float:
    baseline = resolved.baseline_fuel_l_per_100km
    years = max(0, resolved.crediting_year - baseline.vintage)
    return baseline.value * resolved.fuel_co2_g_per_l.value * resolved.technology_improvement_per_year.value**years


@pytest.mark.parametrize("year", [2015, 2022, 2030])
def test_unspecified_takes_the_lowest_baseline_of_all_classes(year: int) -> None:
    """A vehicle without a class is credited against the lowest baseline (g CO2/km) of any class."""
    unspecified = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.UNSPECIFIED, grid_region="us", year=year)
    others = [resolve_parameters(SHIPPED, vehicle_class=c, grid_region="us", year=year) for c in BASELINE_CLASSES]
    assert _per_km(unspecified) == min(_per_km(other) for other in others)
    bus = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.BUS, grid_region="us", year=year)
    assert _per_km(unspecified) < _per_km(bus)


def test_a_class_with_several_fuels_takes_its_lowest_baseline() -> None:
    """Where a class has baselines for two fuels, the lower one (g CO2/km) is used."""
    entries = [*minimal_entries(), entry("baseline.compact.diesel.l_per_100km", 5.0)]
    resolved = resolve_parameters(
        parse_parameter_file(toml_text(entries)), vehicle_class=VehicleClass.COMPACT, grid_region="cn", year=2024
    )
    assert resolved.baseline_fuel_l_per_100km.name == "baseline.compact.diesel.l_per_100km"
    assert resolved.fuel_co2_g_per_l.name == "fuel.diesel.co2_g_per_l"


@pytest.mark.parametrize(
    ("region", "year", "expected_vintage"),
    [
        ("cn", 2019, 2021),  # before every vintage: the oldest
        ("cn", 2021, 2021),
        ("cn", 2022, 2022),
        ("cn", 2035, 2022),  # after every vintage: the newest
        ("us", 2020, 2021),
        ("us", 2022, 2022),
        ("us", 2023, 2023),
        ("us", 2026, 2023),
    ],
)
def test_the_newest_vintage_not_after_the_year_is_picked_else_the_oldest(
    region: str, year: int, expected_vintage: int
) -> None:
    """A trip uses the newest published value up to its crediting year; before the first, the oldest."""
    resolved = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region=region, year=year)
    assert resolved.grid_co2_g_per_kwh.vintage == expected_vintage
    assert resolved.grid_co2_g_per_kwh in SHIPPED.vintages(f"grid.{region}.co2_g_per_kwh")


def test_the_shipped_china_factor_of_2022_is_the_published_one() -> None:
    """China's national factor for 2022 is MEE/NBS's 0.5366 kg CO2/kWh."""
    resolved = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region="cn", year=2026)
    assert resolved.grid_co2_g_per_kwh.value == 536.6
    assert resolved.fuel_co2_g_per_l.value == pytest.approx(8887 / 3.785411784, abs=0.001)


def test_an_unknown_region_is_refused_naming_it() -> None:
    """A region the file has no factor for is a ParameterError naming the region."""
    with pytest.raises(ParameterError, match="unknown grid region 'mars'"):
        resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region="mars", year=2026)


def test_an_unknown_class_is_refused_naming_it() -> None:
    """A vehicle class that is not one of VehicleClass is a ParameterError naming it."""
    with pytest.raises(ParameterError, match="unknown vehicle class 'tractor'"):
        resolve_parameters(SHIPPED, vehicle_class="tractor", grid_region="cn", year=2026)  # type: ignore[arg-type]


def test_parameter_error_is_a_carbonlink_value_error() -> None:
    """ParameterError is caught both as the package's error and as ValueError."""
    assert issubclass(ParameterError, CarbonlinkError)
    assert issubclass(ParameterError, ValueError)


def _without(index: int, key: str) -> list[Entry]:
    entries = minimal_entries()
    del entries[index][key]
    return entries


FILE_ERRORS: list[tuple[str, Callable[[], str], str]] = [
    ("not TOML", lambda: "methodology_version = \n", "not valid TOML"),
    ("unknown top key", lambda: toml_text(minimal_entries(), extra=1), "unknown key.*extra"),
    ("missing version", lambda: toml_text(minimal_entries(), parameters_version=None), "parameters_version"),
    ("empty version", lambda: toml_text(minimal_entries(), methodology_version=" "), "methodology_version"),
    ("no parameters", lambda: toml_text([]), "key parameter is missing"),
    ("missing value", lambda: toml_text(_without(0, "value")), r"parameter\[0\] \(fuel.gasoline.co2_g_per_l\).*value"),
    ("missing source", lambda: toml_text(_without(3, "source")), r"baseline.suv.gasoline.l_per_100km.*source"),
    ("missing name", lambda: toml_text(_without(2, "name")), r"parameter\[2\]: key name is missing"),
    ("text value", lambda: toml_text(edited(0, value="2347")), r"fuel.gasoline.co2_g_per_l.*value must be a number"),
    ("bool value", lambda: toml_text(edited(0, value=True)), r"value must be a number"),
    ("nan value", lambda: toml_text(edited(7, value=math.nan)), r"grid.cn.co2_g_per_kwh.*finite"),
    ("infinite value", lambda: toml_text(edited(2, value=math.inf)), r"baseline.compact.*finite"),
    ("negative value", lambda: toml_text(edited(2, value=-7.0)), r"baseline.compact.*≥ 0"),
    ("text vintage", lambda: toml_text(edited(0, vintage="2011")), r"fuel.gasoline.*vintage must be a year"),
    ("float vintage", lambda: toml_text(edited(0, vintage=2011.0)), r"vintage must be a year"),
    ("empty unit", lambda: toml_text(edited(0, unit="")), r"fuel.gasoline.co2_g_per_l: unit"),
    ("number note", lambda: toml_text(edited(0, note=3)), r"note must be text"),
    ("unknown field", lambda: toml_text(edited(0, colour="red")), r"fuel.gasoline.*unknown key.*colour"),
    ("zero efficiency", lambda: toml_text(edited(10, value=0.0)), r"charging.efficiency@2022.*\(0, 1\]"),
    ("efficiency above 1", lambda: toml_text(edited(10, value=1.2)), r"charging.efficiency@2022.*\(0, 1\]"),
    ("improvement above 1", lambda: toml_text(edited(6, value=1.01)), r"technology_improvement.*\(0, 1\]"),
    ("loss of 1", lambda: toml_text(edited(9, value=1.0)), r"grid.cn.loss_fraction@2014.*\[0, 1\)"),
    ("misspelt name", lambda: toml_text(edited(10, name="charging.eficiency")), "unknown parameter name"),
    ("unknown class", lambda: toml_text(edited(3, name="baseline.truck.gasoline.l_per_100km")), "vehicle class"),
    ("unspecified class", lambda: toml_text(edited(3, name="baseline.unspecified.gasoline.l_per_100km")), "class"),
    ("class missing", lambda: toml_text(minimal_entries()[:5] + minimal_entries()[6:]), r"baseline.bus.<fuel>"),
    ("fuel missing", lambda: toml_text(minimal_entries()[1:]), r"fuel.gasoline.co2_g_per_l is missing"),
    ("loss missing", lambda: toml_text(minimal_entries()[:9] + minimal_entries()[10:]), r"grid.cn.loss_fraction"),
    ("factor missing", lambda: toml_text([*minimal_entries(), entry("grid.us.loss_fraction", 0.05)]), r"grid.us.co2"),
    ("leakage missing", lambda: toml_text(minimal_entries()[:-1]), r"leakage.co2e_g is missing"),
    ("duplicate vintage", lambda: toml_text([*minimal_entries(), entry("charging.efficiency", 0.8)]), "twice"),
    ("bad region name", lambda: toml_text(edited(7, name="grid.CN.co2_g_per_kwh")), "unknown parameter name"),
]


@pytest.mark.parametrize(("case", "text", "message"), FILE_ERRORS, ids=[case for case, _, _ in FILE_ERRORS])
def test_a_bad_parameter_file_is_refused_naming_the_key(case: str, text: Callable[[], str], message: str) -> None:
    """Every way a parameter file can be wrong is a ParameterError whose message names what is wrong."""
    with pytest.raises(ParameterError, match=message):
        parse_parameter_file(text())
    assert case


def test_a_parameter_set_keyed_wrongly_is_refused() -> None:
    """A hand-built ParameterSet must key each parameter <name>@<vintage>."""
    parameters = dict(SHIPPED.parameters)
    key = "charging.efficiency@2022"
    parameters["charging.efficiency"] = parameters.pop(key)
    with pytest.raises(ParameterError, match="keyed <name>@<vintage>"):
        ParameterSet(methodology_version="m", parameters_version="p", parameters=parameters)


def test_a_parameter_set_cannot_be_changed_through_its_mapping() -> None:
    """The set's mapping is read-only: a resolved credit cannot be changed behind its back."""
    with pytest.raises(TypeError):
        SHIPPED.parameters["x"] = SHIPPED.parameters["charging.efficiency@2022"]  # type: ignore[index]


names = st.sampled_from(["fuel.gasoline.co2_g_per_l", "grid.cn-east.co2_g_per_kwh", "leakage.co2e_g"])
text = st.text(min_size=1).filter(str.strip)
parameters = st.builds(
    Parameter,
    name=names,
    value=st.floats(min_value=0.0, max_value=1e12, allow_nan=False),
    unit=text,
    source=text,
    vintage=st.integers(min_value=1, max_value=9999),
    note=st.text(),
)


@given(parameters)
def test_a_parameter_round_trips_through_json_exactly(parameter: Parameter) -> None:
    """to_json → JSON text → from_json gives the same parameter, float for float."""
    text_form = json.dumps(parameter.to_json(), allow_nan=False)
    assert Parameter.from_json(json.loads(text_form)) == parameter


def _credit_parameters(values: list[float]) -> CreditParameters:
    resolved = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.VAN, grid_region="cn-east", year=2026)
    fields = [
        "baseline_fuel_l_per_100km",
        "fuel_co2_g_per_l",
        "grid_co2_g_per_kwh",
        "leakage_co2e_g",
    ]
    changes = {
        field: replace(getattr(resolved, field), value=value) for field, value in zip(fields, values, strict=True)
    }
    return replace(resolved, **changes)


@given(st.lists(st.floats(min_value=0.0, max_value=1e9, allow_nan=False), min_size=4, max_size=4))
def test_credit_parameters_round_trip_through_json_exactly(values: list[float]) -> None:
    """A credit's stored parameters read back from JSON text equal what was stored."""
    stored = _credit_parameters(values)
    text_form = json.dumps(stored.to_json(), sort_keys=True, allow_nan=False)
    assert CreditParameters.from_json(json.loads(text_form)) == stored


def _stored() -> dict[str, Any]:
    resolved = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region="cn", year=2026)
    stored: dict[str, Any] = json.loads(json.dumps(resolved.to_json()))
    return stored


def _set(path: list[str], value: object) -> dict[str, Any]:
    stored = _stored()
    target = stored
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return stored


def _swapped() -> dict[str, Any]:
    stored = _stored()
    stored["charging_efficiency"], stored["technology_improvement_per_year"] = (
        stored["technology_improvement_per_year"],
        stored["charging_efficiency"],
    )
    return stored


def _dropped(key: str) -> dict[str, Any]:
    stored = _stored()
    del stored[key]
    return stored


JSON_ERRORS: list[tuple[str, Callable[[], object], str]] = [
    ("not an object", list, "must be a JSON object"),
    ("missing field", lambda: _dropped("grid_region"), "lacks fields: grid_region"),
    ("unknown field", lambda: _stored() | {"extra": 1}, "unknown fields: extra"),
    ("int value", lambda: _set(["grid_co2_g_per_kwh", "value"], 536), r"grid_co2_g_per_kwh: .*decimal point"),
    ("bool year", lambda: _set(["crediting_year"], value=True), "crediting_year must be a year"),
    ("unknown class", lambda: _set(["vehicle_class"], "tractor"), "vehicle_class 'tractor'"),
    ("bad region", lambda: _set(["grid_region"], "CN"), "grid_region 'CN'"),
    ("swapped roles", _swapped, "parameter .charging.efficiency. does not hold that value"),
    ("efficiency above 1", lambda: _set(["charging_efficiency", "value"], 1.5), r"\(0, 1\]"),
    ("negative", lambda: _set(["leakage_co2e_g", "value"], -1.0), "≥ 0"),
    ("parameter field", lambda: _set(["fuel_co2_g_per_l", "unit"], 3), "fuel_co2_g_per_l: .*unit"),
]


@pytest.mark.parametrize(("case", "value", "message"), JSON_ERRORS, ids=[case for case, _, _ in JSON_ERRORS])
def test_stored_parameters_that_break_the_rules_are_refused(
    case: str, value: Callable[[], object], message: str
) -> None:
    """Reading a credit's parameters back refuses any field missing, mistyped or out of range, naming it."""
    with pytest.raises(ParameterError, match=message):
        CreditParameters.from_json(value())
    assert case
