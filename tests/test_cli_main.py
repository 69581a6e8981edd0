"""The ``carbonlink`` command: help, version, subcommands, and lazy imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carbonlink import __version__
from carbonlink.cli.main import SUBCOMMANDS

from cli_runner import run_cli, run_process

HEAVY_MODULES = {
    "agent",
    "gateway",
    "simulator",
    "can",
    "cantools",
    "tinydb",
    "paho",
    "fastapi",
    "starlette",
    "uvicorn",
}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    result = run_cli(capsys, "--version")
    assert result.code == 0
    assert result.out.strip() == f"carbonlink {__version__}"


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """Carbonlink --help names each subcommand with a line of help."""
    result = run_cli(capsys, "--help")
    assert result.code == 0
    for name in SUBCOMMANDS:
        assert f"    {name} " in result.out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["keys"], "Device keys sign a vehicle's records"),
        (["keys", "generate"], "--device-id"),
        (["keys", "show"], "never the private key"),
        (["inspect"], "--public-key"),
        (["demo"], "--data-dir"),
        (["sim"], "simulate a day of driving and charging"),
        (["sim", "drive"], "--faults"),
    ],
)
def test_every_subcommand_has_useful_help(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    """Carbonlink X --help describes X and its options."""
    result = run_cli(capsys, *argv, "--help")
    assert result.code == 0
    assert expected in result.out


def test_missing_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running carbonlink without a command exits 2 and says what is missing."""
    result = run_cli(capsys)
    assert result.code == 2
    assert "COMMAND" in result.err


def test_module_entry_point_matches_the_command() -> None:
    """Python -m carbonlink is the same program as the console script."""
    result = run_process("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"carbonlink {__version__}"


def test_keys_command_imports_no_app(tmp_path: Path) -> None:
    """Carbonlink keys loads neither the apps nor their heavy libraries (FastAPI, python-can, ...)."""
    key_path = tmp_path / "car.key"
    probe = (
        "import json, sys\n"
        "from carbonlink.cli.main import main\n"
        f"main(['keys', 'generate', '--out', {str(key_path)!r}])\n"
        f"main(['keys', 'show', {str(key_path)!r}])\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own code
        [sys.executable, "-c", probe], capture_output=True, timeout=60, check=True, text=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "carbonlink" in loaded
    assert not loaded & HEAVY_MODULES
