"""Waiting in tests for what other threads and processes do: poll a condition against a deadline.

Deadlines here bound a test's run time; they are never the thing a test asserts.
"""

import time
from collections.abc import Callable

import pytest

WAIT_S = 10.0
POLL_S = 0.005


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S)


def holds_within(condition: Callable[[], bool], window_s: float) -> bool:
    """Whether ``condition`` becomes true within ``window_s``: for asserting that something does not happen."""
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_S)
    return condition()
