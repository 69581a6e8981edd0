"""Short runs of the benchmarks under bench/, so that they keep working (no timing is asserted)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_envelope_benchmark_prints_ratios() -> None:
    """bench/envelope.py runs and prints a ratio per operation against bare Ed25519."""
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own script
        [sys.executable, str(BENCH / "envelope.py"), "--records", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    for operation in ("sign", "verify"):
        ours, bare, ratio = (float(value) for value in lines[operation][1:4])
        assert ours > 0
        assert bare > 0
        assert abs(ratio - ours / bare) < 0.01 + 0.01 * ratio


def test_simulator_benchmark_prints_its_ratio() -> None:
    """bench/sim_blf.py runs a short simulation and prints the ratio against python-can's writer."""
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own script
        [sys.executable, str(BENCH / "sim_blf.py"), "--minutes", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    ratio_line = next(line for line in result.stdout.splitlines() if line.startswith("ratio "))
    assert float(ratio_line.split()[1]) > 0
    assert "frames" in result.stdout


def test_agent_memory_benchmark_reports_each_day() -> None:
    """bench/agent_memory.py runs the agent over two short days and reports RSS per day, peak and verdict."""
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own script
        [sys.executable, str(BENCH / "agent_memory.py"), "--days", "2", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr  # 1 is a FAIL against the target: not this test's business
    lines = result.stdout.splitlines()
    days = [line.split() for line in lines if line.startswith(("Mon 2026-11-23", "Tue 2026-11-24"))]
    assert len(days) == 2
    for day in days:
        assert int(day[2].replace(",", "")) > 0  # frames
        assert int(day[3]) > 0  # records sealed that day
        assert float(day[6]) > 0  # RSS MB
    peak = next(line for line in lines if line.startswith("peak RSS "))
    assert float(peak.split("ratio ")[1].split()[0]) > 0
    verdict = next(line for line in lines if line.startswith("target: "))
    assert verdict.endswith(("PASS", "FAIL"))


def test_gateway_intake_benchmark_prints_its_ratios() -> None:
    """bench/gateway_intake.py runs the naive loop and the gateway over a short flood and prints both ratios."""
    if shutil.which("mosquitto") is None and shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin") is None:
        pytest.fail("mosquitto not found: install it: apt-get install -y mosquitto", pytrace=False)
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own script
        [sys.executable, str(BENCH / "gateway_intake.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr  # 1 may be a FAIL against the target: not this test's business
    assert not result.stderr, result.stderr  # every ack was 'accepted' and every process stopped cleanly
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("naive ", "ours "))}
    for run in ("naive", "ours"):
        assert float(rows[run][1].replace(",", "")) > 0  # records/s
        assert float(rows[run][2]) > 0  # CPU µs per record
    for name in ("ratio", "cpu_ratio"):
        line = next(line for line in lines if line.startswith(f"{name} "))
        assert float(line.split()[1]) > 0
    verdict = next(line for line in lines if line.startswith("target: "))
    assert verdict.endswith(("PASS", "FAIL"))


def test_replay_readers_benchmark_prints_both_ratios() -> None:
    """bench/replay_readers.py runs the obvious loop and ours on a short full-bus .log and .asc; both ratios print."""
    result = subprocess.run(  # noqa: S603 - fixed interpreter and our own script
        [sys.executable, str(BENCH / "replay_readers.py"), "--minutes", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr  # 1 is a FAIL against the target: not this test's business
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("log ", "asc "))}
    for suffix in ("log", "asc"):
        baseline, ours, ratio = (float(value.replace(",", "")) for value in rows[suffix][1:4])
        assert baseline > 0
        assert ours > 0
        assert abs(ratio - ours / baseline) < 0.01 + 0.01 * ratio
        decoded = rows[suffix][4:]
        assert decoded[1] == "/"  # frames decoded by the baseline / by ours: the same log read by both
        assert decoded[4] == decoded[6]  # every frame of the log counted on both sides
        line = next(line for line in lines if line.startswith(f"ratio_{suffix} "))
        assert float(line.split()[1]) > 0
    verdict = next(line for line in lines if line.startswith("target: "))
    assert verdict.endswith(("PASS", "FAIL"))
