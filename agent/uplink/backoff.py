"""Exponential backoff with full jitter and a cap: values in, values out.

The delay before attempt ``n`` (0 for the first retry) is drawn uniformly from
``[0, min(max_s, initial_s × factor**n))`` — "full jitter" — so a fleet of cars that lost the
broker at the same moment does not come back in step. The random draw is an input (a number in
``[0, 1)``), so tests choose it and the caller owns the random source.
"""

import math
from dataclasses import dataclass

from agent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry number ``attempt``."""

    initial_s: float
    max_s: float
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_s) and self.initial_s > 0):
            raise ConfigError(f"backoff initial_s must be a positive number of seconds, not {self.initial_s!r}")
        if not (math.isfinite(self.max_s) and self.max_s >= self.initial_s):
            raise ConfigError(f"backoff max_s must be at least initial_s ({self.initial_s}), not {self.max_s!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ConfigError(f"backoff factor must be at least 1, not {self.factor!r}")

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay of retry ``attempt``: ``initial_s × factor**attempt``, capped at ``max_s``."""
        if attempt < 0:
            raise ValueError(f"attempt must be 0 or more, not {attempt}")
        # Compare exponents instead of computing factor**attempt: that overflows a float for large attempts.
        if self.factor == 1 or attempt * math.log(self.factor) < math.log(self.max_s / self.initial_s):
            return min(self.max_s, self.initial_s * self.factor**attempt)
        return self.max_s

    def delay_s(self, attempt: int, unit: float) -> float:
        """The delay of retry ``attempt`` for a random draw ``unit`` in ``[0, 1)``."""
        if not 0 <= unit < 1:
            raise ValueError(f"unit must be a random draw in [0, 1), not {unit!r}")
        return unit * self.ceiling_s(attempt)
