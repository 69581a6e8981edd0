"""``carbonlink demo``: simulated vehicles → their own agents → MQTT → gateway → credits, checked against the truth.

Each test runs the real program (``python -m carbonlink demo``): the vehicles' agents, the gateway,
SQLite and the broker are the real ones — a Mosquitto started for the test, or the demo's own
embedded broker. The demo checks itself (its exit status), and each test checks it again from the
outside: the credits in the run's ``gateway.db`` against every vehicle's ``dayN.truth.json``, the
forwarded credits file, and the exported ledger through ``carbonlink audit``.
"""

import json
import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from carbonlink.methodology import TripEnergy, compute_reduction, resolve_parameters
from carbonlink.vehicles import VehicleClass
from gateway.adapters.parameter_file import load_parameters
from gateway.crediting.model import CreditQuery, CreditState
from gateway.store import open_store

from cli_runner import run_cli
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401 - a fixture

DEMO_TIMEOUT_S = 300.0
DISTANCE_TOLERANCE = 0.01
"""The agent's distance target (docs/agent.md)."""
REDUCTION_TOLERANCE = 0.02
"""The agent's energy target, carried through the methodology."""


def _demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own program, test arguments
        [sys.executable, "-m", "carbonlink", "demo", *args],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
        cwd=cwd,
    )


def _table(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("VEHICLE"))
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        rows[cells[0]] = cells
        if cells[0] == "total":
            return rows
    raise AssertionError(f"no total row in:\n{stdout}")


def _run_directory(data_dir: Path) -> Path:
    (run_dir,) = data_dir.iterdir()
    return run_dir


def _truth_trips(vehicle_dir: Path) -> list[dict[str, object]]:
    trips: list[dict[str, object]] = []
    for day in sorted(vehicle_dir.glob("day*.truth.json")):
        trips.extend(entry for entry in json.loads(day.read_text())["entries"] if entry["type"] == "trip")
    return trips


def _assert_credits_match_the_truth(run_dir: Path, vehicles: dict[str, str]) -> int:
    """Each vehicle's credits, read from its store, against its ground truth; the number of credits."""
    parameters = load_parameters(None)
    store = open_store(f"sqlite:///{run_dir / 'gateway.db'}")
    try:
        total = 0
        for device_id, vehicle_class in vehicles.items():
            trips = _truth_trips(run_dir / device_id)
            assert trips, f"{device_id} has no ground truth"
            found = sorted(
                store.ledger.credits(CreditQuery(device_id=device_id, limit=100)), key=lambda c: c.odometer_start_m
            )
            assert len(found) == len(trips), f"{device_id}: {len(found)} credits for {len(trips)} true trips"
            for credit, trip in zip(found, trips, strict=True):
                assert credit.state is CreditState.ISSUED
                assert credit.odometer_end_m - credit.odometer_start_m == pytest.approx(
                    trip["distance_m"], rel=DISTANCE_TOLERANCE
                )
                resolved = resolve_parameters(
                    parameters,
                    vehicle_class=VehicleClass(vehicle_class),
                    grid_region="cn",
                    year=datetime.fromisoformat(str(trip["end_at"])).year,
                )
                truly = TripEnergy(
                    distance_m=float(str(trip["distance_m"])),
                    energy_out_wh=float(str(trip["energy_out_wh"])),
                    energy_regen_wh=float(str(trip["energy_regen_wh"])),
                )
                expected = compute_reduction(truly, [], resolved).reduction_co2e_g
                assert credit.reduction_co2e_g == pytest.approx(expected, rel=REDUCTION_TOLERANCE)
            total += len(found)
        return total
    finally:
        store.close()


def _audit(path: Path) -> dict[str, object]:
    result = subprocess.run(  # noqa: S603 - our own program
        [sys.executable, "-m", "carbonlink", "audit", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert isinstance(summary, dict)
    return summary


def test_three_vehicles_through_mosquitto_are_credited_once_each_as_the_truth_says(
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811
) -> None:
    """Every true trip is credited once, within the agent's accuracy; forwarded and audited credits agree."""
    result = _demo("--vehicles", "3", "--broker", f"mqtt://{mosquitto.host}:{mosquitto.port}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    table = _table(result.stdout)
    assert set(table) == {"demo-01-compact", "demo-02-suv", "demo-03-van", "total"}
    assert all(row[-1] == "ok" for row in table.values())
    run_dir = _run_directory(tmp_path / "demo-data")
    credited = _assert_credits_match_the_truth(
        run_dir, {"demo-01-compact": "compact", "demo-02-suv": "suv", "demo-03-van": "van"}
    )
    assert int(table["total"][1]) == credited
    forwarded = (run_dir / "credits.jsonl").read_text().splitlines()
    assert len(forwarded) == credited
    assert {json.loads(line)["credit"]["owner_id"] for line in forwarded} == {"demo-owner"}
    assert f"passes 'carbonlink audit': {credited} credits, {credited} issued" in result.stdout
    assert _audit(run_dir / "ledger.jsonl")["credits"] == credited


def test_the_embedded_broker_carries_faulty_buses_a_tampered_record_and_a_replay(tmp_path: Path) -> None:
    """Without --broker the demo brings its own broker; faults still credit every true trip exactly once."""
    result = _demo("--vehicles", "3", "--faults", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker mqtt://127.0.0.1:" in result.stdout
    assert "sent a tampered copy of a record: rejected bad_signature" in result.stdout
    assert "replayed an old record: duplicate" in result.stdout
    table = _table(result.stdout)
    assert "bad_signature" in " ".join(table["demo-01-compact"])
    assert "duplicate" in " ".join(table["demo-02-suv"])
    assert table["total"][-1] == "ok"
    run_dir = _run_directory(tmp_path / "data")
    assert (run_dir / "demo-02-suv" / "day1.faults.json").exists(), "the second vehicle's bus was not faulty"
    credited = _assert_credits_match_the_truth(
        run_dir, {"demo-01-compact": "compact", "demo-02-suv": "suv", "demo-03-van": "van"}
    )
    assert _audit(run_dir / "ledger.jsonl")["credits"] == credited


def test_keep_running_serves_the_api_until_interrupted(tmp_path: Path) -> None:
    """--keep-running leaves the gateway's API up with the run's credits; Ctrl-C ends the demo with its verdict."""
    lines: queue.Queue[str] = queue.Queue()
    with (
        (tmp_path / "stderr.txt").open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "carbonlink", "demo", "--vehicles", "1", "--keep-running"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=tmp_path,
        ) as process,
    ):
        stdout = process.stdout
        assert stdout is not None

        def read_lines() -> None:
            for line in stdout:
                lines.put(line)

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        try:
            seen: list[str] = []
            while not (seen and "Ctrl-C stops it" in seen[-1]):
                seen.append(lines.get(timeout=DEMO_TIMEOUT_S))
            url = seen[-1].split(" at ", 1)[1].split()[0]
            token = (_run_directory(tmp_path / "demo-data") / "admin.token").read_text().strip()
            response = httpx.get(f"{url}v1/credits", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert response.status_code == 200, response.text
            assert len(response.json()["credits"]) == 2  # one vehicle, one day: two trips
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0, "".join(seen) + (tmp_path / "stderr.txt").read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--vehicles", "0"), "must be from 1 to 50"),
        (("--speed", "-1"), "must be 0 (as fast as possible) or more"),
        (("--broker", "http://x"), "--broker must be mqtt://HOST:PORT"),
    ],
)
def test_bad_arguments_exit_2_naming_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli(capsys, "demo", "--data-dir", str(tmp_path / "data"), *args)
    assert result.code == 2
    assert message in result.err


def test_an_unusable_data_directory_is_one_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(capsys, "demo", "--data-dir", str(blocker / "sub"), "--broker", "mqtt://127.0.0.1:9")
    assert result.code == 2
    assert "cannot create data directory" in result.err
