"""The real programs together: ``carbonlink agent run`` → Mosquitto → ``carbonlink gateway run``, on both stores.

The device is registered with ``carbonlink gateway devices add``; the agent replays a simulated
day from a log; the gateway verifies, stores and acknowledges every record, and the agent's
outbox ends empty. SIGTERM stops the gateway cleanly (exit 0).
"""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent.status_file import read_status, status_path
from carbonlink.keys import DeviceKey, render_key_file
from simulator.app import DriveOptions, run_drive
from simulator.truth import TruthEntry

from cli_runner import run_process
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401
from postgres_server import store_url  # noqa: F401
from waiting import wait_for

DAY = DriveOptions(cycles=("urban", "suburban"), charge="ac", seed=5, start_at=datetime(2026, 11, 2, tzinfo=UTC))
"""A day in the past (the gateway runs on the real clock): two trips and an AC charge."""
DELIVERY_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def simulated_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TruthEntry]]:
    log = tmp_path_factory.mktemp("day") / "day.blf"
    report = run_drive(dataclasses.replace(DAY, output=log))
    return log, report.truth


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(  # noqa: S603 - our own program, test arguments
            [sys.executable, "-m", "carbonlink", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)


def test_the_agent_delivers_a_day_to_the_gateway_program(
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811
    store_url: str,  # noqa: F811
    simulated_day: tuple[Path, list[TruthEntry]],
) -> None:
    """Every record of a simulated day is accepted once by the gateway and settled in the agent's outbox."""
    log, truth = simulated_day
    device_id = f"ev-day-{uuid.uuid4().hex[:8]}"
    key = DeviceKey.from_seed(uuid.uuid4().bytes * 2, device_id)
    api_port = _free_port()
    (tmp_path / "admin.token").write_text("admin-token-for-the-test-0001\n", encoding="utf-8")
    gateway_toml = tmp_path / "gateway.toml"
    gateway_toml.write_text(
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "gw-{device_id}"\n'
        f'[store]\nurl = "{store_url}"\n'
        f'[api]\nport = {api_port}\nadmin_token_files = ["admin.token"]\n',
        encoding="utf-8",
    )
    added = run_process(
        "gateway", "devices", "--config", str(gateway_toml), "add",
        "--device-id", device_id, "--public-key", key.public_key.raw.hex(), "--vehicle-class", "compact",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    (tmp_path / "car.key").write_text(render_key_file(key), encoding="utf-8")
    (tmp_path / "car.key").chmod(0o600)
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(
        f'[device]\nkey_file = "car.key"\nprofile = "reference_ev"\nclock_synced = true\n'
        f'[source]\nlog_file = "{log}"\n[outbox]\npath = "outbox.json"\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nack_timeout_s = 5.0\n',
        encoding="utf-8",
    )
    gateway = _spawn(["gateway", "run", "--config", str(gateway_toml)], tmp_path, tmp_path / "gateway.log")
    try:
        wait_for(lambda: _ready(api_port), "the gateway to be ready", 30.0)
        agent = _spawn(["agent", "run", "--config", str(agent_toml)], tmp_path, tmp_path / "agent.log")
        try:
            assert agent.wait(timeout=DELIVERY_TIMEOUT_S) == 0, (tmp_path / "agent.log").read_text()
        finally:
            _stop(agent)
        records = httpx.get(
            f"http://127.0.0.1:{api_port}/v1/records?device_id={device_id}",
            headers={"Authorization": "Bearer admin-token-for-the-test-0001"},
            timeout=10.0,
        ).json()["records"]
    finally:
        assert _stop(gateway) == 0, (tmp_path / "gateway.log").read_text()
    assert sorted(item["sequence"] for item in records) == list(range(1, len(truth) + 1))
    assert [item["type"] for item in sorted(records, key=lambda item: item["sequence"])] == [
        entry.type for entry in truth
    ]
    status = read_status(status_path(tmp_path / "outbox.json"))
    assert (status["outbox"]["pending"], status["outbox"]["sent"]) == (0, 0)
    assert status["outbox"]["acknowledged_total"] == len(truth)
    assert "gateway.stopped intake_drained=True acks_confirmed=True" in (tmp_path / "gateway.log").read_text()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False
