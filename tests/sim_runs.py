"""Simulated days with their ground truth, and the agent's real pipeline run over their frames.

The accuracy tests judge the agent against the simulator's physics. A short day (a few minutes of
driving, a few minutes of charging) is a few hundred thousand frames, kept in memory so that the same
day can be fed to the agent clean and again with frame faults injected, and the two compared frame by
frame.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import can

from agent.decoding import FrameDecoder
from agent.outbox.tinydb_outbox import TinyDbOutbox
from agent.pipeline import Pipeline, PipelineReport
from agent.profile import VehicleProfile, load_profile
from agent.profiles import shipped_profile
from agent.sealing import Provenance, Sealer
from agent.segmentation import Segmenter
from carbonlink.keys import DeviceKey
from carbonlink.records import Record
from simulator.app import day_frames, reference_dbc_path
from simulator.cycles.trace import SpeedTrace
from simulator.day import DayPlan
from simulator.faults import FaultConfig, FaultInjector
from simulator.frames import FrameScheduler, load_dbc
from simulator.presets import preset
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS
from simulator.timeline import DaySimulation
from simulator.truth import TruthEntry

START_AT = datetime(2026, 11, 24, tzinfo=UTC)
"""Midnight UTC of the simulated days."""
AGENT_KEY = DeviceKey.from_seed(bytes(range(32)), "ev-accuracy-1")
OUTBOX_RECORDS = 10_000
PROVENANCE = Provenance(agent_version="0.0.0+accuracy", dbc_hash=bytes(32), profile_id="reference_ev")


@cache
def reference_profile() -> VehicleProfile:
    """The agent's shipped profile of the simulator's reference bus."""
    return load_profile(shipped_profile("reference_ev"))


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    """A day's frames in time order and what truly happened in it, one truth entry per activity."""

    plan: DayPlan
    frames: list[can.Message]
    truth: list[TruthEntry]


def simulate(plan: DayPlan, preset_name: str = "compact", seed: int = 1) -> SimulatedDay:
    """Run the simulator's day loop and frame encoder in-process, as ``carbonlink sim drive`` does."""
    scheduler = FrameScheduler(
        load_dbc(reference_dbc_path()),
        REFERENCE_SIGNALS,
        dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES),
        origin_s=plan.start_at.timestamp(),
    )
    simulation = DaySimulation(preset(preset_name).vehicle, plan, seed=seed)
    frames = list(day_frames(simulation, scheduler))
    return SimulatedDay(plan, frames, list(simulation.truth))


def with_frame_faults(frames: Iterable[can.Message], faults: FaultConfig) -> tuple[list[can.Message], FaultInjector]:
    """The frames that survive the frame faults of ``faults`` (loss, bursts, ...), and the injector's log.

    Signal faults (stuck, out-of-range, not available) act while encoding and are not applied here.
    Loss alone leaves the surviving frames untouched: they are the very objects of ``frames``.
    """
    injector = FaultInjector(faults, load_dbc(reference_dbc_path()))
    return list(injector.frames(frames)), injector


def run_agent(
    frames: Iterable[can.Message], outbox_path: Path, battery_capacity_wh: float | None = None
) -> PipelineReport:
    """Decode, segment, seal and store ``frames`` with the agent's real parts; the report keeps the records."""
    with TinyDbOutbox(outbox_path, OUTBOX_RECORDS, AGENT_KEY.public_key) as outbox:
        pipeline = Pipeline(
            FrameDecoder(reference_profile()),
            Segmenter(),
            Sealer(AGENT_KEY, outbox, PROVENANCE, battery_capacity_wh=battery_capacity_wh),
            keep_sealed=True,
        )
        report = pipeline.run(frames)
        stored = [(entry.sequence, entry.record_id) for entry in outbox.unacknowledged(OUTBOX_RECORDS)]
    sealed = [(record.sequence, record.record_id) for record in report.sealed]
    if stored != sealed:  # the records judged are the ones the agent would send
        raise AssertionError(f"the outbox holds {stored}, the pipeline sealed {sealed}")
    return report


def kinds(entries: Sequence[Record | TruthEntry]) -> list[str]:
    """``trip`` or ``charge`` for each record or truth entry, in order."""
    return [entry.type if isinstance(entry, TruthEntry) else entry.RECORD_TYPE for entry in entries]


def standing_trace(duration_s: float = 1.0) -> SpeedTrace:
    """A "cycle" that never moves: ready on, the car standing still."""
    return SpeedTrace("standing", (0.0, duration_s), (0.0, 0.0))


def speed_trace_csv(trace: SpeedTrace) -> str:
    """The trace as the ``time_s,speed_kph`` CSV that ``carbonlink sim drive --cycles`` reads."""
    rows = "".join(
        f"{time_s!r},{speed_kph!r}\n" for time_s, speed_kph in zip(trace.time_s, trace.speed_kph, strict=True)
    )
    return "time_s,speed_kph\n" + rows
