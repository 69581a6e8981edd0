"""Running the ``carbonlink`` command in-process or as a real process, for CLI tests."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from carbonlink.cli.main import main


@dataclass(frozen=True)
class Outcome:
    """Exit code and output of one command run."""

    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """Run ``carbonlink ARGV`` in this process (fast), catching argparse's exits."""
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def run_process(*argv: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m carbonlink ARGV`` as its own process, bounded in time."""
    return subprocess.run(  # noqa: S603 - fixed interpreter and our own module
        [sys.executable, "-m", "carbonlink", *argv],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=os.environ | {"PYTHONWARNINGS": "error"},
    )
