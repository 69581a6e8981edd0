"""``carbonlink replay``: a simulated day's log through the agent's own pipeline, against the truth and the live agent.

The day is written by the simulator as a real candump log with its ground truth. The replay must
give exactly what the agent gives for the same frames read the agent's way (python-can's reader
into the agent's pipeline), and match the physics within the agent's accuracy targets.
"""

import dataclasses
import gzip
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import can
import pytest

from agent.replay.run import ReplayOptions, ReplayProgress, replay
from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.vin import vin_hash
from simulator.app import DriveOptions, run_drive
from simulator.truth import TruthEntry

from cli_runner import run_cli
from sim_runs import run_agent

START_AT = datetime(2026, 11, 22, tzinfo=UTC)
DAY = DriveOptions(cycles=("urban", "suburban"), charge="ac", seed=7, start_at=START_AT)
DISTANCE_TOLERANCE = 0.01
ENERGY_TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True)
class LoggedDay:
    """A simulated day written as a candump log, with its ground truth."""

    log: Path
    truth: list[TruthEntry]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> LoggedDay:
    log = tmp_path_factory.mktemp("replay") / "day.log"
    report = run_drive(dataclasses.replace(DAY, output=log))
    return LoggedDay(log, report.truth)


def _figures(record: Record) -> dict[str, object]:
    """What a record measured (not who signed it or its chain position)."""
    figures: dict[str, object] = {
        "type": record.RECORD_TYPE,
        "start_at": record.start_at,
        "end_at": record.end_at,
        "odometer": (record.odometer_start_m, record.odometer_end_m),
        "soc": (record.soc_start_pct, record.soc_end_pct),
        "quality": record.quality,
    }
    if isinstance(record, TripRecord):
        figures |= {"distance_m": record.distance_m, "out": record.energy_out_wh, "regen": record.energy_regen_wh}
    else:
        assert isinstance(record, ChargeRecord)
        figures |= {"in": record.energy_in_wh, "grid": record.grid_energy_wh}
    return figures


def test_replay_equals_the_agent_on_the_same_frames(day: LoggedDay, tmp_path: Path) -> None:
    """Same frames, same pipeline: every record's figures are identical to the live agent's."""
    with can.LogReader(str(day.log)) as reader:
        live = run_agent(reader, tmp_path / "outbox.json").sealed
    replayed = replay(ReplayOptions(logs=(day.log,))).records
    assert [_figures(record) for record in replayed] == [_figures(record) for record in live]


def test_replay_matches_the_truth_within_the_agent_targets(day: LoggedDay) -> None:
    result = replay(ReplayOptions(logs=(day.log,)))
    assert [record.RECORD_TYPE for record in result.records] == [entry.type for entry in day.truth]
    for record, truth in zip(result.records, day.truth, strict=True):
        if isinstance(record, TripRecord):
            assert record.distance_m == pytest.approx(truth.distance_m, rel=DISTANCE_TOLERANCE)
            net = record.energy_out_wh - record.energy_regen_wh
            assert net == pytest.approx(truth.energy_out_wh - truth.energy_regen_wh, rel=ENERGY_TOLERANCE)
        else:
            assert isinstance(record, ChargeRecord)
            assert record.energy_in_wh == pytest.approx(truth.energy_in_wh, rel=ENERGY_TOLERANCE)
    assert result.decode.frames_used > 0
    assert result.interrupted is False
    (log,) = result.logs
    assert log.frames_kept == result.decode.frames_seen == result.frames_fed
    assert log.frames_read > log.frames_kept, "the simulator also sends frames the profile does not read"


def test_the_json_output_uses_the_ground_truth_field_names(
    day: LoggedDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: records named as in FILE.truth.json, plus the decode report; the table on stdout."""
    out = tmp_path / "day.json"
    result = run_cli(capsys, "replay", str(day.log), "--json", str(out))
    assert result.code == 0, result.err
    document = json.loads(out.read_text())
    assert document["format"] == "carbonlink-replay/1"
    assert document["interrupted"] is False
    truth = [entry.to_json() for entry in day.truth]
    assert [record["type"] for record in document["records"]] == [entry["type"] for entry in truth]
    for record, entry in zip(document["records"], truth, strict=True):
        assert set(entry) <= set(record), f"missing {set(entry) - set(record)}"
    trip = document["records"][0]
    assert trip["wh_per_km"] == pytest.approx(
        (trip["energy_out_wh"] - trip["energy_regen_wh"]) / (trip["distance_m"] / 1000)
    )
    decode = document["decode"]
    assert decode["frames_used"] > 0
    assert decode["frames_read"] >= decode["frames_used"]
    assert [log["path"] for log in decode["logs"]] == [str(day.log.resolve())]
    rows = [line for line in result.out.splitlines() if line[:1].isdigit()]
    assert [row.split()[1] for row in rows] == [entry["type"] for entry in truth]


def test_diff_of_two_runs_of_the_same_log_finds_nothing_and_a_change_is_shown(
    day: LoggedDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli(capsys, "replay", str(day.log), "--json", str(first)).code == 0
    assert run_cli(capsys, "replay", str(day.log), "--json", str(second)).code == 0
    same = run_cli(capsys, "replay", "diff", str(first), str(second))
    assert same.code == 0, same.out
    assert f"{len(day.truth)} paired, 0 only in A, 0 only in B, 0 differ" in same.out

    changed = json.loads(second.read_text())
    changed["records"][0]["distance_m"] += 250.0
    del changed["records"][-1]
    second.write_text(json.dumps(changed))
    different = run_cli(capsys, "replay", "diff", str(first), str(second))
    assert different.code == 1
    assert f"{len(day.truth) - 1} paired, 1 only in A, 0 only in B, 2 differ" in different.out
    assert "+0.250" in different.out


def test_diff_refuses_a_file_that_is_not_a_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"records": []}')
    result = run_cli(capsys, "replay", "diff", str(other), str(other))
    assert result.code == 2
    assert "is not the output of 'carbonlink replay --json'" in result.err


def test_signed_records_verify_with_the_vehicle_key(
    day: LoggedDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sign: one COSE file per record, each verifying against the key's public half."""
    key = DeviceKey.from_seed(bytes(range(32)), "replayed-car")
    key_file = tmp_path / "car.key"
    key_file.write_text(render_key_file(key))
    key_file.chmod(0o600)
    signed_dir = tmp_path / "signed"
    result = run_cli(capsys, "replay", str(day.log), "--sign", str(key_file), "--signed-dir", str(signed_dir))
    assert result.code == 0, result.err
    files = sorted(signed_dir.iterdir())
    assert [path.name.split("-", 1)[1] for path in files] == [f"{entry.type}.cose" for entry in day.truth]
    public = tmp_path / "car.pub"
    public.write_text(key.public_key.raw.hex())
    for path in files:
        checked = subprocess.run(  # noqa: S603 - our own program
            [sys.executable, "-m", "carbonlink", "inspect", str(path), "--public-key", str(public)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_log_the_profile_cannot_read_says_so_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log of other ids entirely (another car, wrong bus): a clear message, not an empty success."""
    log = tmp_path / "other.log"
    with can.Logger(str(log)) as writer:
        for index in range(100):
            writer(can.Message(timestamp=1_700_000_000 + index / 100, arbitration_id=0x7A1, data=bytes(8)))
    result = run_cli(capsys, "replay", str(log))
    assert result.code == 1
    assert "none of the frames profile reference_ev needs was found in the logs" in result.out


def test_a_missing_log_is_a_usage_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "replay", str(tmp_path / "absent.log"))
    assert result.code == 2
    assert "absent.log" in result.err


def test_ctrl_c_leaves_a_valid_partial_replay(day: LoggedDay, tmp_path: Path) -> None:
    """SIGINT mid-log: exit 130, and the JSON holds the records sealed so far, marked interrupted."""
    out = tmp_path / "partial.json"
    with subprocess.Popen(  # noqa: S603 - our own program, test arguments
        [sys.executable, "-m", "carbonlink", "replay", str(day.log), "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        first = process.stderr.readline()  # the first progress line: the replay is under way
        assert first.startswith("replay: "), first
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    document = json.loads(out.read_text())
    assert document["interrupted"] is True
    assert len(document["records"]) < len(day.truth)
    assert document["decode"]["frames_read"] > 0


def test_the_html_report_plots_the_day_with_every_record_shaded(
    day: LoggedDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--report: one self-contained page, four plots, each trip and charge shaded on each of them."""
    report = tmp_path / "day.html"
    result = run_cli(capsys, "replay", str(day.log), "--report", str(report))
    assert result.code == 0, result.err
    page = report.read_text()
    assert page.count("<svg") == 4
    trips = sum(1 for entry in day.truth if entry.type == "trip")
    charges = len(day.truth) - trips
    for plot in ("speed", "power", "soc", "energy"):
        assert sum(f'id="{plot}-trip-{n}"' in page for n in range(1, trips + 1)) == trips, plot
        assert sum(f'id="{plot}-charge-{n}"' in page for n in range(1, charges + 1)) == charges, plot
    assert "http:" not in page
    assert "https:" not in page


def test_a_day_split_over_logs_of_two_formats_replays_as_one(day: LoggedDay, tmp_path: Path) -> None:
    """The morning as ASC, the rest as gzip'd candump, given out of order: the same records as the whole log."""
    with can.LogReader(str(day.log)) as reader:
        frames = list(reader)
    split = next(i for i, frame in enumerate(frames) if frame.timestamp >= START_AT.timestamp() + 10 * 3600)
    morning, rest = tmp_path / "morning.asc", tmp_path / "rest.log"
    for path, part in ((morning, frames[:split]), (rest, frames[split:])):
        with can.Logger(str(path)) as writer:
            for frame in part:
                writer(frame)
    rest_gz = tmp_path / "rest.log.gz"
    rest_gz.write_bytes(gzip.compress(rest.read_bytes()))
    rest.unlink()

    whole = replay(ReplayOptions(logs=(day.log,))).records
    parts = replay(ReplayOptions(logs=(rest_gz, morning)))
    assert [log.format for log in parts.logs] == ["candump", "asc"]
    assert [log.compressed for log in parts.logs] == [True, False]
    assert [record.RECORD_TYPE for record in parts.records] == [record.RECORD_TYPE for record in whole]
    for got, want in zip(parts.records, whole, strict=True):
        assert got.start_at == pytest.approx(want.start_at, abs=timedelta(milliseconds=1))
        for figure, value in _figures(want).items():
            if isinstance(value, float):
                assert _figures(got)[figure] == pytest.approx(value, rel=1e-6), figure


def test_progress_follows_the_bytes_read_to_the_end_of_the_log(day: LoggedDay) -> None:
    """What the progress bar shows: bytes of the log read, rising to its size; frames read with them."""
    seen: list[ReplayProgress] = []
    replay(ReplayOptions(logs=(day.log,)), on_progress=seen.append)
    size = day.log.stat().st_size
    assert {progress.bytes_total for progress in seen} == {size}
    assert [progress.bytes_done for progress in seen] == sorted(progress.bytes_done for progress in seen)
    assert any(0 < progress.bytes_done < size for progress in seen)
    assert seen[-1].bytes_done == size
    assert seen[-1].frames_read > seen[0].frames_read


def test_the_vehicle_config_sets_up_the_replay_and_profile_still_overrides_it(
    day: LoggedDay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config: the agent's own thresholds and VIN apply (here: no trip is long enough); --profile wins."""
    config = tmp_path / "agent.toml"
    config.write_text(
        '[device]\nkey_file = "car.key"\nprofile = "no_such_profile"\nvin = "WVWZZZ1KZ8W000001"\n'
        '[source]\ninterface = "socketcan"\nchannel = "can0"\n[outbox]\npath = "outbox.json"\n'
        "[segmentation]\nmin_trip_duration_s = 1e9\nmin_trip_distance_m = 1e9\n"
    )
    wrong = run_cli(capsys, "replay", str(day.log), "--config", str(config))
    assert wrong.code == 2
    assert "no_such_profile" in wrong.err
    out = tmp_path / "tuned.json"
    tuned = run_cli(
        capsys, "replay", str(day.log), "--config", str(config), "--profile", "reference_ev", "--json", str(out)
    )
    assert tuned.code == 0, tuned.err
    records = json.loads(out.read_text())["records"]
    assert [record["type"] for record in records] == ["charge"]
    assert records[0]["vin_hash"] == vin_hash("WVWZZZ1KZ8W000001").hex()
