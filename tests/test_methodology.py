"""The reduction of a trip: each rule of ER = max(0, BE - PE - LE) × share, and its monotonicity."""

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources

import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

from carbonlink.methodology import (
    ChargeEnergy,
    CreditParameters,
    GridEnergyMethod,
    ParameterError,
    Reduction,
    TripEnergy,
    compute_reduction,
    crediting_period,
    parse_parameter_file,
    resolve_parameters,
)
from carbonlink.vehicles import VehicleClass

SHIPPED = parse_parameter_file(
    resources.files("carbonlink.methodology").joinpath("parameters.toml").read_text(encoding="utf-8")
)
CN_2026 = resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region="cn", year=2026)
TRIP = TripEnergy(distance_m=42_000.0, energy_out_wh=7_300.0, energy_regen_wh=900.0)


def charge(number: int, energy_in_wh: float, grid_energy_wh: float | None, *, excluded: bool = False) -> ChargeEnergy:
    return ChargeEnergy(
        record_hash=bytes([number]) * 32, energy_in_wh=energy_in_wh, grid_energy_wh=grid_energy_wh, excluded=excluded
    )


def with_value(parameters: CreditParameters, field: str, value: float) -> CreditParameters:
    return replace(parameters, **{field: replace(getattr(parameters, field), value=value)})


def test_battery_energy_is_out_minus_regen() -> None:
    """The battery energy of a trip is its energy out less what it regenerated."""
    assert compute_reduction(TRIP, [], CN_2026).battery_energy_wh == 6_400.0


def test_battery_energy_is_never_negative() -> None:
    """A trip that regenerated more than it drew has 0 battery energy, not a negative one."""
    downhill = TripEnergy(distance_m=5_000.0, energy_out_wh=300.0, energy_regen_wh=900.0)
    reduction = compute_reduction(downhill, [], CN_2026)
    assert reduction.battery_energy_wh == 0.0
    assert reduction.grid_energy_wh == 0.0
    assert reduction.reduction_co2e_g == reduction.baseline_co2e_g


def test_without_charges_the_grid_energy_is_battery_over_efficiency() -> None:
    """With no charge records, grid energy is the battery energy ÷ the default charging efficiency."""
    reduction = compute_reduction(TRIP, [], CN_2026)
    assert reduction.grid_energy_method is GridEnergyMethod.BATTERY_OVER_EFFICIENCY
    assert reduction.grid_energy_wh == 6_400.0 / 0.758
    assert reduction.credited_share == 1.0


def test_metered_charges_give_the_grid_energy_at_their_efficiency() -> None:
    """Metered charges that cover the trip scale the battery energy by Σ grid ÷ Σ in."""
    charges = [charge(1, 5_000.0, 5_600.0), charge(2, 3_000.0, 3_350.0)]
    reduction = compute_reduction(TRIP, charges, CN_2026)
    assert reduction.grid_energy_method is GridEnergyMethod.METERED_CHARGE
    assert reduction.grid_energy_wh == pytest.approx(6_400.0 * 8_950.0 / 8_000.0)


@pytest.mark.parametrize(
    ("case", "charges"),
    [
        ("one charge lacks its grid energy", [charge(1, 5_000.0, 5_600.0), charge(2, 3_000.0, None)]),
        (
            "an excluded charge lacks its grid energy",
            [charge(1, 8_000.0, 8_800.0), charge(2, 1.0, None, excluded=True)],
        ),
        ("no energy went in", [charge(1, 0.0, 10.0)]),
        ("efficiency above 1", [charge(1, 8_000.0, 7_900.0)]),
        ("the charges do not cover the trip", [charge(1, 6_399.0, 7_000.0)]),
    ],
)
def test_charges_that_do_not_reconcile_fall_back_to_the_default(case: str, charges: list[ChargeEnergy]) -> None:
    """Charges that are unmetered, empty, above 100 % efficient or too small give battery ÷ efficiency."""
    reduction = compute_reduction(TRIP, charges, CN_2026)
    assert reduction.grid_energy_method is GridEnergyMethod.BATTERY_OVER_EFFICIENCY, case
    assert reduction.grid_energy_wh == 6_400.0 / 0.758


def test_charges_exactly_covering_the_trip_at_100_percent_are_metered() -> None:
    """The limits are inclusive: Σ in = battery and Σ grid = Σ in still reconcile."""
    reduction = compute_reduction(TRIP, [charge(1, 6_400.0, 6_400.0)], CN_2026)
    assert reduction.grid_energy_method is GridEnergyMethod.METERED_CHARGE
    assert reduction.grid_energy_wh == 6_400.0


def test_an_excluded_charge_lowers_the_share_only() -> None:
    """A charge credited elsewhere takes its share of the energy out of the credit; the grid energy stays."""
    charges = [charge(1, 5_000.0, 5_600.0), charge(2, 3_000.0, 3_350.0), charge(3, 2_000.0, 2_250.0)]
    kept = compute_reduction(TRIP, charges, CN_2026)
    charges[2] = replace(charges[2], excluded=True)
    excluded = compute_reduction(TRIP, charges, CN_2026)
    assert excluded.credited_share == 0.8
    assert excluded.grid_energy_wh == kept.grid_energy_wh == 6_400.0 * 11_200.0 / 10_000.0
    assert excluded.reduction_co2e_g == pytest.approx(kept.reduction_co2e_g * 0.8)


def test_every_charge_excluded_credits_nothing() -> None:
    """When all the energy was credited elsewhere, the trip is credited 0."""
    reduction = compute_reduction(TRIP, [charge(1, 8_000.0, 9_000.0, excluded=True)], CN_2026)
    assert reduction.credited_share == 0.0
    assert reduction.reduction_co2e_g == 0.0


def test_excluding_the_least_efficient_charge_does_not_raise_the_credit() -> None:
    """Marking an inefficient charge excluded cannot make the remaining ones look better and raise ER."""
    charges = [charge(1, 6_400.0, 6_400.0), charge(2, 6_400.0, 12_800.0)]
    kept = compute_reduction(TRIP, charges, CN_2026)
    excluded = compute_reduction(TRIP, [charges[0], replace(charges[1], excluded=True)], CN_2026)
    assert excluded.reduction_co2e_g <= kept.reduction_co2e_g


def test_baseline_is_distance_times_fuel_use_times_fuel_co2_times_improvement() -> None:
    """BE = km × L/100 km ÷ 100 × g/L × IR^(crediting year - baseline vintage)."""
    baseline = compute_reduction(TRIP, [], CN_2026).baseline_co2e_g
    assert baseline == pytest.approx(42.0 * 7.0635 / 100.0 * 2347.697 * 0.99**4)


def test_no_improvement_is_applied_before_the_baseline_vintage() -> None:
    """A crediting year before the baseline's vintage uses IR^0, never a factor above 1."""
    early = replace(CN_2026, crediting_year=2020)
    baseline = compute_reduction(TRIP, [], early).baseline_co2e_g
    assert baseline == pytest.approx(42.0 * 7.0635 / 100.0 * 2347.697)


def test_project_emissions_add_the_grid_loss() -> None:
    """PE = grid kWh × g/kWh ÷ (1 - loss): a generation-side factor is raised by the T&D loss."""
    project = compute_reduction(TRIP, [], CN_2026).project_co2e_g
    assert project == pytest.approx(6.4 / 0.758 * 536.6 / (1.0 - 0.086))
    lossless = compute_reduction(TRIP, [], with_value(CN_2026, "grid_loss_fraction", 0.0)).project_co2e_g
    assert lossless == pytest.approx(6.4 / 0.758 * 536.6)


def test_leakage_is_subtracted() -> None:
    """LE comes off the reduction before the share is applied."""
    plain = compute_reduction(TRIP, [], CN_2026)
    leaky = compute_reduction(TRIP, [], with_value(CN_2026, "leakage_co2e_g", 100.0))
    assert leaky.leakage_co2e_g == 100.0
    assert leaky.reduction_co2e_g == pytest.approx(plain.reduction_co2e_g - 100.0)


def test_the_reduction_is_never_negative() -> None:
    """A trip whose project emissions exceed its baseline is credited 0."""
    dirty = with_value(CN_2026, "grid_co2_g_per_kwh", 5_000.0)
    reduction = compute_reduction(TRIP, [], dirty)
    assert reduction.project_co2e_g > reduction.baseline_co2e_g
    assert reduction.reduction_co2e_g == 0.0


@pytest.mark.parametrize(
    ("end_at", "period"),
    [
        (datetime(2026, 3, 14, 18, 30, tzinfo=UTC), "2026-03"),
        (datetime(2026, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2026-03"),
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12"),
    ],
)
def test_the_crediting_period_is_the_utc_month_of_the_end(end_at: datetime, period: str) -> None:
    """The period is YYYY-MM of the trip's end in UTC, whatever offset the datetime carries."""
    assert crediting_period(end_at) == period


def test_a_naive_end_has_no_crediting_period() -> None:
    """A naive datetime is refused: its month in UTC is unknown."""
    with pytest.raises(ParameterError, match="aware"):
        crediting_period(datetime(2026, 3, 14, 18, 30))  # noqa: DTZ001 - the naive datetime under test


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TripEnergy(distance_m=-1.0, energy_out_wh=1.0, energy_regen_wh=0.0), "trip.distance_m"),
        (lambda: TripEnergy(distance_m=1.0, energy_out_wh=math.nan, energy_regen_wh=0.0), "trip.energy_out_wh"),
        (lambda: charge(1, -5.0, None), "charge.energy_in_wh"),
        (lambda: charge(1, 5.0, math.inf), "charge.grid_energy_wh"),
        (lambda: ChargeEnergy(record_hash=b"short", energy_in_wh=1.0, grid_energy_wh=None, excluded=False), "32 bytes"),
        (lambda: ChargeEnergy(record_hash=bytes(32), energy_in_wh=1.0, grid_energy_wh=None, excluded=1), "excluded"),  # type: ignore[arg-type]
    ],
)
def test_energies_out_of_range_are_refused(build: object, message: str) -> None:
    """Negative, non-finite or mistyped energies are a ParameterError naming the field."""
    assert callable(build)
    with pytest.raises(ParameterError, match=message):
        build()


def test_an_int_energy_is_stored_as_a_float() -> None:
    """Energies given as integers are kept as floats, so their JSON has one spelling."""
    trip = TripEnergy(distance_m=42_000, energy_out_wh=7_300, energy_regen_wh=900)
    assert type(trip.distance_m) is float
    assert json.dumps(charge(1, 5_000, 5_600).to_json()["energy_in_wh"]) == "5000.0"


hashes = st.binary(min_size=32, max_size=32)
energies = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)
charges = st.builds(
    ChargeEnergy, record_hash=hashes, energy_in_wh=energies, grid_energy_wh=st.none() | energies, excluded=st.booleans()
)
reductions = st.builds(
    Reduction,
    battery_energy_wh=energies,
    grid_energy_wh=energies,
    grid_energy_method=st.sampled_from(GridEnergyMethod),
    credited_share=st.floats(min_value=0.0, max_value=1.0),
    baseline_co2e_g=energies,
    project_co2e_g=energies,
    leakage_co2e_g=energies,
    reduction_co2e_g=energies,
)


@given(charges)
def test_a_charge_round_trips_through_json_exactly(value: ChargeEnergy) -> None:
    """A stored charge read back from JSON text equals the charge, its hash spelled in lowercase hex."""
    stored = value.to_json()
    assert stored["record_hash"] == value.record_hash.hex()
    assert ChargeEnergy.from_json(json.loads(json.dumps(stored))) == value


@given(reductions)
def test_a_reduction_round_trips_through_json_exactly(value: Reduction) -> None:
    """A stored reduction read back from JSON text equals the reduction, float for float."""
    assert Reduction.from_json(json.loads(json.dumps(value.to_json(), allow_nan=False))) == value


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"record_hash": "AB" * 32, "energy_in_wh": 1.0, "grid_energy_wh": None, "excluded": False}, "lowercase"),
        ({"record_hash": "zz" * 32, "energy_in_wh": 1.0, "grid_energy_wh": None, "excluded": False}, "hex"),
        ({"record_hash": "ab" * 32, "energy_in_wh": 1, "grid_energy_wh": None, "excluded": False}, "energy_in_wh"),
        ({"record_hash": "ab" * 32, "energy_in_wh": 1.0, "grid_energy_wh": None, "excluded": 0}, "excluded"),
        ({"record_hash": "ab" * 32, "energy_in_wh": 1.0, "grid_energy_wh": None}, "lacks fields: excluded"),
    ],
)
def test_a_stored_charge_that_breaks_the_rules_is_refused(stored: dict[str, object], message: str) -> None:
    """Reading a charge back refuses a mis-spelt hash, an integer energy or a missing field, naming it."""
    with pytest.raises(ParameterError, match=message):
        ChargeEnergy.from_json(stored)


def test_a_stored_reduction_with_an_unknown_method_is_refused() -> None:
    """Reading a reduction back refuses a grid energy method that does not exist."""
    stored = compute_reduction(TRIP, [], CN_2026).to_json() | {"grid_energy_method": "guessed"}
    with pytest.raises(ParameterError, match="grid_energy_method"):
        Reduction.from_json(stored)


def test_a_reduction_with_a_share_above_one_is_refused() -> None:
    """The credited share is a fraction: above 1 is refused."""
    stored = compute_reduction(TRIP, [], CN_2026).to_json() | {"credited_share": 1.5}
    with pytest.raises(ParameterError, match="credited_share"):
        Reduction.from_json(stored)


trips = st.builds(
    TripEnergy,
    distance_m=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    energy_out_wh=st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
    energy_regen_wh=st.floats(min_value=0.0, max_value=3e4, allow_nan=False),
)
resolved = st.builds(
    lambda vehicle_class, region, year: resolve_parameters(
        SHIPPED, vehicle_class=vehicle_class, grid_region=region, year=year
    ),
    st.sampled_from(VehicleClass),
    st.sampled_from(SHIPPED.grid_regions),
    st.integers(min_value=2010, max_value=2045),
)
# Charges of a size comparable to trips, mostly metered at a plausible efficiency, so the metered
# rule is exercised and not only the fallback.
plausible_charges = st.builds(
    lambda record_hash, energy_in_wh, ratio, excluded: ChargeEnergy(
        record_hash=record_hash,
        energy_in_wh=energy_in_wh,
        grid_energy_wh=None if ratio is None else energy_in_wh * ratio,
        excluded=excluded,
    ),
    hashes,
    st.sampled_from([1_000.0, 5_000.0, 20_000.0]) | st.floats(min_value=0.0, max_value=5e4, allow_nan=False),
    st.none() | st.sampled_from([1.0, 1.1, 1.5, 2.5]) | st.floats(min_value=0.9, max_value=2.5),
    st.booleans(),
)
charge_lists = st.lists(plausible_charges, max_size=6) | st.lists(charges, max_size=6)


@given(trips, charge_lists, resolved)
def test_the_reduction_is_never_negative_nor_above_the_baseline(
    trip: TripEnergy, charges: list[ChargeEnergy], parameters: CreditParameters
) -> None:
    """0 ≤ ER ≤ BE, 0 ≤ share ≤ 1, and the grid energy is at least the battery energy."""
    reduction = compute_reduction(trip, charges, parameters)
    assert 0.0 <= reduction.reduction_co2e_g <= reduction.baseline_co2e_g
    assert 0.0 <= reduction.credited_share <= 1.0
    assert reduction.grid_energy_wh >= reduction.battery_energy_wh


@given(trips, st.floats(min_value=0.0, max_value=1e6, allow_nan=False), charge_lists, resolved)
def test_more_distance_never_means_less_reduction(
    trip: TripEnergy, extra_m: float, charges: list[ChargeEnergy], parameters: CreditParameters
) -> None:
    """The same trip with a longer distance is credited at least as much."""
    longer = replace(trip, distance_m=trip.distance_m + extra_m)
    assert compute_reduction(longer, charges, parameters).reduction_co2e_g >= (
        compute_reduction(trip, charges, parameters).reduction_co2e_g
    )


@given(trips, st.floats(min_value=0.0, max_value=2e3, allow_nan=False), charge_lists, resolved)
def test_a_dirtier_grid_never_means_more_reduction(
    trip: TripEnergy, extra_g: float, charges: list[ChargeEnergy], parameters: CreditParameters
) -> None:
    """The same trip on a grid with a higher emission factor is credited at most as much."""
    dirtier = with_value(parameters, "grid_co2_g_per_kwh", parameters.grid_co2_g_per_kwh.value + extra_g)
    assert compute_reduction(trip, charges, dirtier).reduction_co2e_g <= (
        compute_reduction(trip, charges, parameters).reduction_co2e_g
    )


# The cases that matter are a corner: metered charges of unequal efficiency, and a trip whose
# project emissions come close to its baseline. Draw short trips of a car and many examples.
car_trips = st.builds(
    lambda battery_wh, regen_wh, m_per_wh: TripEnergy(
        distance_m=battery_wh * m_per_wh, energy_out_wh=battery_wh + regen_wh, energy_regen_wh=regen_wh
    ),
    st.floats(min_value=0.0, max_value=3e4, allow_nan=False),
    st.floats(min_value=0.0, max_value=3e3, allow_nan=False),
    st.floats(min_value=3.0, max_value=10.0),  # 100-330 Wh/km: a car's own consumption
)
car_parameters = st.builds(
    lambda region: resolve_parameters(SHIPPED, vehicle_class=VehicleClass.COMPACT, grid_region=region, year=2026),
    st.sampled_from(SHIPPED.grid_regions),
)


@settings(max_examples=400)
@given(car_trips, st.lists(plausible_charges, min_size=1, max_size=6), st.data(), car_parameters)
def test_excluding_more_charges_never_means_more_reduction(
    trip: TripEnergy, charges: list[ChargeEnergy], data: st.DataObject, parameters: CreditParameters
) -> None:
    """Marking further charges as credited elsewhere never raises a trip's credit."""
    marked = [
        replace(charge, excluded=True) if data.draw(st.booleans(), label=f"exclude {i}") else charge
        for i, charge in enumerate(charges)
    ]
    before = compute_reduction(trip, charges, parameters).reduction_co2e_g
    after = compute_reduction(trip, marked, parameters).reduction_co2e_g
    target(after - before, label="credit gained by excluding")  # steer the search towards a violation
    assert after <= before
