"""The child process of ``test_agent_outbox_crash.py``: seals and settles records until it is killed.

Usage: ``python outbox_crash_writer.py OUTBOX KEY_SEED_HEX RANDOM_SEED MAX_UNACKNOWLEDGED MAX_REJECTED``

It prints one line per step, flushed, and only *after* the outbox call returned (``acking`` and
``rejecting`` before the call, so the test knows what may have happened when the kill came)::

    ready                 the outbox opened (its checks passed)
    appended SEQ HASH     append returned
    sent SEQ              mark_sent returned
    acking SEQ / acked SEQ
    rejecting SEQ / rejected SEQ
"""

import random
import sys
from pathlib import Path

from agent.outbox.tinydb_outbox import TinyDbOutbox
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.testing import SAMPLE_DEVICE_ID, sample_trip

ACK_BACKLOG = 40
"""Unacknowledged records past which the writer always acknowledges (keeps the file small)."""


def main(argv: list[str]) -> int:
    path, seed_hex, random_seed, max_unacknowledged, max_rejected = argv[1:]
    key = DeviceKey.from_seed(bytes.fromhex(seed_hex), SAMPLE_DEVICE_ID)
    rng = random.Random(int(random_seed))  # noqa: S311 - test timing, not cryptography
    outbox = TinyDbOutbox(Path(path), int(max_unacknowledged), key.public_key, max_rejected=int(max_rejected))
    head = outbox.chain_head()
    sequence, previous = (0, GENESIS_PREVIOUS_HASH) if head is None else (head.sequence, head.record_hash)
    print("ready", flush=True)
    while True:  # until SIGKILL
        sequence += 1
        record_id = f"00000000-0000-4000-8000-{sequence:012d}"
        signed = sign(sample_trip(sequence=sequence, record_id=record_id, previous_record_hash=previous), key)
        outbox.append(signed, sequence, record_id)
        previous = record_hash(signed)
        print(f"appended {sequence} {previous.hex()}", flush=True)
        waiting = outbox.unacknowledged(ACK_BACKLOG + 1)
        entry = waiting[0] if rng.random() < 0.7 else rng.choice(waiting)
        roll = rng.random()
        if roll < 0.5 or len(waiting) > ACK_BACKLOG:
            print(f"acking {entry.sequence}", flush=True)
            outbox.acknowledge(entry.record_hash)
            print(f"acked {entry.sequence}", flush=True)
        elif roll < 0.53:  # a few rejections
            print(f"rejecting {entry.sequence}", flush=True)
            outbox.reject(entry.record_hash, "plausibility", "crash test")
            print(f"rejected {entry.sequence}", flush=True)
        elif roll < 0.8:  # and many publishes
            outbox.mark_sent(entry.record_hash, 1_800_000_000.0 + sequence)
            print(f"sent {entry.sequence}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
