"""Graceful stop for the long-running commands (``agent run``, ``gateway run``).

The first SIGTERM or SIGINT asks the app to stop cleanly; a second one kills at once (the default
action is put back), because what was acknowledged is durable and a stuck stop must not trap the
user.
"""

import signal
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(stop: Callable[[str], None]) -> None:
    """Call ``stop(signal_name)`` on the first stop signal; the next one kills the process."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        stop(signal.Signals(signum).name)

    for number in STOP_SIGNALS:
        signal.signal(number, handler)
