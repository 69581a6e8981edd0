"""Drive cycles: speed traces over time, synthetic (seeded), NEDC, or read from a CSV.

    trace        SpeedTrace, the one value every cycle is
    synthetic    urban, suburban, highway, mixed: seeded stop-and-go and cruise
    nedc         the NEDC from the regulation's tables
    csv_trace    a user's time_s,speed_kph[,grade_pct] CSV text

``CYCLES`` maps each built-in cycle's name to its builder; :func:`cycle_by_name` builds one.
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType

from simulator.cycles import synthetic
from simulator.cycles.nedc import nedc
from simulator.cycles.trace import SpeedTrace
from simulator.errors import CycleError

CycleBuilder = Callable[[int, float | None], SpeedTrace]
"""Builds a cycle from a seed and a duration in seconds (None: the cycle's default)."""


def _synthetic(build: Callable[[int, float], SpeedTrace], default_duration_s: float) -> CycleBuilder:
    def builder(seed: int, duration_s: float | None) -> SpeedTrace:
        return build(seed, default_duration_s if duration_s is None else duration_s)

    return builder


def _nedc(_seed: int, _duration_s: float | None) -> SpeedTrace:
    """The NEDC is fixed: seed and duration do not apply."""
    return nedc()


CYCLES: Mapping[str, CycleBuilder] = MappingProxyType(
    {
        "urban": _synthetic(synthetic.urban, synthetic.URBAN.default_duration_s),
        "suburban": _synthetic(synthetic.suburban, synthetic.SUBURBAN.default_duration_s),
        "highway": _synthetic(synthetic.highway, synthetic.HIGHWAY.default_duration_s),
        "mixed": _synthetic(synthetic.mixed, synthetic.MIXED_DEFAULT_DURATION_S),
        "nedc": _nedc,
    }
)


def cycle_by_name(name: str, seed: int, duration_s: float | None = None) -> SpeedTrace:
    """The built-in cycle called ``name`` (any case); CycleError listing the known names otherwise.

    Synthetic cycles use ``seed`` and ``duration_s`` (their default when None); the NEDC ignores both.
    """
    builder = CYCLES.get(name.strip().lower())
    if builder is None:
        raise CycleError(f"unknown drive cycle {name!r}; known cycles: {', '.join(sorted(CYCLES))}")
    return builder(seed, duration_s)


__all__ = ["CYCLES", "CycleBuilder", "SpeedTrace", "cycle_by_name"]
