"""The agent's memory over a simulated week of driving: resident set size day by day, against a target.

    .venv/bin/python bench/agent_memory.py                    # a week of full days (minutes)
    .venv/bin/python bench/agent_memory.py --days 1 --quick   # one short day (seconds)
    .venv/bin/python bench/agent_memory.py --app              # and agent.app.Agent over the week

First the simulator writes each day of the reference EV (three trips, then an AC charge) to a BLF
log; the days follow one another, each starting with the battery, odometer and energy counters
where the day before left them. Then a child process that holds only the agent (profile, frame
decoder, segmenter, sealer, a real tinydb outbox) feeds the logs through the pipeline frame by
frame, as one agent running all week with no gateway acknowledging its records: the car is
offline, the records stay in the outbox, the worst case for memory. At the end of each log the
bus sleeps until the next morning and the pipeline's idle tick seals the evening's charge.

The child reads its own resident set size (``VmRSS`` and ``VmHWM`` of /proc/self/status, Linux)
after imports and setup (the baseline), every 65,536 frames and after each day. The parent prints
the figures, the peak against the baseline and against the target (exit status 1 when the peak
reaches it), and the pipeline's speed against reading the same log alone. ``--trace`` runs the
child under tracemalloc (ten times slower, and its own bookkeeping inflates the RSS figures) and
prints, after each day, the source lines whose allocations grew most during that day. ``--app``
then also runs the composition root, ``agent.app.Agent`` as ``carbonlink agent run`` builds it
(no ``[mqtt]``), over the days joined into one log, in a second child.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import can

from agent.adapters.can_sources import read_log
from agent.config import AgentConfig, SourceConfig
from agent.decoding import FrameDecoder
from agent.outbox.tinydb_outbox import TinyDbOutbox
from agent.pipeline import Pipeline
from agent.profile import load_profile, resolve_dbc
from agent.profiles import shipped_profile
from agent.sealing import Provenance, Sealer
from agent.segmentation import Segmenter, SegmenterSettings
from agent.status_file import status_path
from carbonlink import __version__
from carbonlink.keys import DeviceKey

START_AT = datetime(2026, 11, 23, tzinfo=UTC)
"""Midnight UTC of the first simulated day (a Monday)."""
PROFILE = "reference_ev"
DEVICE_ID = "ev-bench-1"
MAX_UNACKNOWLEDGED = 10_000
TARGET_MB = 80.0
SAMPLE_EVERY_FRAMES = 1 << 16
"""The child reads its RSS this often while it feeds frames, for each day's peak."""
APP_SAMPLE_S = 1.0
"""With ``--app`` a thread of the child reads its RSS and the agent's frame count this often."""
TRACE_TOP = 8
"""Source lines shown per day with ``--trace``."""
BYTES_PER_KIB = 1024
BYTES_PER_MB = 1e6
QUICK_TRACE_CSV = "time_s,speed_kph\n0,0\n12,50\n50,50\n60,0\n70,0\n80,30\n110,30\n120,0\n"
"""``--quick``: every trip drives this two-minute stop-and-go instead of a full drive cycle."""


# --- the child: only the agent ---------------------------------------------------------------


def _memory_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB: its resident set now and at its highest so far."""
    fields: dict[str, int] = {}
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def _emit(event: str, **values: object) -> None:
    """One JSON line to the parent."""
    print(json.dumps({"event": event, **values}), flush=True)


def _top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> list[str]:
    ignore = (tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),)
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    return [str(stat) for stat in stats[:TRACE_TOP] if stat.size_diff > 0]


def _feed_day(pipeline: Pipeline, log: Path, night_s: float) -> tuple[int, int]:
    """Feed one day's log frame by frame, then let the night pass; (frames, highest RSS sampled in KiB)."""
    feed, frames, peak_kib, last_s = pipeline.feed, 0, 0, 0.0
    for frame in read_log(log):
        feed(frame)
        last_s = frame.timestamp
        frames += 1
        if not frames % SAMPLE_EVERY_FRAMES:
            peak_kib = max(peak_kib, _memory_kib()[0])
    pipeline.tick(last_s + night_s)  # the bus sleeps overnight: the idle tick seals the evening's charge
    return frames, peak_kib


def run_agent(outbox_path: Path, logs: Sequence[Path], *, trace: bool) -> int:
    """Feed the day logs through one agent pipeline; report memory as JSON lines on stdout."""
    key = DeviceKey.from_seed(bytes(32), DEVICE_ID)
    profile_path = shipped_profile(PROFILE)
    profile = load_profile(profile_path)
    provenance = Provenance(
        agent_version=__version__,
        dbc_hash=hashlib.sha256(
            b"".join(resolve_dbc(ref, profile_path.parent).read_bytes() for ref in profile.dbc)
        ).digest(),  # as agent.app's dbc_hash, which this child does not import
        profile_id=profile.id,
    )
    segmenter = Segmenter()
    night_s = segmenter.settings.split_gap_s + 1.0
    with TinyDbOutbox(outbox_path, MAX_UNACKNOWLEDGED, key.public_key) as outbox:
        pipeline = Pipeline(FrameDecoder(profile), segmenter, Sealer(key, outbox, provenance))
        _emit("baseline", rss_kib=_memory_kib()[0])
        if trace:
            tracemalloc.start()  # one frame per allocation: deeper stacks cost far more time
        previous = tracemalloc.take_snapshot() if trace else None
        total_s = 0.0
        for log in logs:
            started = time.perf_counter()
            frames, peak_kib = _feed_day(pipeline, log, night_s)
            seconds = time.perf_counter() - started
            total_s += seconds
            rss_kib = _memory_kib()[0]
            growth: list[str] = []
            if previous is not None:
                snapshot = tracemalloc.take_snapshot()
                growth, previous = _top_growth(previous, snapshot), snapshot
            _emit(
                "day",
                frames=frames,
                seconds=seconds,
                records=pipeline.report.records_sealed,
                stored=outbox.counts().pending,
                rss_kib=rss_kib,
                peak_kib=max(peak_kib, rss_kib),
                growth=growth,
            )
        pipeline.finish()
        rss_kib, hwm_kib = _memory_kib()
        _emit("end", records=pipeline.report.records_sealed, seconds=total_s, rss_kib=rss_kib, hwm_kib=hwm_kib)
    return 0


def run_app(outbox_path: Path, week_log: Path, day_frames: Sequence[int]) -> int:
    """Run the composition root (``carbonlink agent run``) over the week in one log; RSS per day as JSON lines.

    A thread samples the RSS and the frame count of the agent's status file (which it rewrites every
    few seconds), so days are told apart only to within those few seconds.
    """
    # Imported only here: the pipeline's measurement must not hold the uplink (paho) nor the app.
    from agent.app import Agent  # noqa: PLC0415 - see the comment above

    key = DeviceKey.from_seed(bytes(32), DEVICE_ID)
    config = AgentConfig(
        key_file=outbox_path.with_name("device.key"),  # never read: the key is passed to Agent
        profile=PROFILE,
        clock_synced=True,
        vin_hash=None,
        battery_capacity_wh=None,
        source=SourceConfig(log_file=week_log),
        outbox_path=outbox_path,
        max_unacknowledged=MAX_UNACKNOWLEDGED,
        mqtt=None,  # no gateway: the records stay in the outbox, as in the pipeline's run
        segmentation=SegmenterSettings(),
    )
    agent = Agent(config, key)
    _emit("baseline", rss_kib=_memory_kib()[0])
    samples: list[tuple[int, int]] = []
    """(frames the status file reports, VmRSS in KiB)."""
    done = threading.Event()

    def sample() -> None:
        status = status_path(outbox_path)
        while not done.wait(APP_SAMPLE_S):
            try:
                frames = int(json.loads(status.read_text(encoding="utf-8"))["pipeline"]["frames"])
            except (OSError, ValueError, KeyError):  # not written yet
                continue
            samples.append((frames, _memory_kib()[0]))

    sampler = threading.Thread(target=sample, name="rss-sampler")
    sampler.start()
    started = time.perf_counter()
    try:
        result = agent.run()
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - started
    rss_kib, hwm_kib = _memory_kib()
    first = 0
    for frames, last in zip(day_frames, accumulate(day_frames), strict=True):
        in_day = [rss for seen, rss in samples if first < seen <= last] or [rss_kib]
        _emit("day", frames=frames, rss_kib=in_day[-1], peak_kib=max(in_day))
        first = last
    _emit("end", records=result.records_sealed, seconds=seconds, rss_kib=rss_kib, hwm_kib=hwm_kib)
    return 0


# --- the parent: simulate, run the children, report --------------------------------------------


@dataclass(frozen=True, slots=True)
class DayLog:
    """One simulated day on disk."""

    day_at: datetime
    path: Path
    simulate_s: float
    """Wall time the simulator took; 0 for a log reused from an earlier run (``--logs``)."""
    trips: int
    charges: int


@dataclass(frozen=True, slots=True)
class DayMemory:
    """What a child reported after one day."""

    frames: int
    rss_mb: float
    peak_mb: float
    seconds: float | None = None
    """Only the pipeline's child times each day."""
    records_total: int | None = None
    stored: int | None = None
    growth: tuple[str, ...] = ()


@dataclass(slots=True)
class AgentRun:
    """Everything a child reported."""

    baseline_mb: float = 0.0
    days: list[DayMemory] = field(default_factory=list)
    records: int = 0
    seconds: float = 0.0
    hwm_mb: float = 0.0


def _mb(kib: object) -> float:
    return int(str(kib)) * BYTES_PER_KIB / BYTES_PER_MB


def _next_day(truth: dict[str, Any], counters: dict[str, float]) -> dict[str, float]:
    """The state the next day starts in: where this day's ground truth left the vehicle."""
    entries = truth["entries"]
    last = entries[-1]
    return {
        "soc_pct": float(last["soc_end_pct"]),
        "odometer_m": float(last["odometer_end_m"]),
        "energy_discharged_wh": counters["energy_discharged_wh"] + sum(e.get("energy_out_wh", 0.0) for e in entries),
        "energy_charged_wh": counters["energy_charged_wh"]
        + sum(e.get("energy_regen_wh", 0.0) + e.get("energy_in_wh", 0.0) for e in entries),
    }


def simulate_days(folder: Path, days: int, *, quick: bool) -> Iterator[DayLog]:
    """Write (or reuse) one BLF log per day, each day starting where the one before ended."""
    # The simulator is imported here, in the parent only: the child measured must hold the agent alone.
    from simulator.app import DriveOptions, run_drive  # noqa: PLC0415 - see the comment above
    from simulator.day import InitialState  # noqa: PLC0415 - the same

    cycles: tuple[str, ...] = DriveOptions(start_at=START_AT).cycles
    if quick:
        trace_path = folder / "quick-trip.csv"
        trace_path.write_text(QUICK_TRACE_CSV, encoding="utf-8")
        cycles = (str(trace_path),) * len(cycles)
    initial = InitialState()
    state = {"energy_discharged_wh": initial.energy_discharged_wh, "energy_charged_wh": initial.energy_charged_wh}
    for day in range(days):
        day_at = START_AT + timedelta(days=day)
        path = folder / f"{'quick-' if quick else ''}{day_at.date().isoformat()}.blf"
        truth_path = path.with_suffix(".truth.json")
        simulate_s = 0.0
        if not truth_path.is_file():  # the simulator writes the truth last: its presence means a whole log
            started = time.perf_counter()
            run_drive(DriveOptions(start_at=day_at, seed=day + 1, cycles=cycles, output=path, initial=initial))
            simulate_s = time.perf_counter() - started
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        kinds = [entry["type"] for entry in truth["entries"]]
        yield DayLog(day_at, path, simulate_s, kinds.count("trip"), kinds.count("charge"))
        state = _next_day(truth, state)
        initial = InitialState(**state)


def _week_log(day_logs: Sequence[DayLog]) -> Path:
    """The days in one log, for ``--app`` (the agent reads one log per run); reused when already there."""
    first = day_logs[0].path
    path = first.with_name(f"week-{len(day_logs)}-from-{first.name}")
    if not path.is_file():
        partial = path.with_name(f"partial-{path.name}")
        writer = can.Logger(str(partial))
        try:
            for day in day_logs:
                for frame in read_log(day.path):
                    writer.on_message_received(frame)
        finally:
            writer.stop()
        partial.replace(path)
    return path


def _child_reports(child_args: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Run this script as a child in a fresh interpreter and yield its reports as they come."""
    command = [sys.executable, str(Path(__file__).resolve()), *child_args]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our interpreter, our script
    try:
        if child.stdout is None:  # stdout=PIPE always gives a pipe; this tells mypy so
            raise RuntimeError("no pipe from the agent child")
        for line in child.stdout:
            yield json.loads(line)
    finally:
        if child.poll() is None:  # the parent stopped early (an error, Ctrl-C): stop the child too
            child.kill()
        child.wait()
    if child.returncode:
        raise RuntimeError(f"the agent child process failed with exit status {child.returncode}")


def _run_child(child_args: Sequence[str], day_logs: Sequence[DayLog], baseline: str) -> AgentRun:
    """Run a child, printing a row per day as it reports; ``baseline`` says when the baseline was taken."""
    run = AgentRun()
    print(f"{'day':<14} {'frames':>10} {'records':>7} {'seconds':>7} {'frames/s':>9} {'RSS MB':>7} {'Δ MB':>6}", end="")
    print(f" {'day peak MB':>11}")
    for report in _child_reports(child_args):
        if report["event"] == "baseline":
            run.baseline_mb = _mb(report["rss_kib"])
            print(f"{baseline:<14} {'':>10} {'':>7} {'':>7} {'':>9} {run.baseline_mb:>7.1f}   (baseline)")
        elif report["event"] == "day":
            day = DayMemory(
                frames=int(report["frames"]),
                rss_mb=_mb(report["rss_kib"]),
                peak_mb=_mb(report["peak_kib"]),
                seconds=float(report["seconds"]) if "seconds" in report else None,
                records_total=int(report["records"]) if "records" in report else None,
                stored=int(report["stored"]) if "stored" in report else None,
                growth=tuple(str(line) for line in report.get("growth", ())),
            )
            before = run.days[-1] if run.days else None
            run.days.append(day)
            _print_day(day, before, day_logs[len(run.days) - 1], run.baseline_mb)
        elif report["event"] == "end":
            run.records = int(report["records"])
            run.seconds = float(report["seconds"])
            run.hwm_mb = _mb(report["hwm_kib"])
    return run


def _print_day(day: DayMemory, before: DayMemory | None, log: DayLog, baseline_mb: float) -> None:
    records = speed = seconds = ""
    if day.records_total is not None:
        records = str(day.records_total - ((before.records_total or 0) if before else 0))
    if day.seconds is not None:
        seconds, speed = f"{day.seconds:.1f}", f"{day.frames / day.seconds:,.0f}"
    growth_mb = day.rss_mb - (before.rss_mb if before else baseline_mb)
    print(
        f"{log.day_at:%a %Y-%m-%d} {day.frames:>10,} {records:>7} {seconds:>7} {speed:>9} "
        f"{day.rss_mb:>7.1f} {growth_mb:>+6.2f} {day.peak_mb:>11.1f}"
    )
    for line in day.growth:
        print(f"    grew: {line}")


def _read_alone(path: Path) -> tuple[int, float]:
    """Frames in a log and the seconds it takes only to read them: the speed baseline."""
    started = time.perf_counter()
    frames = sum(1 for _ in read_log(path))
    return frames, time.perf_counter() - started


def _summary(run: AgentRun, read_us: float, target_mb: float) -> bool:
    """Print the figures of one child's run; True when its peak stayed under the target."""
    days = run.days
    frames = sum(day.frames for day in days)
    stored = f", {days[-1].stored} of them waiting in the outbox" if days[-1].stored is not None else ""
    print(f"frames {frames:,}; records sealed {run.records}{stored} (no gateway acknowledges them)")
    if len(days) > 1:
        per_day_mb = (days[-1].rss_mb - days[0].rss_mb) / (len(days) - 1)
        print(f"growth per day after the first: {per_day_mb:+.3f} MB (RSS after the last day minus after the first)")
    print(f"peak RSS {run.hwm_mb:.1f} MB (VmHWM); ratio {run.hwm_mb / run.baseline_mb:.2f} (peak / baseline)")
    ours_us = run.seconds / frames * 1e6
    print(f"agent {frames / run.seconds:,.0f} frames/s ({ours_us:.2f} µs/frame, reading the log included)")
    print(f"reading the first log alone {read_us:.2f} µs/frame; ratio {ours_us / read_us:.2f} (agent / reading alone)")
    passed = run.hwm_mb < target_mb
    print(f"target: peak RSS under {target_mb:g} MB: {'PASS' if passed else 'FAIL'}")
    return passed


def _measure(folder: Path, outbox_folder: Path, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    kind = ("short (--quick) " if args.quick else "") + ("day" if args.days == 1 else "consecutive days")
    print(f"agent memory benchmark: {args.days} {kind} of the reference EV from {START_AT:%Y-%m-%d}")
    day_logs: list[DayLog] = []
    for day in simulate_days(folder, args.days, quick=args.quick):
        day_logs.append(day)
        made = f"simulated in {day.simulate_s:.1f} s" if day.simulate_s else "reused"
        size_mb = day.path.stat().st_size / BYTES_PER_MB
        print(f"  {day.day_at:%a %Y-%m-%d}: {day.trips} trips, {day.charges} charge, {size_mb:.1f} MB of BLF ({made})")
    simulated_at = time.perf_counter()

    print("\nthe pipeline (decoder, segmenter, sealer, tinydb outbox) in a child process that loads nothing else")
    child_args = ["--agent-child", str(outbox_folder / "pipeline-outbox.json"), *(str(day.path) for day in day_logs)]
    run = _run_child([*child_args, *(["--trace"] if args.trace else [])], day_logs, "after setup")
    read_frames, read_s = _read_alone(day_logs[0].path)
    read_us = read_s / read_frames * 1e6
    passed = _summary(run, read_us, args.target_mb)
    if args.trace:
        print("(with --trace, tracemalloc's own bookkeeping is part of the RSS figures)")
    if args.app:
        week = _week_log(day_logs)
        print(f"\nthe composition root (agent.app.Agent, no [mqtt]) in a child process, over {week.name}")
        day_frames = ",".join(str(day.frames) for day in run.days)
        app_args = ["--app-child", str(outbox_folder / "app-outbox.json"), str(week), day_frames]
        app_run = _run_child(app_args, day_logs, "after imports")  # the Agent loads its profile in run()
        passed = _summary(app_run, read_us, args.target_mb) and passed
    print(
        f"\nrun time: simulate {simulated_at - started:.0f} s, measure {time.perf_counter() - simulated_at:.0f} s, "
        f"whole benchmark {time.perf_counter() - started:.0f} s"
    )
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7, help="consecutive days to simulate (default 7, a week)")
    parser.add_argument("--quick", action="store_true", help="two-minute trips and a short charge: a smoke run")
    parser.add_argument("--target-mb", type=float, default=TARGET_MB, help="peak RSS target in MB (default 80)")
    parser.add_argument("--trace", action="store_true", help="show what grew each day (tracemalloc; slower)")
    parser.add_argument("--app", action="store_true", help="also measure agent.app.Agent over the days in one log")
    parser.add_argument("--logs", type=Path, help="keep the day logs here; later runs reuse them (default: temporary)")
    parser.add_argument("--agent-child", nargs="+", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--app-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent_child:
        outbox_path, *logs = args.agent_child
        return run_agent(outbox_path, logs, trace=args.trace)
    if args.app_child:
        outbox_text, week_text, day_frames = args.app_child
        return run_app(Path(outbox_text), Path(week_text), [int(frames) for frames in day_frames.split(",")])
    if args.days < 1:
        parser.error("--days must be at least 1")
    with tempfile.TemporaryDirectory(prefix="agent-memory-") as scratch:
        folder: Path = args.logs or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        return _measure(folder, Path(scratch), args)


if __name__ == "__main__":
    sys.exit(main())
