"""Reading the methodology's parameter file: the shipped one, or the operator's."""

from importlib import resources
from pathlib import Path

from carbonlink.methodology import ParameterError, ParameterSet, parse_parameter_file
from gateway.errors import ConfigError

SHIPPED_PARAMETERS = "parameters.toml"
"""The parameter file shipped in ``carbonlink.methodology`` (package data)."""


def load_parameters(path: Path | None) -> ParameterSet:
    """The parameter set in ``path``, or the shipped one; :class:`ConfigError` naming the file and key."""
    where = str(path) if path is not None else f"carbonlink.methodology/{SHIPPED_PARAMETERS}"
    try:
        if path is None:
            text = resources.files("carbonlink.methodology").joinpath(SHIPPED_PARAMETERS).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the parameter file {where}: {err}") from err
    try:
        return parse_parameter_file(text)
    except ParameterError as err:
        raise ConfigError(f"parameter file {where}: {err}") from err
