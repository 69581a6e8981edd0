"""``carbonlink replay --publish``: a replayed day delivered to a real gateway through Mosquitto, as the agent would.

The records go through a real outbox and the agent's own uplink; the gateway verifies, stores and
acknowledges them. Replaying the same log into the same outbox again seals and sends nothing twice.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.vehicles import VehicleClass
from gateway.model import Enrolment, RecordQuery
from simulator.app import DriveOptions, run_drive

from cli_runner import run_cli
from gateway_harness import running_gateway
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401 - a fixture

START_AT = datetime(2026, 11, 21, tzinfo=UTC)
DAY = DriveOptions(cycles=("urban",), charge="ac", seed=11, start_at=START_AT)
DEVICE_ID = "replayed-car"


def test_publish_delivers_every_record_once_through_the_outbox_and_acks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mosquitto: MosquittoBroker,  # noqa: F811
) -> None:
    log = tmp_path / "day.log"
    truth = run_drive(dataclasses.replace(DAY, output=log)).truth
    key = DeviceKey.from_seed(bytes(range(1, 33)), DEVICE_ID)
    key_file = tmp_path / "car.key"
    key_file.write_text(render_key_file(key))
    key_file.chmod(0o600)
    outbox = tmp_path / "outbox.json"
    arguments = ("replay", str(log), "--sign", str(key_file), "--signed-dir", str(tmp_path / "signed"))
    publish = ("--publish", f"mqtt://{mosquitto.host}:{mosquitto.port}", "--outbox", str(outbox))
    with running_gateway(
        mosquitto.host,
        mosquitto.port,
        f"sqlite:///{tmp_path / 'gateway.db'}",
        tmp_path,
        clock=lambda: datetime.now(UTC),
    ) as running:
        store = running.gateway.store
        store.add_device(
            DEVICE_ID,
            key.public_key,
            vehicle_class=VehicleClass.COMPACT,
            vin_hash=None,
            enrolment=Enrolment.OPERATOR,
            at=START_AT - timedelta(days=1),
        )
        first = run_cli(capsys, *arguments, *publish)
        assert first.code == 0, first.out + first.err
        assert f"{len(truth)} acknowledged, 0 rejected, 0 waiting" in first.out
        stored = store.records(RecordQuery(device_id=DEVICE_ID, limit=100))
        assert sorted(record.sequence for record in stored) == list(range(1, len(truth) + 1))
        signed = sorted(path.read_bytes() for path in (tmp_path / "signed").iterdir())
        assert sorted(record.signed for record in stored) == signed

        again = run_cli(capsys, *arguments, *publish)
        assert again.code == 0, again.out + again.err
        assert "0 acknowledged, 0 rejected, 0 waiting" in again.out
        assert len(store.records(RecordQuery(device_id=DEVICE_ID, limit=100))) == len(truth)


def test_publish_without_a_key_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli(capsys, "replay", str(tmp_path / "any.log"), "--publish", "mqtt://127.0.0.1:1")
    assert result.code == 2
    assert "--publish needs --sign KEY" in result.err
