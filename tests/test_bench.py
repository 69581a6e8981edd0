"""Short runs of the benchmarks under bench/, so that they keep working (no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

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
