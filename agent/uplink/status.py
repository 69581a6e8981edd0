"""The uplink's status: a frozen snapshot, and the board both of its threads write it on."""

import threading
from dataclasses import dataclass, replace
from datetime import datetime

from agent.errors import UplinkError


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    """A snapshot of the uplink, for health checks, metrics and tests."""

    connected: bool = False
    protocol: str | None = None
    """The MQTT version in use or being tried: ``"5"`` or ``"3.1.1"``."""
    last_ack_at: datetime | None = None
    last_error: UplinkError | None = None
    """Set when the broker refused us for good; the uplink has stopped trying."""
    published: int = 0
    """Record publishes handed to paho, resends included."""
    acks_received: int = 0
    """Well-formed acks from the gateway, including those about records already settled."""
    resends: int = 0
    refused_publishes: int = 0
    """Publishes the broker answered with a failure reason (MQTT 5), retried with backoff."""
    malformed_acks: int = 0
    unknown_acks: int = 0
    """Acks naming a record the outbox no longer holds (settled before): ignored."""
    connect_attempts: int = 0
    enrolments_sent: int = 0
    """Enrolment certificates the broker took (PUBACK), one per connection when one is configured."""
    enrolments_refused: int = 0
    """Enrolment certificates the broker refused (an MQTT 5 failure reason, such as the ACL's)."""
    dropped_events: int = 0
    """PUBACKs or acks lost because the worker's queue was full; resending repairs the loss."""
    paho_queue_full: int = 0
    """Publishes paho refused to queue (its queue bound reached); retried with backoff."""
    callback_errors: int = 0
    """Exceptions caught in paho callbacks (each would have killed paho's network thread)."""
    worker_errors: int = 0


class StatusBoard:
    """Where paho's thread and the worker record the status; readers get a frozen snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = UplinkStatus()

    def snapshot(self) -> UplinkStatus:
        with self._lock:
            return self._status

    def bump(self, **deltas: int) -> None:
        with self._lock:
            current = self._status
            self._status = replace(current, **{name: getattr(current, name) + d for name, d in deltas.items()})

    def set(self, **values: object) -> None:
        with self._lock:
            self._status = replace(self._status, **values)  # type: ignore[arg-type] # checked by replace at run time
