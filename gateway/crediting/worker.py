"""The thread that keeps crediting up with intake: decide what is queued, then wait for more.

Intake wakes it after each commit; it also looks every ``interval_s`` (another gateway's intake may
have queued records). A database error is logged and retried after ``interval_s``: the queue is in
the database, so nothing is lost while it waits.
"""

import logging
import threading

from gateway.crediting.service import Crediting

log = logging.getLogger("carbonlink.gateway.crediting")


class CreditingWorker:
    """Runs :meth:`Crediting.run_until_idle` on its own thread (see the module docstring)."""

    def __init__(self, crediting: Crediting, *, interval_s: float) -> None:
        self._crediting = crediting
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Look at the queue now (intake committed records)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-crediting", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Finish the transaction under way and stop; True when the thread ended in time."""
        self._stopping.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                decided = self._crediting.run_until_idle(self._stopping.is_set)
            except Exception:  # a supervisor loop: log, wait, try again; the queue keeps everything
                log.exception("crediting.failed retry_in_s=%s", self._interval_s)
            else:
                if decided:
                    log.debug("crediting.decided records=%d", decided)
            self._wake.wait(self._interval_s)
