"""``carbonlink profile``: checking profiles and listing the shipped ones, as an operator would."""

import shutil
from pathlib import Path

import pytest

from agent.profiles import shipped_profiles

from cli_runner import run_cli

REFERENCE_DBC = Path(__file__).resolve().parent.parent / "dbc" / "carbonlink_ev.dbc"


def test_check_prints_signals_frame_ids_and_missing_quantities(capsys: pytest.CaptureFixture[str]) -> None:
    """Checking the reference profile by name lists each mapping, the filter ids and 'missing: none'."""
    result = run_cli(capsys, "profile", "check", "reference_ev")
    assert result.code == 0
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == "profile   reference_ev: carbonlink reference EV (dbc/carbonlink_ev.dbc)"
    assert "checksum  crc8_j1850 in byte 7 of messages with *_Checksum; rolling counters *_Counter" in lines
    rows = {
        line.split()[0]: line.split(None, 3)[1:] for line in lines if line.startswith(("pack_", "ready", "charger_"))
    }
    assert rows["pack_voltage_v"] == ["BMS_Pack.BMS_PackVoltage", "V", "SNA raw 65535 (DBC)"]
    assert rows["pack_current_a"] == ["BMS_Pack.BMS_PackCurrent", "A", "SNA raw -32768 (DBC)"]
    assert rows["ready"] == ["VCU_Drive.VCU_ReadyState", "state", "true when 2 (Ready)"]
    assert rows["charger_dc"] == ["OBC_Charger.OBC_Type", "state", "true when 2 (DC); SNA raw 3 (DBC)"]
    assert lines[-2] == (
        "frame ids (6): 0x101 std (VCU_Drive), 0x132 std (BMS_Pack), 0x232 std (BMS_Status), "
        "0x3D2 std (BMS_Energy), 0x18FF1222 ext (OBC_Charger), 0x18FF5021 ext (VCU_Odometer)"
    )
    assert lines[-1] == "missing: none"


def test_check_shows_fix_ups_conversions_and_wheels_of_real_vehicles(capsys: pytest.CaptureFixture[str]) -> None:
    """The Volt's sign flip and four wheels, the Golf's km → m: what the agent will do is visible."""
    volt = run_cli(capsys, "profile", "check", "chevrolet_volt")
    assert volt.code == 0
    assert "BECMBatteryVoltageCurrent.HVBatteryCurrent  A      scale -1" in volt.out
    assert "mean of 4 wheel speeds" in volt.out
    assert "missing: soc_pct, odometer_m, charging, charger_dc, grid_power_w" in volt.out
    golf = run_cli(capsys, "profile", "check", "vw_golf_gte")
    assert golf.code == 0
    assert "Kombi_02.KBI_Kilometerstand       km → m (×1000)" in golf.out


def test_check_accepts_a_profile_file_with_a_dbc_beside_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A profile given by path finds its DBC relative to itself."""
    shutil.copy(REFERENCE_DBC, tmp_path / "bus.dbc")
    profile = tmp_path / "car.toml"
    profile.write_text(
        'id = "car"\nname = "My car"\ndbc = ["bus.dbc"]\n'
        '[quantities.soc_pct]\nmessage = "BMS_Status"\nsignal = "BMS_SOC"\nunit = "%"\n'
    )
    result = run_cli(capsys, "profile", "check", str(profile))
    assert result.code == 0
    assert "frame ids (1): 0x232 std (BMS_Status)" in result.out


def test_an_invalid_profile_exits_2_with_one_precise_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A wrong signal name: exit 2, nothing on stdout, one stderr line naming file, key and problem."""
    shutil.copy(REFERENCE_DBC, tmp_path / "bus.dbc")
    profile = tmp_path / "car.toml"
    profile.write_text(
        'id = "car"\nname = "My car"\ndbc = ["bus.dbc"]\n'
        '[quantities.soc_pct]\nmessage = "BMS_Status"\nsignal = "BMS_StateOfCharge"\nunit = "%"\n'
    )
    result = run_cli(capsys, "profile", "check", str(profile))
    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        f"carbonlink: error: {profile}: quantities.soc_pct.signal: message BMS_Status has no signal "
        "'BMS_StateOfCharge'\n"
    )


def test_an_unreadable_dbc_is_reported_on_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A multi-line complaint of cantools is folded into the one line the CLI prints."""
    # cantools' complaint about this file spans two lines ("unused SIG_VALTYPE_ entries in DBC:\n ...").
    (tmp_path / "bus.dbc").write_text('BO_ 1 A: 8 X\n SG_ S : 0|8@1+ (1,0) [0|1] "" X\n\nSIG_VALTYPE_ 1 Nope : 1;\n')
    profile = tmp_path / "car.toml"
    profile.write_text('id = "car"\nname = "My car"\ndbc = ["bus.dbc"]\n')
    result = run_cli(capsys, "profile", "check", str(profile))
    assert result.code == 2
    assert result.err.startswith(f"carbonlink: error: {profile}: dbc[0] 'bus.dbc': ")
    assert result.err.endswith('not a readable DBC: DBC: "unused SIG_VALTYPE_ entries in DBC: SIG_VALTYPE_ 1 Nope"\n')
    assert result.err.count("\n") == 1


def test_an_unknown_name_or_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A name that is not shipped lists the shipped ones; a path that is not there says so."""
    unknown = run_cli(capsys, "profile", "check", "delorean")
    assert unknown.code == 2
    assert unknown.err == (
        "carbonlink: error: no shipped profile 'delorean'; shipped: chevrolet_volt, reference_ev, tesla_model3, "
        "vw_golf_gte\n"
    )
    missing = run_cli(capsys, "profile", "check", str(tmp_path / "car.toml"))
    assert missing.code == 2
    assert missing.err.startswith(f"carbonlink: error: {tmp_path / 'car.toml'}: cannot read: ")


def test_list_shows_every_shipped_profile_with_its_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    """One row per shipped profile: its name, mapped/all quantities and the vehicle."""
    result = run_cli(capsys, "profile", "list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["profile", "quantities", "vehicle"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert set(rows) == set(shipped_profiles())
    assert rows["reference_ev"] == ["11/11", "carbonlink reference EV (dbc/carbonlink_ev.dbc)"]
    assert rows["chevrolet_volt"][0] == "4/11"
    assert rows["tesla_model3"][0] == "2/11"
