"""Records to and from plain maps: the CBOR payload and the JSON view share one mapping.

The mapping is driven by the dataclass fields and their annotations, so a field added to a
record type is encoded, decoded and validated without touching this module. Decoding is
strict: every field present, no unknown key, each value of exactly its field's type (a float
field takes a float, not an int; a bool is not an int). With that, encoding is one-to-one and
``decode(encode(record)) == record``.

Times travel as RFC 3339 text in UTC with microseconds (``2026-11-24T08:59:00.123456Z``), enums
as their value, ``None`` as null. Only byte strings differ between the two views: CBOR keeps
them as bytes, JSON spells them in lowercase hex.
"""

import dataclasses
import functools
import re
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from carbonlink.errors import SchemaError
from carbonlink.records import RECORD_TYPES, Record

T = TypeVar("T")

_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def format_time(moment: datetime) -> str:
    """The wire spelling of an aware UTC datetime."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str, where: str = "time") -> datetime:
    """Read the wire spelling of a UTC datetime, refusing any other spelling."""
    if _TIME_TEXT.fullmatch(text) is None:
        raise SchemaError(f"{where} {text!r} is not a UTC time of the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        # The pattern above fixes the shape; fromisoformat reads it (and checks the calendar) fast.
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise SchemaError(f"{where} {text!r} is not a valid date and time") from err


@dataclasses.dataclass(frozen=True, slots=True)
class _BytesSpelling:
    encode: Callable[[bytes], object]
    decode: Callable[[object, str], bytes]


def _bytes_from_cbor(value: object, where: str) -> bytes:
    if type(value) is not bytes:
        raise SchemaError(f"{where} must be a byte string, got {type(value).__name__}")
    return value


def _bytes_from_hex(value: object, where: str) -> bytes:
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise SchemaError(f"{where} must be lowercase hex, got {value!r}")
    return bytes.fromhex(value)


_CBOR = _BytesSpelling(encode=lambda raw: raw, decode=_bytes_from_cbor)
_JSON = _BytesSpelling(encode=bytes.hex, decode=_bytes_from_hex)


def _encode_value(value: object, spelling: _BytesSpelling) -> object:
    match value:
        case None | bool() | int() | float():
            return value
        case StrEnum():
            return value.value
        case str():
            return value
        case bytes():
            return spelling.encode(value)
        case datetime():
            return format_time(value)
        case tuple():
            return [_encode_value(item, spelling) for item in value]
        case _ if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return _encode_fields(value, spelling)
    raise TypeError(f"cannot encode a value of type {type(value).__name__}")  # a programming error, not input


def _encode_fields(value: object, spelling: _BytesSpelling) -> dict[str, object]:
    return {f.name: _encode_value(getattr(value, f.name), spelling) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


Decoder = Callable[[object, str, _BytesSpelling], object]
"""Reads one wire value (at the path given for messages) as its field's Python value."""


def _decode_exact(expected: type, value: object, where: str, _spelling: _BytesSpelling) -> object:
    # ``type(...) is``, not isinstance: a bool must not pass for an int, nor an int for a float.
    if type(value) is not expected:
        raise SchemaError(f"{where} must be {expected.__name__}, got {type(value).__name__}")
    return value


def _decode_bytes(value: object, where: str, spelling: _BytesSpelling) -> bytes:
    return spelling.decode(value, where)


def _decode_time(value: object, where: str, _spelling: _BytesSpelling) -> datetime:
    if type(value) is not str:
        raise SchemaError(f"{where} must be str, got {type(value).__name__}")
    return parse_time(value, where)


def _decode_enum(enum_type: type[StrEnum], value: object, where: str, _spelling: _BytesSpelling) -> StrEnum:
    if type(value) is not str:
        raise SchemaError(f"{where} must be str, got {type(value).__name__}")
    try:
        return enum_type(value)
    except ValueError as err:
        allowed = ", ".join(member.value for member in enum_type)
        raise SchemaError(f"{where} {value!r} is not one of: {allowed}") from err


def _decode_optional(inner: Decoder, value: object, where: str, spelling: _BytesSpelling) -> object:
    return None if value is None else inner(value, where, spelling)


def _decode_tuple(item: Decoder, value: object, where: str, spelling: _BytesSpelling) -> tuple[object, ...]:
    if not isinstance(value, list | tuple):
        raise SchemaError(f"{where} must be a list, got {type(value).__name__}")
    return tuple(item(entry, f"{where}[{i}]", spelling) for i, entry in enumerate(value))


def _decoder_for(annotation: Any) -> Decoder:  # noqa: ANN401 - annotations are runtime type forms
    """Build, once per field, the function that reads values of this annotation."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = (option for option in get_args(annotation) if option is not type(None))
        return functools.partial(_decode_optional, _decoder_for(inner))
    if origin is tuple:
        return functools.partial(_decode_tuple, _decoder_for(get_args(annotation)[0]))
    if annotation is bytes:
        return _decode_bytes
    if annotation is datetime:
        return _decode_time
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return functools.partial(_decode_enum, annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return functools.partial(_decode_fields, annotation)
    if annotation in (str, int, float, bool):
        return functools.partial(_decode_exact, annotation)
    raise TypeError(f"no wire mapping for {annotation!r}")  # a programming error, not input


@functools.cache
def _field_plan(cls: type) -> tuple[tuple[str, Decoder], ...]:
    """The fields of a dataclass with their decoders; computed on first use, then reused.

    A pure memo of a function of the class: reading annotations on every record would cost
    more than verifying its signature.
    """
    hints = get_type_hints(cls)
    return tuple((f.name, _decoder_for(hints[f.name])) for f in dataclasses.fields(cls))


def _decode_fields(cls: type[T], value: object, where: str, spelling: _BytesSpelling) -> T:
    if not isinstance(value, Mapping):
        raise SchemaError(f"{where} must be a map, got {type(value).__name__}")
    plan = _field_plan(cls)  # type: ignore[arg-type] # mypy does not see that classes are hashable
    if len(value) != len(plan) or any(name not in value for name, _ in plan):
        names = {name for name, _ in plan}
        unknown = sorted(str(key) for key in value if key not in names)
        if unknown:
            raise SchemaError(f"{where} has unknown fields: {', '.join(unknown)}")
        missing = [name for name, _ in plan if name not in value]
        raise SchemaError(f"{where} lacks fields: {', '.join(missing)}")
    prefix = "" if where == "record" else f"{where}."
    return cls(**{name: decode(value[name], prefix + name, spelling) for name, decode in plan})


def record_to_map(record: Record) -> dict[str, object]:
    """The record as the map that becomes its CBOR payload."""
    return _encode_fields(record, _CBOR)


def record_from_map(record_type: type[Record], value: object) -> Record:
    """Read a decoded CBOR payload as a record of the given type, strictly."""
    return _decode_fields(record_type, value, "record", _CBOR)


def record_to_json(record: Record) -> dict[str, object]:
    """The record as a JSON-ready map (byte strings in hex)."""
    return _encode_fields(record, _JSON)


def record_from_json(record_type: type[Record] | str, value: object) -> Record:
    """Read a JSON map (as :func:`record_to_json` makes it) as a record, strictly."""
    if isinstance(record_type, str):
        if record_type not in RECORD_TYPES:
            raise SchemaError(f"unknown record type {record_type!r}; known: {', '.join(RECORD_TYPES)}")
        record_type = RECORD_TYPES[record_type]
    return _decode_fields(record_type, value, "record", _JSON)
