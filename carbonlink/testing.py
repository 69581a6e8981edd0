"""Valid sample records for tests, benchmarks and examples, shipped with the code.

Each builder returns a plausible record (a 12.4 km commute, a 7.15 kWh AC charge) and takes any
field as a keyword to override it, so a test states only what it is about::

    trip = sample_trip(distance_m=0.0)
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from carbonlink.chain import GENESIS_PREVIOUS_HASH
from carbonlink.records import (
    ChargeMethods,
    ChargeRecord,
    ChargerKind,
    DataQuality,
    Source,
    TripRecord,
)

SAMPLE_START_AT = datetime(2026, 11, 24, 7, 30, 0, 123456, tzinfo=UTC)
SAMPLE_DEVICE_ID = "ev-test-vehicle"
SAMPLE_DBC_HASH = bytes(range(32))


def sample_quality(**overrides: Any) -> DataQuality:  # noqa: ANN401 - any field of DataQuality
    values: dict[str, Any] = {
        "samples": 18_400,
        "frames_dropped": 3,
        "gaps": 0,
        "gap_duration_s": 0.0,
        "out_of_range": 1,
        "unavailable": 0,
        "coverage_pct": 99.9,
        "flags": (),
    }
    return DataQuality(**(values | overrides))


def _common(overrides: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "device_id": SAMPLE_DEVICE_ID,
        "record_id": "0b4c3a52-7e0a-4f0e-9f43-8d1d2f3c1a01",
        "sequence": 1,
        "previous_record_hash": GENESIS_PREVIOUS_HASH,
        "start_at": SAMPLE_START_AT,
        "end_at": SAMPLE_START_AT + timedelta(minutes=31),
        "clock_synced": True,
        "odometer_start_m": 48_210_000.0,
        "odometer_end_m": 48_222_400.0,
        "soc_start_pct": 80.0,
        "soc_end_pct": 73.5,
        "counter_discharged_start_wh": 9_120_500.0,
        "counter_discharged_end_wh": 9_122_360.0,
        "counter_charged_start_wh": 8_900_100.0,
        "counter_charged_end_wh": 8_900_410.0,
        "quality": sample_quality(),
        "agent_version": "0.1.0",
        "dbc_hash": SAMPLE_DBC_HASH,
        "profile_id": "reference-ev",
        "vin_hash": None,
    }
    return values | overrides


def sample_trip(**overrides: Any) -> TripRecord:  # noqa: ANN401 - any field of TripRecord
    trip = {"distance_m": 12_400.0, "energy_out_wh": 1_860.0, "energy_regen_wh": 310.0}
    return TripRecord(**_common(trip | overrides))


def sample_charge(**overrides: Any) -> ChargeRecord:  # noqa: ANN401 - any field of ChargeRecord
    charge = {
        "odometer_end_m": 48_210_000.0,
        "charger": ChargerKind.AC,
        "energy_in_wh": 7_150.0,
        "grid_energy_wh": 7_900.0,
        "methods": ChargeMethods(energy=Source.VOLTAGE_CURRENT_INTEGRAL, grid_energy=Source.CHARGER, soc=Source.BMS),
    }
    return ChargeRecord(**_common(charge | overrides))
