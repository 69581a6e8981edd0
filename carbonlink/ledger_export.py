"""The ledger export file (JSONL): one JSON object per line, its kind in ``"type"``.

This module is the line model only: values to lines and lines to values, with no I/O. Lines come
in this order (``docs/ledger.md`` describes each field)::

    header   format, version, exported_at, the gateway's own key
    device   per device: vehicle class, VIN hash, status and every public key it has had
    record   per stored record (by device, then sequence): its hash, refusal and exact signed bytes
    entry    per ledger entry, by seq
    batch    per sealed batch, by number
    end      the number of lines before it, so that a truncated file is detected

Hashes, keys and kids are lowercase hex; signed bytes are standard base64; times are
``carbonlink.wire.format_time``. Parsing is strict (no unknown or missing field, no duplicate key,
no NaN) and raises :class:`ExportFormatError` naming the line.
"""

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from carbonlink.errors import CarbonlinkError
from carbonlink.ledger import LedgerBatch, LedgerEntry, LedgerError, json_fields, json_hash, json_time
from carbonlink.reasons import RejectionReason
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import format_time

EXPORT_FORMAT = "carbonlink-ledger"
EXPORT_VERSION = 1

_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
_STATUS = re.compile(r"[a-z][a-z_]{0,31}")
_MAX_SEQUENCE = 2**63 - 1
_VEHICLE_CLASSES = frozenset(member.value for member in VehicleClass)
_REASONS = frozenset(reason.value for reason in RejectionReason)


class ExportFormatError(CarbonlinkError, ValueError):
    """A line of an export file that is not one of the export's line kinds, well formed."""

    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no
        self.problem = problem


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportHeader:
    """The first line: what the file is, when it was written, and the gateway's own public key."""

    FORMAT: ClassVar[str] = EXPORT_FORMAT
    VERSION: ClassVar[int] = EXPORT_VERSION

    exported_at: datetime
    gateway_kid: bytes | None
    gateway_public_key: bytes | None
    """The key the gateway signs webhook payloads with; ``None`` when it has none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportKey:
    """One public key a device has had."""

    kid: bytes
    public_key: bytes
    added_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportDevice:
    """A registered device with every key it has had."""

    device_id: str
    vehicle_class: str
    """A :class:`~carbonlink.vehicles.VehicleClass` value."""
    vin_hash: bytes | None
    status: str
    """The gateway's device status, e.g. ``active`` or ``revoked``."""
    keys: tuple[ExportKey, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportRecord:
    """A stored chain link: accepted (``refused_for`` None) or refused for its content."""

    record_hash: bytes
    device_id: str
    sequence: int
    refused_for: RejectionReason | None
    signed: bytes
    """The exact bytes the device signed (a COSE_Sign1 message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportEnd:
    """The last line: how many lines come before it."""

    lines: int


ExportLine = ExportHeader | ExportDevice | ExportRecord | LedgerEntry | LedgerBatch | ExportEnd

LINE_TYPES: dict[type, str] = {
    ExportHeader: "header",
    ExportDevice: "device",
    ExportRecord: "record",
    LedgerEntry: "entry",
    LedgerBatch: "batch",
    ExportEnd: "end",
}
"""The ``"type"`` of each kind of line, in the order the lines come in a file."""


def export_line(value: ExportLine) -> str:
    """One line of the export (without its newline): compact JSON, ``"type"`` first."""
    kind = LINE_TYPES.get(type(value))
    if kind is None:
        raise TypeError(f"no export line for a {type(value).__name__}")  # a programming error, not input
    return json.dumps({"type": kind, **_line_fields(value)}, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _line_fields(value: ExportLine) -> dict[str, object]:
    match value:
        case ExportHeader():
            return {
                "format": value.FORMAT,
                "version": value.VERSION,
                "exported_at": _time(value.exported_at),
                "gateway_kid": _hex(value.gateway_kid),
                "gateway_public_key": _hex(value.gateway_public_key),
            }
        case ExportDevice():
            return {
                "device_id": value.device_id,
                "vehicle_class": value.vehicle_class,
                "vin_hash": _hex(value.vin_hash),
                "status": value.status,
                "keys": [
                    {
                        "kid": key.kid.hex(),
                        "public_key": key.public_key.hex(),
                        "added_at": _time(key.added_at),
                        "retired_at": _time(key.retired_at),
                        "revoked_at": _time(key.revoked_at),
                    }
                    for key in value.keys
                ],
            }
        case ExportRecord():
            return {
                "record_hash": value.record_hash.hex(),
                "device_id": value.device_id,
                "sequence": value.sequence,
                "refused_for": None if value.refused_for is None else value.refused_for.value,
                "signed": base64.b64encode(value.signed).decode("ascii"),
            }
        case ExportEnd():
            return {"lines": value.lines}
        case LedgerEntry() | LedgerBatch():
            return value.to_json()


def parse_export_line(text: str, line_no: int) -> ExportLine:
    """Read one line of an export (a trailing newline is allowed); :class:`ExportFormatError` says why not."""
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise ExportFormatError(line_no, f"not a JSON object ({err})") from err
    if not isinstance(value, dict):
        raise ExportFormatError(line_no, "not a JSON object")
    kind = value.pop("type", None)
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        known = ", ".join(_READERS)
        raise ExportFormatError(line_no, f"line type {kind!r} is not one of: {known}")
    try:
        return reader(value)
    except LedgerError as err:
        raise ExportFormatError(line_no, f"{kind} line: {err}") from err


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Two values for one key would let two readers of the same file see different ledgers.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _read_header(value: Mapping[str, object]) -> ExportHeader:
    names = ("format", "version", "exported_at", "gateway_kid", "gateway_public_key")
    fields = json_fields(value, "header", names)
    if fields["format"] != EXPORT_FORMAT:
        raise LedgerError(f"format {fields['format']!r} is not {EXPORT_FORMAT!r}")
    if type(fields["version"]) is not int or fields["version"] != EXPORT_VERSION:
        raise LedgerError(f"version {fields['version']!r} is not supported (this code reads version {EXPORT_VERSION})")
    kid, public_key = fields["gateway_kid"], fields["gateway_public_key"]
    if (kid is None) != (public_key is None):
        raise LedgerError("gateway_kid and gateway_public_key are both given or both null")
    return ExportHeader(
        exported_at=json_time(fields["exported_at"], "exported_at"),
        gateway_kid=None if kid is None else json_hash(kid, "gateway_kid"),
        gateway_public_key=None if public_key is None else _public_key(public_key, "gateway_public_key"),
    )


def _read_device(value: Mapping[str, object]) -> ExportDevice:
    fields = json_fields(value, "device", ("device_id", "vehicle_class", "vin_hash", "status", "keys"))
    device_id = _matching(_DEVICE_ID, fields["device_id"], "device_id")
    vehicle_class = fields["vehicle_class"]
    if not isinstance(vehicle_class, str) or vehicle_class not in _VEHICLE_CLASSES:
        raise LedgerError(f"vehicle_class {vehicle_class!r} is not one of: {', '.join(VehicleClass)}")
    keys = fields["keys"]
    if not isinstance(keys, list) or not keys:
        raise LedgerError("keys must be a non-empty list")
    vin_hash = fields["vin_hash"]
    return ExportDevice(
        device_id=device_id,
        vehicle_class=str(vehicle_class),
        vin_hash=None if vin_hash is None else json_hash(vin_hash, "vin_hash"),
        status=_matching(_STATUS, fields["status"], "status"),
        keys=tuple(_read_key(key, f"keys[{i}]") for i, key in enumerate(keys)),
    )


def _read_key(value: object, where: str) -> ExportKey:
    fields = json_fields(value, where, ("kid", "public_key", "added_at", "retired_at", "revoked_at"))
    retired_at, revoked_at = fields["retired_at"], fields["revoked_at"]
    return ExportKey(
        kid=json_hash(fields["kid"], f"{where}.kid"),
        public_key=_public_key(fields["public_key"], f"{where}.public_key"),
        added_at=json_time(fields["added_at"], f"{where}.added_at"),
        retired_at=None if retired_at is None else json_time(retired_at, f"{where}.retired_at"),
        revoked_at=None if revoked_at is None else json_time(revoked_at, f"{where}.revoked_at"),
    )


def _read_record(value: Mapping[str, object]) -> ExportRecord:
    fields = json_fields(value, "record", ("record_hash", "device_id", "sequence", "refused_for", "signed"))
    sequence = fields["sequence"]
    if type(sequence) is not int or not 1 <= sequence <= _MAX_SEQUENCE:
        raise LedgerError(f"sequence must be an integer from 1 to {_MAX_SEQUENCE}, got {sequence!r}")
    refused_for = fields["refused_for"]
    if refused_for is not None and (not isinstance(refused_for, str) or refused_for not in _REASONS):
        raise LedgerError(f"refused_for {refused_for!r} is not a rejection reason")
    signed = fields["signed"]
    if not isinstance(signed, str):
        raise LedgerError("signed must be base64 text")
    try:
        raw = base64.b64decode(signed, validate=True)
    except ValueError as err:  # binascii.Error, or non-ASCII text
        raise LedgerError(f"signed is not base64 ({err})") from err
    return ExportRecord(
        record_hash=json_hash(fields["record_hash"], "record_hash"),
        device_id=_matching(_DEVICE_ID, fields["device_id"], "device_id"),
        sequence=sequence,
        refused_for=None if refused_for is None else RejectionReason(str(refused_for)),
        signed=raw,
    )


def _read_end(value: Mapping[str, object]) -> ExportEnd:
    lines = json_fields(value, "end", ("lines",))["lines"]
    if type(lines) is not int or lines < 0:
        raise LedgerError(f"lines must be a count, got {lines!r}")
    return ExportEnd(lines=lines)


_READERS: dict[str, Callable[[Mapping[str, object]], ExportLine]] = {
    "header": _read_header,
    "device": _read_device,
    "record": _read_record,
    "entry": LedgerEntry.from_json,
    "batch": LedgerBatch.from_json,
    "end": _read_end,
}


def _public_key(value: object, where: str) -> bytes:
    # An Ed25519 public key is as long as a SHA-256 hash, so the hash spelling rule reads it.
    return json_hash(value, where)


def _matching(pattern: re.Pattern[str], value: object, where: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise LedgerError(f"{where} {value!r} is not of the form {pattern.pattern}")
    return value


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)
