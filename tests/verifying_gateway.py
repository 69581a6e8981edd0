"""A test subscriber in the gateway's place that verifies what it acknowledges.

``VerifyingGateway(broker, keys)`` subscribes to every vehicle's records topic with a persistent
MQTT 5 session and, for each message: verifies the COSE signature with the device's public key,
checks the chain (sequence rising by one, previous-record hash) and answers on the device's ack
topic — ``accepted`` for the next record of the chain, ``duplicate`` for an exact resend of an
accepted one, ``rejected`` (``bad_signature``, ``sequence_gap``, ``chain_break``, ``replayed``)
otherwise. It is a stand-in for the gateway of issue 5, with the same acks on the wire, so the
agent's end-to-end tests need nothing we do not run.
"""

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from carbonlink.acks import Ack, Outcome, encode_ack
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import verify
from carbonlink.errors import CarbonlinkError
from carbonlink.keys import PublicKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import Record
from carbonlink.topics import acks_topic, device_of_records_topic, records_subscription

from waiting import wait_for


@dataclass
class DeviceLedger:
    """What the gateway accepted from one device, in chain order."""

    records: list[Record] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    deliveries: int = 0
    duplicates: int = 0
    rejections: list[RejectionReason] = field(default_factory=list)


class VerifyingGateway:
    """Verify, chain-check and acknowledge the records of the given devices (see the module docstring)."""

    def __init__(self, host: str, port: int, keys: Mapping[str, PublicKey]) -> None:
        self._host, self._port = host, port
        self._keys = dict(keys)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.ledgers: dict[str, DeviceLedger] = {device: DeviceLedger() for device in keys}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="test-verifying-gateway", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 600  # the broker keeps our session across its restarts
        self.client.connect(self._host, self._port, clean_start=False, properties=properties)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, "the gateway's subscription")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def accepted(self, device: str) -> list[Record]:
        with self._lock:
            return list(self.ledgers[device].records)

    def ledger(self, device: str) -> DeviceLedger:
        with self._lock:
            ledger = self.ledgers[device]
            return DeviceLedger(
                list(ledger.records), list(ledger.hashes), ledger.deliveries, ledger.duplicates, list(ledger.rejections)
            )

    def _on_connect(self, client: mqtt.Client, _u: object, _f: mqtt.ConnectFlags, rc: ReasonCode, _p: object) -> None:
        if not rc.is_failure:
            client.subscribe(records_subscription(None), qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, _rc: list[ReasonCode], _p: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        device = device_of_records_topic(message.topic)
        if device is None or device not in self._keys:
            return
        payload = bytes(message.payload)
        digest = record_hash(payload)
        with self._lock:
            ledger = self.ledgers[device]
            ledger.deliveries += 1
            outcome, reason = self._judge(ledger, self._keys[device], payload, digest)
            if reason is not None:
                ledger.rejections.append(reason)
        ack = Ack(
            record_hash=digest,
            record_id=None,
            sequence=None,
            outcome=outcome,
            reason=reason,
            detail=None if reason is None else f"test gateway: {reason}",
        )
        client.publish(acks_topic(device), encode_ack(ack), qos=1)

    @staticmethod
    def _judge(
        ledger: DeviceLedger, key: PublicKey, payload: bytes, digest: bytes
    ) -> tuple[Outcome, RejectionReason | None]:
        if digest in ledger.hashes:
            ledger.duplicates += 1
            return Outcome.DUPLICATE, None
        try:
            record = verify(payload, key)
        except CarbonlinkError:
            return Outcome.REJECTED, RejectionReason.BAD_SIGNATURE
        expected = len(ledger.records) + 1
        if record.sequence > expected:
            return Outcome.REJECTED, RejectionReason.SEQUENCE_GAP  # retryable: the agent sends it again
        if record.sequence < expected:
            return Outcome.REJECTED, RejectionReason.REPLAYED  # another record under an accepted number
        previous = ledger.hashes[-1] if ledger.hashes else GENESIS_PREVIOUS_HASH
        if record.previous_record_hash != previous:
            return Outcome.REJECTED, RejectionReason.CHAIN_BREAK
        ledger.records.append(record)
        ledger.hashes.append(digest)
        return Outcome.ACCEPTED, None
