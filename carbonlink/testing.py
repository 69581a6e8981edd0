"""Valid sample records for tests, benchmarks and examples, shipped with the code.

Each builder returns a plausible record (a 12.4 km commute, a 7.15 kWh AC charge) and takes any
field as a keyword to override it, so a test states only what it is about::

    trip = sample_trip(distance_m=0.0)

``sample_chain`` signs a vehicle's routine in chain order — commutes and the charges that put
their energy back, every reading carried on from the record before — for benchmarks and load
tests that need many records a gateway accepts.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.records import (
    ChargeMethods,
    ChargeRecord,
    ChargerKind,
    DataQuality,
    Record,
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


SAMPLE_BATTERY_WH = 60_000.0
"""The usable battery energy ``sample_chain`` assumes: its SOC changes match its energies."""
SAMPLE_TRIPS_PER_CHARGE = 3
SAMPLE_RECORD_GAP = timedelta(minutes=30)
"""Parked time between one record's end and the next one's start in ``sample_chain``."""
_CHAIN_TRIP_DURATION = timedelta(minutes=31)
_CHAIN_CHARGE_DURATION = timedelta(hours=2)
_CHAIN_TOP_SOC_PCT = 80.0
_CHAIN_CHARGE_EFFICIENCY = 0.9
_CHAIN_SAMPLES_PER_S = 10


def sample_chain(
    key: DeviceKey,
    count: int,
    *,
    start_at: datetime = SAMPLE_START_AT,
    odometer_m: float = 48_210_000.0,
    vin_hash: bytes | None = None,
) -> Iterator[tuple[bytes, Record]]:
    """``count`` records of one vehicle, signed with ``key`` and chained from sequence 1.

    The routine repeats: three 12.4 km commutes of 31 minutes (1,860 Wh out, 310 Wh regenerated),
    then a 2-hour AC charge that puts their net energy back, each record starting 30 minutes after
    the last one ended. Odometer, energy counters and SOC (of a 60 kWh battery, from 80 %) carry
    on from record to record, so a gateway's chain and plausibility checks accept every one.
    Yields (signed bytes, record).
    """
    trip = sample_trip()
    net_wh = trip.energy_out_wh - trip.energy_regen_wh
    charge_wh = SAMPLE_TRIPS_PER_CHARGE * net_wh
    discharged_wh = trip.counter_discharged_start_wh or 0.0
    charged_wh = trip.counter_charged_start_wh or 0.0
    previous_hash, at = GENESIS_PREVIOUS_HASH, start_at

    def soc_after_pct(trips: int) -> float:  # rounded once, so one record's end is the next one's start
        return round(_CHAIN_TOP_SOC_PCT - trips * net_wh / SAMPLE_BATTERY_WH * 100.0, 2)

    for sequence in range(1, count + 1):
        trips_done = (sequence - 1) % (SAMPLE_TRIPS_PER_CHARGE + 1)
        soc_pct = soc_after_pct(trips_done)
        common: dict[str, Any] = {
            "device_id": key.device_id,
            "record_id": f"{key.device_id}-{sequence:08d}",
            "sequence": sequence,
            "previous_record_hash": previous_hash,
            "start_at": at,
            "odometer_start_m": odometer_m,
            "counter_discharged_start_wh": discharged_wh,
            "counter_charged_start_wh": charged_wh,
            "soc_start_pct": soc_pct,
            "vin_hash": vin_hash,
        }
        record: Record
        if trips_done < SAMPLE_TRIPS_PER_CHARGE:
            odometer_m += trip.distance_m
            discharged_wh += trip.energy_out_wh
            charged_wh += trip.energy_regen_wh
            record = sample_trip(
                **common,
                end_at=at + _CHAIN_TRIP_DURATION,
                odometer_end_m=odometer_m,
                counter_discharged_end_wh=discharged_wh,
                counter_charged_end_wh=charged_wh,
                soc_end_pct=soc_after_pct(trips_done + 1),
            )
        else:
            charged_wh += charge_wh
            record = sample_charge(
                **common,
                end_at=at + _CHAIN_CHARGE_DURATION,
                odometer_end_m=odometer_m,
                counter_discharged_end_wh=discharged_wh,
                counter_charged_end_wh=charged_wh,
                soc_end_pct=_CHAIN_TOP_SOC_PCT,
                energy_in_wh=charge_wh,
                grid_energy_wh=round(charge_wh / _CHAIN_CHARGE_EFFICIENCY, 1),
                quality=sample_quality(samples=int(_CHAIN_CHARGE_DURATION.total_seconds()) * _CHAIN_SAMPLES_PER_S - 5),
            )
        signed = sign(record, key)
        yield signed, record
        previous_hash, at = record_hash(signed), record.end_at + SAMPLE_RECORD_GAP
