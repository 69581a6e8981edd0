"""``carbonlink keys``: generating and showing device keys, and enrolment certificates, as an operator would."""

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonlink.enrolment import read_certificate, read_certificate_unverified
from carbonlink.keys import parse_key_file
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash

from cli_runner import run_cli, run_process


def _identity(text: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in text.strip().splitlines())


def test_generate_writes_an_owner_only_key_and_prints_its_identity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Generate writes a 0600 key file and prints the device id, kid and public key it holds."""
    path = tmp_path / "car.key"
    result = run_cli(capsys, "keys", "generate", "--out", str(path))
    assert result.code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = parse_key_file(path.read_text())
    printed = _identity(result.out)
    assert printed == {
        "device_id": key.device_id,
        "kid": key.kid.hex(),
        "public_key": key.public_key.raw.hex(),
        "key_file": str(path),
    }
    assert key.seed.hex() not in result.out


def test_two_generated_keys_differ(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Each generated key is new (drawn from the OS random source)."""
    run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "a.key"))
    run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "b.key"))
    first, second = (parse_key_file((tmp_path / name).read_text()) for name in ("a.key", "b.key"))
    assert first.seed != second.seed
    assert first.device_id != second.device_id


def test_generate_refuses_to_overwrite_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An existing key is never replaced by accident; --force replaces it."""
    path = tmp_path / "car.key"
    run_cli(capsys, "keys", "generate", "--out", str(path))
    original = path.read_text()
    refused = run_cli(capsys, "keys", "generate", "--out", str(path))
    assert refused.code == 2
    assert "already exists; pass --force" in refused.err
    assert path.read_text() == original
    forced = run_cli(capsys, "keys", "generate", "--out", str(path), "--force")
    assert forced.code == 0
    assert path.read_text() != original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["car.key"]  # no temporary file left behind


def test_generate_with_a_chosen_device_id_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--device-id sets the id the key signs for; --json prints machine-readable output."""
    result = run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "k"), "--device-id", "bus-0042", "--json")
    assert result.code == 0
    assert json.loads(result.out)["device_id"] == "bus-0042"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device-id", "Bus 42"], "device id 'Bus 42'"),
        (["--out", "/nonexistent-dir/car.key"], "directory /nonexistent-dir does not exist"),
    ],
)
def test_generate_errors_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    """A bad device id or an unwritable place exits 2 with one line naming the problem."""
    result = run_cli(capsys, "keys", "generate", "--out", str(tmp_path / "k"), *argv)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_show_prints_what_generate_printed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Show reads the key file back to the same identity."""
    path = tmp_path / "car.key"
    generated = run_cli(capsys, "keys", "generate", "--out", str(path))
    shown = run_cli(capsys, "keys", "show", str(path))
    assert shown.code == 0
    assert shown.out == generated.out
    assert shown.err == ""


def test_show_warns_when_others_can_read_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A world-readable key file still loads, with a warning on stderr."""
    path = tmp_path / "car.key"
    run_cli(capsys, "keys", "generate", "--out", str(path))
    path.chmod(0o644)
    result = run_cli(capsys, "keys", "show", str(path))
    assert result.code == 0
    assert "warning" in result.err
    assert "chmod 600" in result.err


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), (b"\xff\xfe", "not UTF-8"), (b"hello = 1\n", "not a carbonlink key file")],
    ids=["missing", "binary", "foreign"],
)
def test_show_unreadable_key_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    """A missing, binary or foreign key file exits 2 with the reason."""
    path = tmp_path / "car.key"
    if content is not None:
        path.write_bytes(content)
    result = run_cli(capsys, "keys", "show", str(path))
    assert result.code == 2
    assert message in result.err


def test_keys_as_a_real_process(tmp_path: Path) -> None:
    """The installed program generates and shows keys the same way."""
    path = tmp_path / "car.key"
    generated = run_process("keys", "generate", "--out", str(path), "--json")
    assert generated.returncode == 0, generated.stderr
    shown = run_process("keys", "show", str(path), "--json")
    assert json.loads(shown.stdout) == json.loads(generated.stdout)


# --- enrol --------------------------------------------------------------------------------------------


def _keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, Path]:
    """An authority key and a device key, generated as an operator would."""
    authority, device = tmp_path / "fleet.key", tmp_path / "car.key"
    assert run_cli(capsys, "keys", "generate", "--out", str(authority), "--device-id", "fleet-authority").code == 0
    assert run_cli(capsys, "keys", "generate", "--out", str(device), "--device-id", "ev-0042").code == 0
    return authority, device


def test_enrol_writes_a_certificate_the_gateway_accepts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The certificate verifies with the authority's public key and certifies the device's id, key, class and VIN."""
    authority_path, device_path = _keys(capsys, tmp_path)
    out = tmp_path / "car.enrol"
    result = run_cli(
        capsys,
        *("keys", "enrol", "--authority", str(authority_path), "--device-key", str(device_path)),
        *("--vehicle-class", "SUV", "--vin", "wvwzzz1kz8w000001", "--valid-days", "30", "--out", str(out), "--json"),
    )
    assert result.code == 0, result.err
    authority, device = (parse_key_file(path.read_text()) for path in (authority_path, device_path))
    now = datetime.now(UTC)
    certificate = read_certificate(out.read_bytes(), [authority.public_key], now=now)
    assert certificate.device_id == "ev-0042"
    assert certificate.public_key == device.public_key
    assert certificate.vehicle_class is VehicleClass.SUV
    assert certificate.vin_hash == vin_hash("WVWZZZ1KZ8W000001")
    assert certificate.authority == "fleet-authority"
    assert certificate.expires_at - certificate.issued_at == timedelta(days=30)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # public: the vehicle's agent reads it
    printed = json.loads(result.out)
    assert printed["device_id"] == "ev-0042"
    assert printed["kid"] == device.kid.hex()
    assert printed["authority_kid"] == authority.kid.hex()
    assert printed["vin_hash"] == vin_hash("WVWZZZ1KZ8W000001").hex()
    assert printed["certificate_bytes"] == out.stat().st_size
    assert authority.seed.hex() not in result.out
    assert device.seed.hex() not in result.out


def test_enrol_from_a_public_key_and_a_device_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Without the device's key file, its public key and id suffice; the class defaults to unspecified."""
    authority_path, device_path = _keys(capsys, tmp_path)
    device = parse_key_file(device_path.read_text())
    out = tmp_path / "car.enrol"
    result = run_cli(
        capsys,
        *("keys", "enrol", "--authority", str(authority_path), "--public-key", device.public_key.raw.hex()),
        *("--device-id", "ev-0042", "--authority-name", "Fleet Ops", "--out", str(out)),
    )
    assert result.code == 0, result.err
    certificate = read_certificate_unverified(out.read_bytes())
    assert (certificate.device_id, certificate.public_key) == ("ev-0042", device.public_key)
    assert certificate.vehicle_class is VehicleClass.UNSPECIFIED
    assert certificate.vin_hash is None
    assert certificate.authority == "Fleet Ops"
    assert certificate.expires_at - certificate.issued_at == timedelta(days=365)
    printed = _identity(result.out)
    assert printed["vin_hash"] == "-"
    assert printed["certificate_file"] == str(out)


def test_enrol_refuses_to_overwrite_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An existing certificate file is replaced only with --force, and no temporary file is left behind."""
    authority_path, device_path = _keys(capsys, tmp_path)
    out = tmp_path / "car.enrol"
    out.write_bytes(b"keep me")
    argv = ("keys", "enrol", "--authority", str(authority_path), "--device-key", str(device_path), "--out", str(out))
    refused = run_cli(capsys, *argv)
    assert refused.code == 2
    assert "already exists; pass --force" in refused.err
    assert out.read_bytes() == b"keep me"
    assert run_cli(capsys, *argv, "--force").code == 0
    assert read_certificate_unverified(out.read_bytes()).device_id == "ev-0042"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["car.enrol", "car.key", "fleet.key"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--public-key", "00" * 32], "--public-key needs --device-id"),
        (["--device-key", "{device}", "--device-id", "ev-9999"], "--device-id 'ev-9999' is not the id of"),
        (["--device-key", "{device}", "--vehicle-class", "tank"], "--vehicle-class 'tank' is not one of"),
        (["--device-key", "{device}", "--vin", "WVWZZZ1KZ8W00000I"], "--vin"),
        (["--device-key", "{device}", "--valid-days", "0"], "--valid-days must be from 1 to 3650"),
        (["--device-key", "{authority}"], "cannot certify itself"),
        (["--public-key", "xyz", "--device-id", "ev-0042"], "--public-key"),
        (["--public-key", "00" * 32, "--device-id", "EV 42"], "device id 'EV 42'"),
    ],
)
def test_enrol_errors_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    """Each mistake exits 2 with one line naming it, and writes nothing."""
    authority_path, device_path = _keys(capsys, tmp_path)
    out = tmp_path / "car.enrol"
    filled = [arg.format(device=device_path, authority=authority_path) for arg in argv]
    result = run_cli(capsys, "keys", "enrol", "--authority", str(authority_path), *filled, "--out", str(out))
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()


def test_enrol_needs_exactly_one_device_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--device-key and --public-key exclude each other, and one of them is required (a usage error, exit 2)."""
    authority_path, device_path = _keys(capsys, tmp_path)
    base = ("keys", "enrol", "--authority", str(authority_path), "--out", str(tmp_path / "x"))
    assert run_cli(capsys, *base).code == 2
    both = run_cli(capsys, *base, "--device-key", str(device_path), "--public-key", "00" * 32)
    assert both.code == 2
    assert "not allowed with" in both.err
