"""``carbonlink sim drive`` as a fleet engineer uses it: files, buses, ground truth, faults, bad input."""

import json
import threading
from datetime import datetime
from pathlib import Path

import can
import pytest

from bus_states import REFERENCE_DBC
from cli_runner import run_cli, run_process

START = "2026-11-24T00:00:00Z"
SHORT_DAY = ("--cycles", "nedc", "--charge", "dc", "--soc", "76", "--start-at", START)


@pytest.fixture
def short_trace(tmp_path: Path) -> Path:
    """A 90 s speed trace: enough frames to check a format or a bus, quick to simulate."""
    trace = tmp_path / "short.csv"
    trace.write_text("time_s,speed_kph\n0,0\n10,36\n70,36\n80,0\n90,0\n")
    return trace


def test_drive_writes_blf_and_ground_truth(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A .blf of the day and FILE.truth.json with one entry per trip and charge session."""
    out = tmp_path / "day.blf"
    result = run_cli(capsys, "sim", "drive", "--out", str(out), *SHORT_DAY)
    assert result.code == 0, result.err
    truth = json.loads((tmp_path / "day.truth.json").read_text())
    assert [entry["type"] for entry in truth["entries"]] == ["trip", "charge"]
    trip, charge = truth["entries"]
    assert set(trip) == {
        "type", "start_at", "end_at", "distance_m", "energy_out_wh", "energy_regen_wh",
        "soc_start_pct", "soc_end_pct", "odometer_start_m", "odometer_end_m",
    }  # fmt: skip
    assert {"energy_in_wh", "grid_energy_wh"} <= set(charge)
    assert charge["grid_energy_wh"] > charge["energy_in_wh"] > 0
    assert trip["start_at"].startswith("2026-11-24T07:30:00")
    with can.BLFReader(str(out)) as reader:
        frames = sum(1 for _ in reader)
    assert f"{frames:,} frames" in result.out
    assert not (tmp_path / "day.faults.json").exists()


@pytest.mark.parametrize("suffix", [".asc", ".log", ".csv", ".trc"])
def test_drive_writes_any_python_can_log_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, short_trace: Path, suffix: str
) -> None:
    """The log format follows the file name, and python-can reads the frames back."""
    out = tmp_path / f"day{suffix}"
    result = run_cli(
        capsys, "sim", "drive", "--out", str(out), "--cycles", str(short_trace), "--charge", "none", "--start-at", START
    )
    assert result.code == 0, result.err
    with can.LogReader(str(out)) as reader:
        first = next(iter(reader))
    assert first.arbitration_id in {0x101, 0x132, 0x1A5, 0x232, 0x3D2, 0x18FF5021}


def test_drive_with_faults_logs_them(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--faults injects seeded faults and writes what it injected beside the ground truth."""
    out = tmp_path / "day.blf"
    result = run_cli(
        capsys, "sim", "drive", "--out", str(out), *SHORT_DAY, "--faults", "loss=2,bursts=60,flaps=2,sna=0.1"
    )
    assert result.code == 0, result.err
    log = json.loads((tmp_path / "day.faults.json").read_text())
    assert log["config"]["loss_pct"] == 2.0
    kinds = {entry["kind"] for entry in log["injected"]}
    assert {"burst", "sna", "ignition_flaps"} <= kinds
    assert log["summary"]["random_loss"] > 0
    assert log["summary"]["ignition_flaps"] == 1
    assert "random_loss" in result.out


def test_drive_to_a_virtual_bus(tmp_path: Path, short_trace: Path) -> None:
    """-i virtual -c CHANNEL sends the frames on a python-can bus that another node receives."""
    received: list[can.Message] = []
    with can.Bus(interface="virtual", channel="carbonlink-sim-test", receive_own_messages=False) as listener:
        done = threading.Event()

        def collect() -> None:
            while not done.is_set():
                message = listener.recv(timeout=0.2)
                if message is not None:
                    received.append(message)

        thread = threading.Thread(target=collect)
        thread.start()
        try:
            from carbonlink.cli.main import main  # noqa: PLC0415 - in-process: virtual buses live in one process

            code = main(
                ["sim", "drive", "-i", "virtual", "-c", "carbonlink-sim-test", "--speed", "0",
                 "--cycles", str(short_trace), "--charge", "none", "--start-at", START,
                 "--truth", str(tmp_path / "t.json")]
            )  # fmt: skip
        finally:
            done.set()
            thread.join(timeout=10)
    assert code == 0
    assert len(received) > 15_000  # about 221 frames/s over 103 s of ready time
    # The frames carry the simulated time, not the instant of sending (a 103 s drive sent in ~1 s).
    assert received[-1].timestamp - received[0].timestamp > 100.0
    assert received[0].timestamp >= datetime.fromisoformat(START).timestamp()
    assert json.loads((tmp_path / "t.json").read_text())["entries"][0]["type"] == "trip"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cycles", "autobahn"], "unknown"),
        (["--preset", "tractor"], "tractor"),
        (["--faults", "noise=1"], "KEY=VALUE"),
        (["--start-at", "yesterday"], "--start-at"),
        (["--soc", "130"], "soc_pct"),
        (["--cycles", "missing.csv"], "cannot read speed trace"),
    ],
)
def test_bad_input_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    """Unknown cycles and presets, bad faults, times and SOC exit 2 naming the problem."""
    result = run_cli(capsys, "sim", "drive", "--out", str(tmp_path / "x.blf"), "--start-at", START, *argv)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_malformed_speed_trace_names_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A CSV speed trace with a bad row is refused with the row's line number."""
    trace = tmp_path / "trace.csv"
    trace.write_text("time_s,speed_kph\n0,0\n1,abc\n")
    result = run_cli(
        capsys, "sim", "drive", "--out", str(tmp_path / "x.blf"), "--cycles", str(trace), "--start-at", START
    )
    assert result.code == 2
    assert "line 3" in result.err


def test_user_speed_trace_drives_its_distance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, short_trace: Path
) -> None:
    """A user's time_s,speed_kph trace is driven as given: 50 m up to 36 km/h, 600 m at it, 50 m down."""
    result = run_cli(
        capsys, "sim", "drive", "--out", str(tmp_path / "x.blf"), "--cycles", str(short_trace), "--charge", "none",
        "--start-at", START,
    )  # fmt: skip
    assert result.code == 0, result.err
    entry = json.loads((tmp_path / "x.truth.json").read_text())["entries"][0]
    assert entry["distance_m"] == pytest.approx(700.0, rel=0.002)


def test_dbc_lacking_a_message_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--dbc with a database that lacks a message the simulator sends exits 2 naming it."""
    text = REFERENCE_DBC.read_text()
    trimmed = tmp_path / "trimmed.dbc"
    trimmed.write_text(text[: text.index("BO_ 978 BMS_Energy")] + text[text.index("BO_ 2566869025") :])
    result = run_cli(
        capsys, "sim", "drive", "--out", str(tmp_path / "x.blf"), "--dbc", str(trimmed), "--start-at", START
    )
    assert result.code == 2
    assert "BMS_Energy" in result.err


@pytest.mark.parametrize(("name", "message"), [("day.txt", "unknown log format"), ("nodir/day.blf", "does not exist")])
def test_unwritable_outputs_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, message: str
) -> None:
    """An unknown log suffix or a missing directory is refused before any simulation runs."""
    result = run_cli(capsys, "sim", "drive", "--out", str(tmp_path / name), "--start-at", START)
    assert result.code == 2
    assert message in result.err


def test_no_output_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out or a bus there is nowhere to send frames: exit 2."""
    result = run_cli(capsys, "sim", "drive", "--start-at", START, "--cycles", "urban")
    assert result.code == 2
    assert "--out" in result.err


def test_sim_help_as_a_real_process() -> None:
    """Carbonlink sim drive --help explains the outputs and faults."""
    result = run_process("sim", "drive", "--help")
    assert result.returncode == 0
    assert b"--faults" in result.stdout
    assert b"truth.json" in result.stdout
