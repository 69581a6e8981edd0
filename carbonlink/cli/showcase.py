"""The demo as it stands: one device key, a chain of signed records, verified and inspected."""

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carbonlink import __version__
from carbonlink.chain import GENESIS_PREVIOUS_HASH, check_link, record_hash
from carbonlink.cli.errors import EXIT_OK, CliError
from carbonlink.cli.keyfile import new_device_key, write_device_key
from carbonlink.envelope import sign, verify
from carbonlink.keys import DeviceKey
from carbonlink.records import ChargeRecord, ChargerKind, DataQuality, Record, RecordBase, TripRecord

_DBC_HASH = bytes(32)  # no DBC is decoded yet: the reference DBC arrives with the simulator
_FIRST_ODOMETER_M = 48_210_000.0
_QUALITY = DataQuality(
    samples=0, frames_dropped=0, gaps=0, gap_duration_s=0.0, out_of_range=0, unavailable=0, coverage_pct=100.0
)


@dataclass(frozen=True, slots=True)
class _Leg:
    """One illustrative trip or charge; the simulator will replace these figures."""

    kind: type[Record]
    offset_min: int
    duration_min: int
    distance_m: float
    energy_wh: float
    regen_wh: float
    soc_start_pct: float
    soc_end_pct: float


_DAY = (
    _Leg(TripRecord, 0, 31, 12_400.0, 1_860.0, 310.0, 80.0, 73.5),
    _Leg(TripRecord, 540, 35, 12_650.0, 1_920.0, 290.0, 73.5, 66.8),
    _Leg(ChargeRecord, 620, 180, 0.0, 7_150.0, 0.0, 66.8, 80.0),
)


def _seal(
    key: DeviceKey, leg: _Leg, day_start_at: datetime, previous_signed: bytes | None, previous: Record | None
) -> Record:
    """The record of one leg, chained to the one before it."""
    odometer_m = _FIRST_ODOMETER_M if previous is None or previous.odometer_end_m is None else previous.odometer_end_m
    base = RecordBase(
        device_id=key.device_id,
        record_id=str(uuid.uuid4()),
        sequence=1 if previous is None else previous.sequence + 1,
        previous_record_hash=GENESIS_PREVIOUS_HASH if previous_signed is None else record_hash(previous_signed),
        start_at=day_start_at + timedelta(minutes=leg.offset_min),
        end_at=day_start_at + timedelta(minutes=leg.offset_min + leg.duration_min),
        clock_synced=True,
        odometer_start_m=odometer_m,
        odometer_end_m=odometer_m + leg.distance_m,
        soc_start_pct=leg.soc_start_pct,
        soc_end_pct=leg.soc_end_pct,
        counter_discharged_start_wh=None,
        counter_discharged_end_wh=None,
        counter_charged_start_wh=None,
        counter_charged_end_wh=None,
        quality=_QUALITY,
        agent_version=__version__,
        dbc_hash=_DBC_HASH,
        profile_id="demo",
    )
    common = {f.name: getattr(base, f.name) for f in fields(RecordBase)}
    if leg.kind is TripRecord:
        return TripRecord(
            **common, distance_m=leg.distance_m, energy_out_wh=leg.energy_wh, energy_regen_wh=leg.regen_wh
        )
    return ChargeRecord(**common, charger=ChargerKind.AC, energy_in_wh=leg.energy_wh, grid_energy_wh=None)


def run_showcase(data_dir: Path) -> int:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create data directory {data_dir}: {err.strerror}") from err
    key_path = data_dir / "vehicle-1.key"
    key = new_device_key(None)
    write_device_key(key_path, key, overwrite=True)
    start_at = datetime.now(UTC).replace(hour=7, minute=30, second=0, microsecond=0) - timedelta(days=1)
    print(f"carbonlink {__version__} demo — data in {data_dir.resolve()}")
    print(f"device {key.device_id}, key {key_path}, kid {key.kid.hex()[:16]}…\n")
    print(f"{'seq':>3}  {'type':<6}  {'km':>6}  {'kWh':>6}  {'bytes':>5}  verified  file")
    previous_signed: bytes | None = None
    previous: Record | None = None
    for leg in _DAY:
        record = _seal(key, leg, start_at, previous_signed, previous)
        signed = sign(record, key)
        verified = verify(signed, key.public_key)
        check_link(previous_signed, previous, verified)
        path = data_dir / f"record-{record.sequence:04d}-{record.RECORD_TYPE}.cose"
        path.write_bytes(signed)
        kilometres = (record.distance_m if isinstance(record, TripRecord) else 0.0) / 1000
        energy_kwh = (record.energy_out_wh if isinstance(record, TripRecord) else record.energy_in_wh) / 1000
        print(
            f"{record.sequence:>3}  {record.RECORD_TYPE:<6}  {kilometres:>6.1f}  {energy_kwh:>6.2f}  "
            f"{len(signed):>5}  {'yes':<8}  {path}"
        )
        previous_signed, previous = signed, verified
    print(
        "\nEach record is a COSE_Sign1 message (EdDSA), chained by sequence number and hash. Try:\n"
        f"  carbonlink inspect {data_dir / 'record-0001-trip.cose'} --public-key {key.public_key.raw.hex()}\n"
        "\nStill to come (see the issues): the CAN simulator, the in-car agent, the MQTT gateway and crediting."
    )
    return EXIT_OK
