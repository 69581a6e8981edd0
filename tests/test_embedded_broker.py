"""The demo's embedded MQTT broker (amqtt), driven by real paho clients over loopback.

What the demo relies on: a free port of its own, QoS 1 delivery both ways, retained messages and
wills (the agents' status topic), a clean stop that closes the port even with clients connected,
and a clear error when it cannot listen. Its known limit, MQTT 3.1.1 only, is pinned too, so a
broker upgrade that changes it is noticed (docs/demo.md).
"""

import queue
import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from carbonlink.cli.embedded_broker import PROTOCOL, BrokerError, EmbeddedBroker

WAIT_S = 10.0


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


class Client:
    """A paho client that connects, and collects what it receives, in queues a test can wait on."""

    def __init__(
        self, broker: EmbeddedBroker, client_id: str, *, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311
    ) -> None:
        self.connected: queue.Queue[ReasonCode] = queue.Queue()
        self.subscribed: queue.Queue[bool] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.paho.on_connect = lambda _c, _u, _f, code, _p: self.connected.put(code)
        self.paho.on_subscribe = lambda _c, _u, _m, _codes, _p: self.subscribed.put(item=True)
        self.paho.on_message = lambda _c, _u, message: self.messages.put(message)
        self._broker = broker

    def start(self) -> ReasonCode:
        self.paho.connect(self._broker.host, self._broker.port, keepalive=5)
        self.paho.loop_start()
        return self.connected.get(timeout=WAIT_S)

    def subscribe(self, topic: str) -> None:
        self.paho.subscribe(topic, qos=1)
        self.subscribed.get(timeout=WAIT_S)

    def stop(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def test_it_listens_on_a_free_loopback_port_and_says_where(broker: EmbeddedBroker) -> None:
    assert broker.host == "127.0.0.1"
    assert broker.port > 0
    assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
    assert PROTOCOL == "3.1.1"


def test_qos1_messages_reach_a_wildcard_subscriber_in_order(broker: EmbeddedBroker) -> None:
    """The records the agents publish reach the gateway's ``+`` subscription, every one, in order."""
    gateway, vehicle = Client(broker, "gateway"), Client(broker, "vehicle")
    try:
        assert gateway.start().is_failure is False
        gateway.subscribe("carbonlink/v1/vehicles/+/records")
        assert vehicle.start().is_failure is False
        sent = [f"record {n}".encode() for n in range(50)]
        for payload in sent:
            vehicle.paho.publish("carbonlink/v1/vehicles/car-1/records", payload, qos=1).wait_for_publish(WAIT_S)
        received = [gateway.messages.get(timeout=WAIT_S) for _ in sent]
        assert [message.payload for message in received] == sent
        assert {message.topic for message in received} == {"carbonlink/v1/vehicles/car-1/records"}
        assert {message.qos for message in received} == {1}
    finally:
        gateway.stop()
        vehicle.stop()


def test_a_will_is_published_and_retained_when_a_client_vanishes(broker: EmbeddedBroker) -> None:
    """The agents' status topic: the broker tells later subscribers a vehicle dropped off."""
    vehicle = Client(broker, "car-1")
    vehicle.paho.will_set("carbonlink/v1/vehicles/car-1/status", b"offline", qos=1, retain=True)
    assert vehicle.start().is_failure is False
    vehicle.paho.loop_stop()
    vehicle_socket = vehicle.paho.socket()
    assert isinstance(vehicle_socket, socket.socket)
    vehicle_socket.close()  # no DISCONNECT: the broker must publish the will
    watcher = Client(broker, "operator")
    try:
        assert watcher.start().is_failure is False
        watcher.subscribe("carbonlink/v1/vehicles/+/status")
        message = watcher.messages.get(timeout=WAIT_S)
        assert (message.topic, message.payload, message.retain) == (
            "carbonlink/v1/vehicles/car-1/status",
            b"offline",
            True,
        )
    finally:
        watcher.stop()


def test_mqtt_5_is_not_spoken_so_clients_must_ask_for_3_1_1(broker: EmbeddedBroker) -> None:
    """The broker answers an MQTT 5 CONNECT "unsupported protocol version": why the demo pins 3.1.1."""
    client = Client(broker, "v5-client", protocol=MQTTProtocolVersion.MQTTv5)
    try:
        code = client.start()
        assert code.is_failure
        assert "protocol" in str(code).lower()
    finally:
        client.paho.loop_stop()


def test_stop_closes_the_port_even_with_clients_connected() -> None:
    """The demo stops its broker while the gateway and a subscriber are still connected."""
    broker = EmbeddedBroker()
    broker.start()
    subscriber = Client(broker, "still-here")
    assert subscriber.start().is_failure is False
    subscriber.subscribe("a/#")
    subscriber.paho.publish("a/b", b"x", qos=1).wait_for_publish(WAIT_S)
    subscriber.messages.get(timeout=WAIT_S)
    broker.stop()
    subscriber.paho.loop_stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((broker.host, broker.port), timeout=WAIT_S).close()
    broker.stop()  # a second stop is harmless


def test_a_port_in_use_is_a_broker_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match=r"could not start on 127\.0\.0\.1") as raised:
            EmbeddedBroker(port=port).start()
        assert "address already in use" in str(raised.value).lower()


def test_its_port_is_unknown_before_start() -> None:
    with pytest.raises(BrokerError, match="not started"):
        _ = EmbeddedBroker().port
