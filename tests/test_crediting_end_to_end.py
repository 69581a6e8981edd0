"""Crediting end to end: simulated days → ``carbonlink agent run`` × 3 → Mosquitto → gateway → credits → webhook.

Three vehicles of different classes each drive a simulated day; their agents (the real program)
deliver the records to a gateway on a real broker and store. The gateway credits every trip once,
issues the credits of vehicles bound to an owner (one of them bound only afterwards, through the
API), and forwards each to a real webhook receiver that fails the first attempts of every credit.
Then the ledger is exported with ``carbonlink gateway export`` and ``carbonlink audit`` passes it.
"""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.methodology import ParameterSet, TripEnergy, compute_reduction, resolve_parameters
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash
from gateway.adapters.parameter_file import load_parameters
from gateway.crediting.model import CreditQuery, CreditState, DeliveryState
from gateway.model import Enrolment
from gateway.store.record_store import RecordStore
from simulator.app import DriveOptions, run_drive
from simulator.truth import TruthEntry

from cli_runner import run_process
from gateway_harness import AckListener, running_gateway
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401 - a fixture
from postgres_server import store_url  # noqa: F401 - a fixture
from waiting import wait_for
from webhook_receiver import Script, WebhookReceiver

START_AT = datetime(2026, 11, 2, tzinfo=UTC)
DELIVERY_TIMEOUT_S = 120.0
OWNER = "fleet-owner-1"


@dataclass(frozen=True)
class Vehicle:
    """One simulated vehicle: its device, simulator preset (also its class), VIN and seed."""

    device_id: str
    preset: str
    vin: str
    seed: int


VEHICLES = (
    Vehicle("ev-credit-compact", "compact", "WVWZZZE1ZNP000011", 11),
    Vehicle("ev-credit-suv", "suv", "WVWZZZE1ZNP000012", 12),
    Vehicle("ev-credit-van", "van", "WVWZZZE1ZNP000013", 13),
)


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[TruthEntry]]]:
    simulated = {}
    for vehicle in VEHICLES:
        log = tmp_path_factory.mktemp(vehicle.preset) / "day.blf"
        options = DriveOptions(
            preset_name=vehicle.preset, cycles=("urban", "suburban"), charge="ac", seed=vehicle.seed, start_at=START_AT
        )
        report = run_drive(dataclasses.replace(options, output=log))
        simulated[vehicle.device_id] = (log, report.truth)
    return simulated


def _agent(
    directory: Path, vehicle: Vehicle, key: DeviceKey, log: Path, broker: MosquittoBroker
) -> subprocess.Popen[bytes]:
    directory.mkdir()
    (directory / "car.key").write_text(render_key_file(key), encoding="utf-8")
    (directory / "car.key").chmod(0o600)
    (directory / "agent.toml").write_text(
        f'[device]\nkey_file = "car.key"\nprofile = "reference_ev"\nclock_synced = true\nvin = "{vehicle.vin}"\n'
        f'[source]\nlog_file = "{log}"\n[outbox]\npath = "outbox.json"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nack_timeout_s = 5.0\n',
        encoding="utf-8",
    )
    with (directory / "agent.log").open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "carbonlink", "agent", "run", "--config", "agent.toml"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _finish(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=DELIVERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=30)


def test_a_fleet_day_is_credited_once_issued_forwarded_once_and_audits_clean(  # noqa: PLR0915 - one story, end to end
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811
    store_url: str,  # noqa: F811
    days: dict[str, tuple[Path, list[TruthEntry]]],
) -> None:
    """Every trip is credited once and every issued credit reaches the webhook exactly once.

    Figures match the truth within the agent's accuracy; failed webhook attempts are retried; a
    resent record credits nothing more; the export passes the audit.
    """
    gateway_key = DeviceKey.from_seed(hashlib.sha256(b"gateway").digest(), "gateway-under-test")
    (tmp_path / "gateway.key").write_text(render_key_file(gateway_key), encoding="utf-8")
    (tmp_path / "gateway.key").chmod(0o600)
    keys = {v.device_id: DeviceKey.from_seed(uuid.uuid4().bytes * 2, v.device_id) for v in VEHICLES}
    script = Script(plan=(503, "drop"))  # every credit: a 503, then a dropped connection, then success
    with WebhookReceiver(gateway_key.public_key.raw, script) as receiver:
        forwarding = (
            f'[crediting]\ngrid_region = "cn"\ninterval_s = 0.2\n'
            f'[forwarding]\nsigning_key_file = "gateway.key"\nwebhook_url = "{receiver.url()}"\n'
            f'export_file = "forwarded.jsonl"\nwebhook_timeout_s = 2.0\nretry_initial_s = 0.05\nretry_max_s = 0.2\n'
        )
        with running_gateway(
            mosquitto.host, mosquitto.port, store_url, tmp_path, clock=lambda: datetime.now(UTC), extra_toml=forwarding
        ) as running:
            gateway = running.gateway
            store = gateway.store
            for vehicle in VEHICLES:
                store.add_device(
                    vehicle.device_id,
                    keys[vehicle.device_id].public_key,
                    vehicle_class=VehicleClass(vehicle.preset),
                    vin_hash=vin_hash(vehicle.vin),
                    enrolment=Enrolment.OPERATOR,
                    at=START_AT,
                )
            store.ledger.add_owner(OWNER, "A fleet", at=START_AT)
            assert gateway.crediting is not None
            for vehicle in VEHICLES[:2]:  # the third is bound only after its credits accrued
                gateway.crediting.bind(
                    f"vin:{vin_hash(vehicle.vin).hex()}", OWNER, consented_at=START_AT, consent_method="app"
                )
            agents = [
                _agent(tmp_path / v.device_id, v, keys[v.device_id], days[v.device_id][0], mosquitto) for v in VEHICLES
            ]
            codes = [_finish(agent) for agent in agents]
            assert codes == [0, 0, 0], [(tmp_path / v.device_id / "agent.log").read_text()[-2000:] for v in VEHICLES]
            total_records = sum(len(truth) for _, truth in days.values())
            trips = sum(1 for _, truth in days.values() for entry in truth if entry.type == "trip")
            wait_for(
                lambda: sum(store.ledger.decisions().values()) == total_records,
                "crediting to decide every record",
                DELIVERY_TIMEOUT_S,
            )
            third = f"vin:{vin_hash(VEHICLES[2].vin).hex()}"
            assert {c.state for c in store.ledger.credits(CreditQuery(vehicle_key=third))} == {CreditState.ACCRUED}
            bound = httpx.post(
                f"{running.api_url}/v1/vehicles/{third}/binding",
                headers={"Authorization": f"Bearer {running.tokens.admin}"},
                json={"owner_id": OWNER, "consented_at": "2026-11-01T08:00:00Z", "consent_method": "paper"},
                timeout=10.0,
            )
            assert bound.status_code in (200, 201), bound.text
            wait_for(lambda: len(receiver.booked) == trips, "every credit at the webhook", DELIVERY_TIMEOUT_S)
            wait_for(
                lambda: store.ledger.delivery_counts()[DeliveryState.DELIVERED] == 2 * trips,
                "every delivery to be marked done",
                DELIVERY_TIMEOUT_S,
            )
            # A resent record (the exact bytes again) is a duplicate: nothing more is credited.
            everything = store.ledger.credits(CreditQuery(limit=1000))
            first = store.record(everything[0].record_hash)
            assert first is not None
            listener = AckListener(mosquitto.host, mosquitto.port)
            try:
                listener.publish(f"carbonlink/v1/vehicles/{first.device_id}/records", first.signed)
                assert listener.wait_ack(everything[0].record_hash).outcome.value == "duplicate"
            finally:
                listener.close()
            assert len(store.ledger.credits(CreditQuery(limit=1000))) == trips
            parameters = load_parameters(None)
            for vehicle in VEHICLES:
                _assert_credits_match_truth(store, vehicle, days[vehicle.device_id][1], parameters)
    assert all(count == 3 for count in receiver.requests.values()), receiver.requests  # 503, drop, success
    assert receiver.repeats == {}
    assert receiver.bad_signatures == 0
    assert set(receiver.booked) == {c.credit_id for c in everything}
    forwarded = [json.loads(line) for line in (tmp_path / "forwarded.jsonl").read_text().splitlines()]
    assert len(forwarded) == trips
    out = tmp_path / "ledger.jsonl"
    exported = run_process("gateway", "export", "--store", store_url, "--out", str(out))
    assert exported.returncode == 0, exported.stderr.decode()
    audited = run_process("audit", str(out), "--json")
    assert audited.returncode == 0, audited.stdout.decode() + audited.stderr.decode()
    result = json.loads(audited.stdout)
    assert result["ok"] is True
    assert result["summary"]["credits"] == trips
    assert result["summary"]["issued"] == trips
    assert result["summary"]["issued_co2e_g"] == pytest.approx(sum(c.reduction_co2e_g for c in everything))


def _assert_credits_match_truth(
    store: RecordStore, vehicle: Vehicle, truth: list[TruthEntry], parameters: ParameterSet
) -> None:
    found = sorted(
        store.ledger.credits(CreditQuery(device_id=vehicle.device_id, limit=100)), key=lambda c: c.odometer_start_m
    )
    truth_trips = [entry for entry in truth if entry.type == "trip"]
    assert len(found) == len(truth_trips)
    for credit, entry in zip(found, truth_trips, strict=True):
        assert credit.state is CreditState.ISSUED
        assert credit.owner_id == OWNER
        distance_m = credit.odometer_end_m - credit.odometer_start_m
        assert distance_m == pytest.approx(entry.distance_m, rel=0.01)
        resolved = resolve_parameters(
            parameters,
            vehicle_class=VehicleClass(vehicle.preset),
            grid_region="cn",
            year=entry.end_at.year,
        )
        true_energy = TripEnergy(
            distance_m=entry.distance_m, energy_out_wh=entry.energy_out_wh, energy_regen_wh=entry.energy_regen_wh
        )
        expected = compute_reduction(true_energy, [], resolved).reduction_co2e_g
        assert credit.reduction_co2e_g == pytest.approx(expected, rel=0.02)
