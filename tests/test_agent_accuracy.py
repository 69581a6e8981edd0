"""The agent against the simulator's ground truth: the accuracy the agent promises.

Targets: energy and distance within 0.5 % with no faults and within 1 % with 2 % random frame loss;
exact trip and charge counts; no trip invented by ignition flapping. The truth is integrated from the
simulator's physics at its own time step, never read back from frames (``simulator/truth.py``), so it
judges the whole chain the agent runs: decode → segment → integrate → seal into the outbox.

The days are short (minutes of driving and charging, the bus asleep in between) so that the file stays
well under a minute; each day is simulated once per module and shared by the tests that judge it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import can
import pytest

from agent.adapters.can_sources import read_log
from agent.pipeline import PipelineReport
from carbonlink.records import ChargeRecord, ChargerKind, Record, TripRecord
from simulator.app import DriveOptions, build_day, run_drive
from simulator.cycles import cycle_by_name
from simulator.day import FLAP_OFF_S, Activity, Charge, DayPlan, InitialState, Trip
from simulator.faults import FaultInjector, parse_faults
from simulator.presets import preset
from simulator.truth import TruthEntry

from sim_runs import (
    START_AT,
    SimulatedDay,
    kinds,
    reference_profile,
    run_agent,
    simulate,
    speed_trace_csv,
    standing_trace,
    with_frame_faults,
)

CLEAN_TOLERANCE = 0.005
"""Energy and distance within 0.5 % of the truth on a clean bus."""
LOSSY_TOLERANCE = 0.01
"""Within 1 % with 2 % of the frames lost at random."""
LOSS = parse_faults("loss=2", seed=20_261_124)

COMPACT = preset("compact")
BMS_PACK_CYCLE_S = 0.01
"""The cycle time of BMS_Pack (pack voltage and current) in dbc/carbonlink_ev.dbc."""
REGEN_FLOOR_WH = COMPACT.vehicle.max_regen_power_w * BMS_PACK_CYCLE_S / 3600
"""The least error allowed in regenerated energy, 0.22 Wh: one pack sample interval (10 ms) at the car's
largest regenerative power, which the agent may place on either side of a trip's edge. It matters only
for a trip that regenerates so little (under 45 Wh) that 0.5 % of it is less."""

EDGE_TOLERANCE_S = 0.15
"""How far a record's start and end may lie from where the truth says they should. The agent reads
the ready state every 20 ms (VCU_Drive) and the charging state every 100 ms (OBC_Charger), and the
messages start up to 2 ms apart: an edge lands within one such cycle of the truth's. A record that
gained or lost a quarter of a second of its activity fails."""


# --- comparing records with the truth ----------------------------------------------------------------


def _figures(record: Record, entry: TruthEntry) -> Iterator[tuple[str, float, float, float]]:
    """(name, measured, true, absolute floor of the allowed error) of each figure the targets cover."""
    if isinstance(record, TripRecord):
        yield "distance_m", record.distance_m, entry.distance_m, 0.0
        yield "energy_out_wh", record.energy_out_wh, entry.energy_out_wh, 0.0
        yield "energy_regen_wh", record.energy_regen_wh, entry.energy_regen_wh, REGEN_FLOOR_WH
    else:
        yield "energy_in_wh", record.energy_in_wh, entry.energy_in_wh, 0.0
        grid_energy_wh = record.grid_energy_wh
        assert grid_energy_wh is not None, "the reference bus reports grid power; the charge record lacks it"
        yield "grid_energy_wh", grid_energy_wh, entry.grid_energy_wh, 0.0


def _assert_figures_within(records: Sequence[Record], truth: Sequence[TruthEntry], tolerance: float) -> None:
    """Every figure of every record within ``tolerance`` of the truth (or its floor); all misses listed."""
    assert kinds(records) == kinds(truth)
    misses = []
    for index, (record, entry) in enumerate(zip(records, truth, strict=True)):
        for name, measured, true, floor_wh in _figures(record, entry):
            assert true > 0, f"{entry.type} {index}: the truth's {name} is {true}; the day does not test it"
            if abs(measured - true) > max(tolerance * true, floor_wh):
                misses.append(
                    f"{entry.type} {index} {name}: {measured:.3f} vs true {true:.3f} ({measured / true - 1:+.3%})"
                )
    assert not misses, f"beyond {tolerance:.1%}:\n" + "\n".join(misses)


def _expected_edges(activity: Activity, entry: TruthEntry) -> tuple[datetime, datetime]:
    """Where the agent should start and end the record of an activity.

    A trip runs from the first moment the ready state is on (the truth counts from the first flap
    when the ignition flaps, whose first FLAP_OFF_S are off) to the bus falling asleep. A charge session
    runs while energy flows: after the plug-in hand-shake, before the time left plugged in when done
    (the truth spans the whole plug-in).
    """
    if isinstance(activity, Trip):
        late_s = FLAP_OFF_S if activity.ignition_flaps else 0.0
        return entry.start_at + timedelta(seconds=late_s), entry.end_at
    return (
        entry.start_at + timedelta(seconds=activity.handshake_s),
        entry.end_at - timedelta(seconds=activity.plugged_after_s),
    )


def _assert_edges(records: Sequence[Record], activities: Sequence[Activity], truth: Sequence[TruthEntry]) -> None:
    misses = []
    for index, (record, activity, entry) in enumerate(zip(records, activities, truth, strict=True)):
        start_at, end_at = _expected_edges(activity, entry)
        for edge, measured, expected in (("start", record.start_at, start_at), ("end", record.end_at, end_at)):
            off_s = (measured - expected).total_seconds()
            if abs(off_s) > EDGE_TOLERANCE_S:
                misses.append(f"{entry.type} {index} {edge}: {measured} vs expected {expected} ({off_s:+.3f} s)")
    assert not misses, "\n".join(misses)


def _moving(day: SimulatedDay) -> tuple[list[Activity], list[TruthEntry]]:
    """The activities that are real trips or charge sessions, and their truth: not the car standing still."""
    pairs = [
        (activity, entry)
        for activity, entry in zip(day.plan.activities, day.truth, strict=True)
        if not (isinstance(activity, Trip) and activity.cycle.distance_m == 0)
    ]
    return [activity for activity, _ in pairs], [entry for _, entry in pairs]


# --- a clean day and the same day with 2 % of its frames lost ------------------------------------------


@dataclass(frozen=True, slots=True)
class LossyRun:
    """The day's frames that survived the loss, the injector that dropped the others, the agent's report."""

    frames: list[can.Message]
    injector: FaultInjector
    report: PipelineReport


@pytest.fixture(scope="module")
def day() -> SimulatedDay:
    """Two trips of different character and an AC charge from 78 % to 80 %: about 280,000 frames."""
    plan = DayPlan(
        start_at=START_AT,
        activities=(
            Trip(cycle=cycle_by_name("urban", 11, duration_s=300.0), start_s=7.5 * 3600),
            Trip(cycle=cycle_by_name("mixed", 12, duration_s=420.0), start_s=12.25 * 3600),
            Charge(charger=COMPACT.charger("ac"), start_s=19.0 * 3600, target_soc_pct=80.0),
        ),
        initial=InitialState(soc_pct=78.0),
    )
    return simulate(plan)


@pytest.fixture(scope="module")
def clean_run(day: SimulatedDay, tmp_path_factory: pytest.TempPathFactory) -> PipelineReport:
    return run_agent(day.frames, tmp_path_factory.mktemp("clean") / "outbox.json")


@pytest.fixture(scope="module")
def lossy_run(day: SimulatedDay, tmp_path_factory: pytest.TempPathFactory) -> LossyRun:
    frames, injector = with_frame_faults(day.frames, LOSS)
    return LossyRun(frames, injector, run_agent(frames, tmp_path_factory.mktemp("lossy") / "outbox.json"))


def test_the_soc_cross_check_flags_a_capacity_that_contradicts_the_energy(day: SimulatedDay, tmp_path: Path) -> None:
    """With the pack's true capacity the SOC change agrees with the integrated energy; with a third of it, not."""
    capacity_wh = COMPACT.vehicle.battery.nominal_energy_wh
    agreeing = run_agent(day.frames, tmp_path / "true.json", battery_capacity_wh=capacity_wh)
    assert [record.quality.flags for record in agreeing.sealed] == [(), (), ()]
    contradicting = run_agent(day.frames, tmp_path / "third.json", battery_capacity_wh=capacity_wh / 3)
    flagged = ["soc_energy_mismatch" in record.quality.flags for record in contradicting.sealed]
    assert flagged == [True, True, True], [record.quality for record in contradicting.sealed]


def test_clean_day_yields_exactly_the_true_trips_and_charges(day: SimulatedDay, clean_run: PipelineReport) -> None:
    """Two trips and one charge session in the truth: the same two trips and one charge are sealed, in order."""
    assert kinds(day.truth) == ["trip", "trip", "charge"]
    assert kinds(clean_run.sealed) == kinds(day.truth)
    assert clean_run.discarded_segments == 0


def test_clean_trip_distance_and_energy_are_within_half_a_percent(day: SimulatedDay, clean_run: PipelineReport) -> None:
    """Distance, energy out and regenerated energy of each trip are within 0.5 % of the truth."""
    _assert_figures_within(clean_run.sealed[:2], day.truth[:2], CLEAN_TOLERANCE)


def test_clean_charge_energy_is_within_half_a_percent(day: SimulatedDay, clean_run: PipelineReport) -> None:
    """Energy into the pack and energy from the grid of the charge session are within 0.5 % of the truth."""
    _assert_figures_within(clean_run.sealed[2:], day.truth[2:], CLEAN_TOLERANCE)


def test_clean_records_start_and_end_where_the_truth_does(day: SimulatedDay, clean_run: PipelineReport) -> None:
    """Trips span ready-on to the bus's sleep, charges the time energy flows, each within 0.15 s."""
    _assert_edges(clean_run.sealed, day.plan.activities, day.truth)


def test_clean_records_report_a_clean_bus(clean_run: PipelineReport) -> None:
    """No frame dropped, no gap, no failed cross-check, the whole of each record covered by power samples."""
    for record in clean_run.sealed:
        quality = record.quality
        assert (quality.frames_dropped, quality.gaps, quality.out_of_range, quality.unavailable) == (0, 0, 0, 0)
        assert quality.flags == ()
        assert quality.coverage_pct > 99.9


def test_two_percent_loss_keeps_exact_counts(day: SimulatedDay, lossy_run: LossyRun) -> None:
    """With 2 % of the frames lost at random, still exactly the true trips and charges are sealed."""
    assert lossy_run.injector.randomly_lost > 0.015 * len(day.frames)
    assert kinds(lossy_run.report.sealed) == kinds(day.truth)
    assert lossy_run.report.discarded_segments == 0


def test_two_percent_loss_keeps_every_figure_within_one_percent(day: SimulatedDay, lossy_run: LossyRun) -> None:
    """Distance and energies of trips and charge stay within 1 % of the truth with 2 % frame loss."""
    _assert_figures_within(lossy_run.report.sealed, day.truth, LOSSY_TOLERANCE)


def test_two_percent_loss_keeps_the_records_edges(day: SimulatedDay, lossy_run: LossyRun) -> None:
    """With 2 % frame loss, records still start and end within 0.15 s of where the truth says they should."""
    _assert_edges(lossy_run.report.sealed, day.plan.activities, day.truth)


def _lost_frames(day: SimulatedDay, kept: Sequence[can.Message], entry: TruthEntry) -> tuple[int, int]:
    """(detectable, all) lost frames of the messages with a rolling counter during one activity.

    A loss is detectable when a frame of the same message arrived before and after it: the counter
    jumps. Frames lost before a message's first or after its last received frame leave no trace.
    """
    counted = {(message.frame_id, message.is_extended) for message in reference_profile().messages if message.counter}
    kept_ids = {id(frame) for frame in kept}
    start_s, end_s = entry.start_at.timestamp() - 1.0, entry.end_at.timestamp() + 1.0  # the bus sleeps between
    streams: dict[tuple[int, bool], list[bool]] = {key: [] for key in counted}
    for frame in day.frames:
        key = (frame.arbitration_id, frame.is_extended_id)
        if key in streams and start_s <= frame.timestamp <= end_s:
            streams[key].append(id(frame) in kept_ids)
    detectable = every = 0
    for received in streams.values():
        every += received.count(False)
        if True in received:
            first, last = received.index(True), len(received) - 1 - received[::-1].index(True)
            detectable += received[first:last].count(False)
    return detectable, every


def test_two_percent_loss_is_counted_in_each_record(day: SimulatedDay, lossy_run: LossyRun) -> None:
    """Each record's frames_dropped counts its activity's lost counter-bearing frames: all that can be seen."""
    for record, entry in zip(lossy_run.report.sealed, day.truth, strict=True):
        detectable, every = _lost_frames(day, lossy_run.frames, entry)
        assert 0 < detectable <= record.quality.frames_dropped <= every, (entry.type, record.quality, detectable)
        assert record.quality.gaps == 0  # 2 % loss never opens a one-second hole in 10 ms samples
        assert record.quality.flags == ()


def test_two_percent_loss_costs_two_percent_of_the_samples(clean_run: PipelineReport, lossy_run: LossyRun) -> None:
    """Each record integrates about 2 % fewer power samples than the same record from the clean bus."""
    for clean, lossy in zip(clean_run.sealed, lossy_run.report.sealed, strict=True):
        lost_share = 1 - lossy.quality.samples / clean.quality.samples
        assert lost_share == pytest.approx(LOSS.loss_pct / 100, abs=0.005), (clean.quality, lossy.quality)


# --- the same through log files the simulator writes ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedRun:
    """The plan ``sim drive`` made of its options, its ground truth, and the agent's report on its log."""

    plan: DayPlan
    truth: list[TruthEntry]
    report: PipelineReport


@pytest.fixture(scope="module", params=[".blf", ".asc"])
def logged_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LoggedRun:
    """``carbonlink sim drive``'s composition root writes a log (two short trips, an AC charge); the agent reads it."""
    folder = tmp_path_factory.mktemp("log")
    cycles = []
    for name, seed in (("urban", 31), ("suburban", 32)):
        path = folder / f"{name}.csv"
        path.write_text(speed_trace_csv(cycle_by_name(name, seed, duration_s=200.0)), encoding="utf-8")
        cycles.append(str(path))
    options = DriveOptions(
        cycles=tuple(cycles),
        charge="ac",
        start_at=START_AT,
        output=folder / f"day{request.param}",
        initial=InitialState(soc_pct=79.0),
    )
    drive = run_drive(options)
    assert drive.truth_path is not None
    assert drive.truth_path.is_file()
    report = run_agent(read_log(folder / f"day{request.param}"), folder / "outbox.json")
    return LoggedRun(build_day(options, preset(options.preset_name)), drive.truth, report)


def test_log_file_yields_exactly_the_true_trips_and_charges(logged_run: LoggedRun) -> None:
    """Read back from a BLF or ASC log, the day still yields exactly its two trips and one charge."""
    assert kinds(logged_run.truth) == ["trip", "trip", "charge"]
    assert kinds(logged_run.report.sealed) == kinds(logged_run.truth)


def test_log_file_figures_are_within_half_a_percent(logged_run: LoggedRun) -> None:
    """Through a log file, every trip's and charge's figures are within 0.5 % of the truth."""
    _assert_figures_within(logged_run.report.sealed, logged_run.truth, CLEAN_TOLERANCE)


def test_log_file_keeps_the_times_of_day(logged_run: LoggedRun) -> None:
    """Records read from a log carry the simulated times of day (an ASC log's start date included)."""
    _assert_edges(logged_run.report.sealed, logged_run.plan.activities, logged_run.truth)


# --- ignition flapping -------------------------------------------------------------------------------------

FLAPS = parse_faults("flaps=5", seed=0).ignition_flaps
"""``--faults flaps=5``: five ready off/on toggles at the start of each trip."""


@pytest.fixture(scope="module")
def flapping_day() -> SimulatedDay:
    """Two driven trips whose ignition flaps, each after the car stood still with a flapping ignition."""
    standing = standing_trace()
    plan = DayPlan(
        start_at=START_AT,
        activities=(
            Trip(cycle=standing, start_s=6.0 * 3600, ignition_flaps=8),
            Trip(cycle=cycle_by_name("urban", 41, duration_s=240.0), start_s=7.0 * 3600, ignition_flaps=FLAPS),
            Trip(cycle=standing, start_s=8.0 * 3600, ignition_flaps=8),
            Trip(cycle=cycle_by_name("suburban", 42, duration_s=240.0), start_s=9.0 * 3600, ignition_flaps=FLAPS),
        ),
    )
    return simulate(plan)


@pytest.fixture(scope="module")
def flapping_run(flapping_day: SimulatedDay, tmp_path_factory: pytest.TempPathFactory) -> PipelineReport:
    return run_agent(flapping_day.frames, tmp_path_factory.mktemp("flapping") / "outbox.json")


def test_flapping_ignition_invents_no_trip(flapping_day: SimulatedDay, flapping_run: PipelineReport) -> None:
    """Five ready off/on toggles before each drive: one trip per drive, as accurate and as long as without."""
    activities, truth = _moving(flapping_day)
    assert FLAPS == 5
    assert [activity.ignition_flaps for activity in activities if isinstance(activity, Trip)] == [FLAPS, FLAPS]
    assert kinds(flapping_run.sealed) == ["trip", "trip"]
    _assert_figures_within(flapping_run.sealed, truth, CLEAN_TOLERANCE)
    _assert_edges(flapping_run.sealed, activities, truth)


def test_flapping_while_standing_still_seals_nothing(flapping_day: SimulatedDay, flapping_run: PipelineReport) -> None:
    """Eight flaps and a few seconds ready with the car standing: discarded and counted, never sealed."""
    standing = [entry for entry in flapping_day.truth if entry.distance_m == 0]
    assert len(standing) == 2
    assert flapping_run.discarded_segments == len(standing)
    for entry in standing:
        assert not [
            record
            for record in flapping_run.sealed
            if record.start_at <= entry.end_at + timedelta(seconds=1)
            and record.end_at >= entry.start_at - timedelta(seconds=1)
        ]


# --- other seeds, cycles and a DC charge, clean and lossy ---------------------------------------------------------


@pytest.mark.parametrize(("seed", "cycle"), [(51, "urban"), (52, "suburban"), (53, "highway")])
def test_accuracy_holds_for_other_seeds_and_cycles(seed: int, cycle: str, tmp_path: Path) -> None:
    """One trip and a DC charge per seed: exact counts, 0.5 % clean and 1 % with 2 % frame loss."""
    plan = DayPlan(
        start_at=START_AT,
        activities=(
            Trip(cycle=cycle_by_name(cycle, seed, duration_s=180.0), start_s=8.0 * 3600),
            Charge(charger=COMPACT.charger("dc"), start_s=9.0 * 3600, target_soc_pct=47.0),
        ),
        initial=InitialState(soc_pct=45.0),
    )
    simulated = simulate(plan, seed=seed)
    lossy_frames, _ = with_frame_faults(simulated.frames, parse_faults("loss=2", seed))
    for name, frames, tolerance in (
        ("clean", simulated.frames, CLEAN_TOLERANCE),
        ("lossy", lossy_frames, LOSSY_TOLERANCE),
    ):
        report = run_agent(frames, tmp_path / f"{name}.json")
        assert kinds(report.sealed) == kinds(simulated.truth) == ["trip", "charge"], name
        _assert_figures_within(report.sealed, simulated.truth, tolerance)
        charge = report.sealed[1]
        assert isinstance(charge, ChargeRecord)
        assert charge.charger is ChargerKind.DC
