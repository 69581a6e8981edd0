"""Fleet mode: one simulated vehicle with its own real agent, fed over a python-can virtual bus.

    simulator (this process) ──► virtual bus ──► agent.app.Agent ──► MQTT broker ──► gateway

:func:`run_vehicle` is what one vehicle does, start to end, in one process (python-can's virtual
buses live in one process): write the agent's key and config, start the agent on a private
virtual channel, drive ``days`` simulated days through the bus as fast as the agent reads them,
then wait until the gateway acknowledged every record the agent sealed. Each day's ground truth
is kept beside the agent's files as ``dayN.truth.json`` (and ``dayN.faults.json`` when faulty). A fleet runs one process
per vehicle (``carbonlink demo``), so vehicles use both cores.

This is the one module of the simulator that imports the agent (DESIGN §2: fleet mode only).
"""

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.app import Agent
from agent.config import load_config
from agent.status_file import StatusFileError, read_status, status_path
from carbonlink.keys import DeviceKey, render_key_file
from simulator.app import DriveOptions, run_drive
from simulator.faults import FaultConfig

SOURCE_OPEN_TIMEOUT_S = 30.0
"""How long the agent may take to open its virtual bus."""
_POLL_S = 0.1


class FleetError(RuntimeError):
    """A vehicle of the fleet could not run (its agent did not start, or did not deliver in time)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePlan:
    """One vehicle of a fleet: who it is, what it drives, where it reports. Picklable (sent to a process)."""

    device_id: str
    preset: str
    seed: int
    key_seed: bytes
    vin: str
    directory: Path
    broker_host: str
    broker_port: int
    broker_protocol: str = "auto"
    """The agent's ``[mqtt] protocol``: "auto", "5" or "3.1.1"."""
    start_at: datetime
    days: int = 1
    cycles: tuple[str, ...] = ("urban", "suburban")
    speed: float = 0.0
    """Simulated seconds per wall second on the bus; 0: as fast as the agent reads."""
    faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    deliver_timeout_s: float = 120.0
    cpu: int | None = None
    """Pin the vehicle's process to this CPU. Its simulator and agent threads hand the GIL back and
    forth all the time, which is faster on one core than across two (one vehicle: 25 s → 17 s)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleOutcome:
    """What one vehicle did: the simulator's truth, and whether the gateway acknowledged everything."""

    device_id: str
    truth: list[dict[str, Any]]
    """The simulator's ground truth (``TruthEntry.to_json``) of every trip and charge, all days."""
    delivered: bool
    """Every sealed record was acknowledged by the gateway before the deadline."""


def vehicle_key(plan: VehiclePlan) -> DeviceKey:
    return DeviceKey.from_seed(plan.key_seed, plan.device_id)


def run_vehicle(plan: VehiclePlan) -> VehicleOutcome:
    """Drive ``plan`` through its own agent until the gateway acknowledged every record (see the module docstring)."""
    if plan.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {plan.cpu})
    plan.directory.mkdir(parents=True, exist_ok=True)
    channel = f"carbonlink-fleet-{plan.device_id}"
    config_path = _write_agent_files(plan, channel)
    agent = Agent(load_config(config_path, {}), vehicle_key(plan))
    thread = threading.Thread(target=agent.run, name=f"agent-{plan.device_id}", daemon=True)
    thread.start()
    status_file = status_path(plan.directory / "outbox.json")
    try:
        _wait(lambda: _status(status_file).get("source_open") is True, SOURCE_OPEN_TIMEOUT_S, "the agent's bus")
        truth: list[dict[str, Any]] = []
        for day in range(plan.days):
            report = run_drive(
                DriveOptions(
                    preset_name=plan.preset,
                    cycles=plan.cycles,
                    charge="ac",
                    seed=plan.seed + day,
                    start_at=plan.start_at + timedelta(days=day),
                    interface="virtual",
                    channel=channel,
                    truth_path=plan.directory / f"day{day + 1}.truth.json",
                    speed=plan.speed,
                    faults=dataclasses.replace(plan.faults, seed=plan.seed + day)
                    if plan.faults.enabled
                    else plan.faults,
                )
            )
            truth.extend(entry.to_json() for entry in report.truth)
        delivered = _wait_delivered(status_file, plan.deliver_timeout_s)
    finally:
        agent.request_stop()
        thread.join(30.0)
    return VehicleOutcome(
        device_id=plan.device_id,
        truth=truth,
        delivered=delivered,
    )


def _write_agent_files(plan: VehiclePlan, channel: str) -> Path:
    key_file = plan.directory / "car.key"
    key_file.write_text(render_key_file(vehicle_key(plan)), encoding="utf-8")
    key_file.chmod(0o600)
    config = plan.directory / "agent.toml"
    # The simulator sends a day in seconds; after the last charge the bus stays awake only briefly, so
    # a short charge-off hysteresis lets the frames themselves close the session.
    config.write_text(
        f'[device]\nkey_file = "car.key"\nprofile = "reference_ev"\nclock_synced = true\nvin = "{plan.vin}"\n'
        f'[source]\ninterface = "virtual"\nchannel = "{channel}"\n'
        f'[outbox]\npath = "outbox.json"\n'
        f'[mqtt]\nhost = "{plan.broker_host}"\nport = {plan.broker_port}\nprotocol = "{plan.broker_protocol}"\n'
        "ack_timeout_s = 5.0\n"
        "backoff_initial_s = 0.2\nbackoff_max_s = 2.0\n"
        "[segmentation]\ncharge_off_hysteresis_s = 10\n",
        encoding="utf-8",
    )
    return config


def _status(path: Path) -> dict[str, Any]:
    try:
        return read_status(path)
    except StatusFileError:
        return {}


def _wait_delivered(status_file: Path, timeout_s: float) -> bool:
    """Wait until the outbox holds nothing unacknowledged and has stopped growing; False at the deadline."""
    deadline = time.monotonic() + timeout_s
    settled_since: float | None = None
    last: tuple[int, int, int] | None = None
    while time.monotonic() < deadline:
        outbox = _status(status_file).get("outbox", {})
        now_counts = (
            int(outbox.get("pending", 0)),
            int(outbox.get("sent", 0)),
            int(outbox.get("acknowledged_total", 0)),
        )
        if now_counts[0] == 0 and now_counts[1] == 0 and now_counts[2] > 0:
            if now_counts != last:
                settled_since = time.monotonic()
            elif settled_since is not None and time.monotonic() - settled_since >= 1.0:
                return True
        else:
            settled_since = None
        last = now_counts
        time.sleep(_POLL_S)
    return False


def _wait(condition: Any, timeout_s: float, what: str) -> None:  # noqa: ANN401 - a zero-argument predicate
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise FleetError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(_POLL_S)
