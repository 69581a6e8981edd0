"""The two signed record types, as frozen values: measurements only, never a credit.

A vehicle signs what it measured over one trip (driving) or one charge session; the gateway
computes credits from it later with a versioned methodology. Every number carries its unit in
its name. Optional readings are ``None`` when the vehicle does not have them — never zero.

Construction validates everything the schema can say about a single record (types, ranges,
formats) and raises :class:`~carbonlink.errors.SchemaError`; whether a record is *plausible*
next to its predecessors is the gateway's business.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from carbonlink.errors import SchemaError

RECORD_HASH_BYTES = 32
"""Length of SHA-256 digests carried by records (previous-record hash, DBC hash, VIN hash)."""

MAX_SEQUENCE = 2**63 - 1
"""Largest sequence number or count: fits a signed 64-bit database column."""

MAX_QUALITY_FLAGS = 32

_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
RECORD_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_LABEL = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?")
_FLAG = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Source(StrEnum):
    """How a figure in a record was obtained."""

    ODOMETER = "odometer"
    """Difference of two absolute odometer readings."""
    SPEED_INTEGRAL = "speed_integral"
    """Integral of vehicle speed over time (the vehicle exposes no odometer)."""
    VOLTAGE_CURRENT_INTEGRAL = "voltage_current_integral"
    """Trapezoid integral of pack voltage × pack current over time."""
    ENERGY_COUNTER = "energy_counter"
    """Difference of two readings of the battery's cumulative energy counter."""
    BMS = "bms"
    """Reported by the battery management system as is."""
    CHARGER = "charger"
    """Reported by the charger (grid side of its losses)."""
    UNAVAILABLE = "unavailable"
    """The vehicle does not expose it; the figure is ``None``."""


class ChargerKind(StrEnum):
    """The kind of charging a session used."""

    AC = "ac"
    DC = "dc"
    UNKNOWN = "unknown"


def _check(condition: bool, message: str) -> None:  # noqa: FBT001 - reads as 'check this, or say that'
    # An explicit check, not ``assert``: validation must survive ``python -O``.
    if not condition:
        raise SchemaError(message)


def _check_matches(pattern: re.Pattern[str], value: str, name: str) -> None:
    _check(pattern.fullmatch(value) is not None, f"{name} {value!r} is not of the form {pattern.pattern}")


def _check_count(value: int, name: str) -> None:
    _check(0 <= value <= MAX_SEQUENCE, f"{name} must be between 0 and {MAX_SEQUENCE}, got {value}")


def _check_amount(value: float | None, name: str, upper: float = math.inf) -> None:
    if value is not None:
        _check(math.isfinite(value), f"{name} must be a finite number, got {value}")
        _check(0.0 <= value <= upper, f"{name} must be between 0 and {upper}, got {value}")


def _check_digest(value: bytes | None, name: str) -> None:
    if value is not None:
        _check(len(value) == RECORD_HASH_BYTES, f"{name} must be {RECORD_HASH_BYTES} bytes, got {len(value)}")


def _check_utc(value: datetime, name: str) -> None:
    _check(value.utcoffset() == timedelta(0), f"{name} must be an aware UTC datetime, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DataQuality:
    """How complete and clean the data behind a record was."""

    samples: int
    """Decoded samples that went into the figures."""
    frames_dropped: int
    """Frames known to be missing (rolling counters, cycle times)."""
    gaps: int
    """Gaps longer than the bridging limit: not integrated over, only counted."""
    gap_duration_s: float
    out_of_range: int
    """Values outside their signal's range, discarded."""
    unavailable: int
    """"Signal not available" values, treated as unknown, not zero."""
    coverage_pct: float
    """Share of the record's duration covered by valid energy samples."""
    flags: tuple[str, ...] = ()
    """Sorted, unique names of failed cross-checks (e.g. energy vs SOC change)."""

    def __post_init__(self) -> None:
        for name in ("samples", "frames_dropped", "gaps", "out_of_range", "unavailable"):
            _check_count(getattr(self, name), f"quality.{name}")
        _check_amount(self.gap_duration_s, "quality.gap_duration_s")
        _check_amount(self.coverage_pct, "quality.coverage_pct", upper=100.0)
        _check(len(self.flags) <= MAX_QUALITY_FLAGS, f"quality.flags holds more than {MAX_QUALITY_FLAGS} flags")
        for flag in self.flags:
            _check_matches(_FLAG, flag, "quality flag")
        _check(list(self.flags) == sorted(set(self.flags)), "quality.flags must be sorted and unique")


@dataclass(frozen=True, slots=True, kw_only=True)
class TripMethods:
    """How each figure of a trip record was obtained."""

    distance: Source
    energy: Source
    soc: Source


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeMethods:
    """How each figure of a charge record was obtained."""

    energy: Source
    grid_energy: Source
    soc: Source


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBase:
    """What every record carries: identity, chain, time, absolute readings, provenance."""

    RECORD_TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    device_id: str
    record_id: str
    sequence: int
    """Per device, starts at 1 and rises by exactly 1 per record, across reboots."""
    previous_record_hash: bytes
    """SHA-256 of the previous record's signed bytes; 32 zero bytes for sequence 1."""
    start_at: datetime
    end_at: datetime
    clock_synced: bool
    """Whether the wall clock was synchronised (GNSS, NTP) when the times were taken."""
    odometer_start_m: float | None
    odometer_end_m: float | None
    soc_start_pct: float | None
    soc_end_pct: float | None
    counter_discharged_start_wh: float | None
    """The battery's cumulative discharged-energy counter at the start, where it has one."""
    counter_discharged_end_wh: float | None
    counter_charged_start_wh: float | None
    counter_charged_end_wh: float | None
    quality: DataQuality
    agent_version: str
    dbc_hash: bytes
    """SHA-256 of the DBC file(s) the figures were decoded with."""
    profile_id: str
    vin_hash: bytes | None = None
    """SHA-256 of the vehicle's VIN, where the agent can read it: keys the credit ledger."""

    def __post_init__(self) -> None:
        _check_matches(_DEVICE_ID, self.device_id, "device_id")
        _check_matches(RECORD_ID_PATTERN, self.record_id, "record_id")
        _check(
            1 <= self.sequence <= MAX_SEQUENCE, f"sequence must be between 1 and {MAX_SEQUENCE}, got {self.sequence}"
        )
        _check_digest(self.previous_record_hash, "previous_record_hash")
        _check_utc(self.start_at, "start_at")
        _check_utc(self.end_at, "end_at")
        _check(self.end_at >= self.start_at, f"end_at {self.end_at} is before start_at {self.start_at}")
        for name in (
            "odometer_start_m",
            "odometer_end_m",
            "counter_discharged_start_wh",
            "counter_discharged_end_wh",
            "counter_charged_start_wh",
            "counter_charged_end_wh",
        ):
            _check_amount(getattr(self, name), name)
        _check_amount(self.soc_start_pct, "soc_start_pct", upper=100.0)
        _check_amount(self.soc_end_pct, "soc_end_pct", upper=100.0)
        _check_matches(_LABEL, self.agent_version, "agent_version")
        _check_matches(_LABEL, self.profile_id, "profile_id")
        _check_digest(self.dbc_hash, "dbc_hash")
        _check_digest(self.vin_hash, "vin_hash")


@dataclass(frozen=True, slots=True, kw_only=True)
class TripRecord(RecordBase):
    """One trip: from ready-on to ready-off, with short stops inside it."""

    RECORD_TYPE: ClassVar[str] = "trip"

    distance_m: float
    energy_out_wh: float
    """Battery energy delivered while discharging (V×I > 0)."""
    energy_regen_wh: float
    """Battery energy recovered by regenerative braking."""
    methods: TripMethods = field(
        default=TripMethods(distance=Source.ODOMETER, energy=Source.VOLTAGE_CURRENT_INTEGRAL, soc=Source.BMS)
    )

    def __post_init__(self) -> None:
        RecordBase.__post_init__(self)
        for name in ("distance_m", "energy_out_wh", "energy_regen_wh"):
            _check_amount(getattr(self, name), name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRecord(RecordBase):
    """One charge session: from plug-in (charging state on) to its end."""

    RECORD_TYPE: ClassVar[str] = "charge"

    charger: ChargerKind
    energy_in_wh: float
    """Battery energy received (battery side of the charger's losses)."""
    grid_energy_wh: float | None
    """Energy drawn from the grid as the charger reports it, where it does."""
    methods: ChargeMethods = field(
        default=ChargeMethods(energy=Source.VOLTAGE_CURRENT_INTEGRAL, grid_energy=Source.UNAVAILABLE, soc=Source.BMS)
    )

    def __post_init__(self) -> None:
        RecordBase.__post_init__(self)
        _check_amount(self.energy_in_wh, "energy_in_wh")
        _check_amount(self.grid_energy_wh, "grid_energy_wh")


Record = TripRecord | ChargeRecord

RECORD_TYPES: dict[str, type[Record]] = {cls.RECORD_TYPE: cls for cls in (TripRecord, ChargeRecord)}
"""Record classes by the type name their envelope carries."""
