"""What the uplink has in flight, what to publish now and when to look again — without I/O.

Values in, values out: the worker hands in the outbox's oldest unacknowledged entries, the time,
paho's message ids, PUBACKs and acks; ``Flights`` answers which entries are due. A record is due
when it was never published, when its ack has not come ``ack_timeout_s`` after its publish (the
timer runs on connected time: it restarts on every reconnect), or when the backoff after a refused
publish has passed. A token bucket keeps the publishes under ``drain_rate_per_s``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent.outbox import EntryState, OutboxEntry

DRAIN_BURST_S = 0.2
"""The rate limiter lets this many seconds' worth of records go at once."""
_TOKEN_EPSILON = 1e-9
"""Float sums of elapsed time fall a hair short of a whole token when one is due."""


@dataclass(slots=True)
class _Flight:
    """A record this process published (or adopted from an earlier run) whose ack has not come."""

    sequence: int
    due_at_s: float
    """Monotonic time at which to publish it again."""
    refused: bool = False
    """Waiting out a backoff after a refused publish, not an ack timeout."""


class Flights:
    """The in-flight bookkeeping of one uplink; owned by one thread."""

    def __init__(self, *, ack_timeout_s: float, drain_rate_per_s: float, now_s: float) -> None:
        self._ack_timeout_s = ack_timeout_s
        self._rate_per_s = drain_rate_per_s
        self._burst = max(1.0, drain_rate_per_s * DRAIN_BURST_S)
        self._tokens = self._burst
        self._tokens_at_s = now_s
        self._flights: dict[bytes, _Flight] = {}
        self._mids: dict[int, bytes] = {}
        self._unpublished = False

    def __len__(self) -> int:
        return len(self._flights)

    @property
    def awaiting_puback(self) -> int:
        """Publishes handed to paho whose PUBACK has not come (resends of one record count apart)."""
        return len(self._mids)

    def due(self, entries: Sequence[OutboxEntry], now_s: float, wall_now_s: float) -> list[OutboxEntry]:
        """The entries to publish now, oldest first, as many as the rate allows.

        ``entries`` are the outbox's oldest unacknowledged records (the window). Flights of records no
        longer among them were settled elsewhere and are forgotten. A record an earlier run sent keeps
        the rest of its ack timer, measured on the wall clock it was stamped with.
        """
        self._refill(now_s)
        held = {entry.record_hash for entry in entries}
        self._flights = {h: f for h, f in self._flights.items() if h in held}
        self._mids = {mid: h for mid, h in self._mids.items() if h in held}
        due: list[OutboxEntry] = []
        allowed = math.floor(self._tokens + _TOKEN_EPSILON)
        for entry in entries:
            flight = self._flights.get(entry.record_hash)
            if flight is None and entry.state is EntryState.SENT and entry.last_sent_at_s is not None:
                age_s = wall_now_s - entry.last_sent_at_s
                if 0 <= age_s < self._ack_timeout_s:  # a clock that went back makes it due at once
                    self._flights[entry.record_hash] = _Flight(entry.sequence, now_s + self._ack_timeout_s - age_s)
                    continue
            if flight is not None and now_s < flight.due_at_s:
                continue
            if len(due) == allowed:
                self._unpublished = True
                return due
            due.append(entry)
        self._unpublished = False
        return due

    def published(self, entry: OutboxEntry, mid: int, now_s: float) -> bool:
        """Paho took the record as message ``mid``; True if it had been published before (a resend)."""
        resend = entry.record_hash in self._flights or entry.state is EntryState.SENT
        self._tokens -= 1
        self._mids[mid] = entry.record_hash
        self._flights[entry.record_hash] = _Flight(entry.sequence, now_s + self._ack_timeout_s)
        return resend

    def deferred(self, entry: OutboxEntry, now_s: float, delay_s: float) -> None:
        """Paho would not queue the record: try again after ``delay_s``."""
        self._flights[entry.record_hash] = _Flight(entry.sequence, now_s + delay_s, refused=True)

    def pubacked(self, mid: int) -> bytes | None:
        """The broker took message ``mid``: the hash of its record, or None if that is settled or unknown."""
        record_hash = self._mids.pop(mid, None)
        return record_hash if record_hash in self._flights else None

    def refused(self, mid: int, now_s: float, delay_s: float) -> int | None:
        """The broker refused message ``mid``: retry after ``delay_s``; the record's sequence, if still held."""
        record_hash = self._mids.pop(mid, None)
        flight = None if record_hash is None else self._flights.get(record_hash)
        if flight is None:
            return None
        flight.refused = True
        flight.due_at_s = now_s + delay_s
        return flight.sequence

    def holds(self, record_hash: bytes) -> bool:
        """Whether the record is in flight (published, not settled)."""
        return record_hash in self._flights

    def settled(self, record_hash: bytes) -> None:
        self._flights.pop(record_hash, None)

    def link_up(self, now_s: float) -> None:
        """Connected (again): ack timers start over, since acks could not come while we were away."""
        for flight in self._flights.values():
            if not flight.refused:
                flight.due_at_s = now_s + self._ack_timeout_s

    def clear(self) -> None:
        """A new paho client holds none of the old one's messages: every record is published again."""
        self._flights.clear()
        self._mids.clear()

    def next_due_s(self, now_s: float) -> float:
        """When ``due`` may next return something, as far as timers and the rate tell (new records aside)."""
        next_s = min((f.due_at_s for f in self._flights.values()), default=math.inf)
        if self._unpublished:
            next_s = min(next_s, now_s + max(0.0, 1 - self._tokens) / self._rate_per_s)
        return next_s

    def _refill(self, now_s: float) -> None:
        elapsed_s = max(0.0, now_s - self._tokens_at_s)
        self._tokens = min(self._burst, self._tokens + elapsed_s * self._rate_per_s)
        self._tokens_at_s = now_s
