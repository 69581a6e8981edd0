"""``carbonlink keys``: generating and showing device keys as an operator would."""

import json
import stat
from pathlib import Path

import pytest

from carbonlink.keys import parse_key_file

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
