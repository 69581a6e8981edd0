"""Errors of the simulator: each names the parameter, cycle, file or message at fault.

SimulatorError
├── ParameterError (ValueError)   impossible vehicle, battery, charger or day parameters
├── CycleError (ValueError)       unknown cycle name, malformed speed trace
└── DbcError (ValueError)         a DBC that lacks what the simulator encodes
"""


class SimulatorError(Exception):
    """Base of every error raised by the simulator."""


class ParameterError(SimulatorError, ValueError):
    """A parameter is outside what is physically possible (negative mass, SOC above 100 %)."""


class CycleError(SimulatorError, ValueError):
    """A drive cycle cannot be built: unknown name, malformed or impossible speed trace."""


class DbcError(SimulatorError, ValueError):
    """The DBC lacks a message or signal the simulator needs, or cannot be read."""
