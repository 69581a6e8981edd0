"""The simulator's composition root: build the vehicle, the day, the frame encoder and the sink; run."""

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import can

from simulator.adapters.frame_sinks import BusSink, FrameSink, LogFileSink, open_bus
from simulator.cycles import cycle_by_name
from simulator.cycles.csv_trace import parse_speed_trace_csv
from simulator.cycles.trace import SpeedTrace
from simulator.day import Activity, Charge, DayPlan, InitialState, Trip
from simulator.errors import CycleError, SimulatorError
from simulator.faults import FaultConfig, FaultInjector, InjectedFault
from simulator.frames import FrameScheduler, load_dbc
from simulator.presets import VehiclePreset, preset
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS
from simulator.timeline import DaySimulation
from simulator.truth import TruthEntry

REFERENCE_DBC_NAME = "carbonlink_ev.dbc"

TRIP_STARTS_S = (7.5 * 3600, 12.25 * 3600, 17.67 * 3600, 20.0 * 3600, 21.5 * 3600)
"""Ready-on times of the day's trips (07:30, 12:15, 17:40, then evening errands)."""
TRIP_SPACING_S = 1.5 * 3600
CHARGE_DELAY_S = 20 * 60
"""Plug-in this long after the last trip ends (home, dinner, charger)."""


def reference_dbc_path() -> Path:
    """The reference EV's DBC: beside the packages in a checkout, inside them in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "dbc" / REFERENCE_DBC_NAME, here.parent / "dbc" / REFERENCE_DBC_NAME):
        if candidate.is_file():
            return candidate
    raise SimulatorError(f"the reference DBC {REFERENCE_DBC_NAME} is not installed; pass --dbc")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveOptions:
    """Everything ``carbonlink sim drive`` was asked for."""

    preset_name: str = "compact"
    cycles: tuple[str, ...] = ("mixed", "urban", "mixed")
    """Cycle names or paths of ``time_s,speed_kph`` CSV files, one per trip."""
    charge: str | None = "ac"
    seed: int = 1
    start_at: datetime
    dbc_path: Path | None = None
    output: Path | None = None
    interface: str | None = None
    channel: str | None = None
    bitrate: int | None = None
    fd: bool = False
    speed: float = 0.0
    truth_path: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    initial: InitialState = field(default_factory=InitialState)


@dataclass(frozen=True, slots=True)
class DriveReport:
    """What a run produced."""

    frames: int
    truth: list[TruthEntry]
    target: str
    truth_path: Path | None
    wall_s: float
    faults: dict[str, int]
    """Injected faults by kind (``random_loss`` counts lost frames)."""
    faults_path: Path | None


def load_cycle(spec: str, seed: int) -> SpeedTrace:
    """A named cycle, or a speed-trace CSV when ``spec`` names a ``.csv`` file."""
    if spec.lower().endswith(".csv"):
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise CycleError(f"cannot read speed trace {path}: {err}") from err
        return parse_speed_trace_csv(text, path.stem)
    return cycle_by_name(spec, seed)


def build_day(options: DriveOptions, vehicle_preset: VehiclePreset) -> DayPlan:
    """The day the options ask for: a trip per cycle, then the charge session."""
    activities: list[Activity] = []
    start_s = TRIP_STARTS_S[0]
    for index, spec in enumerate(options.cycles):
        cycle = load_cycle(spec, options.seed + index)
        planned_s = TRIP_STARTS_S[index] if index < len(TRIP_STARTS_S) else start_s
        trip = Trip(cycle=cycle, start_s=max(planned_s, start_s), ignition_flaps=options.faults.ignition_flaps)
        activities.append(trip)
        start_s = trip.end_s + TRIP_SPACING_S
    if options.charge is not None:
        charger = vehicle_preset.charger(options.charge)
        last_end_s = activities[-1].end_s if activities and isinstance(activities[-1], Trip) else 0.0
        activities.append(Charge(charger=charger, start_s=last_end_s + CHARGE_DELAY_S))
    return DayPlan(start_at=options.start_at, activities=tuple(activities), initial=options.initial)


def day_frames(simulation: DaySimulation, scheduler: FrameScheduler) -> Iterator[can.Message]:
    """The frames of a simulated day in time order."""
    active: tuple[str, ...] = ()
    for step in simulation.steps():
        if step.messages != active:
            scheduler.activate(step.messages, step.time_s)
            active = step.messages
        yield from scheduler.frames_until(step.time_s + step.step_s, step.state)
    scheduler.activate((), 0.0)


def run_drive(options: DriveOptions) -> DriveReport:
    """Simulate the day of ``options`` and write its frames and ground truth."""
    vehicle_preset = preset(options.preset_name)
    vehicle = vehicle_preset.vehicle
    plan = build_day(options, vehicle_preset)
    database = load_dbc(options.dbc_path or reference_dbc_path())
    injector = FaultInjector(options.faults, database) if options.faults.enabled else None
    scheduler = FrameScheduler(
        database,
        REFERENCE_SIGNALS,
        dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES),
        origin_s=options.start_at.timestamp(),
        override=injector.signal if injector is not None and options.faults.signal_faults_enabled else None,
    )
    simulation = DaySimulation(vehicle, plan, seed=options.seed)
    sink, target = _open_sink(options)
    started = time.monotonic()
    frames = day_frames(simulation, scheduler)
    try:
        count = sink.write(frames if injector is None else injector.frames(frames))
    finally:
        sink.close()
    truth_path = options.truth_path or (_beside(options.output, ".truth.json") if options.output else None)
    if truth_path is not None:
        write_truth(truth_path, simulation.truth, options, vehicle.name)
    log = _flap_entries(plan) + (injector.log if injector is not None else [])
    summary = injector.summary() if injector is not None else {}
    if log and log[0].kind == "ignition_flaps":
        summary["ignition_flaps"] = sum(1 for entry in log if entry.kind == "ignition_flaps")
    faults_path = None
    if truth_path is not None and options.faults.enabled:
        faults_path = _beside(truth_path, ".faults.json", strip=".truth.json")
        _write_json(
            faults_path,
            {"config": asdict(options.faults), "summary": summary, "injected": [entry.to_json() for entry in log]},
        )
    return DriveReport(count, simulation.truth, target, truth_path, time.monotonic() - started, summary, faults_path)


def _flap_entries(plan: DayPlan) -> list[InjectedFault]:
    """Ignition flapping is planned, not injected into frames: log it from the plan."""
    origin_s = plan.start_at.timestamp()
    return [
        InjectedFault(origin_s + activity.start_s, "ignition_flaps", f"{activity.ignition_flaps} ready off/on toggles")
        for activity in plan.activities
        if isinstance(activity, Trip) and activity.ignition_flaps
    ]


def _beside(path: Path, suffix: str, strip: str | None = None) -> Path:
    """``day.blf`` → ``day.truth.json``: a companion file named after ``path``."""
    name = path.name
    if strip is not None and name.endswith(strip):
        return path.with_name(name[: -len(strip)] + suffix)
    return path.with_name(path.stem + suffix)


def _open_sink(options: DriveOptions) -> tuple[FrameSink, str]:
    if options.output is not None:
        return LogFileSink(options.output), str(options.output)
    if options.interface is None or options.channel is None:
        raise SimulatorError("give an output file (--out) or a bus (-i/--interface and -c/--channel)")
    bus = open_bus(options.interface, options.channel, options.bitrate, fd=options.fd)
    return BusSink(bus, options.speed), f"{options.interface}:{options.channel}"


def write_truth(path: Path, truth: Sequence[TruthEntry], options: DriveOptions, vehicle_name: str) -> None:
    """The ground-truth JSON file: the run's settings and one entry per trip and charge session."""
    body = {
        "vehicle": vehicle_name,
        "preset": options.preset_name,
        "seed": options.seed,
        "cycles": list(options.cycles),
        "entries": [entry.to_json() for entry in truth],
    }
    _write_json(path, body)


def _write_json(path: Path, body: object) -> None:
    try:
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise SimulatorError(f"cannot write {path}: {err.strerror}") from err
