"""Forwarding's values and roles: a delivery, the outbox it comes from, the sinks it goes to.

A :class:`Delivery` is one issued credit on its way to one sink. The outbox (:class:`ForwardingQueue`,
implemented by the store) hands out those that are due and records how each attempt went; a
:class:`CreditSink` takes one delivery or raises :class:`SinkError` saying whether trying again can
help. Receivers see each credit at least once and recognise a repeat by its idempotency key.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.errors import GatewayError


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One issued credit for one sink, as the outbox hands it out."""

    delivery_id: int
    sink: str
    """The name of the sink it is for (``webhook``, ``export_file``)."""
    idempotency_key: str
    """The same for every attempt of this credit: receivers treat a repeat as done."""
    payload: bytes
    """Canonical JSON of the issued credit, delivered byte for byte."""
    attempts: int
    """Attempts made before this one (0 for the first)."""
    created_at: datetime | None = None
    """When the credit was queued (issued), for the issue-to-delivery latency; None when the queue does not say."""


class ForwardingQueue(Protocol):
    """The forwarding outbox: due deliveries out, the outcome of each attempt in."""

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """At most ``limit`` pending deliveries whose next attempt is at or before ``now``."""
        ...

    def mark_delivered(self, delivery_id: int, *, at: datetime) -> None:
        """The sink took it: never hand it out again."""
        ...

    def mark_failed(self, delivery_id: int, *, error: str, at: datetime, retry_at: datetime | None) -> None:
        """The attempt failed: due again at ``retry_at``, or a dead letter when that is None."""
        ...


class CreditSink(Protocol):
    """Somewhere issued credits go. ``deliver`` returns when the sink holds the credit durably."""

    name: str

    def deliver(self, delivery: Delivery) -> None:
        """Hand over one delivery; :class:`SinkError` when the sink did not take it."""
        ...

    def close(self) -> None:
        """Release what the sink holds (pooled connections, an open file); the forwarder calls it when it stops."""
        ...


class ForwardingObserver(Protocol):
    """Told the outcome of every attempt (the gateway counts them in Prometheus)."""

    def delivered(self, sink: str, latency_s: float) -> None:
        """A delivery reached ``sink``; ``latency_s`` from its issue (or from the attempt's start)."""
        ...

    def failed(self, sink: str, *, dead: bool) -> None:
        """An attempt failed: tried again later, or (``dead``) given up until an operator retries it."""
        ...


class SinkError(GatewayError):
    """A sink did not take a delivery; the message names the sink (URL without credentials, or path).

    No builtin exception shares its meaning (a refused credit is not an ``OSError``), so it has none.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        """True: the failure may pass (sink down, overloaded, timed out); False: it will not (refused)."""
        self.retry_after_s = retry_after_s
        """How long the sink asked to be left alone (HTTP ``Retry-After``), if it said."""
