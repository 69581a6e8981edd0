"""Record construction enforces the schema: each rule names the field it guards."""

import math
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from carbonlink.errors import SchemaError
from carbonlink.records import RECORD_TYPES, ChargeRecord, TripRecord

from records_factory import START_AT, make_charge, make_quality, make_trip


def test_records_are_frozen() -> None:
    """A sealed record cannot be changed in place."""
    trip = make_trip()
    with pytest.raises(FrozenInstanceError):
        trip.distance_m = 1.0  # type: ignore[misc]


def test_record_types_are_registered_by_name() -> None:
    """The envelope's type names map to the two record classes."""
    assert {"trip": TripRecord, "charge": ChargeRecord} == RECORD_TYPES


def test_records_carry_no_credit() -> None:
    """The car signs measurements only: no field of either record speaks of credits or CO2."""
    for cls in (TripRecord, ChargeRecord):
        names = " ".join(cls.__dataclass_fields__)
        assert "co2" not in names
        assert "credit" not in names


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"device_id": "EV-UPPER"}, "device_id"),
        ({"device_id": "ev/with/slash"}, "device_id"),
        ({"device_id": "ev+"}, "device_id"),
        ({"record_id": ""}, "record_id"),
        ({"record_id": "has space"}, "record_id"),
        ({"sequence": 0}, "sequence"),
        ({"sequence": 2**63}, "sequence"),
        ({"previous_record_hash": b"\x00" * 31}, "previous_record_hash"),
        ({"start_at": datetime(2026, 1, 1, 8, 0)}, "start_at"),  # noqa: DTZ001 - a naive time is the error under test
        ({"end_at": START_AT.astimezone(timezone(timedelta(hours=8)))}, "end_at"),
        ({"end_at": START_AT - timedelta(seconds=1)}, "before start_at"),
        ({"odometer_start_m": -1.0}, "odometer_start_m"),
        ({"odometer_end_m": math.nan}, "odometer_end_m"),
        ({"counter_charged_end_wh": math.inf}, "counter_charged_end_wh"),
        ({"soc_start_pct": 100.5}, "soc_start_pct"),
        ({"soc_end_pct": -0.1}, "soc_end_pct"),
        ({"agent_version": ""}, "agent_version"),
        ({"agent_version": "1.0\n"}, "agent_version"),
        ({"profile_id": " padded"}, "profile_id"),
        ({"dbc_hash": b""}, "dbc_hash"),
        ({"vin_hash": b"\x01" * 33}, "vin_hash"),
        ({"distance_m": -5.0}, "distance_m"),
        ({"energy_out_wh": math.nan}, "energy_out_wh"),
        ({"energy_regen_wh": -0.001}, "energy_regen_wh"),
    ],
)
def test_trip_schema_violations_name_the_field(overrides: dict[str, Any], field: str) -> None:
    """A trip with one bad field is refused with a SchemaError that names that field."""
    with pytest.raises(SchemaError, match=field):
        make_trip(**overrides)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"energy_in_wh": -1.0}, "energy_in_wh"),
        ({"grid_energy_wh": math.inf}, "grid_energy_wh"),
    ],
)
def test_charge_schema_violations_name_the_field(overrides: dict[str, Any], field: str) -> None:
    """A charge session with one bad field is refused with a SchemaError naming it."""
    with pytest.raises(SchemaError, match=field):
        make_charge(**overrides)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"samples": -1}, "quality.samples"),
        ({"frames_dropped": 2**63}, "quality.frames_dropped"),
        ({"coverage_pct": 100.01}, "quality.coverage_pct"),
        ({"gap_duration_s": -1.0}, "quality.gap_duration_s"),
        ({"flags": ("Upper",)}, "quality flag"),
        ({"flags": ("b_flag", "a_flag")}, "sorted and unique"),
        ({"flags": ("a", "a")}, "sorted and unique"),
        ({"flags": tuple(f"f{i:02d}" for i in range(33))}, "more than 32"),
    ],
)
def test_quality_violations_name_the_field(overrides: dict[str, Any], field: str) -> None:
    """Data-quality counts must be non-negative and flags a sorted set of snake_case names."""
    with pytest.raises(SchemaError, match=field):
        make_quality(**overrides)


def test_schema_error_is_a_value_error() -> None:
    """Callers that only know the builtin meaning can still catch a schema error."""
    with pytest.raises(ValueError, match="sequence"):
        make_trip(sequence=-3)


def test_optional_readings_may_be_absent() -> None:
    """A vehicle without odometer, SOC or energy counters still makes valid records."""
    trip = make_trip(
        odometer_start_m=None,
        odometer_end_m=None,
        soc_start_pct=None,
        soc_end_pct=None,
        counter_discharged_start_wh=None,
        counter_discharged_end_wh=None,
        counter_charged_start_wh=None,
        counter_charged_end_wh=None,
    )
    assert trip.odometer_start_m is None
    assert trip.soc_end_pct is None


def test_zero_length_record_is_valid() -> None:
    """A record may start and end in the same instant (a trip aborted at once)."""
    assert make_trip(end_at=START_AT).end_at == START_AT


def test_any_utc_timezone_object_is_accepted() -> None:
    """UTC is UTC whichever tzinfo object spells it."""
    moment = datetime(2026, 5, 1, tzinfo=timezone(timedelta(0)))
    assert replace(make_trip(), start_at=moment, end_at=moment).start_at == datetime(2026, 5, 1, tzinfo=UTC)
