"""The charger model: a simplified CC-CV power curve over SOC and the grid side of its losses."""

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink import records
from simulator.errors import ParameterError
from simulator.physics.charger import ChargerKind, ChargerParams, charge_power_w, grid_power_w

DC = ChargerParams(
    kind=ChargerKind.DC,
    max_power_w=100_000.0,
    efficiency=0.93,
    taper_start_soc_pct=60.0,
    min_taper_power_w=20_000.0,
)
AC = ChargerParams(
    kind=ChargerKind.AC,
    max_power_w=9_800.0,
    efficiency=0.89,
    taper_start_soc_pct=90.0,
    min_taper_power_w=2_000.0,
)

soc_values = st.floats(min_value=0.0, max_value=100.0)


def test_the_charger_kind_is_the_records_one() -> None:
    """The simulator and the signed records speak of the same AC/DC kinds."""
    assert ChargerKind is records.ChargerKind


def test_charger_params_are_frozen() -> None:
    """Parameters cannot change after construction."""
    with pytest.raises(FrozenInstanceError):
        DC.max_power_w = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("soc_pct", [0.0, 20.0, 59.9, 60.0])
def test_power_is_constant_up_to_the_taper_start(soc_pct: float) -> None:
    """In the constant-current phase the battery gets the charger's full power."""
    assert charge_power_w(DC, soc_pct) == 100_000.0


def test_power_falls_linearly_to_the_minimum_at_full() -> None:
    """Past the taper start the power falls in a straight line to the minimum at 100 %."""
    assert charge_power_w(DC, 80.0) == pytest.approx(60_000.0)
    assert charge_power_w(DC, 90.0) == pytest.approx(40_000.0)
    assert charge_power_w(DC, 100.0) == 20_000.0
    assert charge_power_w(AC, 95.0) == pytest.approx(5_900.0)


@given(low=soc_values, high=soc_values)
def test_power_never_rises_with_soc(low: float, high: float) -> None:
    """A fuller battery never takes more power, and the power stays between the minimum and the maximum."""
    low, high = min(low, high), max(low, high)
    for charger in (AC, DC):
        assert charge_power_w(charger, high) <= charge_power_w(charger, low)
        assert charger.min_taper_power_w <= charge_power_w(charger, high) <= charger.max_power_w


def test_grid_power_is_battery_power_over_efficiency() -> None:
    """The grid gives the battery's power plus the charger's losses."""
    assert grid_power_w(DC, 93_000.0) == pytest.approx(100_000.0)
    assert grid_power_w(AC, 8_900.0) == pytest.approx(10_000.0)
    assert grid_power_w(AC, 0.0) == 0.0


@given(power_w=st.floats(min_value=0.0, max_value=500_000.0))
def test_the_grid_always_gives_at_least_what_the_battery_gets(power_w: float) -> None:
    """Losses are never negative: grid energy ≥ battery energy."""
    assert grid_power_w(AC, power_w) >= power_w
    assert grid_power_w(DC, power_w) * DC.efficiency == pytest.approx(power_w)


def test_the_kind_may_be_given_by_its_name() -> None:
    """A configuration's "ac" becomes ChargerKind.AC, so identity checks on the kind hold."""
    from_config: dict[str, Any] = {"kind": "ac"}
    assert replace(DC, **from_config).kind is ChargerKind.AC


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": ChargerKind.UNKNOWN}, "kind"),
        ({"kind": "wireless"}, "kind"),
        ({"max_power_w": 0.0}, "max_power_w"),
        ({"max_power_w": -7_000.0}, "max_power_w"),
        ({"max_power_w": math.inf}, "max_power_w"),
        ({"efficiency": 0.0}, "efficiency"),
        ({"efficiency": 1.2}, "efficiency"),
        ({"efficiency": math.nan}, "efficiency"),
        ({"taper_start_soc_pct": -1.0}, "taper_start_soc_pct"),
        ({"taper_start_soc_pct": 100.0}, "taper_start_soc_pct"),
        ({"min_taper_power_w": -1.0}, "min_taper_power_w"),
        ({"min_taper_power_w": 150_000.0}, "min_taper_power_w"),
    ],
)
def test_impossible_parameters_are_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    """Every impossible charger parameter raises ParameterError, and the message names the field."""
    with pytest.raises(ParameterError, match=rf"^{field} "):
        replace(DC, **overrides)
