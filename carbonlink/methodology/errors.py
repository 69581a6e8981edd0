"""The one error of the carbon methodology."""

from carbonlink.errors import CarbonlinkError


class ParameterError(CarbonlinkError, ValueError):
    """A methodology input is missing, of the wrong type or out of range; the message names it.

    Raised for the parameter file, a stored credit's parameters, charges or reduction read back
    from JSON, and for a class or grid region the parameter file has no values for.
    """
