"""Strict, deterministic CBOR: the only encoding the envelope and its payload accept.

Encoding is cbor2's canonical mode: shortest heads, shortest exact floats, definite lengths,
and map keys sorted shortest encoding first (RFC 7049 §3.9). For scalar keys (integers, text,
byte strings) of one major type — all text, or all non-negative integers — the head of a key
grows with its value, so length-then-bytes order is the bytewise order of RFC 8949 §4.2.1 core
deterministic encoding; so it is for keys that all encode in one byte (integers -24 to 23).
Every map of the protocol is of one of these kinds and ``encode`` refuses any other, so our
bytes are RFC 8949 deterministic.

Decoding refuses anything a deterministic encoder would not have produced — trailing bytes,
indefinite lengths, duplicate keys, non-shortest forms — so one value has exactly one byte
string, and signed bytes cannot be re-spelled.
"""

import io
from collections.abc import Mapping

import cbor2

from carbonlink.errors import MalformedError

MAX_DEPTH = 16
"""Nesting limit while decoding: a record needs 4; deeper input is refused early."""


def encode(value: object) -> bytes:
    """The deterministic CBOR encoding of ``value``; its maps must have keys of one kind."""
    _check_key_kinds(value)
    return cbor2.dumps(value, canonical=True)


_ONE_BYTE_INTEGERS = range(-24, 24)
"""Integers whose whole encoding is one byte: they sort alike by either rule, whatever their sign."""


def _key_kind(key: object) -> str:
    # Only scalar keys: for arrays or maps as keys, a longer encoding may sort first bytewise.
    if type(key) is int:
        return "unsigned" if key >= 0 else "negative"
    if type(key) in (str, bytes):
        return type(key).__name__
    raise TypeError(f"map keys must be integers, text or byte strings, not {type(key).__name__}")


def _check_key_kinds(value: object) -> None:
    # Length-first order equals RFC 8949 bytewise order within one major type, or when every key
    # is a one-byte integer (the COSE key map {1: 1, -1: 6, -2: x} of a thumbprint); see above.
    if isinstance(value, Mapping):
        mixed = len({_key_kind(key) for key in value}) > 1
        if mixed and not all(type(key) is int and key in _ONE_BYTE_INTEGERS for key in value):
            raise TypeError("maps with keys of mixed kinds have no protocol encoding")  # a programming error
        for item in value.values():
            _check_key_kinds(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_key_kinds(item)
    elif isinstance(value, cbor2.CBORTag):
        _check_key_kinds(value.value)


def decode(data: bytes, what: str) -> object:
    """Decode exactly one deterministic CBOR item filling ``data``; ``what`` names it in errors."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            stream, allow_indefinite=False, allow_duplicate_keys=False, max_depth=MAX_DEPTH
        ).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as err:
        # cbor2 signals some malformed input (bad tag contents, huge lengths) with builtins.
        raise MalformedError(f"{what} is not valid CBOR: {err}") from err
    if stream.tell() != len(data):
        raise MalformedError(f"{what} has {len(data) - stream.tell()} bytes after its CBOR item")
    try:
        canonical = encode(value)
    except (cbor2.CBORError, ValueError, TypeError) as err:
        raise MalformedError(f"{what} holds a value with no deterministic encoding: {err}") from err
    if canonical != data:
        raise MalformedError(f"{what} is not in deterministic CBOR encoding (RFC 8949 §4.2.1)")
    return value
