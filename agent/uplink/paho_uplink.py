"""The agent's MQTT uplink on paho-mqtt: outbox → broker → gateway, settled by the gateway's acks.

Two threads, neither of them the caller's:

- **paho's network thread** runs the callbacks of ``PahoConnection`` (``connection.py``): fast,
  never raising, each turning what happened into an event on a queue.
- **the worker** (here) owns the outbox and the in-flight bookkeeping (``Flights``). It takes events
  off the queue — PUBACK → ``mark_sent``; the gateway's ack → ``acknowledge`` or ``reject`` — publishes
  pending records at a bounded rate and resends those whose ack has not come in ``ack_timeout_s``.

A PUBACK only says the broker took the message; a record leaves the outbox on the gateway's ack
(``docs/protocol.md`` §5–6). paho reconnects by itself, paced by our jittered backoff; the worker
steps in only to give up for good (the broker rejects our credentials: user name and password, or
TLS client certificate) or to fall back from MQTT 5 to 3.1.1 when the broker does not speak 5.

With an enrolment certificate configured, the connection publishes it on every connect, and the
worker publishes no record until the broker has PUBACKed it (or refused it, or ``ack_timeout_s`` has
passed): a gateway registers the device before the device's first record reaches it.
"""

import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from agent.errors import ConfigError, UplinkError
from agent.outbox import Outbox
from agent.uplink.backoff import Backoff
from agent.uplink.connection import (
    FINAL_CONNACK_CODES,
    UNSUPPORTED_PROTOCOL_VERSION,
    AckMessage,
    CertificateRefused,
    ConnectRefused,
    DeviceTopics,
    Event,
    LinkDown,
    LinkUp,
    PahoConnection,
    PubAck,
    Wake,
    initial_protocol,
    read_password,
    tls_context,
)
from agent.uplink.flights import Flights
from agent.uplink.settings import ProtocolChoice, UplinkSettings
from agent.uplink.status import StatusBoard, UplinkStatus
from carbonlink.acks import Ack, Outcome, decode_ack
from carbonlink.errors import MalformedError
from carbonlink.reasons import RETRYABLE_REASONS

_LOG = logging.getLogger("agent.uplink")

EVENT_BATCH_LIMIT = 1_000
"""Events handled before the worker looks at the outbox again."""
IDLE_POLL_S = 5.0
"""The worker looks at the outbox at least this often, even if nobody calls ``notify``."""


class PahoUplink:
    """Publishes the outbox's records and settles them on the gateway's acks, in background threads."""

    def __init__(  # noqa: PLR0913 - the collaborators are injected here, once
        self,
        settings: UplinkSettings,
        outbox: Outbox,
        device_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        log: logging.Logger = _LOG,
        random_unit: Callable[[], float] = random.random,
        enrolment: bytes | None = None,
    ) -> None:
        if settings.client_id is not None and device_id != settings.client_id:
            raise ConfigError(f"client_id {settings.client_id!r} must be the device id {device_id!r}")
        self._client_id = device_id
        self._settings = settings
        self._outbox = outbox
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = log
        self._random_unit = random_unit
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._topics = DeviceTopics.of(device_id)
        self._password = read_password(settings)
        self._tls_context = tls_context(settings)
        self._enrolment = enrolment
        """The enrolment certificate's bytes, published on every connect; None: none configured."""

        self._events: queue.Queue[Event] = queue.Queue()
        self._board = StatusBoard()
        self._stop_requested = threading.Event()
        self._wake_queued = threading.Event()
        """Set while a ``Wake`` waits in the queue: a burst of ``notify`` calls queues one, not a thousand."""
        self._stop_deadline_s = math.inf
        self._thread: threading.Thread | None = None
        # The worker's own:
        self._connection: PahoConnection | None = None
        self._generation = 0
        self._protocol = initial_protocol(settings.protocol)
        self._link_up = False
        self._gave_up = False
        self._flights = Flights(
            ack_timeout_s=settings.ack_timeout_s, drain_rate_per_s=settings.drain_rate_per_s, now_s=clock()
        )
        self._refusals = 0
        self._next_publish_at_s = math.inf
        self._pubacked: list[bytes] = []
        """Records PUBACKed in the current batch of events: marked sent at its end, unless acked meanwhile."""
        self._enrolment_mid: int | None = None
        """The enrolment certificate of this connection, published and not yet PUBACKed: records wait."""
        self._enrolment_deadline_s = math.inf

    # --- the caller's side -----------------------------------------------------------------

    def start(self) -> None:
        """Start connecting and draining in the background; returns at once."""
        if self._thread is not None:
            raise RuntimeError("the uplink is already started")
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self._client_id}", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """A record was sealed: look at the outbox now rather than at the next poll."""
        if not self._wake_queued.is_set():
            self._wake_queued.set()
            self._events.put(Wake())

    def status(self) -> UplinkStatus:
        return self._board.snapshot()

    @property
    def last_error(self) -> UplinkError | None:
        return self._board.snapshot().last_error

    def stop(self, timeout_s: float) -> None:
        """Publish nothing new, wait (at most ``timeout_s``) for PUBACKs in flight, disconnect cleanly."""
        self._stop_deadline_s = self._clock() + timeout_s
        self._stop_requested.set()
        self._events.put(Wake())
        if self._thread is not None:
            self._thread.join(timeout_s + self._settings.connect_timeout_s)
            if self._thread.is_alive():
                self._log.warning("uplink.stop_timeout timeout_s=%s", timeout_s)

    # --- the worker --------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop_requested.is_set():
            try:
                self._step()
                failures = 0
            except Exception:  # noqa: BLE001 - the supervisor loop: log, count, back off, go on (STYLE.md)
                self._log.exception("uplink.worker_failed")
                self._board.bump(worker_errors=1)
                self._stop_requested.wait(self._backoff.delay_s(failures, self._random_unit()))
                failures += 1
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001 - a failed goodbye is logged, not left to kill the thread silently
            self._log.exception("uplink.shutdown_failed")
            self._board.bump(worker_errors=1)

    def _step(self) -> None:
        if self._connection is None and not self._gave_up:
            self._connect()
        wait_s = IDLE_POLL_S
        if self._link_up:
            wait_s = min(wait_s, self._next_publish_at_s - self._clock())
        self._take_events(max(0.0, wait_s))
        if self._link_up and not self._stop_requested.is_set():
            self._publish_due()

    def _take_events(self, wait_s: float) -> None:
        try:
            event = self._events.get(timeout=wait_s) if wait_s > 0 else self._events.get_nowait()
        except queue.Empty:
            return
        try:
            for _ in range(EVENT_BATCH_LIMIT):
                self._handle(event)
                event = self._events.get_nowait()
        except queue.Empty:
            pass
        finally:
            self._mark_sent()

    def _mark_sent(self) -> None:
        """Note the batch's PUBACKs in the outbox; one whose ack came in the same batch needs no write."""
        pubacked, self._pubacked = self._pubacked, []
        wall_now_s = self._wall_clock()
        for record_hash in pubacked:
            if self._flights.holds(record_hash):
                self._outbox.mark_sent(record_hash, wall_now_s)

    def _handle(self, event: Event) -> None:
        match event:
            case AckMessage(payload):
                self._settle(payload)
            case Wake():
                self._wake_queued.clear()  # the outbox is looked at after this batch of events
            case _ if event.generation != self._generation:
                pass  # from a client we replaced (protocol fallback)
            case PubAck(_, mid, failed, reason):
                self._on_puback(mid, failed=failed, reason=reason)
            case LinkUp(_, _, enrolment_mid):
                self._link_up = True
                now_s = self._clock()
                self._flights.link_up(now_s)
                self._next_publish_at_s = now_s
                self._enrolment_mid = enrolment_mid
                self._enrolment_deadline_s = now_s + self._settings.ack_timeout_s
            case LinkDown():
                self._link_up = False
                self._enrolment_mid = None
            case ConnectRefused(_, code, reason):
                self._on_refused(code, reason)
            case CertificateRefused(_, reason):
                self._give_up(reason)

    def _on_refused(self, code: int, reason: str) -> None:
        if code == UNSUPPORTED_PROTOCOL_VERSION and self._settings.protocol is ProtocolChoice.AUTO:
            self._log.warning("uplink.protocol_fallback from=5 to=3.1.1 reason=%r", reason)
            self._disconnect()
            self._protocol = MQTTProtocolVersion.MQTTv311  # the next step connects again, in 3.1.1
        elif code in FINAL_CONNACK_CODES or code == UNSUPPORTED_PROTOCOL_VERSION:
            self._give_up(reason)

    def _give_up(self, reason: str) -> None:
        """The broker refused us in a way retrying cannot fix: stop, and say why."""
        if self._gave_up:
            return  # a refusal of an attempt paho made before we stopped it: said already
        error = UplinkError(
            f"broker {self._settings.host}:{self._settings.port} refused client {self._client_id!r}: "
            f"{reason}; not retrying (check username, password file, certificate and ACL)"
        )
        self._log.error("uplink.refused_for_good reason=%r host=%s", reason, self._settings.host)
        self._gave_up = True
        self._disconnect()
        self._board.set(last_error=error, connected=False)

    def _on_puback(self, mid: int, *, failed: bool, reason: str) -> None:
        if mid == self._enrolment_mid:
            self._enrolment_answered(failed=failed, reason=reason)
            return
        if failed:
            delay_s = self._backoff.delay_s(self._refusals, self._random_unit())
            sequence = self._flights.refused(mid, self._clock(), delay_s)
            if sequence is not None:
                self._refusals += 1
                self._board.bump(refused_publishes=1)
                self._log.warning(
                    "uplink.publish_refused sequence=%d reason=%r retry_in_s=%.1f", sequence, reason, delay_s
                )
            return
        record_hash = self._flights.pubacked(mid)
        if record_hash is not None:  # else the status message, or a record settled meanwhile
            self._refusals = 0
            self._pubacked.append(record_hash)

    def _enrolment_answered(self, *, failed: bool, reason: str) -> None:
        """The broker took or refused the enrolment certificate: records may go now, either way.

        A refusal (say, an ACL without the enrolment topic) is logged, not retried: the device may be
        registered by an operator, and holding its records back would help nobody.
        """
        self._enrolment_mid = None
        self._next_publish_at_s = self._clock()
        if failed:
            self._board.bump(enrolments_refused=1)
            self._log.warning("uplink.enrolment_refused reason=%r", reason)
        else:
            self._board.bump(enrolments_sent=1)
            self._log.info("uplink.enrolment_sent")

    def _settle(self, payload: bytes) -> None:
        try:
            ack = decode_ack(payload)
        except MalformedError as err:
            self._board.bump(malformed_acks=1)
            self._log.warning("uplink.ack_malformed bytes=%d error=%r", len(payload), str(err)[:200])
            return
        self._board.bump(acks_received=1)
        self._board.set(last_ack_at=datetime.fromtimestamp(self._wall_clock(), UTC))
        if ack.outcome is Outcome.REJECTED and ack.reason in RETRYABLE_REASONS:
            self._log.info("uplink.ack_retry sequence=%s reason=%s", ack.sequence, ack.reason)
            return  # stays in flight; resent when its ack timeout passes
        if self._apply(ack):
            self._flights.settled(ack.record_hash)
        else:
            self._board.bump(unknown_acks=1)
            self._log.debug("uplink.ack_unknown record_hash=%s", ack.record_hash.hex())

    def _apply(self, ack: Ack) -> bool:
        if ack.outcome is Outcome.REJECTED and ack.reason is not None:
            self._log.warning("uplink.record_rejected sequence=%s reason=%s", ack.sequence, ack.reason)
            return self._outbox.reject(ack.record_hash, ack.reason.value, ack.detail)
        return self._outbox.acknowledge(ack.record_hash)

    def _publish_due(self) -> None:
        """Publish what is pending or overdue, within the window and the rate; note when to look again."""
        connection = self._connection
        if connection is None:
            return
        now_s = self._clock()
        if self._enrolment_mid is not None:
            if now_s < self._enrolment_deadline_s:
                self._next_publish_at_s = self._enrolment_deadline_s  # or sooner, on its PUBACK
                return
            self._enrolment_mid = None
            self._log.warning("uplink.enrolment_unconfirmed waited_s=%s", self._settings.ack_timeout_s)
        entries = self._outbox.unacknowledged(self._settings.max_inflight)
        for entry in self._flights.due(entries, now_s, self._wall_clock()):
            info = connection.publish_record(entry.signed)
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):  # NO_CONN: queued
                resend = self._flights.published(entry, info.mid, now_s)
                self._board.bump(published=1, resends=int(resend))
                continue
            self._board.bump(paho_queue_full=1)
            delay_s = self._backoff.delay_s(self._refusals, self._random_unit())
            self._flights.deferred(entry, now_s, delay_s)
            self._log.warning("uplink.publish_not_queued sequence=%d rc=%s", entry.sequence, info.rc)
        self._next_publish_at_s = self._flights.next_due_s(now_s)

    def _shutdown(self) -> None:
        """Wait (bounded) for PUBACKs of what is in flight, say ``offline``, disconnect."""
        while self._link_up and self._flights.awaiting_puback:
            remaining_s = self._stop_deadline_s - self._clock()
            if remaining_s <= 0:
                break
            self._take_events(remaining_s)
        if self._connection is not None and self._link_up:
            self._connection.say_offline(self._stop_deadline_s - self._clock())
        awaiting = self._flights.awaiting_puback
        self._disconnect()
        self._board.set(connected=False)
        self._log.info("uplink.stopped awaiting_puback=%d", awaiting)

    def _connect(self) -> None:
        self._generation += 1
        self._flights.clear()
        connection = PahoConnection(
            self._settings,
            self._protocol,
            client_id=self._client_id,
            generation=self._generation,
            topics=self._topics,
            password=self._password,
            tls_context=self._tls_context,
            events=self._events,
            board=self._board,
            random_unit=self._random_unit,
            log=self._log,
            enrolment=self._enrolment,
        )
        self._connection = connection
        self._board.set(protocol=connection.protocol_name)
        connection.start()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._link_up = False
        if connection is not None:
            connection.close()
