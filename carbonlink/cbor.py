"""Strict, deterministic CBOR: the only encoding the envelope and its payload accept.

Encoding follows RFC 8949 §4.2.1 (core deterministic encoding: shortest heads, shortest
exact floats, map keys in bytewise order of their encodings). Decoding refuses anything a
deterministic encoder would not have produced — trailing bytes, indefinite lengths, duplicate
keys, non-shortest forms — so one value has exactly one byte string, and signed bytes cannot
be re-spelled.
"""

import io

import cbor2

from carbonlink.errors import MalformedError

MAX_DEPTH = 16
"""Nesting limit while decoding: a record needs 4; deeper input is refused early."""


def encode(value: object) -> bytes:
    """The deterministic CBOR encoding of ``value``."""
    return cbor2.dumps(value, canonical=True)


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
