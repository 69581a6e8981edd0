"""The carbon methodology: pure functions from a trip, its charges and the parameters to a credit.

``parameters`` reads the versioned parameter file and resolves, for one trip, the exact values a
credit stores (:class:`CreditParameters`); ``reduction`` computes ER = BE - PE - LE from them
(:func:`compute_reduction`). Both the gateway and the offline audit call the same functions, so
a stored credit recomputes to the same figures. docs/methodology.md explains every rule and
parameter, with a worked example that a test reproduces.

Errors::

    CarbonlinkError
    └── ParameterError (ValueError)   a missing, mistyped or out-of-range input, or an unknown class or region
"""

from carbonlink.methodology.errors import ParameterError
from carbonlink.methodology.parameters import (
    BASELINE_CLASSES,
    CreditParameters,
    Parameter,
    ParameterSet,
    parse_parameter_file,
    resolve_parameters,
)
from carbonlink.methodology.reduction import (
    ChargeEnergy,
    GridEnergyMethod,
    Reduction,
    TripEnergy,
    compute_reduction,
    crediting_period,
)

__all__ = [
    "BASELINE_CLASSES",
    "ChargeEnergy",
    "CreditParameters",
    "GridEnergyMethod",
    "Parameter",
    "ParameterError",
    "ParameterSet",
    "Reduction",
    "TripEnergy",
    "compute_reduction",
    "crediting_period",
    "parse_parameter_file",
    "resolve_parameters",
]
