"""The outbox survives its process being killed at any instant: nothing reported stored is lost.

A child process (``outbox_crash_writer.py``) appends, publishes, acknowledges and rejects records
in a loop on one outbox file and reports each step on stdout after the call returned. The test
kills it with SIGKILL after a short random delay, reopens the outbox and checks it against what
the writer reported, then starts a new writer on the same file, again and again.
"""

import contextlib
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.outbox import EntryState, OutboxEntry, RejectedEntry
from agent.outbox.tinydb_outbox import TinyDbOutbox
from carbonlink.chain import GENESIS_PREVIOUS_HASH
from carbonlink.envelope import verify
from carbonlink.keys import DeviceKey
from carbonlink.testing import SAMPLE_DEVICE_ID

WRITER = Path(__file__).with_name("outbox_crash_writer.py")
KEY_SEED = bytes([21]) * 32
KEY = DeviceKey.from_seed(KEY_SEED, SAMPLE_DEVICE_ID)
KILLS = 100
MAX_UNACKNOWLEDGED = 1_000
MAX_REJECTED = 1_000  # above what a run rejects: every rejected record stays countable
KILL_DELAY_S = (0.005, 0.060)
READY_TIMEOUT_S = 10.0
EXIT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 120.0


@dataclass
class Reported:
    """What the writers said, over all runs: appends with their hashes, and settlements."""

    hashes: dict[int, bytes] = field(default_factory=dict)
    acking: set[int] = field(default_factory=set)
    acked: set[int] = field(default_factory=set)
    rejecting: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    sent: set[int] = field(default_factory=set)

    def take(self, line: str) -> None:
        step, sequence_text, *rest = line.split()
        sequence = int(sequence_text)
        if step == "appended":
            self.hashes[sequence] = bytes.fromhex(rest[0])
        else:
            {
                "acking": self.acking,
                "acked": self.acked,
                "rejecting": self.rejecting,
                "rejected": self.rejected,
                "sent": self.sent,
            }[step].add(sequence)


def _first_line(process: subprocess.Popen[str], timeout_s: float) -> str | None:
    """The writer's first line, or None if it printed none in time."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    return process.stdout.readline() if ready else None


def _run_and_kill(path: Path, rng: random.Random, reported: Reported) -> None:
    """Start a writer, let it work for a few milliseconds, SIGKILL it and collect what it reported."""
    argv = [
        sys.executable,
        str(WRITER),
        str(path),
        KEY_SEED.hex(),
        str(rng.randrange(2**32)),
        str(MAX_UNACKNOWLEDGED),
        str(MAX_REJECTED),
    ]
    # Popen's context closes the pipes and reaps the child; kill() signals its PID only while unreaped.
    with subprocess.Popen(  # noqa: S603 - our own helper script, no shell
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            first = _first_line(process, READY_TIMEOUT_S)
            if first == "ready\n":
                with contextlib.suppress(subprocess.TimeoutExpired):  # still writing, as it should be
                    process.wait(timeout=rng.uniform(*KILL_DELAY_S))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=EXIT_TIMEOUT_S)
            # Read through the same buffered files as the first line (communicate() would skip their
            # buffers); the child is dead, so both end.
            assert process.stdout is not None
            assert process.stderr is not None
            output, errors = process.stdout.read(), process.stderr.read()
        finally:
            process.kill()  # a no-op once the child is reaped
    assert first == "ready\n", f"writer did not start: {first!r}, stderr: {errors}"
    assert process.returncode == -signal.SIGKILL, f"writer died on its own: {errors}"
    # A line cut short by the kill (no newline) was not reported.
    for line in output.splitlines(keepends=True):
        if line.endswith("\n"):
            reported.take(line)


def _check_reported_records(
    reported: Reported, stored: dict[int, OutboxEntry], rejected: dict[int, RejectedEntry]
) -> None:
    """Every record a writer reported appended is still there, unless it was (maybe) acknowledged."""
    for sequence in reported.hashes:
        present = sequence in stored or sequence in rejected
        if sequence in reported.acked:
            assert not present, f"record {sequence} was acknowledged but is back"
        elif sequence in reported.rejected:
            assert sequence in rejected, f"rejected record {sequence} lost"
        elif sequence not in reported.acking:  # an ack under way at the kill may or may not have happened
            assert present, f"record {sequence} was reported stored and is gone"


def _check(path: Path, reported: Reported) -> None:
    """Reopen the outbox and hold it to everything the writers reported."""
    with TinyDbOutbox(path, MAX_UNACKNOWLEDGED, KEY.public_key, max_rejected=MAX_REJECTED) as outbox:
        assert outbox.quarantined_at_open == ()
        head = outbox.chain_head()
        stored = {entry.sequence: entry for entry in outbox.unacknowledged(MAX_UNACKNOWLEDGED)}
        rejected = {entry.sequence: entry for entry in outbox.rejected()}
        counts = outbox.counts()
    assert not list(path.parent.glob("*.tmp")), "the open removes what killed writers left"
    last_reported = max(reported.hashes, default=0)
    head_sequence = 0 if head is None else head.sequence
    # At most one append was under way when the kill came.
    assert head_sequence in {last_reported, last_reported + 1}
    if head is not None and head_sequence in reported.hashes:
        assert head.record_hash == reported.hashes[head_sequence]
    _check_reported_records(reported, stored, rejected)
    for sequence, waiting in stored.items():
        if sequence in reported.sent:
            assert waiting.state is EntryState.SENT
            assert waiting.sent_count >= 1
    # Every sequence number from 1 to the head is accounted for: stored, rejected or acknowledged.
    assert counts.quarantined == 0
    assert counts.pending + counts.sent + counts.rejected + counts.acknowledged_total == head_sequence
    assert len(reported.acked) <= counts.acknowledged_total <= len(reported.acking)
    # The chain is contiguous across restarts: each record names its predecessor's hash.
    entries: list[OutboxEntry | RejectedEntry] = [*stored.values(), *rejected.values()]
    known = {0: GENESIS_PREVIOUS_HASH} | reported.hashes | {entry.sequence: entry.record_hash for entry in entries}
    for entry in entries:
        assert entry.sequence <= head_sequence
        if entry.sequence in reported.hashes:
            assert entry.record_hash == reported.hashes[entry.sequence]
        previous = known.get(entry.sequence - 1)
        if previous is not None:
            assert verify(entry.signed, KEY.public_key).previous_record_hash == previous


def test_outbox_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    """After each of 100 SIGKILLs the outbox opens, keeps every reported record and a contiguous chain."""
    path = tmp_path / "outbox.json"
    # pytest-randomly seeds ``random`` per run; failure messages repeat the seed.
    seed = random.randrange(2**32)  # noqa: S311 - kill timing, not cryptography
    rng = random.Random(seed)  # noqa: S311 - kill timing, not cryptography
    reported = Reported()
    deadline = time.monotonic() + TOTAL_TIMEOUT_S
    leftovers = 0
    for kill in range(KILLS):
        assert time.monotonic() < deadline, f"crash test over {TOTAL_TIMEOUT_S} s at kill {kill}"
        _run_and_kill(path, rng, reported)
        leftovers += len(list(tmp_path.glob("*.tmp")))
        try:
            _check(path, reported)
        except AssertionError as err:
            raise AssertionError(f"after kill {kill + 1} (random seed {seed}): {err}") from err
    # The kills must have interrupted real work, not idle writers.
    assert len(reported.hashes) > KILLS
    assert reported.acked
    print(f"{KILLS} kills, {len(reported.hashes)} appends reported, {leftovers} temp files left by killed writers")
