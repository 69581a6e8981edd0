"""The forwarding retry policy: exponential backoff with full jitter above a floor, capped, then a dead letter."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ConfigError
from gateway.forwarding.retry import RetryPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(initial_s=1.0, multiplier=2.0, max_s=60.0, max_attempts=12)


def waits_s(policy: RetryPolicy, jitter_fraction: float) -> list[float]:
    """The wait after each failed attempt until the dead letter, with the same jitter draw every time."""
    waits = []
    for attempts in range(1, policy.max_attempts):
        retry_at = policy.next_retry_at(attempts, NOW, jitter_fraction)
        assert retry_at is not None
        waits.append((retry_at - NOW).total_seconds())
    return waits


def test_retry_waits_double_up_to_the_cap_at_the_top_of_the_jitter() -> None:
    """With the largest jitter draw the waits are 1, 2, 4, ... seconds and stay at max_s once they reach it."""
    assert waits_s(POLICY, 1.0) == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]


def test_retry_waits_grow_for_any_fixed_jitter_above_zero() -> None:
    """For the same draw, each wait is longer than the last until the cap."""
    waits = waits_s(POLICY, 0.5)
    assert waits[:7] == sorted(set(waits[:7]))
    assert waits[6:] == [30.5] * 5


def test_the_smallest_jitter_draw_waits_the_floor() -> None:
    """A draw of 0 waits initial_s: a failed delivery is never due again at once."""
    assert waits_s(POLICY, 0.0) == [1.0] * 11


def test_after_max_attempts_there_is_no_retry() -> None:
    """The max_attempts-th failure makes a dead letter (no retry time); the one before still retries."""
    assert POLICY.next_retry_at(11, NOW, 0.3) is not None
    assert POLICY.next_retry_at(12, NOW, 0.3) is None
    assert POLICY.next_retry_at(13, NOW, 0.3) is None
    assert RetryPolicy(max_attempts=1).next_retry_at(1, NOW, 0.3) is None


@given(
    attempts=st.integers(min_value=1, max_value=1000),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    initial_s=st.floats(min_value=0.001, max_value=100.0),
    multiplier=st.floats(min_value=1.0, max_value=1000.0),
    extra_s=st.floats(min_value=0.0, max_value=100_000.0),
)
def test_every_wait_lies_between_the_floor_and_the_cap(
    attempts: int, jitter: float, initial_s: float, multiplier: float, extra_s: float
) -> None:
    """Whatever the attempt count and the draw, the wait is at least initial_s and at most max_s (no overflow)."""
    policy = RetryPolicy(initial_s=initial_s, multiplier=multiplier, max_s=initial_s + extra_s, max_attempts=1001)
    delay_s = policy.delay_s(attempts, jitter)
    assert initial_s <= delay_s <= policy.max_s
    assert delay_s <= policy.ceiling_s(attempts)


@given(attempts=st.integers(min_value=1, max_value=999), multiplier=st.floats(min_value=1.0, max_value=10.0))
def test_the_ceiling_never_shrinks(attempts: int, multiplier: float) -> None:
    """The longest possible wait after one more failure is never shorter."""
    policy = RetryPolicy(initial_s=0.5, multiplier=multiplier, max_s=3600.0, max_attempts=1000)
    assert policy.ceiling_s(attempts) <= policy.ceiling_s(attempts + 1) <= 3600.0


def test_a_multiplier_of_one_waits_the_same_every_time() -> None:
    """Without growth the ceiling is initial_s, so every wait is initial_s."""
    policy = RetryPolicy(initial_s=5.0, multiplier=1.0, max_s=60.0, max_attempts=5)
    assert waits_s(policy, 1.0) == [5.0] * 4


@pytest.mark.parametrize(("jitter", "wait_s"), [(-3.0, 1.0), (7.0, 8.0), (math.nan, 1.0), (math.inf, 8.0)])
def test_a_jitter_draw_outside_zero_to_one_is_clamped(jitter: float, wait_s: float) -> None:
    """A broken random source cannot make a wait shorter than the floor or longer than the ceiling."""
    assert POLICY.delay_s(4, jitter) == wait_s


def test_retry_after_lengthens_the_wait_up_to_the_cap() -> None:
    """A receiver's Retry-After waits longer than the backoff would, but never beyond max_s, and never shorter."""
    assert POLICY.next_retry_at(1, NOW, 0.0, retry_after_s=30) == NOW + timedelta(seconds=30)
    assert POLICY.next_retry_at(1, NOW, 0.0, retry_after_s=86_400) == NOW + timedelta(seconds=60)
    assert POLICY.next_retry_at(6, NOW, 1.0, retry_after_s=2) == NOW + timedelta(seconds=32)
    assert POLICY.next_retry_at(12, NOW, 1.0, retry_after_s=2) is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"initial_s": 0.0}, "initial_s"),
        ({"initial_s": math.nan}, "initial_s"),
        ({"max_s": -1.0}, "max_s"),
        ({"max_s": math.inf}, "max_s"),
        ({"initial_s": 10.0, "max_s": 5.0}, "must not exceed max_s"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": math.inf}, "multiplier"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_a_policy_that_makes_no_sense_is_refused(settings: dict[str, float], named: str) -> None:
    """A retry policy with a non-positive, infinite or inverted setting raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=named):
        RetryPolicy(**settings)  # type: ignore[arg-type]
