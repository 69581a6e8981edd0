"""When to try a failed delivery again: exponential backoff with full jitter, capped, then a dead letter.

After the n-th failed attempt the ceiling is ``min(max_s, initial_s × multiplier^(n-1))`` and the
delay is drawn uniformly between ``initial_s`` and that ceiling ("full jitter" over the window,
Brooker, *Exponential Backoff And Jitter*, AWS Architecture Blog, 2015). Why this one:

- Full jitter spreads the retries of many deliveries that failed together (a receiver that was down)
  over the whole window instead of sending them back in a burst at the same moment.
- It needs nothing but the attempt count, which the outbox keeps. Decorrelated jitter draws each
  delay from the previous one, which the outbox does not store; a restart would forget it.
- The floor of ``initial_s`` (plain full jitter starts at 0) keeps a delivery from being due again
  within the same pass and from spending all its attempts in a burst on a receiver that is down.

After ``max_attempts`` attempts :meth:`RetryPolicy.next_retry_at` gives None: a dead letter, which an
operator retries through the API once the sink is mended.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How long to wait before each retry, and how many attempts to make in all."""

    initial_s: float = 1.0
    """The shortest wait, and the ceiling after the first failure."""
    multiplier: float = 2.0
    """The ceiling's growth per failed attempt (1: no growth)."""
    max_s: float = 300.0
    """No wait is longer, however many attempts failed (nor a receiver's ``Retry-After``)."""
    max_attempts: int = 12
    """Attempts before a delivery becomes a dead letter."""

    def __post_init__(self) -> None:
        for name in ("initial_s", "max_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"retry {name} must be a number of seconds above 0, not {value!r}")
        if self.initial_s > self.max_s:
            raise ConfigError(f"retry initial_s ({self.initial_s}) must not exceed max_s ({self.max_s})")
        if not math.isfinite(self.multiplier) or self.multiplier < 1:
            raise ConfigError(f"retry multiplier must be 1 or more, not {self.multiplier!r}")
        if self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be 1 or more, not {self.max_attempts}")

    def ceiling_s(self, attempts: int) -> float:
        """The longest wait after ``attempts`` failed attempts (1 or more): grows, then stays at ``max_s``."""
        steps = max(0, attempts - 1)
        # Compared in logarithms: multiplier ** steps overflows a float long before max_attempts' limit.
        if self.multiplier == 1 or steps * math.log(self.multiplier) < math.log(self.max_s / self.initial_s):
            return min(self.max_s, self.initial_s * self.multiplier**steps)
        return self.max_s

    def delay_s(self, attempts: int, jitter_fraction: float, *, retry_after_s: float | None = None) -> float:
        """The wait after ``attempts`` failed attempts, ``jitter_fraction`` of the way from the floor to the ceiling.

        ``jitter_fraction`` is a uniform draw from [0, 1] (values outside, or NaN, are clamped into it).
        A receiver's ``retry_after_s`` lengthens the wait up to ``max_s``, never beyond.
        """
        fraction = 0.0 if math.isnan(jitter_fraction) else min(1.0, max(0.0, jitter_fraction))
        ceiling_s = self.ceiling_s(attempts)
        # min(): the sum can round one step past the ceiling.
        delay_s = min(ceiling_s, self.initial_s + fraction * (ceiling_s - self.initial_s))
        if retry_after_s is not None and math.isfinite(retry_after_s):
            delay_s = max(delay_s, min(retry_after_s, self.max_s))
        return delay_s

    def next_retry_at(
        self, attempts: int, now: datetime, jitter_fraction: float, *, retry_after_s: float | None = None
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts (counting the one that just failed), at ``now``.

        None once ``attempts`` reaches ``max_attempts``: the delivery is a dead letter.
        """
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay_s(attempts, jitter_fraction, retry_after_s=retry_after_s))
