"""docs/methodology.md stays true: its worked example recomputes, its parameter table is the file."""

import re
from dataclasses import fields
from datetime import datetime
from importlib import resources
from pathlib import Path

import pytest

from carbonlink.methodology import (
    ChargeEnergy,
    CreditParameters,
    Parameter,
    Reduction,
    TripEnergy,
    compute_reduction,
    crediting_period,
    parse_parameter_file,
    resolve_parameters,
)
from carbonlink.vehicles import VehicleClass

DOC = (Path(__file__).resolve().parent.parent / "docs" / "methodology.md").read_text(encoding="utf-8")
SHIPPED = parse_parameter_file(
    resources.files("carbonlink.methodology").joinpath("parameters.toml").read_text(encoding="utf-8")
)

_CODE = re.compile(r"`([^`]+)`")

Table = list[list[str]]


def section(title: str) -> str:
    """The text of the ``## title`` section, up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.MULTILINE | re.DOTALL)
    assert match is not None, f"docs/methodology.md has no section {title!r}"
    return match.group(1)


def tables(text: str) -> list[Table]:
    """Every Markdown table in ``text``, as rows of stripped cells (header row first, rule row dropped)."""
    found: list[Table] = []
    current: Table = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def table_with(header: str, text: str) -> Table:
    """The one table in ``text`` whose first header cell is ``header``."""
    matching = [table for table in tables(text) if table[0][0] == header]
    assert len(matching) == 1, f"expected one table headed {header!r}"
    return matching[0]


def keyed(table: Table) -> dict[str, list[str]]:
    """The table's body rows keyed by the code span in their first cell."""
    rows = {}
    for row in table[1:]:
        match = _CODE.fullmatch(row[0])
        assert match is not None, f"row {row[0]!r} does not start with a code span"
        rows[match.group(1)] = row[1:]
    return rows


def shown(cell: str) -> tuple[float, float]:
    """A displayed number and the rounding it was displayed with (half its last digit)."""
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    return float(cell), 0.5 * 10.0**-decimals


EXAMPLE = section("Worked example")
INPUTS = {key: row[0] for key, row in keyed(table_with("input", EXAMPLE)).items()}
CHARGES_TABLE = table_with("charge", EXAMPLE)
PARAMETERS_TABLE = keyed(table_with("parameter", EXAMPLE))
RESULTS = keyed(table_with("quantity", EXAMPLE))

END_AT = datetime.fromisoformat(INPUTS["end_at"])
RESOLVED = resolve_parameters(
    SHIPPED,
    vehicle_class=VehicleClass(INPUTS["vehicle_class"]),
    grid_region=INPUTS["grid_region"],
    year=END_AT.year,
)
TRIP = TripEnergy(
    distance_m=float(INPUTS["distance_m"]),
    energy_out_wh=float(INPUTS["energy_out_wh"]),
    energy_regen_wh=float(INPUTS["energy_regen_wh"]),
)


def example_charges() -> list[ChargeEnergy]:
    header = [_CODE.sub(r"\1", cell) for cell in CHARGES_TABLE[0]]
    charges = []
    for number, row in enumerate(CHARGES_TABLE[1:], start=1):
        cells = dict(zip(header, row, strict=True))
        assert cells["excluded"] in {"yes", "no"}
        charges.append(
            ChargeEnergy(
                record_hash=bytes([number]) * 32,
                energy_in_wh=float(cells["energy_in_wh"]),
                grid_energy_wh=float(cells["grid_energy_wh"]),
                excluded=cells["excluded"] == "yes",
            )
        )
    return charges


CASES = {"A": [], "B": example_charges()}


def test_the_example_names_its_crediting_period() -> None:
    """The example's period is the UTC month of its end, as the doc says."""
    assert END_AT.utcoffset() is not None
    prose = " ".join(EXAMPLE.split())
    assert f"crediting year {END_AT.year}, crediting period {crediting_period(END_AT)}" in prose


def test_the_example_has_an_excluded_charge() -> None:
    """Case B shows the exclusion rule at work."""
    assert any(charge.excluded for charge in CASES["B"])
    assert not all(charge.excluded for charge in CASES["B"])


def test_the_example_parameters_are_the_resolved_ones() -> None:
    """The doc's table of parameters is exactly what resolve_parameters picks from the shipped file."""
    roles = [field.name for field in fields(CreditParameters) if field.type in {Parameter, "Parameter"}]
    assert set(PARAMETERS_TABLE) == set(roles)
    for role, (name, vintage, value) in PARAMETERS_TABLE.items():
        parameter = getattr(RESOLVED, role)
        assert (parameter.name, parameter.vintage, parameter.value) == (name, int(vintage), float(value)), role


@pytest.mark.parametrize(("case", "column"), [("A", 1), ("B", 2)])
def test_the_worked_example_recomputes(case: str, column: int) -> None:
    """Every figure of the worked example is what compute_reduction gives, to the digits shown."""
    reduction = compute_reduction(TRIP, CASES[case], RESOLVED)
    assert set(RESULTS) == {field.name for field in fields(Reduction)}
    for name, row in RESULTS.items():
        computed = getattr(reduction, name)
        if name == "grid_energy_method":
            assert row[column] == computed.value, name
        else:
            value, tolerance = shown(row[column])
            assert abs(computed - value) <= tolerance + 1e-9, f"case {case}: {name} is {computed}, doc says {value}"


def test_the_parameter_table_lists_every_shipped_parameter() -> None:
    """Each shipped parameter (every vintage) appears in the doc with its vintage and value, and nothing else."""
    table = table_with("parameter", section("The parameter file"))
    listed = set()
    for row in table[1:]:
        match = _CODE.fullmatch(row[0])
        assert match is not None, row[0]
        listed.add((match.group(1), int(row[1]), float(row[2])))
    shipped = {(parameter.name, parameter.vintage, parameter.value) for parameter in SHIPPED.parameters.values()}
    assert listed == shipped


def test_the_doc_names_the_shipped_versions() -> None:
    """The doc states the methodology and parameters versions of the shipped file."""
    assert f"`{SHIPPED.methodology_version}`" in DOC
    assert f"`{SHIPPED.parameters_version}`" in DOC
