"""The simulator's frames carry its ground truth: re-integrated independently, they agree within 0.1 %.

This test decodes the written log with cantools and integrates V×I and the odometer itself (it
does not use the agent), so a simulator whose frames drift from its physics cannot pass.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import can
import pytest

from simulator.adapters.frame_sinks import LogFileSink
from simulator.app import day_frames
from simulator.cycles import cycle_by_name
from simulator.day import Charge, DayPlan, InitialState, Trip
from simulator.frames import FrameScheduler
from simulator.presets import preset
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS
from simulator.timeline import DaySimulation
from simulator.truth import TruthEntry

from bus_states import REFERENCE_DBC, decode, reference_database

START_AT = datetime(2026, 11, 24, tzinfo=UTC)
TOLERANCE = 0.001


def _simulate(path: Path, preset_name: str) -> list[TruthEntry]:
    vehicle_preset = preset(preset_name)
    plan = DayPlan(
        start_at=START_AT,
        activities=(
            Trip(cycle=cycle_by_name("urban", 11, duration_s=420.0), start_s=7 * 3600.0),
            Trip(cycle=cycle_by_name("nedc", 0), start_s=9 * 3600.0),
            Charge(charger=vehicle_preset.charger("dc"), start_s=11 * 3600.0, target_soc_pct=75.0),
        ),
        initial=InitialState(soc_pct=70.0),
    )
    scheduler = FrameScheduler(
        reference_database(),
        REFERENCE_SIGNALS,
        dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES),
        origin_s=START_AT.timestamp(),
    )
    simulation = DaySimulation(vehicle_preset.vehicle, plan)
    sink = LogFileSink(path)
    try:
        sink.write(day_frames(simulation, scheduler))
    finally:
        sink.close()
    return simulation.truth


def _window(frames: list[can.Message], entry: TruthEntry) -> Iterator[can.Message]:
    start_s, end_s = entry.start_at.timestamp(), entry.end_at.timestamp()
    return (frame for frame in frames if start_s <= frame.timestamp < end_s)


def _integrate(frames: list[can.Message], entry: TruthEntry) -> dict[str, float]:
    """Trapezoid integrals of pack power (split by sign) and grid power, odometer difference."""
    database = reference_database()
    pack, odometer, grid = [], [], []
    for frame in _window(frames, entry):
        message = database.get_message_by_frame_id(frame.arbitration_id)
        values = decode(message, bytes(frame.data))
        if message.name == "BMS_Pack":
            pack.append((frame.timestamp, values["BMS_PackVoltage"] * values["BMS_PackCurrent"]))
        elif message.name == "VCU_Odometer":
            odometer.append(values["VCU_Odometer"])
        elif message.name == "OBC_Charger":
            grid.append((frame.timestamp, values["OBC_GridPower"]))
    out_wh = regen_wh = grid_wh = 0.0
    for (t0, p0), (t1, p1) in pairwise(pack):
        hours = (t1 - t0) / 3600
        if (p0 >= 0) == (p1 >= 0):
            energy_wh = (p0 + p1) / 2 * hours
            out_wh, regen_wh = (out_wh + energy_wh, regen_wh) if p0 >= 0 else (out_wh, regen_wh - energy_wh)
        else:
            # Power changes sign inside the interval: split the trapezoid at the zero crossing.
            positive, negative = (p0, -p1) if p0 > 0 else (p1, -p0)
            out_wh += positive * positive / (positive + negative) / 2 * hours
            regen_wh += negative * negative / (positive + negative) / 2 * hours
    for (t0, p0), (t1, p1) in pairwise(grid):
        grid_wh += (p0 + p1) / 2 * (t1 - t0) / 3600
    return {"out": out_wh, "regen": regen_wh, "grid": grid_wh, "distance": odometer[-1] - odometer[0]}


@pytest.fixture(scope="module")
def written_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[TruthEntry], list[can.Message]]:
    path = tmp_path_factory.mktemp("sim") / "day.blf"
    truth = _simulate(path, "compact")
    with can.BLFReader(str(path)) as reader:
        frames = list(reader)
    return truth, frames


def test_day_has_the_planned_trips_and_charge(written_day: tuple[list[TruthEntry], list[can.Message]]) -> None:
    """Two trips and one charge session, in order, each with a plausible duration and SOC change."""
    truth, _ = written_day
    assert [entry.type for entry in truth] == ["trip", "trip", "charge"]
    assert truth[0].soc_end_pct < truth[0].soc_start_pct
    assert truth[2].soc_end_pct >= 75.0
    assert all(entry.end_at > entry.start_at for entry in truth)


def test_trip_frames_agree_with_ground_truth(written_day: tuple[list[TruthEntry], list[can.Message]]) -> None:
    """Energy out, regen and distance from the frames match the physics within 0.1 %."""
    truth, frames = written_day
    for entry in truth[:2]:
        measured = _integrate(frames, entry)
        assert measured["out"] == pytest.approx(entry.energy_out_wh, rel=TOLERANCE)
        assert measured["regen"] == pytest.approx(entry.energy_regen_wh, rel=TOLERANCE)
        assert measured["distance"] == pytest.approx(entry.distance_m, rel=TOLERANCE)


def test_charge_frames_agree_with_ground_truth(written_day: tuple[list[TruthEntry], list[can.Message]]) -> None:
    """Battery energy in and grid energy from the frames match the physics within 0.1 %; grid > battery."""
    truth, frames = written_day
    charge = truth[2]
    measured = _integrate(frames, charge)
    assert measured["regen"] == pytest.approx(charge.energy_in_wh, rel=TOLERANCE)
    assert measured["grid"] == pytest.approx(charge.grid_energy_wh, rel=TOLERANCE)
    assert charge.grid_energy_wh > charge.energy_in_wh
    assert measured["distance"] == 0


def test_nedc_trip_has_the_cycle_distance(written_day: tuple[list[TruthEntry], list[can.Message]]) -> None:
    """The NEDC trip drives the cycle's own distance (the odometer follows the physics)."""
    truth, _ = written_day
    assert truth[1].distance_m == pytest.approx(cycle_by_name("nedc", 0).distance_m, rel=TOLERANCE)


def test_reference_dbc_is_the_one_the_simulator_ships() -> None:
    """The tests and the simulator read the same reference DBC file."""
    from simulator.app import reference_dbc_path  # noqa: PLC0415 - only this test needs it

    assert reference_dbc_path() == REFERENCE_DBC
