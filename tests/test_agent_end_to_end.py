"""The whole agent, end to end: simulator → CAN (virtual bus or log) → agent → real Mosquitto → acks.

A verifying stand-in for the gateway (``verifying_gateway``) checks signatures and the chain and
acknowledges; the records it accepts are compared with the simulator's ground truth. The agent
runs as users run it: in-process on a python-can virtual bus (virtual buses live in one process),
and as the ``carbonlink agent run`` program over a log, killed with SIGKILL at random moments and
started again, while the broker is stopped and restarted under it.
"""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.app import Agent, RunResult
from agent.config import load_config
from agent.status_file import read_status, status_path
from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.records import ChargeRecord, Record, TripRecord
from simulator.app import DriveOptions, run_drive
from simulator.truth import TruthEntry

from cli_runner import run_process
from mosquitto_broker import MosquittoBroker, mosquitto, running_mosquitto  # noqa: F401
from verifying_gateway import VerifyingGateway
from waiting import wait_for

START_AT = datetime(2026, 11, 24, tzinfo=UTC)
DAY = DriveOptions(cycles=("urban", "urban"), charge="ac", seed=3, start_at=START_AT)
"""Two urban trips and an AC charge: three records, about 700,000 frames."""
DELIVERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SimulatedDay:
    """A simulated day's log file and its ground truth."""

    log: Path
    truth: list[TruthEntry]


@pytest.fixture(scope="module")
def simulated_day(tmp_path_factory: pytest.TempPathFactory) -> SimulatedDay:
    log = tmp_path_factory.mktemp("day") / "day.blf"
    report = run_drive(dataclasses.replace(DAY, output=log))
    return SimulatedDay(log, report.truth)


def _key(device_id: str) -> DeviceKey:
    return DeviceKey.from_seed(uuid.uuid5(uuid.NAMESPACE_DNS, device_id).bytes * 2, device_id)


def _write_config(directory: Path, key: DeviceKey, source: str, broker: MosquittoBroker, extra: str = "") -> Path:
    key_file = directory / "car.key"
    key_file.write_text(render_key_file(key), encoding="utf-8")
    key_file.chmod(0o600)
    config = directory / "agent.toml"
    config.write_text(
        f'[device]\nkey_file = "car.key"\nprofile = "reference_ev"\nclock_synced = true\n\n'
        f"[source]\n{source}\n\n"
        f'[outbox]\npath = "outbox.json"\n\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nack_timeout_s = 2.0\n'
        f"backoff_initial_s = 0.2\nbackoff_max_s = 1.0\n{extra}",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def verifying_gateway() -> Iterator[list[VerifyingGateway]]:
    started: list[VerifyingGateway] = []
    yield started
    for gateway in started:
        gateway.close()


def _start_gateway(started: list[VerifyingGateway], broker: MosquittoBroker, key: DeviceKey) -> VerifyingGateway:
    gateway = VerifyingGateway(broker.host, broker.port, {key.device_id: key.public_key})
    gateway.start()
    started.append(gateway)
    return gateway


def _relative_error(measured: float, true: float) -> float:
    return abs(measured - true) / true


def _assert_matches_truth(records: list[Record], truth: list[TruthEntry], tolerance: float) -> None:
    """Same trips and charges in the same order, each figure within ``tolerance`` of the truth."""
    assert [record.RECORD_TYPE for record in records] == [entry.type for entry in truth]
    for record, entry in zip(records, truth, strict=True):
        if isinstance(record, TripRecord):
            pairs = {"distance_m": (record.distance_m, entry.distance_m),
                     "energy_out_wh": (record.energy_out_wh, entry.energy_out_wh)}  # fmt: skip
        else:
            assert isinstance(record, ChargeRecord)
            pairs = {"energy_in_wh": (record.energy_in_wh, entry.energy_in_wh)}
        for name, (measured, true) in pairs.items():
            error = _relative_error(measured, true)
            assert error <= tolerance, f"{record.RECORD_TYPE} {record.sequence} {name}: {measured} vs truth {true}"


def _assert_chain_complete(records: list[Record]) -> None:
    assert [record.sequence for record in records] == list(range(1, len(records) + 1))
    assert len({record.record_id for record in records}) == len(records)


# --- in-process, on a python-can virtual bus ---------------------------------------------------


def test_live_virtual_bus_day_is_sealed_delivered_and_acknowledged(
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811 - the imported fixture
    verifying_gateway: list[VerifyingGateway],
    simulated_day: SimulatedDay,
) -> None:
    """Frames sent on a virtual bus become signed records that the gateway verifies and acknowledges."""
    key = _key("ev-e2e-bus")
    gateway = _start_gateway(verifying_gateway, mosquitto, key)
    channel = f"carbonlink-e2e-{uuid.uuid4().hex[:8]}"
    # The simulator sends a day in seconds; after the charge the bus stays awake about 20 s of
    # simulated time, so a shorter charge-off hysteresis lets the frames themselves close it.
    config = _write_config(
        tmp_path,
        key,
        f'interface = "virtual"\nchannel = "{channel}"',
        mosquitto,
        "\n[segmentation]\ncharge_off_hysteresis_s = 10\n",
    )
    agent = Agent(load_config(config, {}), key)
    results: list[RunResult] = []
    thread = threading.Thread(target=lambda: results.append(agent.run()), name="agent-under-test")
    thread.start()
    try:
        status_file = status_path(tmp_path / "outbox.json")
        wait_for(lambda: status_file.exists() and read_status(status_file)["source_open"], "the agent's bus")
        run_drive(dataclasses.replace(DAY, interface="virtual", channel=channel))
        wait_for(
            lambda: len(gateway.accepted(key.device_id)) >= len(simulated_day.truth),
            "every record to be accepted",
            DELIVERY_TIMEOUT_S,
        )
        wait_for(lambda: read_status(status_file)["outbox"]["acknowledged_total"] == 3, "the acks to be applied")
    finally:
        agent.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert results[0].reason == "stopped"
    records = gateway.accepted(key.device_id)
    _assert_chain_complete(records)
    _assert_matches_truth(records, simulated_day.truth, 0.005)
    status = read_status(status_path(tmp_path / "outbox.json"))
    assert status["state"] == "stopped"
    assert (status["outbox"]["pending"], status["outbox"]["sent"]) == (0, 0)
    assert gateway.ledger(key.device_id).rejections == []


# --- the program, over a log, killed and restarted ---------------------------------------------


def _agent_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:  # the child keeps its own descriptor
        return subprocess.Popen(  # noqa: S603 - our own program, test arguments
            [sys.executable, "-m", "carbonlink", "agent", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=config.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _stop(process: subprocess.Popen[bytes], sig: int) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=30)


def test_killing_the_agent_and_the_broker_at_any_moment_loses_and_doubles_nothing(
    tmp_path: Path, verifying_gateway: list[VerifyingGateway], simulated_day: SimulatedDay
) -> None:
    """SIGKILL the agent at random moments and restart the broker: each record is accepted exactly once."""
    key = _key("ev-e2e-kill")
    rng = random.Random(20261124)  # noqa: S311 - test timing, not cryptography
    with running_mosquitto(tmp_path / "broker") as broker:
        gateway = _start_gateway(verifying_gateway, broker, key)
        config = _write_config(tmp_path, key, f'log_file = "{simulated_day.log}"', broker, "drain_rate_per_s = 5\n")
        agent_log = tmp_path / "agent.log"
        kills = 0
        for _ in range(4):
            process = _agent_process(config, agent_log)
            time.sleep(rng.uniform(0.5, 3.0))
            if rng.random() < 0.5:  # half of the rounds also lose the broker
                broker.restart()
            kills += _stop(process, signal.SIGKILL) == -signal.SIGKILL
        process = _agent_process(config, agent_log)
        try:
            assert process.wait(timeout=DELIVERY_TIMEOUT_S * 2) == 0, agent_log.read_text()
        finally:
            _stop(process, signal.SIGKILL)
        wait_for(lambda: len(gateway.accepted(key.device_id)) == len(simulated_day.truth), "every record")
    assert kills >= 1
    records = gateway.accepted(key.device_id)
    _assert_chain_complete(records)
    _assert_matches_truth(records, simulated_day.truth, 0.005)
    ledger = gateway.ledger(key.device_id)
    assert set(ledger.rejections) <= {"sequence_gap"}, ledger.rejections  # only retryable ones, if any
    status = read_status(status_path(tmp_path / "outbox.json"))
    assert (status["outbox"]["pending"], status["outbox"]["sent"], status["state"]) == (0, 0, "stopped")
    assert status["outbox"]["acknowledged_total"] == len(simulated_day.truth)


def test_sigterm_on_a_log_leaves_the_open_trip_for_the_next_run(
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811 - the imported fixture
    verifying_gateway: list[VerifyingGateway],
    simulated_day: SimulatedDay,
) -> None:
    """A graceful stop mid-log seals nothing partial; the next run resumes and the records are whole."""
    key = _key("ev-e2e-term")
    gateway = _start_gateway(verifying_gateway, mosquitto, key)
    config = _write_config(tmp_path, key, f'log_file = "{simulated_day.log}"', mosquitto)
    agent_log = tmp_path / "agent.log"
    process = _agent_process(config, agent_log)
    status_file = status_path(tmp_path / "outbox.json")
    wait_for(status_file.exists, "the agent to open the log")  # reading it all takes about 5 s
    shown = run_process("agent", "status", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["running"] is True  # the status names a live process
    time.sleep(1.0)
    assert _stop(process, signal.SIGTERM) == 0, agent_log.read_text()
    assert "agent.stopped reason=stopped" in agent_log.read_text()
    process = _agent_process(config, agent_log)
    try:
        assert process.wait(timeout=DELIVERY_TIMEOUT_S) == 0, agent_log.read_text()
    finally:
        _stop(process, signal.SIGKILL)
    records = gateway.accepted(key.device_id)
    _assert_chain_complete(records)
    _assert_matches_truth(records, simulated_day.truth, 0.005)
