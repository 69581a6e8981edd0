"""One paho client, built from the settings, its callbacks turned into events for the uplink's worker.

The callbacks run on paho's network thread. They do no slow work and never raise — an exception
kills that thread (DESIGN.md §4) — so each is a thin shell around ``_guarded`` that reports what
happened as an event on the worker's queue. paho reconnects by itself; after every failed attempt
or lost connection we set its next delay from our jittered backoff.

paho catches TLS errors and passes on no reason, so the TLS context's socket class reports them to
the connection (``_reporting_socket_class``). A broker that refuses our client certificate (a TLS
alert: none sent, unknown CA, expired, revoked) is final, like a bad password: retrying cannot fix
it. A broker certificate we cannot verify (unknown CA, wrong host name, not yet or no longer valid)
is logged as a warning at every attempt and retried: a car's clock not yet set, or a broker
certificate being renewed, fixes itself.
"""

import logging
import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.errors import ConfigError
from agent.uplink.backoff import Backoff
from agent.uplink.settings import ProtocolChoice, UplinkSettings
from agent.uplink.status import StatusBoard
from carbonlink.topics import acks_topic, enrolment_topic, records_topic, status_topic

if TYPE_CHECKING:
    import queue

    from paho.mqtt.client import SocketLike  # paho declares it for type checkers only

EVENT_QUEUE_LIMIT = 10_000
"""PUBACKs and acks waiting for the worker; past it they are dropped and counted (resending repairs it)."""
PAHO_QUEUE_FACTOR = 4
"""paho may hold this many times ``max_inflight`` messages (resends of unanswered publishes)."""
FINAL_CONNACK_CODES = frozenset({0x85, 0x86, 0x87, 0x8A, 0x8C})
"""Refusals retrying cannot fix: client id not valid, bad user name or password, not authorized,
banned, bad authentication method."""
UNSUPPORTED_PROTOCOL_VERSION = 0x84
REFUSED_CERTIFICATE_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate (tls.cert_file and tls.key_file)",
    "TLSV1_ALERT_UNKNOWN_CA": "the client certificate is not signed by a CA the broker trusts",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker found the client certificate bad",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the broker does not accept this kind of client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client certificate has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the client certificate is revoked",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the broker refused the client certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "the broker denied access to the client certificate",
}
"""TLS alerts (OpenSSL's reason names) in which the broker refuses our client certificate: final."""
ONLINE = b"online"
OFFLINE = b"offline"
PROTOCOL_NAMES = {MQTTProtocolVersion.MQTTv5: "5", MQTTProtocolVersion.MQTTv311: "3.1.1"}


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The broker accepted our CONNECT."""

    generation: int
    session_present: bool
    enrolment_mid: int | None = None
    """Message id of the enrolment certificate published on this connect; None when there was none."""


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The connection ended; paho tries again after the delay we set."""

    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectRefused:
    """The broker answered our CONNECT with a failure."""

    generation: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class CertificateRefused:
    """The broker refused our TLS client certificate (a final TLS alert)."""

    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class PubAck:
    """The broker's answer to one publish: ``failed`` for an MQTT 5 reason code of 0x80 or more."""

    generation: int
    mid: int
    failed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AckMessage:
    """A message on the device's ack topic, not yet decoded."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Wake:
    """Look at the outbox: a record was sealed, or the uplink is stopping."""


Event = LinkUp | LinkDown | ConnectRefused | CertificateRefused | PubAck | AckMessage | Wake
"""What the worker takes off its queue. ``generation`` tells the events of a replaced client apart."""


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """The topics of one device (``docs/protocol.md`` §5)."""

    records: str
    acks: str
    status: str
    enrolment: str

    @classmethod
    def of(cls, device_id: str) -> "DeviceTopics":
        return cls(records_topic(device_id), acks_topic(device_id), status_topic(device_id), enrolment_topic(device_id))


class PahoConnection:
    """A paho client with its network thread, reporting to the worker through ``events``."""

    def __init__(  # noqa: PLR0913 - built in one place, by the uplink's worker
        self,
        settings: UplinkSettings,
        protocol: MQTTProtocolVersion,
        *,
        client_id: str,
        generation: int,
        topics: DeviceTopics,
        password: str | None,
        tls_context: ssl.SSLContext | None,
        events: "queue.Queue[Event]",
        board: StatusBoard,
        random_unit: Callable[[], float],
        log: logging.Logger,
        enrolment: bytes | None = None,
    ) -> None:
        self._settings = settings
        self._enrolment = enrolment
        self._protocol = protocol
        self._generation = generation
        self._topics = topics
        self._events = events
        self._board = board
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._random_unit = random_unit
        self._log = log
        self._connect_failures = 0  # paho's thread only, once started
        self._tls_error: ssl.SSLError | None = None
        """The last TLS error of the current attempt (paho's thread only)."""
        v5 = protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if v5 else False,  # 3.1.1: a persistent session, as clean_start=False in 5
            userdata=generation,
        )
        client.connect_timeout = settings.connect_timeout_s
        client.max_inflight_messages_set(settings.max_inflight)
        client.max_queued_messages_set(PAHO_QUEUE_FACTOR * settings.max_inflight)
        client.will_set(topics.status, OFFLINE, qos=1, retain=True)
        if settings.username is not None:
            client.username_pw_set(settings.username, password)
        if tls_context is not None:
            # The uplink's one context serves one connection at a time (the worker closes the old client
            # before it makes a new one), so its sockets report to the connection made last.
            tls_context.sslsocket_class = _reporting_socket_class(self._note_tls_error)
            client.tls_set_context(tls_context)
            client.tls_insecure_set(settings.tls is not None and settings.tls.insecure)
        client.on_pre_connect = self._on_pre_connect
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES[self._protocol]

    def start(self) -> None:
        """Connect in the background: paho's thread makes the attempts, now and after every loss."""
        settings = self._settings
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call] # paho leaves it untyped
            properties.SessionExpiryInterval = settings.session_expiry_s  # acks sent while we are away wait
            self.client.connect_async(
                settings.host, settings.port, settings.keepalive_s, clean_start=False, properties=properties
            )
        else:
            self.client.connect_async(settings.host, settings.port, settings.keepalive_s)
        self.client.loop_start()

    def publish_record(self, signed: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(self._topics.records, signed, qos=1)

    def say_offline(self, timeout_s: float) -> None:
        """Publish the retained ``offline`` a clean disconnect would not (the will is for unclean ones)."""
        info = self.client.publish(self._topics.status, OFFLINE, qos=1, retain=True)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS and timeout_s > 0:
            info.wait_for_publish(timeout_s)

    def close(self) -> None:
        """Disconnect and end paho's thread (returns within about a second even while reconnecting)."""
        self.client.disconnect()
        self.client.loop_stop()

    # --- callbacks ---------------------------------------------------------------------------------

    def _on_pre_connect(self, _client: mqtt.Client, _userdata: Any) -> None:  # noqa: ANN401 - paho's type
        self._guarded("on_pre_connect", self._attempting)

    def _on_socket_open(self, _client: mqtt.Client, _userdata: Any, sock: "SocketLike") -> None:  # noqa: ANN401
        self._guarded("on_socket_open", lambda: _send_without_delay(sock))

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: Any,  # noqa: ANN401 - paho's type
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._guarded("on_connect", lambda: self._connected(flags, reason_code))

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,  # noqa: ANN401 - paho's type
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._guarded("on_disconnect", lambda: self._disconnected(reason_code))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:  # noqa: ANN401 - paho's type
        self._guarded("on_connect_fail", self._connect_failed)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,  # noqa: ANN401 - paho's type
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._guarded("on_publish", lambda: self._put_droppable(self._puback(mid, reason_code)))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:  # noqa: ANN401
        self._guarded("on_message", lambda: self._received(message))

    def _guarded(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception:  # noqa: BLE001 - logged and counted: nothing may escape into paho's thread
            try:
                self._board.bump(callback_errors=1)
                self._log.exception("uplink.callback_failed callback=%s", name)
            except Exception:  # noqa: BLE001, S110 - not even a failing log
                pass

    def _attempting(self) -> None:
        self._tls_error = None
        self._board.bump(connect_attempts=1)

    def _note_tls_error(self, error: ssl.SSLError) -> None:
        self._tls_error = error

    def _connected(self, flags: mqtt.ConnectFlags, reason: ReasonCode) -> None:
        if reason.is_failure:
            if reason.value in FINAL_CONNACK_CODES or reason.value == UNSUPPORTED_PROTOCOL_VERSION:
                self.client.disconnect()  # stops paho's reconnecting; the worker decides and logs what comes next
            else:
                self._log.warning("uplink.connect_refused reason=%r", str(reason))
            self._events.put(ConnectRefused(self._generation, reason.value, str(reason)))
            return
        self._connect_failures = 0
        self.client.subscribe(self._topics.acks, qos=1)  # again on every connect: the session may be new
        self.client.publish(self._topics.status, ONLINE, qos=1, retain=True)
        enrolment_mid = self._publish_enrolment()
        self._board.set(connected=True)
        self._events.put(LinkUp(self._generation, flags.session_present, enrolment_mid))
        self._log.info("uplink.connected protocol=%s session_present=%s", self.protocol_name, flags.session_present)

    def _publish_enrolment(self) -> int | None:
        """Publish the enrolment certificate, if any: its message id, or None when none was queued.

        Here, in the connect callback, it goes out before paho resends the records the last connection
        left unanswered (paho does that right after this callback) and before the worker, which waits
        for ``LinkUp``, publishes any: a gateway sees the certificate ahead of the device's records.
        """
        if self._enrolment is None:
            return None
        info = self.client.publish(self._topics.enrolment, self._enrolment, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._log.warning("uplink.enrolment_not_queued rc=%s", info.rc)
            return None
        return info.mid

    def _disconnected(self, reason: ReasonCode) -> None:
        self._board.set(connected=False)
        self._events.put(LinkDown(self._generation, str(reason)))
        if self._certificate_refused():  # TLS 1.3: the broker's verdict comes after our handshake ended
            return
        self._set_reconnect_delay()
        tls_error = "" if self._tls_error is None else f" tls_error={str(self._tls_error)!r}"
        self._log.info("uplink.disconnected reason=%r%s", str(reason), tls_error)

    def _connect_failed(self) -> None:
        if self._certificate_refused():
            return
        self._set_reconnect_delay()
        settings, error = self._settings, self._tls_error
        if isinstance(error, ssl.SSLCertVerificationError):
            self._log.warning(
                "uplink.broker_certificate_invalid host=%s port=%d reason=%r",
                settings.host,
                settings.port,
                error.verify_message,
            )
        elif error is not None:
            self._log.warning("uplink.tls_failed host=%s port=%d error=%r", settings.host, settings.port, str(error))
        else:
            self._log.info("uplink.connect_failed host=%s port=%d", settings.host, settings.port)

    def _certificate_refused(self) -> bool:
        """If the broker refused our client certificate, tell the worker (who gives up and says why)."""
        reason = refused_certificate_reason(self._tls_error)
        if reason is None:
            return False
        self._events.put(CertificateRefused(self._generation, reason))
        return True

    def _puback(self, mid: int, reason: ReasonCode) -> PubAck:
        return PubAck(self._generation, mid, reason.is_failure, str(reason))

    def _received(self, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._topics.acks:
            self._put_droppable(AckMessage(bytes(message.payload)))
        else:
            self._board.bump(malformed_acks=1)

    def _set_reconnect_delay(self) -> None:
        """Pace paho's next attempt by our backoff; paho takes whole seconds, so at least one."""
        delay_s = self._backoff.delay_s(self._connect_failures, self._random_unit())
        self._connect_failures += 1
        whole_s = max(1, math.ceil(delay_s))
        self.client.reconnect_delay_set(whole_s, whole_s)

    def _put_droppable(self, event: Event) -> None:
        if self._events.qsize() >= EVENT_QUEUE_LIMIT:
            self._board.bump(dropped_events=1)
            return
        self._events.put(event)


def refused_certificate_reason(error: ssl.SSLError | None) -> str | None:
    """What a TLS alert in which the broker refuses our client certificate means, or None for other errors."""
    if error is None or isinstance(error, ssl.SSLCertVerificationError):  # ours about the broker's certificate
        return None
    meaning = REFUSED_CERTIFICATE_ALERTS.get(str(error.reason))
    return None if meaning is None else f"{meaning}; TLS alert {error.reason}"


def _reporting_socket_class(report: Callable[[ssl.SSLError], None]) -> type[ssl.SSLSocket]:
    """An ``SSLSocket`` that hands its handshake and read errors to ``report`` before raising them.

    It also closes itself when its handshake fails: paho drops such a socket without closing it, which
    leaves the file descriptor to the garbage collector (and a ``ResourceWarning``) on every attempt.
    """

    class ReportingSslSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:  # noqa: FBT001, FBT002 - the signature overridden
            try:
                super().do_handshake(block)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # non-blocking and not done yet (paho's handshake blocks, with a timeout)
            except OSError as err:  # a TLS error, or the timeout or reset of the TCP connection under it
                if isinstance(err, ssl.SSLError):
                    report(err)
                self.close()
                raise

        def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
            try:
                return super().recv(buflen, flags)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # a non-blocking socket with nothing to read yet: paho's everyday case
            except ssl.SSLError as err:
                report(err)
                raise

    return ReportingSslSocket


def _send_without_delay(sock: "SocketLike") -> None:
    """Switch Nagle off: every hop of publish → PUBACK → ack otherwise waits ~40 ms for a delayed TCP ACK.

    Measured on loopback with Mosquitto's ``set_tcp_nodelay true``: one record's notify → ack round trip
    is 0.9 ms with this, 44 ms without.
    """
    if isinstance(sock, socket.socket):  # TLS sockets are socket.socket too; websockets are not used here
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def initial_protocol(choice: ProtocolChoice) -> MQTTProtocolVersion:
    return MQTTProtocolVersion.MQTTv311 if choice is ProtocolChoice.V311 else MQTTProtocolVersion.MQTTv5


def read_password(settings: UplinkSettings) -> str | None:
    if settings.password_file is None:
        return None
    try:
        return settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"password_file {settings.password_file}: cannot read it: {err}") from err


def tls_context(settings: UplinkSettings) -> ssl.SSLContext | None:
    """The TLS context, built once so a bad CA, certificate or key file is named at start."""
    tls = settings.tls
    if tls is None:
        return None
    try:
        context = ssl.create_default_context(cafile=None if tls.ca_file is None else str(tls.ca_file))
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"tls.ca_file {tls.ca_file}: {err}") from err
    if tls.cert_file is not None and tls.key_file is not None:
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"tls.cert_file {tls.cert_file} / tls.key_file {tls.key_file}: {err}") from err
    if tls.insecure:
        context.check_hostname = False
    return context
