"""Reading JSON strictly, for the methodology's and the ledger's values: exact fields, one spelling per number.

A credit's JSON is hashed into the ledger, so a value must have one spelling only: an object holds
exactly its fields, and a float carries a decimal point (``1.0``, never ``1``), so that reading and
writing it again gives the same bytes. Each reader takes the error class of its caller, so a
parameter's problem is a ``ParameterError`` and a ledger's a ``LedgerError``, each naming the field.
"""

from collections.abc import Callable, Mapping, Sequence

ErrorFactory = Callable[[str], Exception]


def exact_fields(value: object, where: str, names: Sequence[str], error: ErrorFactory) -> Mapping[str, object]:
    """``value`` as a JSON object holding exactly the fields ``names``, else ``error``."""
    if not isinstance(value, Mapping):
        raise error(f"{where} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in names)
    if unknown:
        raise error(f"{where} has unknown fields: {', '.join(unknown)}")
    missing = [name for name in names if name not in value]
    if missing:
        raise error(f"{where} lacks fields: {', '.join(missing)}")
    return value


def decimal_float(value: object, where: str, error: ErrorFactory) -> float:
    """A JSON number with a decimal point (one spelling, so one hash), else ``error``."""
    if type(value) is not float:
        raise error(f"{where} must be a number with a decimal point, got {value!r}")
    return value
