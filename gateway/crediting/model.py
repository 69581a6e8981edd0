"""Crediting's values: what the worker decides, what the ledger holds, what operators read back.

The ledger's entries are the authoritative form (``carbonlink.ledger``, ``carbonlink.credit_entries``);
the rows these values come from are indexes over them, kept in the same transactions.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from carbonlink.ledger import LedgerEntry
from carbonlink.records import Record
from carbonlink.vehicles import VehicleClass


class Outcome(StrEnum):
    """What crediting made of one accepted record: every record gets exactly one."""

    CREDITED = "credited"
    """A trip: a credit (possibly of 0 g) now holds its odometer interval."""
    CHARGE = "charge"
    """A charge session: an input to the credits of its vehicle's later trips, never a credit itself."""
    OVERLAP = "overlap"
    """A trip whose odometer interval overlaps a credit of the same vehicle: not credited again."""
    NO_ODOMETER = "no_odometer"
    """A trip without odometer readings: without an interval no double count can be ruled out."""
    NOT_CREDITABLE = "not_creditable"
    """A trip the methodology cannot credit (no parameters for its class, region or year)."""


class CreditState(StrEnum):
    """Whether a credit has gone to an owner."""

    ACCRUED = "accrued"
    """Computed and in the ledger; the vehicle is not bound to an owner (with consent) yet."""
    ISSUED = "issued"


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingRecord:
    """An accepted record waiting for its crediting decision, with what the decision needs of its device."""

    queue_id: int
    record_hash: bytes
    device_id: str
    record: Record
    device_vin_hash: bytes | None
    vehicle_class: VehicleClass


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """An account credits are issued to."""

    owner_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A vehicle's current owner, with the consent it was bound under."""

    vehicle_key: str
    owner_id: str
    consented_at: datetime
    consent_method: str
    consent_reference: str
    binding_seq: int
    """The ledger entry that recorded the binding."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """One credited trip, as operators read it."""

    credit_id: str
    record_hash: bytes
    device_id: str
    vehicle_key: str
    odometer_start_m: float
    odometer_end_m: float
    period: str
    end_at: datetime
    reduction_co2e_g: float
    entry: LedgerEntry
    owner_id: str | None
    issue_seq: int | None
    issued_at: datetime | None

    @property
    def state(self) -> CreditState:
        return CreditState.ACCRUED if self.issue_seq is None else CreditState.ISSUED


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditQuery:
    """Which credits to list: every condition given must hold; newest first."""

    device_id: str | None = None
    owner_id: str | None = None
    vehicle_key: str | None = None
    period: str | None = None
    state: CreditState | None = None
    limit: int = 100
    before_seq: int | None = None
    """Keyset pagination: only credits whose ledger entry is older than this one."""


class TotalsBy(StrEnum):
    """How credit totals are grouped."""

    DEVICE = "device"
    OWNER = "owner"
    PERIOD = "period"
    VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditTotal:
    """The credits of one device, owner, period or vehicle, summed."""

    key: str | None
    """None: credits without an owner (grouped by owner)."""
    credits: int
    issued: int
    reduction_co2e_g: float
    issued_co2e_g: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditToIssue:
    """What issuing a credit needs of it: the forwarded payload's fields."""

    credit_id: str
    record_hash: bytes
    device_id: str
    vehicle_key: str
    period: str
    reduction_co2e_g: float
    entry_seq: int


class DeliveryState(StrEnum):
    """Where a delivery of an issued credit to one sink stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Gave up after the retry limit, or the sink refused it for good: an operator looks and retries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDelivery:
    """One credit on its way to one sink, as operators read it."""

    delivery_id: int
    sink: str
    idempotency_key: str
    credit_id: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditingReport:
    """What one crediting transaction did."""

    decided: dict[Outcome, int]
    entries: int
    issued: int
