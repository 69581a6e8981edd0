"""The gateway's MQTT client (paho): subscribe to every vehicle's records, hand them to intake, publish acks.

paho's network thread does as little as possible: :meth:`Intake.submit` puts a message on a
bounded queue and returns, so a slow database never delays keepalive (a slow ``on_message`` gets a
client disconnected, DESIGN.md §4). Every callback is guarded, because an exception in one kills
paho's loop thread. Acks are published with QoS 1 and tracked until the broker confirms them, so
shutdown can wait until every ack has really left.

MQTT 5 with a shared subscription (``$share/<group>/...``) is the normal case. With
``protocol = "auto"`` a broker that answers "unsupported protocol version" gets MQTT 3.1.1 and a
plain subscription instead (3.1.1 has no shared subscriptions: run one gateway per broker then).
"""

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from carbonlink.acks import Ack, encode_ack
from carbonlink.topics import acks_topic, enrolment_subscription, records_subscription
from gateway.config import MqttSettings, ProtocolChoice
from gateway.errors import ConfigError, GatewayError
from gateway.metrics import GatewayMetrics, Queue

log = logging.getLogger("carbonlink.gateway")

UNSUPPORTED_PROTOCOL_CODES = frozenset({1, 0x84})
"""CONNACK "unacceptable protocol version" (3.1.1) and "unsupported protocol version" (5)."""
FINAL_CONNACK_CODES = frozenset({4, 5, 0x86, 0x87, 0x8C})
"""Bad credentials or not authorised: retrying will not help."""
MAX_INFLIGHT_ACKS = 100
"""paho's QoS 1 window; beyond about 100 paho gets slower, not faster (DESIGN.md §4)."""

MessageHandler = Callable[[str, bytes, Callable[[], None]], bool]
"""Takes topic, payload and the function that settles the message (sends its PUBACK) once committed."""
MAX_RECEIVE_MAXIMUM = 65535


class MqttConnectError(GatewayError, ConnectionError):
    """The broker refused the gateway in a way retrying will not fix."""


class PahoGatewayClient:
    """Records in, acks out (see the module docstring)."""

    def __init__(
        self, settings: MqttSettings, on_record: MessageHandler, metrics: GatewayMetrics, *, receive_maximum: int
    ) -> None:
        self._settings, self._on_record, self._metrics = settings, on_record, metrics
        self._receive_maximum = max(1, min(receive_maximum, MAX_RECEIVE_MAXIMUM))
        self._generation = 0
        """Counts connections: a PUBACK is sent only on the connection the message came on."""
        self._password = _read_password(settings)
        self._tls = _tls_context(settings)
        self._lock = threading.Lock()
        self._pending_acks: set[int] = set()
        self._confirmed_early: set[int] = set()
        self._all_acks_sent = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._first_answer = threading.Event()
        self._refusal: ReasonCode | None = None
        self._taking = True
        self.protocol = (
            MQTTProtocolVersion.MQTTv311 if settings.protocol is ProtocolChoice.V311 else MQTTProtocolVersion.MQTTv5
        )
        self.client = self._new_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- life cycle ----------------------------------------------------------------------------
    def start(self, timeout_s: float) -> None:
        """Connect and subscribe; falls back to MQTT 3.1.1 once if allowed. Retries in the background."""
        self._connect()
        self._first_answer.wait(timeout_s)
        refusal = self._refusal
        if refusal is not None and refusal.value in UNSUPPORTED_PROTOCOL_CODES:
            if self._settings.protocol is not ProtocolChoice.AUTO or self.protocol == MQTTProtocolVersion.MQTTv311:
                raise MqttConnectError(f"the broker does not speak MQTT {self._protocol_name()}: {refusal}")
            log.warning("gateway.mqtt_protocol_fallback from=5 to=3.1.1 reason=%r", str(refusal))
            self._close_client()
            self.protocol = MQTTProtocolVersion.MQTTv311
            self._refusal = None
            self._first_answer.clear()
            self.client = self._new_client()
            self._connect()
            self._first_answer.wait(timeout_s)
            refusal = self._refusal
        if refusal is not None and refusal.value in FINAL_CONNACK_CODES | UNSUPPORTED_PROTOCOL_CODES:
            self._close_client()
            raise MqttConnectError(f"the broker refused the gateway: {refusal}")
        if not self._connected.is_set():
            log.warning(
                "gateway.mqtt_not_connected host=%s port=%d waited_s=%s (retrying in the background)",
                self._settings.host,
                self._settings.port,
                timeout_s,
            )

    def stop_taking(self) -> None:
        """Unsubscribe and drop whatever still arrives: the first step of a clean shutdown."""
        with self._lock:
            self._taking = False
        if self._connected.is_set():
            self.client.unsubscribe([self._records_subscription(), self._enrolment_subscription()])

    def wait_acks_sent(self, timeout_s: float) -> bool:
        """True once the broker confirmed every ack published so far."""
        with self._all_acks_sent:
            return self._all_acks_sent.wait_for(lambda: not self._pending_acks, timeout_s)

    def close(self) -> None:
        self._close_client()

    # --- acks ----------------------------------------------------------------------------------
    def send_ack(self, device_id: str, ack: Ack) -> None:
        info = self.client.publish(acks_topic(device_id), encode_ack(ack), qos=1)
        with self._lock:
            # The broker's PUBACK may have been handled before we get here (paho's thread).
            if info.mid in self._confirmed_early:
                self._confirmed_early.discard(info.mid)
            else:
                self._pending_acks.add(info.mid)
            self._metrics.depth[Queue.ACKS].set(len(self._pending_acks))

    def _settle(self, generation: int, mid: int, qos: int) -> None:
        """PUBACK a committed message, unless the connection it came on is gone.

        The broker then sends it again on the new connection; acking the old packet id there could
        settle another message.
        """
        with self._lock:
            current = self._generation
        if generation == current and qos > 0:
            self.client.ack(mid, qos)

    # --- paho callbacks (paho's thread; every one guarded) ----------------------------------------
    def _new_client(self) -> mqtt.Client:
        v5 = self.protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._settings.client_id,
            protocol=self.protocol,
            clean_session=None if v5 else False,
            manual_ack=True,  # PUBACK after commit: the broker keeps what we have not committed
        )
        client.max_inflight_messages_set(MAX_INFLIGHT_ACKS)
        client.max_queued_messages_set(0)  # 0: no limit; acks queue only while disconnected, one batch's worth
        client.reconnect_delay_set(1, self._settings.reconnect_max_s)
        if self._settings.username is not None:
            client.username_pw_set(self._settings.username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        return client

    def _connect(self) -> None:
        settings = self._settings
        if self.protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = settings.session_expiry_s
            # The broker sends at most this many messages we have not PUBACKed: intake's queue never
            # overflows, and the backlog of a flood waits at the broker, not in our memory.
            properties.ReceiveMaximum = self._receive_maximum
            self.client.connect_async(
                settings.host, settings.port, settings.keepalive_s, clean_start=False, properties=properties
            )
        else:
            self.client.connect_async(settings.host, settings.port, settings.keepalive_s)
        self.client.loop_start()

    def _close_client(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
        self._metrics.mqtt_connected.set(0)

    def _protocol_name(self) -> str:
        return "5" if self.protocol == MQTTProtocolVersion.MQTTv5 else "3.1.1"

    def _records_subscription(self) -> str:
        group = self._settings.share_group if self.protocol == MQTTProtocolVersion.MQTTv5 else ""
        return records_subscription(group or None)

    def _enrolment_subscription(self) -> str:
        group = self._settings.share_group if self.protocol == MQTTProtocolVersion.MQTTv5 else ""
        return enrolment_subscription(group or None)

    def _on_connect(
        self,
        client: mqtt.Client,
        _u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: object,
    ) -> None:
        def body() -> None:
            if reason.is_failure:
                self._refusal = reason
                if reason.value in FINAL_CONNACK_CODES | UNSUPPORTED_PROTOCOL_CODES:
                    client.disconnect()  # stops paho's reconnecting; start() decides what comes next
                log.warning("gateway.mqtt_refused reason=%r", str(reason))
                self._first_answer.set()
                return
            with self._lock:
                taking = self._taking
                self._generation += 1
            if taking:
                client.subscribe([(self._records_subscription(), 1), (self._enrolment_subscription(), 1)])
            self._connected.set()
            self._metrics.mqtt_connected.set(1)
            self._first_answer.set()
            log.info(
                "gateway.mqtt_connected protocol=%s session_present=%s subscription=%s",
                self._protocol_name(),
                flags.session_present,
                self._records_subscription(),
            )

        self._guarded("on_connect", body)

    def _on_disconnect(
        self,
        _c: mqtt.Client,
        _u: object,
        _f: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _p: object,
    ) -> None:
        def body() -> None:
            self._connected.clear()
            self._metrics.mqtt_connected.set(0)
            log.info("gateway.mqtt_disconnected reason=%r", str(reason))

        self._guarded("on_disconnect", body)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:  # noqa: ANN401
        def body() -> None:
            with self._lock:
                taking, generation = self._taking, self._generation
            if taking:  # else no PUBACK: the broker delivers it again, to us or another gateway
                mid, qos = message.mid, message.qos
                self._on_record(message.topic, bytes(message.payload), lambda: self._settle(generation, mid, qos))

        self._guarded("on_message", body)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:  # noqa: ANN401
        def body() -> None:
            with self._all_acks_sent:
                if mid in self._pending_acks:
                    self._pending_acks.discard(mid)
                else:
                    self._confirmed_early.add(mid)
                self._metrics.depth[Queue.ACKS].set(len(self._pending_acks))
                self._all_acks_sent.notify_all()

        self._guarded("on_publish", body)

    def _on_socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:  # noqa: ANN401
        def body() -> None:
            if isinstance(sock, socket.socket):  # acks are small: Nagle would hold them back 20-40 ms
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        self._guarded("on_socket_open", body)

    @staticmethod
    def _guarded(name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception:  # an exception escaping a callback would kill paho's network thread
            log.exception("gateway.callback_failed callback=%s", name)


def _read_password(settings: MqttSettings) -> str | None:
    if settings.password_file is None:
        return None
    try:
        return settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"[mqtt] password_file {settings.password_file}: cannot read it: {err}") from err


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    tls = settings.tls
    if tls is None:
        return None
    try:
        context = ssl.create_default_context(cafile=None if tls.ca_file is None else str(tls.ca_file))
        if tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"[mqtt.tls] cannot load the CA, certificate or key: {err}") from err
    if tls.insecure:
        context.check_hostname = False
    return context
