"""The record ↔ map mapping is strict: exactly the fields, each of exactly its type."""

from typing import Any

import pytest

from carbonlink.errors import SchemaError
from carbonlink.records import ChargeRecord, TripRecord
from carbonlink.wire import format_time, parse_time, record_from_json, record_from_map, record_to_json, record_to_map

from records_factory import START_AT, make_charge, make_trip


def test_times_are_rfc3339_utc_with_microseconds() -> None:
    """Times travel as fixed-width UTC text, and read back to the same instant."""
    assert format_time(START_AT) == "2026-11-24T07:30:00.123456Z"
    assert parse_time("2026-11-24T07:30:00.123456Z") == START_AT


@pytest.mark.parametrize(
    "text",
    ["2026-11-24T07:30:00Z", "2026-11-24T07:30:00.123456+00:00", "2026-13-24T07:30:00.000000Z", "yesterday"],
)
def test_other_time_spellings_are_refused(text: str) -> None:
    """Only the one canonical spelling of a time is accepted, so bytes stay one-to-one."""
    with pytest.raises(SchemaError):
        parse_time(text)


def test_map_round_trip_keeps_every_field() -> None:
    """A record read back from its map equals the original, for both types."""
    for record in (make_trip(), make_charge()):
        assert record_from_map(type(record), record_to_map(record)) == record


def test_map_uses_plain_values() -> None:
    """Enums become their text value, times text, digests bytes, absent readings None."""
    mapped = record_to_map(make_charge(vin_hash=None))
    assert mapped["charger"] == "ac"
    assert mapped["start_at"] == "2026-11-24T07:30:00.123456Z"
    assert mapped["dbc_hash"] == bytes(range(32))
    assert mapped["vin_hash"] is None
    assert mapped["methods"] == {"energy": "voltage_current_integral", "grid_energy": "charger", "soc": "bms"}


def _mapped_trip(**changes: Any) -> dict[str, Any]:  # noqa: ANN401 - any wire value
    return record_to_map(make_trip()) | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distance_m": 12400}, "distance_m must be float, got int"),
        ({"sequence": True}, "sequence must be int, got bool"),
        ({"sequence": 1.0}, "sequence must be int, got float"),
        ({"clock_synced": 1}, "clock_synced must be bool, got int"),
        ({"device_id": b"ev-test"}, "device_id must be str"),
        ({"dbc_hash": "00" * 32}, "dbc_hash must be a byte string"),
        ({"start_at": 1764000000}, "start_at must be str"),
        ({"quality": []}, "quality must be a map"),
        (
            {"methods": {"distance": "odometer", "energy": "guess", "soc": "bms"}},
            "methods.energy 'guess' is not one of",
        ),
        ({"odometer_start_m": "48210"}, "odometer_start_m must be float"),
        ({"extra": 1}, "unknown fields: extra"),
    ],
)
def test_wrong_types_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    """A map with one mistyped or unknown field is refused with a message naming it."""
    with pytest.raises(SchemaError, match=message):
        record_from_map(TripRecord, _mapped_trip(**changes))


def test_missing_field_is_refused() -> None:
    """Every field must be present, even optional ones (as null)."""
    mapped = _mapped_trip()
    del mapped["vin_hash"]
    with pytest.raises(SchemaError, match="lacks fields: vin_hash"):
        record_from_map(TripRecord, mapped)


def test_nested_field_errors_carry_their_path() -> None:
    """An error inside the quality map names quality.<field>."""
    mapped = _mapped_trip()
    mapped["quality"] = dict(mapped["quality"], samples=-1)
    with pytest.raises(SchemaError, match=r"quality\.samples"):
        record_from_map(TripRecord, mapped)


def test_a_trip_map_is_not_a_charge() -> None:
    """Reading a trip's map as a charge record fails on its fields."""
    with pytest.raises(SchemaError, match="unknown fields"):
        record_from_map(ChargeRecord, record_to_map(make_trip()))


def test_json_view_spells_bytes_in_hex() -> None:
    """The JSON view is the map with byte strings as lowercase hex, and reads back."""
    trip = make_trip(vin_hash=b"\xab" * 32)
    view = record_to_json(trip)
    assert view["vin_hash"] == "ab" * 32
    assert record_from_json("trip", view) == trip


def test_json_view_refuses_upper_case_hex_and_unknown_types() -> None:
    """Hex must be lowercase (one spelling) and the record type known."""
    view = record_to_json(make_trip())
    view["dbc_hash"] = str(view["dbc_hash"]).upper()
    with pytest.raises(SchemaError, match="lowercase hex"):
        record_from_json("trip", view)
    with pytest.raises(SchemaError, match="unknown record type 'parking'"):
        record_from_json("parking", record_to_json(make_trip()))
