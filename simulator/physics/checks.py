"""Parameter checks shared by the physics modules: finite numbers within their physical bounds."""

import math
from collections.abc import Callable

from simulator.errors import ParameterError


def is_finite_number(value: object) -> bool:
    """True for an int or float that is neither NaN nor infinite (a bool is an int here too)."""
    return isinstance(value, int | float) and math.isfinite(value)


def require(name: str, value: object, must_be: str, holds: Callable[[float], bool]) -> None:
    """Raise ParameterError naming ``name`` unless ``value`` is a finite number for which ``holds``."""
    if not (isinstance(value, int | float) and math.isfinite(value) and holds(value)):
        raise ParameterError(f"{name} must be {must_be}, got {value!r}")


def require_positive(name: str, value: object) -> None:
    """Raise ParameterError naming ``name`` unless ``value`` is a positive finite number."""
    require(name, value, "a positive finite number", lambda number: number > 0.0)
