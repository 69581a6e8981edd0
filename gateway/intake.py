"""Intake: a bounded queue between the MQTT network thread and one worker that verifies in batches.

The network thread only puts messages on the queue (:meth:`Intake.submit` never blocks: a full
queue drops the message and counts it — the agent resends every record until the gateway's own
ack comes). The worker takes up to ``batch_max_messages`` at a time, judges each one in order
(:mod:`gateway.verification`), commits the whole batch in one transaction, and only then hands
the acks to the :class:`AckSender`. When another gateway process committed a conflicting record
first, the batch is judged again against the fresh chains; when the database fails, the batch
waits and is retried, unacknowledged.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from carbonlink.acks import Ack, Outcome
from carbonlink.reasons import RejectionReason
from carbonlink.records import TripRecord
from carbonlink.topics import device_of_enrolment_topic, device_of_records_topic
from gateway.errors import ConflictError, StoreError
from gateway.metrics import GatewayMetrics, Queue, Stage
from gateway.model import MAX_STORED_REJECTED_BYTES, AcceptedRecord, ChainHead, RejectedMessage
from gateway.registry_cache import RegistryCache
from gateway.store.record_store import RecordStore
from gateway.verification import InboundMessage, Verdict, Verifier

log = logging.getLogger("carbonlink.gateway")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AckSender(Protocol):
    """Publishes acks on the vehicles' ack topics (after commit)."""

    def send_ack(self, device_id: str, ack: Ack) -> None: ...


class EnrolmentHandler(Protocol):
    """Registers devices that present a valid enrolment certificate."""

    def handle(self, message: InboundMessage) -> None: ...


@dataclass
class _BatchChains:
    """The chains as committed, plus what this batch accepted so far (the verifier's ChainView)."""

    store: RecordStore
    heads: dict[str, ChainHead]
    careful: bool = False
    """Also ask the store whether a new record's id is taken. Normally the store's uniqueness rule
    catches that at commit (a conflict, rare: a device that reuses a record id), which saves a query
    per record; the batch is then judged again carefully, so the reuse is named ``replayed``."""
    accepted_hashes: dict[tuple[str, int], bytes] = field(default_factory=dict)
    accepted_ids: dict[tuple[str, str], bytes] = field(default_factory=dict)
    refused: dict[bytes, RejectionReason] = field(default_factory=dict)
    """Links of this batch refused for their content, by record hash."""
    accepted_trips: list[tuple[bytes, float, float, bytes]] = field(default_factory=list)
    frontiers: dict[bytes, float | None] = field(default_factory=dict)
    """Per vehicle (VIN hash): the highest odometer end of its stored accepted trips, read once a batch."""
    """(vin_hash, odometer start, odometer end, record hash) of trips accepted in this batch."""

    def head(self, device_id: str) -> ChainHead | None:
        return self.heads.get(device_id)

    def hash_at(self, device_id: str, sequence: int) -> bytes | None:
        found = self.accepted_hashes.get((device_id, sequence))
        return found if found is not None else self.store.record_hash_at(device_id, sequence)

    def hash_of_id(self, device_id: str, record_id: str) -> bytes | None:
        found = self.accepted_ids.get((device_id, record_id))
        if found is not None or not self.careful:
            return found
        return self.store.record_hash_of_id(device_id, record_id)

    def overlapping_trip(self, vin_hash: bytes, odometer_start_m: float, odometer_end_m: float) -> bytes | None:
        for vin, start_m, end_m, digest in self.accepted_trips:
            if vin == vin_hash and start_m < odometer_end_m and odometer_start_m < end_m:
                return digest
        if vin_hash not in self.frontiers:
            self.frontiers[vin_hash] = self.store.odometer_frontier(vin_hash)
        frontier = self.frontiers[vin_hash]
        if frontier is None or odometer_start_m >= frontier:
            return None  # the usual case, a vehicle driving on: no query per trip
        return self.store.overlapping_trip(vin_hash, odometer_start_m, odometer_end_m)

    def refusal(self, device_id: str, record_hash: bytes) -> RejectionReason | None:
        if record_hash in self.refused:
            return self.refused[record_hash]
        return self.store.record_refusal(device_id, record_hash)

    def accept(self, record: AcceptedRecord) -> None:
        """Make ``record`` its device's newest link (accepted, or refused for its content)."""
        r = record.record
        self.heads[r.device_id] = ChainHead(
            device_id=r.device_id,
            sequence=r.sequence,
            record_hash=record.record_hash,
            record_id=r.record_id,
            end_at=r.end_at,
            odometer_end_m=r.odometer_end_m,
        )
        self.accepted_hashes[r.device_id, r.sequence] = record.record_hash
        self.accepted_ids[r.device_id, r.record_id] = record.record_hash
        if record.refused_for is not None:
            self.refused[record.record_hash] = record.refused_for
            return
        if isinstance(r, TripRecord) and r.vin_hash is not None and None not in (r.odometer_start_m, r.odometer_end_m):
            self.accepted_trips.append(
                (r.vin_hash, r.odometer_start_m or 0.0, r.odometer_end_m or 0.0, record.record_hash)
            )


Settle = Callable[[], None]
"""Tells the broker a message is done with (its PUBACK): called once the message is committed."""


def _settled_already() -> None:
    pass


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: InboundMessage
    settle: Settle


@dataclass(frozen=True, slots=True)
class _Judged:
    message: InboundMessage
    verdict: Verdict
    link: AcceptedRecord | None
    """The new chain link to commit, when the verdict says the record is one."""


class Intake:
    """The bounded queue and its batch worker (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - the composition root injects each collaborator
        self,
        *,
        store: RecordStore,
        verifier: Verifier,
        registry: RegistryCache,
        acks: AckSender,
        metrics: GatewayMetrics,
        queue_max_messages: int,
        batch_max_messages: int,
        batch_max_wait_s: float,
        store_retry_s: float,
        enrolment: EnrolmentHandler | None = None,
        clock: Clock = utc_now,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._verifier, self._registry = store, verifier, registry
        self._on_committed = on_committed
        """Called after each commit that accepted records (crediting's wake-up)."""
        self._acks, self._metrics, self._enrolment, self._clock = acks, metrics, enrolment, clock
        self._queue: queue.Queue[_Delivery] = queue.Queue(maxsize=queue_max_messages)
        self._batch_max, self._batch_wait_s, self._retry_s = batch_max_messages, batch_max_wait_s, store_retry_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0
        """Messages taken onto the queue since start."""
        self.dropped = 0
        """Messages refused because the queue was full."""

    # --- the network thread's side -------------------------------------------------------------
    def submit(self, topic: str, payload: bytes, settle: Settle = _settled_already) -> bool:
        """Queue one message; False when intake is stopping or the queue is full.

        When stopping, the message is not settled: the broker delivers it again later. When the queue
        is full it is settled and counted: the agent resends the record.
        """
        if self._stopping.is_set():
            return False
        try:
            self._queue.put_nowait(_Delivery(InboundMessage(topic, payload, self._clock()), settle))
        except queue.Full:
            self.dropped += 1
            self._metrics.overflows[Queue.INTAKE].inc()
            settle()
            return False
        self.received += 1
        self._metrics.depth[Queue.INTAKE].set(self._queue.qsize())
        return True

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Take no more messages, finish the queued ones; True when all were committed in time."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    # --- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopping.is_set():
                    return
                continue
            self._process_until_committed(batch)
            self._metrics.depth[Queue.INTAKE].set(self._queue.qsize())

    def _take_batch(self) -> list[_Delivery]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _process_until_committed(self, batch: list[_Delivery]) -> None:
        records = [d.message for d in batch if device_of_enrolment_topic(d.message.topic) is None]
        for delivery in batch:
            if self._enrolment is not None and device_of_enrolment_topic(delivery.message.topic) is not None:
                self._enrolment.handle(delivery.message)
        careful = False
        while True:
            try:
                judged = self._judge(records, careful=careful)
                self._commit(judged)
            except ConflictError as err:
                # Another gateway process accepted a record of one of these devices first, or a record
                # id was reused: judge again against what is committed, asking the store every question.
                # A conflict that a careful judgement still runs into waits like a database error.
                self._metrics.store_conflicts.inc()
                log.info("intake.conflict careful=%s detail=%r", careful, str(err)[:200])
                if careful and self._stopping.wait(self._retry_s):
                    return
                careful = True
                continue
            except StoreError as err:
                self._metrics.store_errors.inc()
                log.error("intake.store_failed retry_s=%s error=%r", self._retry_s, str(err)[:300])  # noqa: TRY400 - the cause is in the message; no traceback for a known failure
                if self._stopping.wait(self._retry_s):
                    # Stopping with the database down: leave the batch unacknowledged; agents resend.
                    return
                continue
            started = time.perf_counter()
            self._send_acks(judged)
            for delivery in batch:
                delivery.settle()
            self._metrics.time_stage(Stage.ACK, time.perf_counter() - started)
            return

    def _judge(self, batch: Sequence[InboundMessage], *, careful: bool) -> list[_Judged]:
        devices = {d for m in batch if (d := device_of_records_topic(m.topic)) is not None}
        chains = _BatchChains(self._store, self._store.chain_heads(devices), careful=careful)
        judged = []
        for message in batch:
            verdict = self._verifier.judge(message, self._registry, chains)
            link = _chain_link(message, verdict) if verdict.chained else None
            if link is not None:
                chains.accept(link)
            judged.append(_Judged(message, verdict, link))
        return judged

    def _commit(self, judged: Sequence[_Judged]) -> None:
        links = [j.link for j in judged if j.link is not None]
        rejected = [_rejected(j.message, j.verdict) for j in judged if j.verdict.outcome is Outcome.REJECTED]
        latest: dict[str, datetime] = {}
        for j in judged:
            if j.verdict.device_id is not None:
                latest[j.verdict.device_id] = max(
                    latest.get(j.verdict.device_id, j.message.received_at), j.message.received_at
                )
        # Last seen only for registered devices (one registry look-up per device, not per message).
        seen = {device_id: at for device_id, at in latest.items() if self._registry.device(device_id) is not None}
        started = time.perf_counter()
        self._store.commit(links, rejected, seen)
        self._metrics.time_stage(Stage.COMMIT, time.perf_counter() - started)
        self._metrics.batch_size.observe(len(judged))
        if links:
            self._on_committed()

    def _send_acks(self, judged: Sequence[_Judged]) -> None:
        for j in judged:
            verdict = j.verdict
            self._metrics.count(verdict.outcome, verdict.reason)
            if verdict.device_id is None:
                continue  # not a records topic: there is no ack topic to answer on
            record = verdict.record
            ack = Ack(
                record_hash=verdict.record_hash,
                record_id=None if record is None else record.record_id,
                sequence=None if record is None else record.sequence,
                outcome=verdict.outcome,
                reason=verdict.reason,
                detail=verdict.detail,
            )
            self._acks.send_ack(verdict.device_id, ack)


def _chain_link(message: InboundMessage, verdict: Verdict) -> AcceptedRecord:
    if verdict.record is None or verdict.kid is None:  # a chained verdict always carries both
        raise ValueError("a chained verdict without its record")
    return AcceptedRecord(
        signed=message.payload,
        record_hash=verdict.record_hash,
        record=verdict.record,
        kid=verdict.kid,
        received_at=message.received_at,
        refused_for=verdict.reason,
    )


def _rejected(message: InboundMessage, verdict: Verdict) -> RejectedMessage:
    record = verdict.record
    if verdict.reason is None:  # a rejected verdict always carries its reason
        raise ValueError("a rejected verdict without its reason")
    return RejectedMessage(
        received_at=message.received_at,
        topic=message.topic[:256],
        device_id=verdict.device_id,
        record_hash=verdict.record_hash,
        record_id=None if record is None else record.record_id,
        sequence=None if record is None else record.sequence,
        reason=verdict.reason,
        detail=verdict.detail or "",
        payload=message.payload[:MAX_STORED_REJECTED_BYTES],
        payload_size=len(message.payload),
    )
