"""Path and query parameters shared by the routers, and the error for one that cannot be read.

Type, range and choice errors (``limit=0``, ``reason=nope``, ``from=yesterday``) are FastAPI's
422; a value of the right type that still cannot be read (a hash that is not hex) is a
:class:`ParameterError`, answered 400. Both name the parameter.
"""

from typing import Annotated

from fastapi import Query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
"""One page at most: 1000 records are about 1 MB of JSON."""
DIGEST_HEX_DIGITS = 64

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}, newest first.")]


class ParameterError(ValueError):
    """A request parameter of the right type whose value cannot be read."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def parse_digest(text: str, parameter: str) -> bytes:
    """A SHA-256 value (record hash, kid) from 64 hex digits in either case."""
    digits = text.lower()
    if len(digits) != DIGEST_HEX_DIGITS or any(c not in "0123456789abcdef" for c in digits):
        raise ParameterError(parameter, f"must be {DIGEST_HEX_DIGITS} hex digits (a SHA-256 value), got {text!r}")
    return bytes.fromhex(digits)
