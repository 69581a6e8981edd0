"""The replay's log readers against the obvious loop, on candump and ASC logs of a full bus.

    .venv/bin/python bench/replay_readers.py                 # 30 min of driving: about 5 M frames
    .venv/bin/python bench/replay_readers.py --minutes 1     # the short run of the test suite

The simulator drives the reference EV through a mixed cycle, and "other ECUs" fill the bus: more
ids (``--other-ids``, default 60: three in four standard, one in four extended) at 10, 20, 50 or
100 Hz, so that the frames the reference profile needs are about 6 % of the log. The frames go
through python-can's writers into a candump ``.log`` and an ``.asc``. Then, for each log:

- **baseline**, the obvious loop: python-can's ``LogReader`` (``relative_timestamp=False``, as the
  agent reads an ASC) and cantools' ``Database.decode_message`` on every frame, a ``KeyError``
  counted for the ids the DBC does not know;
- **ours**: ``agent.replay.logs.merge_logs`` with the profile's frame ids and the agent's own
  ``FrameDecoder(profile).decode`` on every frame it keeps.

Frames/s counts every frame of the log for both. The issue's target is ours at least 3 × the
baseline on both formats; the exit status is 1 when it is missed. ``--logs DIR`` keeps the
generated logs in DIR and reuses them on the next run with the same options.
"""

import argparse
import heapq
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import can
import cantools

from agent.app import profile_path
from agent.decoding import FrameDecoder
from agent.profile import VehicleProfile, load_profile, resolve_dbc
from agent.replay.logs import merge_logs
from simulator.app import day_frames, reference_dbc_path
from simulator.cycles import cycle_by_name
from simulator.day import DayPlan, Trip
from simulator.frames import FrameScheduler, load_dbc
from simulator.presets import preset
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS
from simulator.timeline import DaySimulation

START_AT = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
PROFILE = "reference_ev"
TARGET_RATIO = 3.0
OTHER_RATES_HZ = (10, 20, 50, 100)
PAYLOADS_PER_ID = 16
FORMATS = (("log", "candump .log"), ("asc", "ASC .asc"))


def simulated_frames(minutes: float) -> Iterator[can.Message]:
    """The reference EV's own bus over one mixed trip of ``minutes`` of driving."""
    plan = DayPlan(
        start_at=START_AT, activities=(Trip(cycle=cycle_by_name("mixed", 1, duration_s=minutes * 60), start_s=0.0),)
    )
    scheduler = FrameScheduler(
        load_dbc(reference_dbc_path()),
        REFERENCE_SIGNALS,
        dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES),
        origin_s=START_AT.timestamp(),
    )
    return day_frames(DaySimulation(preset("compact").vehicle, plan), scheduler)


def other_ecus(count: int, taken: frozenset[tuple[int, bool]], start_s: float, end_s: float) -> Iterator[can.Message]:
    """``count`` more periodic ids (not among ``taken``) from ``start_s`` to ``end_s``, in time order."""
    chooser = random.Random(8)  # noqa: S311 - a reproducible bus, not cryptography
    ids: list[tuple[int, bool]] = []
    while len(ids) < count:
        extended = len(ids) % 4 == 3  # noqa: PLR2004 - one in four extended
        key = (chooser.randrange(0x10000, 0x1FFFFFFF) if extended else chooser.randrange(0x80, 0x7FF), extended)
        if key not in taken and key not in ids:
            ids.append(key)
    periods = [1 / chooser.choice(OTHER_RATES_HZ) for _ in ids]
    payloads = [[chooser.randbytes(8) for _ in range(PAYLOADS_PER_ID)] for _ in ids]
    due = [(start_s + chooser.random() * period, index, 0) for index, period in enumerate(periods)]
    heapq.heapify(due)
    while due:
        at_s, index, sent = due[0]
        if at_s > end_s:
            heapq.heappop(due)
            continue
        arbitration_id, extended = ids[index]
        yield can.Message(
            timestamp=at_s,
            arbitration_id=arbitration_id,
            is_extended_id=extended,
            data=payloads[index][sent % PAYLOADS_PER_ID],
        )
        heapq.heapreplace(due, (at_s + periods[index], index, sent + 1))


def write_logs(folder: Path, minutes: float, other_ids: int, profile: VehicleProfile) -> tuple[int, int]:
    """The full-bus logs (``bus.log``, ``bus.asc``) in ``folder``; (frames, frames of the profile's ids)."""
    own = list(simulated_frames(minutes))
    taken = frozenset((m.arbitration_id, m.is_extended_id) for m in own)
    others = other_ecus(other_ids, taken, own[0].timestamp, own[-1].timestamp)
    writers = [can.CanutilsLogWriter(str(folder / "bus.log")), can.ASCWriter(str(folder / "bus.asc"))]
    frames = needed = 0
    wanted = profile.frame_ids
    for message in heapq.merge(own, others, key=lambda m: m.timestamp):
        for writer in writers:
            writer.on_message_received(message)
        frames += 1
        needed += (message.arbitration_id, message.is_extended_id) in wanted
    for writer in writers:
        writer.stop()
    (folder / "bus.counts").write_text(f"{frames} {needed}\n", encoding="utf-8")
    return frames, needed


def baseline(path: Path, database: cantools.database.Database) -> tuple[float, int, int]:
    """(seconds, frames, frames decoded) of python-can's LogReader + cantools' decode_message on every frame."""
    started = time.perf_counter()
    frames = decoded = unknown = 0
    for message in can.LogReader(str(path), relative_timestamp=False):
        frames += 1
        try:
            database.decode_message(message.arbitration_id, message.data)  # type: ignore[arg-type]  # takes any bytes-like, as the naive loop passes it
        except KeyError:
            unknown += 1
            continue
        decoded += 1
    return time.perf_counter() - started, frames, decoded


def ours(path: Path, profile: VehicleProfile) -> tuple[float, int, int]:
    """(seconds, frames read, frames decoded into readings) of the replay's reader and the agent's decoder."""
    started = time.perf_counter()
    decoder = FrameDecoder(profile)
    decode = decoder.decode
    frames, reports = merge_logs([path], profile.frame_ids)
    for message in frames:
        decode(message)
    elapsed_s = time.perf_counter() - started
    return elapsed_s, reports[0].frames_read, decoder.stats().frames_used


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of driving (default 30)")
    parser.add_argument("--other-ids", type=int, default=60, help="ids of other ECUs on the bus (default 60)")
    parser.add_argument("--logs", type=Path, help="keep the logs in this folder and reuse them")
    args = parser.parse_args(argv)
    profile = load_profile(profile_path(PROFILE))
    database = cantools.database.Database()
    for dbc in profile.dbc:
        database.add_dbc_file(str(resolve_dbc(dbc, Path(profile.source).parent)))

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.logs / f"replay-{args.minutes:g}min-{args.other_ids}ids" if args.logs else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        counts = folder / "bus.counts"
        started = time.perf_counter()
        if counts.is_file():
            total, needed = (int(word) for word in counts.read_text(encoding="utf-8").split())
        else:
            total, needed = write_logs(folder, args.minutes, args.other_ids, profile)
        print(
            f"replay readers benchmark: {args.minutes:g} min of driving + {args.other_ids} other ids: "
            f"{total:,} frames, {needed / total:.1%} of them of the profile's ids "
            f"(logs ready in {time.perf_counter() - started:.0f} s)"
        )
        print(f"{'log':<4} {'baseline frames/s':>18} {'ours frames/s':>14} {'ratio':>6}  decoded (baseline / ours)")
        ratios = {}
        for suffix, _ in FORMATS:
            path = folder / f"bus.{suffix}"
            base_s, base_frames, base_decoded = baseline(path, database)
            our_s, our_frames, our_decoded = ours(path, profile)
            ratios[suffix] = (our_frames / our_s) / (base_frames / base_s)
            print(
                f"{suffix:<4} {base_frames / base_s:>18,.0f} {our_frames / our_s:>14,.0f} {ratios[suffix]:>6.2f}  "
                f"{base_decoded:,} / {our_decoded:,} of {base_frames:,} / {our_frames:,}"
            )
    for (suffix, name), ratio in zip(FORMATS, ratios.values(), strict=True):
        print(f"ratio_{suffix} {ratio:.2f} ({name}: ours / python-can LogReader + cantools decode_message)")
    passed = all(ratio >= TARGET_RATIO for ratio in ratios.values())
    print(f"target: ours >= {TARGET_RATIO:g} x baseline on .log and .asc: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
