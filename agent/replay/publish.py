"""``carbonlink replay --publish``: deliver a replay's records to a gateway as the agent would.

The records were sealed into a real outbox (``agent.outbox.TinyDbOutbox``) during the replay; here
the agent's own uplink (``agent.uplink.PahoUplink``) publishes them and settles each on the
gateway's ack (accepted, duplicate or rejected), resending what is not acked, until the outbox
holds nothing unsettled. Nothing is published by any other path.
"""

import threading
import time
from dataclasses import dataclass

from agent.outbox.tinydb_outbox import TinyDbOutbox
from agent.uplink.paho_uplink import PahoUplink
from agent.uplink.settings import UplinkSettings

STOP_TIMEOUT_S = 5.0
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Delivery:
    """How publishing ended."""

    acknowledged: int
    """Records the gateway acknowledged during this publish (accepted or duplicate)."""
    rejected: int
    """Records the outbox holds as rejected for good (all time), with the gateway's reasons."""
    waiting: int
    """Records still unsettled at the end: the deadline passed, a stop was asked or the broker refused us."""
    error: str | None
    """Why the uplink gave up (the broker refused the connection for good), if it did."""


def deliver(
    outbox: TinyDbOutbox,
    settings: UplinkSettings,
    device_id: str,
    *,
    timeout_s: float,
    stop: threading.Event | None = None,
) -> Delivery:
    """Publish the outbox's unsettled records and wait for the gateway to settle them, up to ``timeout_s``."""
    acknowledged_before = outbox.counts().acknowledged_total
    stop = stop or threading.Event()
    uplink = PahoUplink(settings, outbox, device_id)
    uplink.start()
    uplink.notify()  # the records are in the outbox already
    deadline = time.monotonic() + timeout_s
    try:
        while not stop.is_set() and time.monotonic() < deadline and uplink.last_error is None:
            counts = outbox.counts()
            if counts.pending + counts.sent == 0:
                break
            stop.wait(_POLL_S)
    finally:
        uplink.stop(STOP_TIMEOUT_S)
    counts = outbox.counts()
    return Delivery(
        acknowledged=counts.acknowledged_total - acknowledged_before,
        rejected=counts.rejected,
        waiting=counts.pending + counts.sent,
        error=None if uplink.last_error is None else str(uplink.last_error),
    )
