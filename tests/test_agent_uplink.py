"""The agent's MQTT uplink against a real Mosquitto, a plain-paho test gateway and an in-memory outbox.

Records leave the outbox only on the gateway's ack, never on a PUBACK; everything is waited for on a
condition with a deadline.
"""

import contextlib
import dataclasses
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.errors import ConfigError, UplinkError
from agent.outbox import ChainHead, EntryState, Outbox, OutboxCounts, OutboxEntry, RejectedEntry
from agent.uplink.backoff import Backoff
from agent.uplink.flights import Flights
from agent.uplink.paho_uplink import PahoUplink
from agent.uplink.settings import ProtocolChoice, UplinkSettings
from carbonlink.acks import Ack, Outcome, encode_ack
from carbonlink.chain import record_hash
from carbonlink.enrolment import issue_certificate
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.topics import (
    acks_topic,
    device_of_records_topic,
    enrolment_topic,
    records_subscription,
    status_topic,
)
from carbonlink.vehicles import VehicleClass

from mosquitto_broker import MosquittoBroker, mosquitto, running_mosquitto  # noqa: F401
from waiting import WAIT_S, holds_within, wait_for

DEVICE = "ev-test-0001"


class InMemoryOutbox:
    """The Outbox protocol in memory, thread-safe, recording the order of calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, OutboxEntry] = {}
        self._rejected: list[RejectedEntry] = []
        self._head: ChainHead | None = None
        self._acknowledged_total = 0
        self.calls: list[tuple[str, int]] = []
        """(method, sequence) of every mark_sent, acknowledge and reject that found its record."""

    def chain_head(self) -> ChainHead | None:
        return self._head

    def append(self, signed: bytes, sequence: int, record_id: str) -> None:
        entry = OutboxEntry(record_hash(signed), sequence, record_id, signed, EntryState.PENDING, 0, None)
        with self._lock:
            self._entries[entry.record_hash] = entry
            self._head = ChainHead(sequence, entry.record_hash)

    def unacknowledged(self, limit: int) -> list[OutboxEntry]:
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.sequence)[:limit]

    def mark_sent(self, record_hash: bytes, sent_at_s: float) -> None:
        with self._lock:
            entry = self._entries.get(record_hash)
            if entry is not None:
                self._entries[record_hash] = dataclasses.replace(
                    entry, state=EntryState.SENT, sent_count=entry.sent_count + 1, last_sent_at_s=sent_at_s
                )
                self.calls.append(("mark_sent", entry.sequence))

    def acknowledge(self, record_hash: bytes) -> bool:
        with self._lock:
            entry = self._entries.pop(record_hash, None)
            if entry is None:
                return False
            self._acknowledged_total += 1
            self.calls.append(("acknowledge", entry.sequence))
            return True

    def reject(self, record_hash: bytes, reason: str, detail: str | None) -> bool:
        with self._lock:
            entry = self._entries.pop(record_hash, None)
            if entry is None:
                return False
            self._rejected.append(
                RejectedEntry(entry.record_hash, entry.sequence, entry.record_id, entry.signed, reason, detail)
            )
            self.calls.append(("reject", entry.sequence))
            return True

    def rejected(self) -> list[RejectedEntry]:
        with self._lock:
            return list(self._rejected)

    def counts(self) -> OutboxCounts:
        with self._lock:
            sent = sum(e.state is EntryState.SENT for e in self._entries.values())
            return OutboxCounts(len(self._entries) - sent, sent, len(self._rejected), 0, self._acknowledged_total)

    def entries(self) -> list[OutboxEntry]:
        return self.unacknowledged(len(self._entries) + 1)

    def empty(self) -> bool:
        with self._lock:
            return not self._entries

    def close(self) -> None:
        pass


def payload_of(sequence: int) -> bytes:
    return f"signed-record-{sequence:04d}".encode()


def seal(outbox: InMemoryOutbox, *sequences: int) -> list[bytes]:
    """Append records (opaque bytes: the uplink never reads them) and return their payloads."""
    for sequence in sequences:
        outbox.append(payload_of(sequence), sequence, f"rec-{sequence:04d}")
    return [payload_of(sequence) for sequence in sequences]


DROP = "drop"
"""A scripted answer: receive the record and send no ack."""
Answer = Outcome | RejectionReason | bytes | str


class AckingGateway:
    """A plain paho client in the gateway's place: acks records on the device's ack topic.

    By default the first delivery of a record is ``accepted`` and later ones ``duplicate``; ``script``
    sets the answers to the next deliveries of one payload (an outcome, a rejection reason, raw bytes
    sent as the ack, or ``DROP``). While ``paused`` it receives and answers nothing.
    """

    def __init__(self, broker: MosquittoBroker) -> None:
        self.received: list[bytes] = []
        self.committed: set[bytes] = set()
        self.status_messages: list[bytes] = []
        self.first_seen_s: dict[bytes, float] = {}
        self.paused = False
        self._script: dict[bytes, list[Answer]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._broker = broker
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="test-gateway", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)

    def script(self, payload: bytes, *answers: Answer) -> None:
        with self._lock:
            self._script[payload] = list(answers)

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 300
        self.client.connect(self._broker.host, self._broker.port, clean_start=False, properties=properties)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, "the gateway's subscription")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def deliveries(self, payload: bytes) -> int:
        with self._lock:
            return self.received.count(payload)

    def send_raw_ack(self, data: bytes) -> None:
        self.client.publish(acks_topic(DEVICE), data, qos=1).wait_for_publish(WAIT_S)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: mqtt.ConnectFlags, rc: ReasonCode, _p: object) -> None:
        if not rc.is_failure:
            client.subscribe([(records_subscription(None), 1), (status_topic(DEVICE), 1)])

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, _rc: list[ReasonCode], _p: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        device = device_of_records_topic(message.topic)
        payload = bytes(message.payload)
        with self._lock:
            if device is None:
                self.status_messages.append(payload)
                return
            if self.paused:
                return
            self.received.append(payload)
            self.first_seen_s.setdefault(payload, time.monotonic())
            scripted = self._script.get(payload)
            answer = scripted.pop(0) if scripted else None
            digest = record_hash(payload)
            if answer is None:
                answer = Outcome.DUPLICATE if digest in self.committed else Outcome.ACCEPTED
            if answer in (Outcome.ACCEPTED, Outcome.DUPLICATE):
                self.committed.add(digest)
        if answer == DROP:
            return
        if isinstance(answer, bytes):
            data = answer
        elif isinstance(answer, RejectionReason):
            data = encode_ack(Ack(record_hash=digest, record_id=None, sequence=None, outcome=Outcome.REJECTED,
                                  reason=answer, detail=f"test says {answer}"))  # fmt: skip
        else:
            data = encode_ack(Ack(record_hash=digest, record_id=None, sequence=None, outcome=Outcome(answer)))
        client.publish(acks_topic(device), data, qos=1)


@pytest.fixture
def gateway(mosquitto: MosquittoBroker) -> Iterator[AckingGateway]:  # noqa: F811 - the imported fixture
    gateway = AckingGateway(mosquitto)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.close()


UplinkFactory = Callable[..., PahoUplink]


@pytest.fixture
def make_uplink() -> Iterator[UplinkFactory]:
    """Build and start uplinks; every one is stopped when the test ends."""
    started: list[PahoUplink] = []

    def make(broker: MosquittoBroker, outbox: Outbox, **overrides: object) -> PahoUplink:
        random_unit = overrides.pop("random_unit", lambda: 0.5)
        enrolment = overrides.pop("enrolment", None)
        values: dict[str, object] = {
            "host": broker.host,
            "port": broker.port,
            "client_id": DEVICE,
            "ack_timeout_s": 1.0,
            "backoff_initial_s": 0.2,
            "backoff_max_s": 1.0,
            "drain_rate_per_s": 1000.0,
            "connect_timeout_s": 2.0,
        }
        values.update(overrides)
        uplink = PahoUplink(UplinkSettings(**values), outbox, DEVICE, random_unit=random_unit, enrolment=enrolment)  # type: ignore[arg-type]
        started.append(uplink)
        uplink.start()
        return uplink

    yield make
    for uplink in started:
        uplink.stop(timeout_s=2.0)


def test_acknowledged_records_leave_the_outbox(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """Every record is published, marked sent after its PUBACK, and removed on the gateway's ack."""
    outbox = InMemoryOutbox()
    payloads = seal(outbox, 1, 2, 3, 4, 5)
    uplink = make_uplink(mosquitto, outbox)
    wait_for(outbox.empty, "the outbox to empty")
    status = uplink.status()
    assert status.connected
    assert status.protocol == "5"
    assert status.acks_received == 5
    assert status.published == 5
    assert status.last_ack_at is not None
    assert status.last_ack_at.tzinfo is not None
    assert status.last_error is None
    assert outbox.counts().acknowledged_total == 5
    assert {record_hash(p) for p in payloads} == gateway.committed
    assert ("acknowledge", 1) in outbox.calls


def test_a_record_sealed_later_goes_out_on_notify(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """``notify`` wakes the uplink for a newly sealed record."""
    outbox = InMemoryOutbox()
    uplink = make_uplink(mosquitto, outbox)
    wait_for(lambda: uplink.status().connected, "the connection")
    (payload,) = seal(outbox, 1)
    uplink.notify()
    wait_for(outbox.empty, "the record to be acknowledged")
    assert gateway.committed == {record_hash(payload)}


def test_a_record_never_acknowledged_is_resent_after_the_ack_timeout(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """A PUBACK is not an ack: the record stays, marked sent, and goes again after ack_timeout_s."""
    outbox = InMemoryOutbox()
    (payload,) = seal(outbox, 1)
    gateway.script(payload, DROP)
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=0.5)
    wait_for(lambda: outbox.counts().sent == 1, "the PUBACK to mark the record sent")
    wait_for(outbox.empty, "the resent record to be acknowledged")
    assert gateway.deliveries(payload) == 2
    assert uplink.status().resends == 1
    assert outbox.calls[0] == ("mark_sent", 1)
    assert outbox.calls[-1] == ("acknowledge", 1)


def test_a_duplicate_ack_counts_as_success(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """``duplicate`` (committed before) removes the record just like ``accepted``."""
    outbox = InMemoryOutbox()
    (payload,) = seal(outbox, 1)
    gateway.script(payload, Outcome.DUPLICATE)
    make_uplink(mosquitto, outbox)
    wait_for(outbox.empty, "the record to be acknowledged")
    assert outbox.counts().acknowledged_total == 1
    assert outbox.rejected() == []


def test_a_final_rejection_moves_the_record_aside_with_its_reason(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """A rejection for a final reason moves the record to the rejected list; it is not resent."""
    outbox = InMemoryOutbox()
    rejected_payload, accepted_payload = seal(outbox, 1, 2)
    gateway.script(rejected_payload, RejectionReason.SCHEMA)
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=0.3)
    wait_for(outbox.empty, "both records to be settled")
    (rejected,) = outbox.rejected()
    assert rejected.signed == rejected_payload
    assert rejected.reason == "schema"
    assert rejected.detail == "test says schema"
    assert gateway.committed == {record_hash(accepted_payload)}
    assert not holds_within(lambda: gateway.deliveries(rejected_payload) > 1, window_s=0.6)
    assert uplink.status().resends == 0


def test_a_sequence_gap_rejection_keeps_the_record_and_resends_it(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """``sequence_gap`` is retryable: the record stays in the outbox and is accepted on a later try."""
    outbox = InMemoryOutbox()
    (payload,) = seal(outbox, 1)
    gateway.script(payload, RejectionReason.SEQUENCE_GAP, RejectionReason.SEQUENCE_GAP)
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=0.3)
    wait_for(outbox.empty, "the record to be accepted at last")
    assert gateway.deliveries(payload) == 3
    assert outbox.rejected() == []
    assert outbox.counts().acknowledged_total == 1
    assert uplink.status().resends == 2


def test_malformed_and_unknown_acks_are_counted_and_ignored(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """Garbage on the ack topic and acks of unknown records change nothing and crash nothing."""
    outbox = InMemoryOutbox()
    (payload,) = seal(outbox, 1)
    gateway.script(payload, b'{"outcome": "accepted"}', Outcome.ACCEPTED)
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=0.3)
    wait_for(outbox.empty, "the record to be acknowledged on its resend")
    gateway.send_raw_ack(b"\xff not json")
    stranger = encode_ack(Ack(record_hash=bytes(32), record_id=None, sequence=None, outcome=Outcome.ACCEPTED))
    gateway.send_raw_ack(stranger)
    wait_for(lambda: uplink.status().malformed_acks == 2, "both malformed acks to be counted")
    wait_for(lambda: uplink.status().unknown_acks == 1, "the unknown ack to be counted")
    status = uplink.status()
    assert status.callback_errors == 0
    assert status.worker_errors == 0
    assert status.connected
    (second,) = seal(outbox, 2)
    uplink.notify()
    wait_for(outbox.empty, "the uplink to go on working")
    assert record_hash(second) in gateway.committed


def test_the_last_will_says_offline_when_the_connection_dies(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """The broker publishes the retained ``offline`` will; the uplink reconnects and says ``online``."""
    outbox = InMemoryOutbox()
    uplink = make_uplink(mosquitto, outbox, random_unit=lambda: 0.0)
    wait_for(lambda: gateway.status_messages[-1:] == [b"online"], "the retained 'online'")
    connection = uplink._connection
    assert connection is not None
    sock = connection.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the link dies without a DISCONNECT
    wait_for(lambda: b"offline" in gateway.status_messages, "the last will")
    wait_for(lambda: gateway.status_messages[-1:] == [b"online"], "'online' again after the reconnect")
    (payload,) = seal(outbox, 1)
    uplink.notify()
    wait_for(outbox.empty, "a record after the reconnect")
    assert uplink.status().connect_attempts == 2
    assert gateway.committed == {record_hash(payload)}


def test_records_pending_across_a_broker_restart_are_all_delivered(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """Records sent before and sealed during a broker restart all end acknowledged, each committed once."""
    outbox = InMemoryOutbox()
    gateway.paused = True
    before = seal(outbox, *range(1, 11))
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=0.5, random_unit=lambda: 0.0)
    wait_for(lambda: outbox.counts().sent == 10, "ten records marked sent (PUBACKed, not acked)")
    mosquitto.stop()
    wait_for(lambda: not uplink.status().connected, "the uplink to notice")
    during = seal(outbox, *range(11, 21))
    uplink.notify()
    mosquitto.start()
    gateway.paused = False
    wait_for(outbox.empty, "every record to be acknowledged")
    assert gateway.committed == {record_hash(p) for p in before + during}
    assert outbox.counts().acknowledged_total == 20
    assert outbox.rejected() == []
    assert set(gateway.received) == set(before + during)


def test_a_publish_the_broker_refuses_is_retried_with_backoff(tmp_path: Path, make_uplink: UplinkFactory) -> None:
    """An MQTT 5 PUBACK with 'Not authorized' is counted and retried; once allowed, the record goes."""
    deny = "pattern write carbonlink/v1/vehicles/%c/status\npattern read carbonlink/v1/vehicles/%c/acks\n"
    with running_mosquitto(tmp_path, acl=deny) as broker:
        outbox = InMemoryOutbox()
        (payload,) = seal(outbox, 1)
        uplink = make_uplink(broker, outbox)
        wait_for(lambda: uplink.status().refused_publishes >= 2, "refused publishes, retried")
        assert outbox.counts().pending == 1  # a refused publish is not "sent"
        (broker.directory / "acl").write_text(deny + "topic readwrite carbonlink/#\n", encoding="utf-8")
        broker.reload()
        gateway = AckingGateway(broker)
        gateway.start()
        try:
            wait_for(outbox.empty, "the record once the ACL allows it")
            assert gateway.committed == {record_hash(payload)}
        finally:
            gateway.close()


def test_a_wrong_password_stops_the_retries_with_a_clear_error(tmp_path: Path, make_uplink: UplinkFactory) -> None:
    """'Bad user name or password' is final: one attempt, ``last_error`` says why; the right one works."""
    wrong, right = tmp_path / "wrong", tmp_path / "right"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    right.write_text("s3cret\n", encoding="utf-8")
    with running_mosquitto(tmp_path / "broker", users={DEVICE: "s3cret"}) as broker:
        refused = make_uplink(broker, InMemoryOutbox(), username=DEVICE, password_file=wrong, random_unit=lambda: 0.0)
        wait_for(lambda: refused.last_error is not None, "the uplink to give up")
        error = refused.last_error
        assert isinstance(error, UplinkError)
        assert "not retrying" in str(error)
        assert "password" in str(error).lower()
        assert "not-the-password" not in str(error)
        assert not holds_within(lambda: refused.status().connect_attempts > 1, window_s=1.5)
        assert not refused.status().connected

        accepted = make_uplink(broker, InMemoryOutbox(), username=DEVICE, password_file=right)
        wait_for(lambda: accepted.status().connected, "the uplink with the right password")


class Mqtt311OnlyFront:
    """A TCP front of Mosquitto that plays a broker without MQTT 5.

    It answers a version-5 CONNECT with the 3.1.1 CONNACK "unacceptable protocol version" and closes,
    as a 3.1.1 broker does; any other connection is passed through to Mosquitto.
    """

    def __init__(self, broker: MosquittoBroker) -> None:
        self._broker = broker
        self._listener = socket.create_server((broker.host, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.refused_v5 = 0
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(WAIT_S)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = self._read_connect_head(conn)
            if head is None:
                return
            if head[-1] == 5:  # the protocol level of the CONNECT
                self.refused_v5 += 1
                conn.sendall(b"\x20\x02\x00\x01")
                return
            with socket.create_connection((self._broker.host, self._broker.port)) as upstream:
                upstream.sendall(head)
                self._pipe(conn, upstream)

    @staticmethod
    def _read_connect_head(conn: socket.socket) -> bytes | None:
        """The fixed header and the variable header up to the protocol level byte."""
        head = bytearray()

        def take(count: int) -> bool:
            while count > 0:
                chunk = conn.recv(count)
                if not chunk:
                    return False
                head.extend(chunk)
                count -= len(chunk)
            return True

        if not take(2):
            return None
        while head[-1] & 0x80:  # the remaining length goes on
            if not take(1):
                return None
        return bytes(head) if take(7) else None  # name length (2), "MQTT" (4), level (1)

    def _pipe(self, one: socket.socket, other: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(one, selectors.EVENT_READ, other)
            selector.register(other, selectors.EVENT_READ, one)
            while not self._closing.is_set():
                for key, _ in selector.select(0.05):
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    key.data.sendall(data)


def test_auto_falls_back_to_311_when_the_broker_refuses_5(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """With ``protocol = "auto"``, "unsupported protocol version" makes the uplink retry in 3.1.1."""
    front = Mqtt311OnlyFront(mosquitto)
    try:
        outbox = InMemoryOutbox()
        (payload,) = seal(outbox, 1)
        uplink = make_uplink(mosquitto, outbox, port=front.port)
        wait_for(outbox.empty, "delivery after the fallback")
        assert uplink.status().protocol == "3.1.1"
        assert uplink.last_error is None
        assert front.refused_v5 == 1
        assert gateway.committed == {record_hash(payload)}
    finally:
        front.close()


def test_only_5_means_a_311_broker_is_final(
    mosquitto: MosquittoBroker,  # noqa: F811
    make_uplink: UplinkFactory,
) -> None:
    """With ``protocol = "5"`` a broker without MQTT 5 is an error, not a fallback."""
    front = Mqtt311OnlyFront(mosquitto)
    try:
        uplink = make_uplink(mosquitto, InMemoryOutbox(), port=front.port, protocol=ProtocolChoice.V5)
        wait_for(lambda: uplink.last_error is not None, "the uplink to give up")
        assert "Unsupported protocol version" in str(uplink.last_error)
    finally:
        front.close()


def test_records_sent_by_an_earlier_run_keep_their_ack_timer(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """After a restart of the agent, an overdue record goes at once, a freshly sent one after its timeout."""
    outbox = InMemoryOutbox()
    overdue, fresh = seal(outbox, 1, 2)
    outbox.mark_sent(record_hash(overdue), time.time() - 100)
    outbox.mark_sent(record_hash(fresh), time.time())
    started_s = time.monotonic()
    uplink = make_uplink(mosquitto, outbox, ack_timeout_s=1.0)
    wait_for(outbox.empty, "both records to be acknowledged")
    assert gateway.first_seen_s[overdue] < gateway.first_seen_s[fresh]
    assert gateway.first_seen_s[fresh] - started_s >= 0.9
    assert uplink.status().resends == 2


def test_mqtt_311_when_asked(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """With ``protocol = "3.1.1"`` the uplink speaks 3.1.1 and works the same."""
    outbox = InMemoryOutbox()
    seal(outbox, 1, 2)
    uplink = make_uplink(mosquitto, outbox, protocol=ProtocolChoice.V311)
    wait_for(outbox.empty, "delivery over MQTT 3.1.1")
    assert uplink.status().protocol == "3.1.1"
    assert len(gateway.committed) == 2


def test_stop_waits_for_pubacks_and_says_offline(
    mosquitto: MosquittoBroker,  # noqa: F811
    gateway: AckingGateway,
    make_uplink: UplinkFactory,
) -> None:
    """``stop`` leaves published records marked sent, publishes ``offline`` and disconnects."""
    outbox = InMemoryOutbox()
    gateway.paused = True
    seal(outbox, *range(1, 31))
    uplink = make_uplink(mosquitto, outbox)
    wait_for(lambda: uplink.status().published >= 1, "publishing to begin")
    uplink.stop(timeout_s=5.0)
    status = uplink.status()
    assert not status.connected
    sent = [entry for entry in outbox.entries() if entry.state is EntryState.SENT]
    assert len(sent) == status.published
    wait_for(lambda: gateway.status_messages[-1:] == [b"offline"], "'offline' on the status topic")


# --- enrolment certificate ------------------------------------------------------------------------------

ENROLMENT = issue_certificate(
    DeviceKey.from_seed(bytes([0x03]) * 32, "fleet-authority"),
    device_public_key=DeviceKey.from_seed(bytes([0x11]) * 32, DEVICE).public_key,
    device_id=DEVICE,
    vehicle_class=VehicleClass.COMPACT,
    vin_hash=None,
    issued_at=datetime(2026, 3, 1, tzinfo=UTC),
    expires_at=datetime(2027, 3, 1, tzinfo=UTC),
    authority="Example Fleet Authority",
)


class TopicRecorder:
    """A plain paho client noting every enrolment and record message of the vehicles, in order of arrival."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._arrivals: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-recorder")
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect(self._broker.host, self._broker.port)
        self.client.subscribe("carbonlink/v1/vehicles/+/#", qos=1)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, "the recorder's subscription")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def arrivals(self) -> list[tuple[str, bytes]]:
        """(``enrolment`` or ``records``, payload) of each message on those topics, oldest first."""
        with self._lock:
            return list(self._arrivals)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        leaf = message.topic.rsplit("/", 1)[-1]
        if leaf in ("enrolment", "records"):
            with self._lock:
                self._arrivals.append((leaf, bytes(message.payload)))


@pytest.fixture
def recorder(mosquitto: MosquittoBroker) -> Iterator[TopicRecorder]:  # noqa: F811 - the imported fixture
    recorder = TopicRecorder(mosquitto)
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.close()


class PubackHoldingFront:
    """A TCP front of Mosquitto that holds back the broker's PUBACK of any publish on one topic until released.

    It reads whole MQTT packets both ways: a QoS 1 PUBLISH from the client on ``topic`` has its packet id
    noted, and the broker's PUBACK with that id waits (and so, TCP being ordered, everything after it) until
    ``release`` is set, at most ``WAIT_S``. ``holding`` is set while one waits.
    """

    def __init__(self, broker: MosquittoBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic.encode()
        self._held_ids: set[bytes] = set()
        self.holding = threading.Event()
        self.release = threading.Event()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((broker.host, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._closing.set()
        self.release.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(WAIT_S)
        for sock in self._sockets:
            sock.close()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            broker = socket.create_connection((self._broker.host, self._broker.port))
            self._sockets += [client, broker]
            for source, target, note in ((client, broker, self._from_client), (broker, client, self._from_broker)):
                thread = threading.Thread(target=self._pump, args=(source, target, note), daemon=True)
                self._threads.append(thread)
                thread.start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, note: Callable[[int, bytes], None]) -> None:
        try:
            while (packet := _read_mqtt_packet(source)) is not None:
                first_byte, header, body = packet
                note(first_byte, body)
                target.sendall(header + body)
        except OSError:
            pass
        finally:  # one side gone: end the other too, as a broker or a client would see it
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _from_client(self, first_byte: int, body: bytes) -> None:
        is_publish, qos = first_byte >> 4 == 3, (first_byte >> 1) & 0b11  # packet type 3: PUBLISH
        if is_publish and qos > 0:
            topic_length = int.from_bytes(body[:2])
            if body[2 : 2 + topic_length] == self._topic:
                self._held_ids.add(body[2 + topic_length : 4 + topic_length])

    def _from_broker(self, first_byte: int, body: bytes) -> None:
        if first_byte >> 4 == 4 and body[:2] in self._held_ids:  # packet type 4: PUBACK
            self.holding.set()
            self.release.wait(WAIT_S)


def _read_mqtt_packet(sock: socket.socket) -> tuple[int, bytes, bytes] | None:
    """One MQTT packet: its first byte, its fixed header and its body; None when the connection ends."""

    def take(count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    header = take(1)
    if header is None:
        return None
    length, shift = 0, 0
    while True:  # the remaining length: 7 bits a byte, low bits first, the top bit says "more"
        byte = take(1)
        if byte is None:
            return None
        header += byte
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    body = take(length)
    return None if body is None else (header[0], header, body)


@pytest.mark.usefixtures("gateway")
def test_the_enrolment_certificate_goes_before_any_record_on_every_connection(
    mosquitto: MosquittoBroker,  # noqa: F811
    recorder: TopicRecorder,
    make_uplink: UplinkFactory,
) -> None:
    """On connect the certificate arrives before the records waiting; after a reconnect it comes again, first."""
    outbox = InMemoryOutbox()
    before = seal(outbox, 1, 2)
    uplink = make_uplink(mosquitto, outbox, enrolment=ENROLMENT, random_unit=lambda: 0.0)
    wait_for(outbox.empty, "the first records to be acknowledged")
    wait_for(lambda: uplink.status().enrolments_sent == 1, "the certificate's PUBACK")
    connection = uplink._connection
    assert connection is not None
    sock = connection.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the link dies; paho reconnects by itself
    wait_for(lambda: not uplink.status().connected, "the uplink to notice")
    (after,) = seal(outbox, 3)  # waiting in the outbox when the new connection comes up
    uplink.notify()
    wait_for(outbox.empty, "the record sealed while offline to be acknowledged")
    wait_for(lambda: uplink.status().enrolments_sent == 2, "the second certificate's PUBACK")
    # The recorder is a subscriber of its own: the broker may deliver to it after the gateway acked.
    wait_for(lambda: ("records", after) in recorder.arrivals(), "the recorder to see the record sealed offline")
    arrivals = recorder.arrivals()
    enrolments = [index for index, (leaf, _) in enumerate(arrivals) if leaf == "enrolment"]
    assert len(enrolments) == 2
    assert all(arrivals[index][1] == ENROLMENT for index in enrolments)
    assert enrolments[0] == 0
    assert {payload for _, payload in arrivals[1 : enrolments[1]]} == set(before)
    assert arrivals.index(("records", after)) > enrolments[1]
    assert uplink.status().enrolments_refused == 0


@pytest.mark.usefixtures("gateway")
def test_records_wait_for_the_brokers_puback_of_the_certificate(
    mosquitto: MosquittoBroker,  # noqa: F811
    recorder: TopicRecorder,
    make_uplink: UplinkFactory,
) -> None:
    """While the broker's PUBACK of the certificate is held back no record is published; on it they all go."""
    front = PubackHoldingFront(mosquitto, enrolment_topic(DEVICE))
    try:
        outbox = InMemoryOutbox()
        seal(outbox, 1, 2)
        uplink = make_uplink(mosquitto, outbox, port=front.port, enrolment=ENROLMENT, ack_timeout_s=30.0)
        wait_for(front.holding.is_set, "the certificate's PUBACK to be held back")
        wait_for(lambda: recorder.arrivals() == [("enrolment", ENROLMENT)], "the certificate at the broker")
        assert not holds_within(lambda: len(recorder.arrivals()) > 1, window_s=0.5)
        assert outbox.counts().pending == 2
        front.release.set()
        wait_for(outbox.empty, "the records once the certificate's PUBACK came")
        assert uplink.status().enrolments_sent == 1
        # The recorder is a subscriber of its own: the broker may deliver to it after the gateway acked.
        wait_for(lambda: len(recorder.arrivals()) >= 3, "the recorder to see both records")
        assert [leaf for leaf, _ in recorder.arrivals()] == ["enrolment", "records", "records"]
    finally:
        front.close()


def test_records_wait_for_the_certificates_puback_at_most_the_ack_timeout(
    mosquitto: MosquittoBroker,  # noqa: F811
    recorder: TopicRecorder,
    make_uplink: UplinkFactory,
) -> None:
    """A PUBACK that never comes holds the records back for ack_timeout_s, not for ever."""
    front = PubackHoldingFront(mosquitto, enrolment_topic(DEVICE))
    try:
        outbox = InMemoryOutbox()
        (payload,) = seal(outbox, 1)
        make_uplink(mosquitto, outbox, port=front.port, enrolment=ENROLMENT, ack_timeout_s=0.5)
        wait_for(lambda: ("records", payload) in recorder.arrivals(), "the record after the wait")
        assert not front.release.is_set()  # the PUBACK is still held back
        assert recorder.arrivals()[0] == ("enrolment", ENROLMENT)
    finally:
        front.close()


def test_a_certificate_the_broker_refuses_holds_no_record_back(tmp_path: Path, make_uplink: UplinkFactory) -> None:
    """An ACL without the enrolment topic refuses the certificate (MQTT 5): counted, and the records go on."""
    acl = (
        "pattern write carbonlink/v1/vehicles/%c/records\npattern write carbonlink/v1/vehicles/%c/status\n"
        "pattern read carbonlink/v1/vehicles/%c/acks\npattern read carbonlink/v1/vehicles/+/records\n"
        "pattern read carbonlink/v1/vehicles/+/status\npattern write carbonlink/v1/vehicles/+/acks\n"
    )
    with running_mosquitto(tmp_path, acl=acl) as broker:
        gateway = AckingGateway(broker)
        gateway.start()
        try:
            outbox = InMemoryOutbox()
            (payload,) = seal(outbox, 1)
            uplink = make_uplink(broker, outbox, enrolment=ENROLMENT, ack_timeout_s=30.0)
            wait_for(outbox.empty, "the record despite the refused certificate")
            status = uplink.status()
            assert (status.enrolments_refused, status.enrolments_sent) == (1, 0)
            assert gateway.committed == {record_hash(payload)}
        finally:
            gateway.close()


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_inflight": 10}, "max_inflight"),
        ({"max_inflight": 101}, "max_inflight"),
        ({"port": 0}, "port"),
        ({"client_id": "Bad Id"}, "client_id"),
        ({"ack_timeout_s": 0}, "ack_timeout_s"),
        ({"drain_rate_per_s": float("nan")}, "drain_rate_per_s"),
        ({"backoff_initial_s": 5.0, "backoff_max_s": 1.0}, "backoff_max_s"),
        ({"protocol": "4"}, "protocol"),
        ({"password_file": Path("/nonexistent")}, "password_file"),
        ({"host": ""}, "host"),
    ],
)
def test_settings_name_the_bad_field(overrides: dict[str, object], field: str) -> None:
    """A bad setting raises ConfigError naming the field."""
    values: dict[str, object] = {"host": "broker.example", "client_id": DEVICE, **overrides}
    with pytest.raises(ConfigError, match=field):
        UplinkSettings(**values)  # type: ignore[arg-type]


def test_settings_read_the_protocol_from_text() -> None:
    """A TOML loader's text becomes the enum."""
    assert UplinkSettings(host="h", client_id=DEVICE, protocol="3.1.1").protocol is ProtocolChoice.V311  # type: ignore[arg-type]


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    """The secret is a file path; a missing file is named when the uplink is built."""
    settings = UplinkSettings(host="h", client_id=DEVICE, username=DEVICE, password_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="password_file"):
        PahoUplink(settings, InMemoryOutbox(), DEVICE)


def test_the_client_id_must_be_the_device_id() -> None:
    """The broker's ACL keys on the client id, so it must be the device's."""
    with pytest.raises(ConfigError, match="client_id"):
        PahoUplink(UplinkSettings(host="h", client_id="ev-other"), InMemoryOutbox(), DEVICE)


# --- in-flight bookkeeping (pure) ------------------------------------------------------------------


def entry(sequence: int, state: EntryState = EntryState.PENDING, last_sent_at_s: float | None = None) -> OutboxEntry:
    signed = payload_of(sequence)
    sent_count = 0 if state is EntryState.PENDING else 1
    return OutboxEntry(record_hash(signed), sequence, f"rec-{sequence}", signed, state, sent_count, last_sent_at_s)


def test_flights_keep_publishes_under_the_drain_rate() -> None:
    """At 10 records/s (a burst of 2), five pending records go 2 now, then one per 0.1 s."""
    flights = Flights(ack_timeout_s=30.0, drain_rate_per_s=10.0, now_s=100.0)
    pending = [entry(n) for n in range(1, 6)]
    first = flights.due(pending, 100.0, 0.0)
    assert [e.sequence for e in first] == [1, 2]
    for mid, e in enumerate(first):
        assert not flights.published(e, mid, 100.0)
    assert flights.due(pending, 100.0, 0.0) == []
    assert flights.next_due_s(100.0) == pytest.approx(100.1)
    assert [e.sequence for e in flights.due(pending, 100.1, 0.0)] == [3]


def test_flights_resend_after_the_ack_timeout_and_restart_the_timer_on_reconnect() -> None:
    """A published record is due again ack_timeout_s later; a reconnect starts its timer over."""
    flights = Flights(ack_timeout_s=5.0, drain_rate_per_s=1000.0, now_s=0.0)
    (record,) = window = [entry(1)]
    flights.published(record, 7, 0.0)
    assert flights.pubacked(7) == record.record_hash
    assert flights.due(window, 4.9, 0.0) == []
    flights.link_up(4.0)
    assert flights.due(window, 8.9, 0.0) == []
    assert flights.due(window, 9.0, 0.0) == window
    assert flights.published(record, 8, 9.0)  # a resend


def test_flights_honour_the_timer_of_a_record_an_earlier_run_sent() -> None:
    """Sent 2 s ago (wall clock) with a 5 s timeout: due in 3 s; a clock that went back makes it due now."""
    flights = Flights(ack_timeout_s=5.0, drain_rate_per_s=1000.0, now_s=50.0)
    recent = entry(1, EntryState.SENT, last_sent_at_s=1_000.0)
    assert flights.due([recent], 50.0, 1_002.0) == []
    assert flights.next_due_s(50.0) == pytest.approx(53.0)
    from_the_future = entry(2, EntryState.SENT, last_sent_at_s=2_000.0)
    assert flights.due([from_the_future], 50.0, 1_002.0) == [from_the_future]


def test_flights_forget_settled_records_and_back_off_refused_ones() -> None:
    """A refused publish waits its backoff; PUBACKs of settled records are ignored."""
    flights = Flights(ack_timeout_s=5.0, drain_rate_per_s=1000.0, now_s=0.0)
    refused, settled = window = [entry(1), entry(2)]
    flights.published(refused, 1, 0.0)
    flights.published(settled, 2, 0.0)
    assert flights.refused(1, 0.0, delay_s=0.5) == 1
    flights.link_up(0.1)  # does not cut a backoff short, nor stretch it
    flights.settled(settled.record_hash)
    assert flights.pubacked(2) is None
    assert flights.due(window, 0.4, 0.0) == [settled]  # were it still held, it would count as new
    assert flights.due([refused], 0.5, 0.0) == [refused]
    assert len(flights) == 1


# --- backoff ------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """The ceiling doubles from initial_s and stops at max_s."""
    backoff = Backoff(initial_s=0.5, max_s=10.0)
    assert [backoff.ceiling_s(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.ceiling_s(10_000) == 10.0


def test_backoff_full_jitter_spans_zero_to_the_ceiling() -> None:
    """The random draw scales the ceiling: 0 gives 0, just under 1 gives just under the ceiling."""
    backoff = Backoff(initial_s=1.0, max_s=60.0)
    assert backoff.delay_s(3, 0.0) == 0.0
    assert backoff.delay_s(3, 0.5) == 4.0
    assert 7.99 < backoff.delay_s(3, 0.999999) < 8.0


@given(
    initial_s=st.floats(0.001, 100.0),
    spread=st.floats(1.0, 1000.0),
    attempt=st.integers(0, 100_000),
    unit=st.floats(0.0, 1.0, exclude_max=True),
)
def test_backoff_delay_stays_within_bounds(initial_s: float, spread: float, attempt: int, unit: float) -> None:
    """For any attempt and draw, 0 ≤ delay ≤ ceiling ≤ max_s, and the ceiling never shrinks."""
    backoff = Backoff(initial_s=initial_s, max_s=initial_s * spread)
    ceiling = backoff.ceiling_s(attempt)
    assert 0.0 <= backoff.delay_s(attempt, unit) <= ceiling <= backoff.max_s
    assert backoff.ceiling_s(attempt + 1) >= ceiling


@pytest.mark.parametrize(("attempt", "unit"), [(-1, 0.5), (0, 1.0), (0, -0.1)])
def test_backoff_refuses_out_of_range_inputs(attempt: int, unit: float) -> None:
    """A negative attempt or a draw outside [0, 1) is a programming error."""
    with pytest.raises(ValueError, match="must be"):
        Backoff(initial_s=1.0, max_s=2.0).delay_s(attempt, unit)
