"""Cost of the signed envelope against bare Ed25519 on the same bytes, measured in one run.

    .venv/bin/python bench/envelope.py --records 5000

Prints microseconds per record for our ``sign`` and ``verify`` and for PyNaCl signing and
verifying the record's payload bytes directly, and the ratio between them: what COSE framing,
deterministic CBOR, the strict decoder and the schema add on top of the cryptography.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import nacl.signing

from carbonlink.envelope import open_envelope, sign, verify
from carbonlink.keys import DeviceKey
from carbonlink.records import DataQuality, TripRecord


def _trip(sequence: int, device_id: str) -> TripRecord:
    start_at = datetime(2026, 11, 24, 7, 30, tzinfo=UTC) + timedelta(hours=sequence)
    return TripRecord(
        device_id=device_id,
        record_id=f"bench-{sequence:08d}",
        sequence=sequence,
        previous_record_hash=bytes(32),
        start_at=start_at,
        end_at=start_at + timedelta(minutes=31),
        clock_synced=True,
        odometer_start_m=48_210_000.0 + sequence,
        odometer_end_m=48_222_400.0 + sequence,
        soc_start_pct=80.0,
        soc_end_pct=73.5,
        counter_discharged_start_wh=9_120_500.0,
        counter_discharged_end_wh=9_122_360.0,
        counter_charged_start_wh=8_900_100.0,
        counter_charged_end_wh=8_900_410.0,
        quality=DataQuality(
            samples=18_400,
            frames_dropped=3,
            gaps=0,
            gap_duration_s=0.0,
            out_of_range=1,
            unavailable=0,
            coverage_pct=99.9,
        ),
        agent_version="bench",
        dbc_hash=bytes(range(32)),
        profile_id="reference-ev",
        distance_m=12_400.0,
        energy_out_wh=1_860.0 + sequence % 7,
        energy_regen_wh=310.0,
    )


def _per_item_us(work: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        work()
    return (time.perf_counter() - started) / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000, help="records per measurement (default 5000)")
    args = parser.parse_args(argv)
    count: int = args.records

    key = DeviceKey.from_seed(b"\x42" * 32, "ev-bench")
    raw_key = nacl.signing.SigningKey(b"\x42" * 32)
    trip = _trip(1, key.device_id)
    signed = sign(trip, key)
    payload = open_envelope(signed).payload
    raw_signed = raw_key.sign(payload)
    records = [replace(trip, sequence=i + 1) for i in range(count)]
    batch = iter(records)

    ours_sign = _per_item_us(lambda: sign(next(batch), key), count)
    bare_sign = _per_item_us(lambda: raw_key.sign(payload), count)
    ours_verify = _per_item_us(lambda: verify(signed, key.public_key), count)
    bare_verify = _per_item_us(lambda: raw_key.verify_key.verify(raw_signed), count)

    print(f"envelope benchmark: {count} records of {len(signed)} signed bytes ({len(payload)} payload)")
    print(f"{'operation':<8} {'carbonlink µs':>14} {'bare Ed25519 µs':>16} {'ratio':>7}")
    for name, ours, bare in (("sign", ours_sign, bare_sign), ("verify", ours_verify, bare_verify)):
        print(f"{name:<8} {ours:>14.1f} {bare:>16.1f} {ours / bare:>7.2f}")
    print(f"throughput of verify: {1e6 / ours_verify:,.0f} records/s on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
