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

import nacl.signing

from carbonlink.envelope import open_envelope, sign, verify
from carbonlink.keys import DeviceKey
from carbonlink.testing import sample_trip


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
    trip = sample_trip(device_id=key.device_id)
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
