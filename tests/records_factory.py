"""Valid records, keys and Hypothesis strategies for them, shared by the tests."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from carbonlink.keys import DeviceKey
from carbonlink.records import (
    MAX_QUALITY_FLAGS,
    ChargeMethods,
    ChargeRecord,
    ChargerKind,
    DataQuality,
    Record,
    Source,
    TripMethods,
    TripRecord,
)
from carbonlink.testing import SAMPLE_DBC_HASH, SAMPLE_START_AT, sample_charge, sample_quality, sample_trip

# The plain builders ship with the code (carbonlink.testing); tests know them by these names.
START_AT = SAMPLE_START_AT
DBC_HASH = SAMPLE_DBC_HASH
make_quality = sample_quality
make_trip = sample_trip
make_charge = sample_charge


def key_from_byte(byte: int, device_id: str = "ev-test-vehicle") -> DeviceKey:
    """A deterministic device key whose seed is 32 copies of ``byte``."""
    return DeviceKey.from_seed(bytes([byte]) * 32, device_id)


def with_sequence(record: Record, sequence: int, previous_hash: bytes) -> Record:
    return replace(record, sequence=sequence, previous_record_hash=previous_hash)


# --- Hypothesis strategies: every valid record, not only typical ones ----------------------------

_amounts = st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
_percents = st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_infinity=False)
_counts = st.integers(min_value=0, max_value=2**63 - 1)
_digests = st.binary(min_size=32, max_size=32)
# Hypothesis takes naive bounds and attaches the zone itself.
_times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - naive bound, as Hypothesis requires
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - naive bound, as Hypothesis requires
    timezones=st.just(UTC),
)
_labels = st.from_regex(r"[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?", fullmatch=True)
_flags = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True), max_size=MAX_QUALITY_FLAGS, unique=True).map(
    lambda flags: tuple(sorted(flags))
)

device_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{2,63}", fullmatch=True)

qualities = st.builds(
    DataQuality,
    samples=_counts,
    frames_dropped=_counts,
    gaps=_counts,
    gap_duration_s=_amounts,
    out_of_range=_counts,
    unavailable=_counts,
    coverage_pct=_percents,
    flags=_flags,
)


@st.composite
def _common_fields(draw: st.DrawFn) -> dict[str, Any]:
    start_at = draw(_times)
    return {
        "device_id": draw(device_ids),
        "record_id": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True)),
        "sequence": draw(st.integers(min_value=1, max_value=2**63 - 1)),
        "previous_record_hash": draw(_digests),
        "start_at": start_at,
        "end_at": start_at + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))),
        "clock_synced": draw(st.booleans()),
        "odometer_start_m": draw(st.none() | _amounts),
        "odometer_end_m": draw(st.none() | _amounts),
        "soc_start_pct": draw(st.none() | _percents),
        "soc_end_pct": draw(st.none() | _percents),
        "counter_discharged_start_wh": draw(st.none() | _amounts),
        "counter_discharged_end_wh": draw(st.none() | _amounts),
        "counter_charged_start_wh": draw(st.none() | _amounts),
        "counter_charged_end_wh": draw(st.none() | _amounts),
        "quality": draw(qualities),
        "agent_version": draw(_labels),
        "dbc_hash": draw(_digests),
        "profile_id": draw(_labels),
        "vin_hash": draw(st.none() | _digests),
    }


_sources = st.sampled_from(Source)

trip_records = st.builds(
    lambda common, extra: TripRecord(**common, **extra),
    _common_fields(),
    st.fixed_dictionaries(
        {
            "distance_m": _amounts,
            "energy_out_wh": _amounts,
            "energy_regen_wh": _amounts,
            "methods": st.builds(TripMethods, distance=_sources, energy=_sources, soc=_sources),
        }
    ),
)

charge_records = st.builds(
    lambda common, extra: ChargeRecord(**common, **extra),
    _common_fields(),
    st.fixed_dictionaries(
        {
            "charger": st.sampled_from(ChargerKind),
            "energy_in_wh": _amounts,
            "grid_energy_wh": st.none() | _amounts,
            "methods": st.builds(ChargeMethods, energy=_sources, grid_energy=_sources, soc=_sources),
        }
    ),
)

records: st.SearchStrategy[Record] = st.one_of(trip_records, charge_records)
