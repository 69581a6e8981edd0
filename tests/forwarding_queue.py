"""Test doubles for forwarding: an in-memory outbox (the store's ``ForwardingQueue``), a manual clock, an observer.

The outbox behaves like the SQL one: ``due`` hands out pending deliveries whose time has come, in
order of that time, and leases them (not due again until the lease ends); each ``mark_*`` counts an
attempt. It also keeps every attempt's outcome, so tests can read the retry times the forwarder chose.
"""

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.forwarding.model import Delivery

START_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE_S = 60.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one attempt as the forwarder recorded it."""

    at: datetime
    error: str | None  # None: delivered
    retry_at: datetime | None


@dataclass(slots=True)
class QueuedDelivery:
    """One delivery's state in the outbox."""

    delivery: Delivery
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    history: list[Attempt] = field(default_factory=list)

    @property
    def last_error(self) -> str | None:
        return self.history[-1].error if self.history else None


class InMemoryForwardingQueue:
    """A ``ForwardingQueue`` in a dict, safe to read from a test while a forwarder thread writes it."""

    def __init__(self, lease_s: float = LEASE_S) -> None:
        self._lease = timedelta(seconds=lease_s)
        self._items: dict[int, QueuedDelivery] = {}
        self._lock = threading.Lock()

    def add(
        self, sink: str, idempotency_key: str, payload: bytes, *, at: datetime, created_at: datetime | None = None
    ) -> int:
        """Queue a delivery due at ``at``; its id."""
        with self._lock:
            delivery_id = len(self._items) + 1
            delivery = Delivery(
                delivery_id=delivery_id,
                sink=sink,
                idempotency_key=idempotency_key,
                payload=payload,
                attempts=0,
                created_at=created_at,
            )
            self._items[delivery_id] = QueuedDelivery(delivery=delivery, next_attempt_at=at)
        return delivery_id

    def get(self, delivery_id: int) -> QueuedDelivery:
        with self._lock:
            return self._items[delivery_id]

    def states(self) -> dict[int, str]:
        with self._lock:
            return {delivery_id: item.state for delivery_id, item in self._items.items()}

    def all_in(self, state: str) -> bool:
        return set(self.states().values()) == {state}

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        with self._lock:
            due = sorted(
                (
                    item
                    for item in self._items.values()
                    if item.state == "pending" and item.next_attempt_at is not None and item.next_attempt_at <= now
                ),
                key=lambda item: (item.next_attempt_at, item.delivery.delivery_id),
            )[:limit]
            handed_out = []
            for item in due:
                item.next_attempt_at = now + self._lease
                handed_out.append(
                    Delivery(
                        delivery_id=item.delivery.delivery_id,
                        sink=item.delivery.sink,
                        idempotency_key=item.delivery.idempotency_key,
                        payload=item.delivery.payload,
                        attempts=item.attempts,
                        created_at=item.delivery.created_at,
                    )
                )
            return handed_out

    def mark_delivered(self, delivery_id: int, *, at: datetime) -> None:
        with self._lock:
            item = self._items[delivery_id]
            item.state, item.next_attempt_at = "delivered", None
            item.attempts += 1
            item.history.append(Attempt(at=at, error=None, retry_at=None))

    def mark_failed(self, delivery_id: int, *, error: str, at: datetime, retry_at: datetime | None) -> None:
        with self._lock:
            item = self._items[delivery_id]
            item.state = "pending" if retry_at is not None else "dead"
            item.next_attempt_at = retry_at
            item.attempts += 1
            item.history.append(Attempt(at=at, error=error, retry_at=retry_at))


class ManualClock:
    """A UTC clock that moves only when a test moves it."""

    def __init__(self, at: datetime = START_AT) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingObserver:
    """A ``ForwardingObserver`` that keeps what it was told."""

    def __init__(self) -> None:
        self.delivered_to: list[tuple[str, float]] = []
        self.failures: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def delivered(self, sink: str, latency_s: float) -> None:
        with self._lock:
            self.delivered_to.append((sink, latency_s))

    def failed(self, sink: str, *, dead: bool) -> None:
        with self._lock:
            self.failures.append((sink, dead))
