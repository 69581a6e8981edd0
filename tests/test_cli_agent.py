"""``carbonlink agent run`` and ``carbonlink agent status`` as users run them (real processes)."""

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carbonlink.cli.main import main
from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.vin import vin_hash

from cli_runner import run_cli, run_process

DEVICE = "ev-cli-agent-1"
VIN = "WVWZZZ1KZ8W000001"


@pytest.fixture
def short_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A simulated 90 s drive and a short charge as an .asc log (a few seconds to make)."""
    trace = tmp_path / "short.csv"
    trace.write_text("time_s,speed_kph\n0,0\n10,36\n70,36\n80,0\n90,0\n", encoding="utf-8")
    log = tmp_path / "day.asc"
    code = main(["sim", "drive", "--out", str(log), "--cycles", str(trace), "--start-at", "2026-11-24T00:00:00Z"])
    capsys.readouterr()
    assert code == 0
    return log


def _config(directory: Path, source: str, extra: str = "") -> Path:
    key_file = directory / "car.key"
    key_file.write_text(render_key_file(DeviceKey.from_seed(bytes([7]) * 32, DEVICE)), encoding="utf-8")
    key_file.chmod(0o600)
    config = directory / "agent.toml"
    config.write_text(
        f'[device]\nkey_file = "car.key"\nprofile = "reference_ev"\nvin = "{VIN}"\n\n'
        f'[source]\n{source}\n\n[outbox]\npath = "outbox.json"\n{extra}',
        encoding="utf-8",
    )
    return config


def test_run_over_a_log_seals_records_and_status_shows_them(tmp_path: Path, short_day: Path) -> None:
    """Without [mqtt] the records wait in the outbox; status lists them, JSON and text alike."""
    config = _config(tmp_path, f'log_file = "{short_day.name}"')
    run = run_process("agent", "run", "--config", str(config), "--log-format", "json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.decode().splitlines()]
    sealed = [event for event in events if event["event"] == "record.sealed"]
    assert [event["fields"]["type"] for event in sealed] == ["trip", "charge"]
    assert events[-1]["event"] == "agent.stopped"
    assert events[-1]["fields"]["reason"] == "log_finished"

    shown = run_process("agent", "status", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["running"] is False
    assert status["device_id"] == DEVICE
    assert (status["outbox"]["pending"], status["outbox"]["acknowledged_total"]) == (2, 0)
    assert status["uplink"] is None
    assert status["pipeline"]["records_sealed"] == 2

    text = run_process("agent", "status", "--config", str(config))
    assert text.returncode == 0
    lines = text.stdout.decode()
    assert f"agent {DEVICE}: not running" in lines
    assert "2 pending" in lines
    assert "none configured" in lines
    assert "type=charge sequence=2" in lines


def test_records_carry_the_profile_dbc_and_vin(tmp_path: Path, short_day: Path) -> None:
    """Each sealed record names the profile, the DBC's hash and the configured VIN's hash."""
    from agent.outbox.tinydb_outbox import TinyDbOutbox  # noqa: PLC0415 - opened after the agent exits
    from carbonlink.envelope import verify  # noqa: PLC0415
    from simulator.app import reference_dbc_path  # noqa: PLC0415

    config = _config(tmp_path, f'log_file = "{short_day.name}"')
    assert run_process("agent", "run", "--config", str(config)).returncode == 0
    key = DeviceKey.from_seed(bytes([7]) * 32, DEVICE)
    with TinyDbOutbox(tmp_path / "outbox.json", 10, key.public_key) as outbox:
        records = [verify(entry.signed, key.public_key) for entry in outbox.unacknowledged(10)]
    assert {record.profile_id for record in records} == {"reference_ev"}
    assert {record.dbc_hash for record in records} == {hashlib.sha256(reference_dbc_path().read_bytes()).digest()}
    assert {record.vin_hash for record in records} == {vin_hash(VIN)}
    assert [record.sequence for record in records] == [1, 2]
    # An .asc log states its start date; the records are placed at the simulated day, not at 1970.
    assert records[0].start_at == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)


def test_a_second_run_over_the_same_log_seals_nothing_twice(tmp_path: Path, short_day: Path) -> None:
    """The outbox remembers where the last sealed record ended; the log is not sealed again."""
    config = _config(tmp_path, f'log_file = "{short_day.name}"')
    assert run_process("agent", "run", "--config", str(config)).returncode == 0
    again = run_process("agent", "run", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert b"source.resume" in again.stderr
    assert b"record.sealed" not in again.stderr
    status = json.loads(run_process("agent", "status", "--config", str(config), "--json").stdout)
    assert status["outbox"]["pending"] == 2


@pytest.mark.parametrize(
    ("source", "extra", "message"),
    [
        ('log_file = "missing.blf"', "", "CAN log .*missing.blf does not exist"),
        ('interface = "no-such-interface"\nchannel = "x"', "", "cannot open CAN interface 'no-such-interface'"),
        ('log_file = "day.asc"', '\n[mqtt]\nhost = "b"\nca_flie = "x"\n', r"\[mqtt\] unknown key 'ca_flie'"),
        ('log_file = "day.asc"', "\n[radio]\n", r"unknown section\(s\) radio"),
    ],
)
def test_bad_setups_fail_with_one_precise_line(
    tmp_path: Path, short_day: Path, source: str, extra: str, message: str
) -> None:
    """A bad source, config or section: exit 2 and one stderr line naming the problem."""
    assert short_day.name == "day.asc"
    config = _config(tmp_path, source, extra)
    run = run_process("agent", "run", "--config", str(config))
    assert run.returncode == 2
    assert run.stderr.decode().splitlines()[-1].startswith("carbonlink: ")
    assert re.search(message, run.stderr.decode()), run.stderr.decode()


def test_the_command_line_source_replaces_the_configs(tmp_path: Path, short_day: Path) -> None:
    """--log (or -i/-c) replaces [source]: a bus config can be pointed at a recorded log."""
    config = _config(tmp_path, 'interface = "socketcan"\nchannel = "can9"')
    run = run_process("agent", "run", "--config", str(config), "--log", str(short_day))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count(b"record.sealed") == 2
    bad = run_process("agent", "run", "--config", str(config), "-i", "virtual")
    assert bad.returncode == 2
    assert "channel is required with interface" in bad.stderr.decode()


def test_a_profile_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """An unknown shipped profile id is refused with the list of shipped ones."""
    config = _config(tmp_path, 'log_file = "day.asc"')
    config.write_text(config.read_text().replace('"reference_ev"', '"reference_vw"'), encoding="utf-8")
    run = run_process("agent", "run", "--config", str(config))
    assert run.returncode == 2
    assert "no shipped profile 'reference_vw'; shipped: " in run.stderr.decode()


def test_status_before_any_run_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Status of an agent that never ran with this config is an error that says so."""
    config = _config(tmp_path, 'log_file = "day.asc"')
    result = run_cli(capsys, "agent", "status", "--config", str(config))
    assert result.code == 2
    assert "has not run with this outbox yet" in result.err


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    """The key file the config names must exist; the error names it."""
    config = _config(tmp_path, 'log_file = "day.asc"')
    (tmp_path / "car.key").unlink()
    run = run_process("agent", "run", "--config", str(config))
    assert run.returncode == 2
    assert "car.key" in run.stderr.decode()
