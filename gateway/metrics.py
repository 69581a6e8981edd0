"""The gateway's Prometheus metrics, in one registry per gateway (no global state).

Labels are bounded sets only — outcome, rejection reason, stage, queue name — and never a device
id: a fleet of a million vehicles must not become a million time series.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from carbonlink.acks import Outcome
from carbonlink.reasons import RejectionReason

NO_REASON = "none"
"""The ``reason`` label of accepted and duplicate messages."""

ENROLMENT_RESULTS = ("register", "already_registered", "refused", "failed")
"""What became of an enrolment certificate: registered now, known already, refused, or the store failed."""

_STAGE_BUCKETS_S = (0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25)


class Stage(StrEnum):
    """The timed stages of intake, in the order a message passes them."""

    ENVELOPE = "envelope"
    """Size cap, topic and COSE parsing."""
    KEY_LOOKUP = "key_lookup"
    SIGNATURE = "signature"
    SCHEMA = "schema"
    REPLAY = "replay"
    PLAUSIBILITY = "plausibility"
    COMMIT = "commit"
    """One transaction for a whole batch."""
    ACK = "ack"
    """Handing a batch's acks and PUBACKs to the MQTT client, after its commit (per batch)."""


class Queue(StrEnum):
    """The bounded queues of intake."""

    INTAKE = "intake"
    """Messages received from the broker, waiting for verification."""
    ACKS = "acks"
    """Acks handed to the MQTT client, waiting for the broker's confirmation."""


@dataclass
class GatewayMetrics:
    """Every metric the gateway exports, registered in its own :attr:`registry`."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "carbonlink_gateway_messages",
            "Messages on records topics by what the gateway did with them.",
            ["outcome", "reason"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "carbonlink_gateway_stage_seconds",
            "Time spent in each intake stage (per message; commit and ack per batch).",
            ["stage"],
            buckets=_STAGE_BUCKETS_S,
            registry=r,
        )
        self.batch_size = Histogram(
            "carbonlink_gateway_batch_messages",
            "Messages per committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.queue_depth = Gauge(
            "carbonlink_gateway_queue_depth", "Items waiting in each bounded queue.", ["queue"], registry=r
        )
        self.queue_overflows = Counter(
            "carbonlink_gateway_queue_overflows",
            "Items a full queue could not take (the broker redelivers them; the agent resends).",
            ["queue"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "carbonlink_gateway_mqtt_connected", "1 while connected to the broker, else 0.", registry=r
        )
        self.store_conflicts = Counter(
            "carbonlink_gateway_store_conflicts",
            "Batches re-judged because another gateway process committed a conflicting record first.",
            registry=r,
        )
        self.store_errors = Counter(
            "carbonlink_gateway_store_errors", "Batches the database failed to commit (retried).", registry=r
        )
        self.enrolments = Counter(
            "carbonlink_gateway_enrolments",
            "Enrolment certificates received, by result.",
            ["result"],
            registry=r,
        )
        # Every series exists from the start, so a dashboard shows 0 rather than nothing; the labelled
        # children are looked up once here, not per message (``labels()`` costs a lock and a dict).
        self._outcomes: dict[tuple[Outcome, RejectionReason | None], Counter] = {
            (outcome, None): self.messages.labels(outcome=outcome.value, reason=NO_REASON)
            for outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE)
        }
        for reason in RejectionReason:
            self._outcomes[Outcome.REJECTED, reason] = self.messages.labels(
                outcome=Outcome.REJECTED.value, reason=reason.value
            )
        self.depth = {queue: self.queue_depth.labels(queue=queue.value) for queue in Queue}
        self.overflows = {queue: self.queue_overflows.labels(queue=queue.value) for queue in Queue}
        self._stages = {stage: self.stage_seconds.labels(stage=stage.value) for stage in Stage}
        for result in ENROLMENT_RESULTS:
            self.enrolments.labels(result=result)

    def count(self, outcome: Outcome, reason: RejectionReason | None) -> None:
        self._outcomes[outcome, reason].inc()

    def time_stage(self, stage: Stage, seconds: float) -> None:
        self._stages[stage].observe(seconds)
