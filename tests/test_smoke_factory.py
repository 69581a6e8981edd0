"""The shared factories build valid records (a broken factory would fail every other test)."""

from hypothesis import given

from carbonlink.records import Record

from records_factory import make_charge, make_trip, records


def test_factories_build_records_of_both_types() -> None:
    """The default trip and charge factories produce records of their type."""
    assert make_trip().RECORD_TYPE == "trip"
    assert make_charge().RECORD_TYPE == "charge"


@given(records)
def test_strategy_draws_valid_records(record: Record) -> None:
    """Every drawn record has passed its own validation and is of a known type."""
    assert record.RECORD_TYPE in {"trip", "charge"}
