"""Time to simulate driving into a .blf file, against python-can's own BLF writer on the same frames.

    .venv/bin/python bench/sim_blf.py --minutes 60

Runs the whole pipeline (physics, DBC encoding with counters and checksums, BLF writing) over a
mixed drive cycle of the given length, then writes the very same frames with python-can's
BLFWriter alone. The ratio says how much the simulator adds on top of merely writing the file.
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import can

from simulator.adapters.frame_sinks import LogFileSink
from simulator.app import day_frames, reference_dbc_path
from simulator.cycles import cycle_by_name
from simulator.day import DayPlan, Trip
from simulator.frames import FrameScheduler, load_dbc
from simulator.presets import preset
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS
from simulator.timeline import DaySimulation

START_AT = datetime(2026, 11, 24, tzinfo=UTC)


def _frames(minutes: float) -> "tuple[DaySimulation, FrameScheduler]":
    plan = DayPlan(
        start_at=START_AT, activities=(Trip(cycle=cycle_by_name("mixed", 1, duration_s=minutes * 60), start_s=0.0),)
    )
    scheduler = FrameScheduler(
        load_dbc(reference_dbc_path()),
        REFERENCE_SIGNALS,
        dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES),
        origin_s=START_AT.timestamp(),
    )
    return DaySimulation(preset("compact").vehicle, plan), scheduler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of driving (default 60)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        ours_path, bare_path = Path(scratch) / "sim.blf", Path(scratch) / "bare.blf"

        simulation, scheduler = _frames(args.minutes)
        started = time.perf_counter()
        sink = LogFileSink(ours_path)
        count = sink.write(day_frames(simulation, scheduler))
        sink.close()
        pipeline_s = time.perf_counter() - started

        simulation, scheduler = _frames(args.minutes)
        frames = list(day_frames(simulation, scheduler))
        started = time.perf_counter()
        writer = can.BLFWriter(str(bare_path))
        for frame in frames:
            writer.on_message_received(frame)
        writer.stop()
        writer_s = time.perf_counter() - started
        size_mb = ours_path.stat().st_size / 1e6

    print(f"simulator benchmark: {args.minutes:g} min of driving, {count:,} frames, {size_mb:.1f} MB of BLF")
    print(f"{'stage':<28} {'seconds':>8} {'µs/frame':>9}")
    print(f"{'simulate+encode+write':<28} {pipeline_s:>8.2f} {pipeline_s / count * 1e6:>9.2f}")
    print(f"{'python-can BLFWriter alone':<28} {writer_s:>8.2f} {writer_s / count * 1e6:>9.2f}")
    print(f"ratio {pipeline_s / writer_s:.2f} (whole simulator / bare writer)")
    print(f"real-time factor {args.minutes * 60 / pipeline_s:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
