"""The forwarder: take due deliveries from the outbox, hand each to its sink, record how it went.

:meth:`Forwarder.run_once` is one pass, driven by the injected clock (tests call it directly);
:meth:`Forwarder.start` runs passes on a thread until :meth:`Forwarder.stop`, waiting ``idle_wait_s``
or until :meth:`Forwarder.wake` when nothing more is due. The forwarder owns the sinks it is given:
:meth:`Forwarder.stop` closes them.

Each attempt ends in exactly one of:

- delivered: ``mark_delivered``;
- failed, may pass (a retryable :class:`SinkError`, or any other exception from a sink, which is
  logged as a bug of that sink): ``mark_failed`` with the retry policy's next time, lengthened to a
  receiver's ``Retry-After``; after ``max_attempts`` attempts, a dead letter (``retry_at`` None);
- failed for good (a not-retryable ``SinkError``, or a delivery for a sink this gateway does not
  have): a dead letter at once, with the error for the operator.

A crash between a sink taking a delivery and the outbox recording it sends it again after the
outbox's lease; receivers recognise it by its idempotency key. An error of the outbox itself is
logged and the pass is tried again after ``idle_wait_s``: the deliveries wait in the database.
"""

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from gateway.errors import ConfigError
from gateway.forwarding.model import CreditSink, Delivery, ForwardingObserver, ForwardingQueue, SinkError
from gateway.forwarding.retry import RetryPolicy

log = logging.getLogger("carbonlink.gateway.forwarding")

ERROR_MAX_CHARS = 2000
"""An attempt's error is stored at most this long."""


class Forwarder:
    """Delivers issued credits from a :class:`ForwardingQueue` to named sinks (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - every part is injected by the composition root, by keyword
        self,
        queue: ForwardingQueue,
        sinks: Mapping[str, CreditSink],
        policy: RetryPolicy,
        observer: ForwardingObserver,
        *,
        clock: Callable[[], datetime],
        jitter: Callable[[], float],
        batch_max: int = 50,
        idle_wait_s: float = 1.0,
    ) -> None:
        if batch_max < 1:
            raise ConfigError(f"forwarding batch_max must be 1 or more, not {batch_max}")
        if not idle_wait_s > 0:
            raise ConfigError(f"forwarding idle_wait_s must be above 0, not {idle_wait_s!r}")
        self._queue = queue
        self._sinks = dict(sinks)
        self._policy = policy
        self._observer = observer
        self._clock = clock
        self._jitter = jitter
        self._batch_max = batch_max
        self._idle_wait_s = idle_wait_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        """Set while the last pass found fewer than ``batch_max`` deliveries due (tests and shutdown wait on it)."""

    def run_once(self) -> int:
        """Attempt every delivery due now, at most ``batch_max``; the number attempted.

        Stops early when :meth:`stop` was called: the deliveries not yet attempted come back after the
        outbox's lease. An error of the outbox propagates.
        """
        due = self._queue.due(self._clock(), self._batch_max)
        attempted = 0
        for delivery in due:
            if self._stopping.is_set():
                break
            self._attempt(delivery)
            attempted += 1
        return attempted

    def _attempt(self, delivery: Delivery) -> None:
        sink = self._sinks.get(delivery.sink)
        if sink is None:
            configured = ", ".join(sorted(self._sinks)) or "none"
            error = f"no sink {delivery.sink!r} is configured on this gateway (configured: {configured})"
            self._fail(delivery, error, retryable=False)
            return
        started_at = self._clock()
        try:
            sink.deliver(delivery)
        except SinkError as err:
            self._fail(delivery, str(err), retryable=err.retryable, retry_after_s=err.retry_after_s)
            return
        except Exception as err:  # noqa: BLE001 - a sink's bug must not stop the loop: logged with its traceback, retried
            error = f"sink {delivery.sink!r} failed: {type(err).__name__}: {err}"
            self._fail(delivery, error, retryable=True, exc_info=True)
            return
        delivered_at = self._clock()
        self._queue.mark_delivered(delivery.delivery_id, at=delivered_at)
        since = delivery.created_at if delivery.created_at is not None else started_at
        self._observer.delivered(delivery.sink, max(0.0, (delivered_at - since).total_seconds()))
        log.debug(
            "forwarding.delivered delivery=%d sink=%s attempt=%d",
            delivery.delivery_id,
            delivery.sink,
            delivery.attempts + 1,
        )

    def _fail(
        self,
        delivery: Delivery,
        error: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        exc_info: bool = False,
    ) -> None:
        at = self._clock()
        attempts = delivery.attempts + 1
        retry_at = (
            self._policy.next_retry_at(attempts, at, self._jitter(), retry_after_s=retry_after_s) if retryable else None
        )
        self._queue.mark_failed(delivery.delivery_id, error=error[:ERROR_MAX_CHARS], at=at, retry_at=retry_at)
        self._observer.failed(delivery.sink, dead=retry_at is None)
        if retry_at is None:
            log.error(
                "forwarding.dead delivery=%d sink=%s attempts=%d error=%r",
                delivery.delivery_id,
                delivery.sink,
                attempts,
                error[:ERROR_MAX_CHARS],
                exc_info=exc_info,
            )
        else:
            log.warning(
                "forwarding.failed delivery=%d sink=%s attempt=%d retry_at=%s error=%r",
                delivery.delivery_id,
                delivery.sink,
                attempts,
                retry_at.isoformat(),
                error[:ERROR_MAX_CHARS],
                exc_info=exc_info,
            )

    # --- the thread ---------------------------------------------------------------------------------
    def wake(self) -> None:
        """Look at the outbox now (a credit was issued, or an operator retried a dead letter)."""
        self.idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Run passes on a thread until :meth:`stop`; does nothing when running already."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gateway-forwarding", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Finish the attempt under way, stop, and close the sinks; True when the thread ended within ``timeout_s``.

        The forwarder owns its sinks: once its thread has ended (or when it never ran) it closes them.
        A thread still in an attempt after ``timeout_s`` keeps them open: closing them under it would
        turn a slow delivery into a failed one.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
        self._close_sinks()
        return True

    def _close_sinks(self) -> None:
        for name, sink in self._sinks.items():
            try:
                sink.close()
            except Exception:  # one sink that fails to close must not keep the others open
                log.exception("forwarding.close_failed sink=%s", name)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                attempted = self.run_once()
            except Exception:  # a supervisor loop: the outbox is in the database; log, wait, try again
                log.exception("forwarding.pass_failed retry_in_s=%s", self._idle_wait_s)
                self._wake.wait(self._idle_wait_s)
                continue
            if attempted < self._batch_max:  # a full batch: more may be due, look again at once
                self.idle.set()
                self._wake.wait(self._idle_wait_s)
