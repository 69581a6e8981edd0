"""The bodies of ledger entries: a credit, a binding of a vehicle to an owner, an issue of a credit.

Bodies are built and read only here, so the gateway that writes the ledger and the auditor who
re-checks it agree on every field. Each class turns into a plain JSON object with ``to_body()`` and
back with ``from_body()``, which is strict (every field present, no unknown one, each of its type)
and raises :class:`~carbonlink.ledger.LedgerError` naming the field.

Credits are keyed on the *vehicle*, not the device: ``vin:<hex VIN hash>`` when the VIN is known,
else ``device:<device id>`` (see :func:`vehicle_key_for`), so one vehicle's odometer interval is
credited once even after a key rotation or a device swap.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Self, TypeVar

from carbonlink.errors import CarbonlinkError
from carbonlink.ledger import LedgerError, json_fields, json_time
from carbonlink.methodology import ChargeEnergy, CreditParameters, Reduction, TripEnergy
from carbonlink.records import TripRecord
from carbonlink.strict_json import decimal_float

T = TypeVar("T")

_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
_OWNER_ID = _DEVICE_ID
"""Owner ids follow the device id rule (the gateway's API enforces the same pattern)."""
_VEHICLE_KEY = re.compile(r"vin:[0-9a-f]{64}|device:[a-z0-9][a-z0-9_-]{2,63}")
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")

_CREDIT_FIELDS = (
    "credit_id",
    "record_hash",
    "device_id",
    "vehicle_key",
    "odometer_start_m",
    "odometer_end_m",
    "start_at",
    "end_at",
    "period",
    "parameters",
    "charges",
    "reduction",
)
_BINDING_FIELDS = ("vehicle_key", "owner_id", "consented_at", "consent_method", "consent_reference")
_ISSUE_FIELDS = ("credit_id", "owner_id", "vehicle_key", "reduction_co2e_g", "binding_seq")


def vehicle_key_for(vin_hash: bytes | None, device_id: str) -> str:
    """The key a vehicle's credits are filed under: its VIN hash where known, else its device."""
    return f"device:{device_id}" if vin_hash is None else f"vin:{vin_hash.hex()}"


def check_vehicle_key(text: str) -> str:
    """``text`` as a vehicle key (``vin:`` hex in lower case); :class:`LedgerError` when it is none."""
    key = "vin:" + text[4:].lower() if text[:4].lower() == "vin:" else text
    if _VEHICLE_KEY.fullmatch(key) is None:
        raise LedgerError(
            f"vehicle key {text!r} must be 'vin:' and 64 hex digits (the VIN's SHA-256) or 'device:<device id>'"
        )
    return key


def creditable_trip(trip: TripRecord) -> TripEnergy:
    """What a trip is credited for: its energies, and its distance but never more than its odometer moved.

    The ledger keys a credit on the odometer interval, so the distance it credits must fit in that
    interval: a trip whose ``distance_m`` exceeds it (plausibility allows some disagreement between a
    speed integral and the odometer) is credited for the interval only, and a frozen odometer
    credits no distance. Without odometer readings the distance is taken as recorded (the gateway
    does not credit such a trip; the function stays total for the audit).
    """
    distance_m = trip.distance_m
    if trip.odometer_start_m is not None and trip.odometer_end_m is not None:
        distance_m = max(0.0, min(distance_m, trip.odometer_end_m - trip.odometer_start_m))
    return TripEnergy(distance_m=distance_m, energy_out_wh=trip.energy_out_wh, energy_regen_wh=trip.energy_regen_wh)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditEntry:
    """The body of a credit entry: one trip's reduction and everything needed to recompute it."""

    credit_id: str
    """Equal to ``record_hash``: a trip is credited at most once."""
    record_hash: str
    """The credited trip record's hash (SHA-256 of its signed bytes), lowercase hex."""
    device_id: str
    vehicle_key: str
    odometer_start_m: float
    odometer_end_m: float
    start_at: str
    """The trip's start, in the wire spelling (``carbonlink.wire.format_time``)."""
    end_at: str
    period: str
    """The crediting period, ``YYYY-MM`` of the trip's end (UTC)."""
    parameters: CreditParameters
    charges: tuple[ChargeEnergy, ...]
    reduction: Reduction

    def __post_init__(self) -> None:
        _check_hash(self.record_hash, "credit.record_hash")
        if self.credit_id != self.record_hash:
            raise LedgerError(f"credit.credit_id {self.credit_id!r} must equal record_hash {self.record_hash!r}")
        _check_pattern(_DEVICE_ID, self.device_id, "credit.device_id")
        _check_pattern(_VEHICLE_KEY, self.vehicle_key, "credit.vehicle_key")
        _check_amount(self.odometer_start_m, "credit.odometer_start_m")
        _check_amount(self.odometer_end_m, "credit.odometer_end_m")
        if self.odometer_end_m < self.odometer_start_m:
            raise LedgerError(
                f"credit.odometer_end_m {self.odometer_end_m} is below odometer_start_m {self.odometer_start_m}"
            )
        if json_time(self.end_at, "credit.end_at") < json_time(self.start_at, "credit.start_at"):
            raise LedgerError(f"credit.end_at {self.end_at} is before start_at {self.start_at}")
        _check_pattern(_PERIOD, self.period, "credit.period")

    def to_body(self) -> dict[str, object]:
        """The entry body: a plain JSON object."""
        return {
            "credit_id": self.credit_id,
            "record_hash": self.record_hash,
            "device_id": self.device_id,
            "vehicle_key": self.vehicle_key,
            "odometer_start_m": self.odometer_start_m,
            "odometer_end_m": self.odometer_end_m,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "period": self.period,
            "parameters": self.parameters.to_json(),
            "charges": [charge.to_json() for charge in self.charges],
            "reduction": self.reduction.to_json(),
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Self:
        """Read a credit body strictly; :class:`LedgerError` names the field."""
        fields = json_fields(body, "credit", _CREDIT_FIELDS)
        charges = fields["charges"]
        if not isinstance(charges, list):
            raise LedgerError("credit.charges must be a list")
        return cls(
            credit_id=_text(fields["credit_id"], "credit.credit_id"),
            record_hash=_text(fields["record_hash"], "credit.record_hash"),
            device_id=_text(fields["device_id"], "credit.device_id"),
            vehicle_key=_text(fields["vehicle_key"], "credit.vehicle_key"),
            odometer_start_m=_float(fields["odometer_start_m"], "credit.odometer_start_m"),
            odometer_end_m=_float(fields["odometer_end_m"], "credit.odometer_end_m"),
            start_at=_text(fields["start_at"], "credit.start_at"),
            end_at=_text(fields["end_at"], "credit.end_at"),
            period=_text(fields["period"], "credit.period"),
            parameters=_translated(CreditParameters.from_json, fields["parameters"], "credit.parameters"),
            charges=tuple(
                _translated(ChargeEnergy.from_json, charge, f"credit.charges[{i}]") for i, charge in enumerate(charges)
            ),
            reduction=_translated(Reduction.from_json, fields["reduction"], "credit.reduction"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingEntry:
    """The body of a binding entry: a vehicle bound to an owner account with the owner's consent."""

    vehicle_key: str
    owner_id: str
    consented_at: str
    """When the owner consented, in the wire spelling."""
    consent_method: str
    """How consent was given, e.g. ``app``, ``paper``, ``web``."""
    consent_reference: str = ""
    """Free text pointing at the consent (a form number, a document URL); may be empty."""

    def __post_init__(self) -> None:
        _check_pattern(_VEHICLE_KEY, self.vehicle_key, "binding.vehicle_key")
        _check_pattern(_OWNER_ID, self.owner_id, "binding.owner_id")
        json_time(self.consented_at, "binding.consented_at")
        if not self.consent_method or not self.consent_method.isprintable():
            raise LedgerError(f"binding.consent_method {self.consent_method!r} must be printable text, not empty")

    def to_body(self) -> dict[str, object]:
        """The entry body: a plain JSON object."""
        return {
            "vehicle_key": self.vehicle_key,
            "owner_id": self.owner_id,
            "consented_at": self.consented_at,
            "consent_method": self.consent_method,
            "consent_reference": self.consent_reference,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Self:
        """Read a binding body strictly; :class:`LedgerError` names the field."""
        fields = json_fields(body, "binding", _BINDING_FIELDS)
        return cls(**{name: _text(fields[name], f"binding.{name}") for name in _BINDING_FIELDS})


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueEntry:
    """The body of an issue entry: a credit issued to the owner its vehicle is bound to."""

    credit_id: str
    owner_id: str
    vehicle_key: str
    reduction_co2e_g: float
    """The credit's reduction, repeated so an issue can be read alone."""
    binding_seq: int
    """The seq of the binding entry the credit was issued under."""

    def __post_init__(self) -> None:
        _check_hash(self.credit_id, "issue.credit_id")
        _check_pattern(_OWNER_ID, self.owner_id, "issue.owner_id")
        _check_pattern(_VEHICLE_KEY, self.vehicle_key, "issue.vehicle_key")
        _check_amount(self.reduction_co2e_g, "issue.reduction_co2e_g")
        if type(self.binding_seq) is not int or self.binding_seq < 1:
            raise LedgerError(f"issue.binding_seq must be a positive integer, got {self.binding_seq!r}")

    def to_body(self) -> dict[str, object]:
        """The entry body: a plain JSON object."""
        return {
            "credit_id": self.credit_id,
            "owner_id": self.owner_id,
            "vehicle_key": self.vehicle_key,
            "reduction_co2e_g": self.reduction_co2e_g,
            "binding_seq": self.binding_seq,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Self:
        """Read an issue body strictly; :class:`LedgerError` names the field."""
        fields = json_fields(body, "issue", _ISSUE_FIELDS)
        binding_seq = fields["binding_seq"]
        if type(binding_seq) is not int:
            raise LedgerError(f"issue.binding_seq must be a positive integer, got {binding_seq!r}")
        return cls(
            credit_id=_text(fields["credit_id"], "issue.credit_id"),
            owner_id=_text(fields["owner_id"], "issue.owner_id"),
            vehicle_key=_text(fields["vehicle_key"], "issue.vehicle_key"),
            reduction_co2e_g=_float(fields["reduction_co2e_g"], "issue.reduction_co2e_g"),
            binding_seq=binding_seq,
        )


def _translated(read: Callable[[object], T], value: object, where: str) -> T:
    # The methodology's own errors name the field inside its object; prefix where that object sits.
    try:
        return read(value)
    except (CarbonlinkError, ValueError, TypeError, KeyError) as err:
        raise LedgerError(f"{where}: {err}") from err


def _text(value: object, where: str) -> str:
    if type(value) is not str:
        raise LedgerError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _float(value: object, where: str) -> float:
    # A float, not an int: the body's canonical JSON, and so its hash, must have one spelling.
    return decimal_float(value, where, LedgerError)


def _check_amount(value: float, where: str) -> None:
    if not math.isfinite(value) or value < 0.0:
        raise LedgerError(f"{where} must be a finite number ≥ 0, got {value!r}")


def _check_hash(value: str, where: str) -> None:
    _check_pattern(_HASH_HEX, value, where)


def _check_pattern(pattern: re.Pattern[str], value: str, where: str) -> None:
    if pattern.fullmatch(value) is None:
        raise LedgerError(f"{where} {value!r} is not of the form {pattern.pattern}")
