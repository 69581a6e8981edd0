"""Test helpers for the gateway: a running gateway on a real broker and store, vehicles that publish to it.

- ``running_gateway(broker, store_url, directory, clock=...)`` writes a gateway.toml (tokens in files,
  as in production), starts a :class:`gateway.app.Gateway` with the operator API on a free port and
  stops it by the same shutdown path as ``carbonlink gateway run``.
- ``AckListener`` subscribes to every vehicle's ack topic and waits for the ack of a record hash.
- ``ChainBuilder`` signs a device's records in chain order with plausible, advancing times and
  odometer readings, so a test overrides only the field it is about.
"""

import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from carbonlink.acks import Ack, decode_ack
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.testing import SAMPLE_START_AT, sample_charge, sample_trip
from gateway.app import Gateway
from gateway.config import parse_config

from waiting import wait_for

GATEWAY_NOW = SAMPLE_START_AT + timedelta(days=30)
"""The gateway's clock in these tests: after every record a ChainBuilder makes, whatever today is."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """The API tokens the test gateway was configured with."""

    read: str
    admin: str


@dataclass
class RunningGateway:
    """A started gateway and how to reach its API."""

    gateway: Gateway
    tokens: Tokens

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.api_port}"


@contextmanager
def running_gateway(  # noqa: PLR0913 - where the broker, store and files are, and the two test knobs
    host: str,
    port: int,
    store_url: str,
    directory: Path,
    *,
    clock: Callable[[], datetime] = lambda: GATEWAY_NOW,
    extra_toml: str = "",
) -> Iterator[RunningGateway]:
    tokens = Tokens(read=secrets.token_urlsafe(24), admin=secrets.token_urlsafe(24))
    (directory / "read.token").write_text(tokens.read + "\n", encoding="utf-8")
    (directory / "admin.token").write_text(tokens.admin + "\n", encoding="utf-8")
    text = f"""
[mqtt]
host = "{host}"
port = {port}
client_id = "gateway-under-test-{secrets.token_hex(4)}"
[store]
url = "{store_url}"
[intake]
batch_max_wait_s = 0.005
registry_refresh_s = 0.0
[api]
host = "127.0.0.1"
port = 0
read_token_files = ["read.token"]
admin_token_files = ["admin.token"]
{extra_toml}
"""
    config = parse_config(text, directory, {})
    gateway = Gateway(config, clock=clock)
    gateway.start()
    try:
        wait_for(lambda: gateway.mqtt.connected, "the gateway's MQTT connection")
        yield RunningGateway(gateway, tokens)
    finally:
        gateway.stop()


class AckListener:
    """Every ack published on the vehicles' ack topics (all of them by default), by record hash."""

    def __init__(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None, acks: str = "carbonlink/v1/vehicles/+/acks"
    ) -> None:
        self._subscription = acks
        self._acks: dict[bytes, list[Ack]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-vehicles-{secrets.token_hex(4)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.connect(host, port)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, "the ack subscription")

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if not rc.is_failure:
            client.subscribe(self._subscription, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        ack = decode_ack(bytes(message.payload))
        with self._lock:
            self._acks.setdefault(ack.record_hash, []).append(ack)

    def publish(self, topic: str, payload: bytes) -> bytes:
        """Publish as a vehicle would (QoS 1); the record hash the ack will name."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(5.0)
        return record_hash(payload)

    def acks_for(self, digest: bytes) -> list[Ack]:
        with self._lock:
            return list(self._acks.get(digest, []))

    def wait_ack(self, digest: bytes, count: int = 1) -> Ack:
        """The ``count``-th ack for a record hash, once it has come."""
        wait_for(lambda: len(self.acks_for(digest)) >= count, f"ack #{count} for {digest.hex()[:12]}")
        return self.acks_for(digest)[count - 1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ChainBuilder:
    """A device's records in chain order: each follows the last one built (see the module docstring)."""

    TRIP_DURATION = timedelta(minutes=31)
    GAP = timedelta(hours=1)
    TRIP_DISTANCE_M = 12_400.0

    def __init__(self, key: DeviceKey, *, vin_hash: bytes | None = None, odometer_m: float = 48_210_000.0) -> None:
        self.key = key
        self.vin_hash = vin_hash
        self.sequence = 0
        self.previous_hash = GENESIS_PREVIOUS_HASH
        self.next_start_at = SAMPLE_START_AT
        self.odometer_m = odometer_m

    def _common(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {
            "device_id": self.key.device_id,
            "record_id": f"{self.key.device_id}-{self.sequence + 1:06d}",
            "sequence": self.sequence + 1,
            "previous_record_hash": self.previous_hash,
            "start_at": self.next_start_at,
            "end_at": self.next_start_at + self.TRIP_DURATION,
            "vin_hash": self.vin_hash,
        } | overrides

    def trip(self, **overrides: Any) -> tuple[bytes, TripRecord]:  # noqa: ANN401 - any field of TripRecord
        """The next trip, signed; the builder moves on as if the gateway accepted it."""
        distance_m = overrides.pop("distance_m", self.TRIP_DISTANCE_M)
        values = {
            "odometer_start_m": self.odometer_m,
            "odometer_end_m": self.odometer_m + distance_m,
            "distance_m": distance_m,
        } | self._common(overrides)
        record = sample_trip(**values)
        return self._advance(record), record

    def charge(self, **overrides: Any) -> tuple[bytes, ChargeRecord]:  # noqa: ANN401 - any field of ChargeRecord
        values = {
            "odometer_start_m": self.odometer_m,
            "odometer_end_m": self.odometer_m,
            "end_at": self.next_start_at + timedelta(hours=2),
            "soc_start_pct": 40.0,
            "soc_end_pct": 52.0,
        } | self._common(overrides)
        record = sample_charge(**values)
        return self._advance(record), record

    def sign_unchained(self, record: Record) -> bytes:
        """Sign a record as is, without moving the builder on."""
        return sign(record, self.key)

    def _advance(self, record: Record) -> bytes:
        signed = sign(record, self.key)
        self.sequence = record.sequence
        self.previous_hash = record_hash(signed)
        self.next_start_at = record.end_at + self.GAP
        if record.odometer_end_m is not None:
            self.odometer_m = record.odometer_end_m
        return signed
