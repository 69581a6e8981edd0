"""The crediting API's JSON bodies: credits, receipts, owners, bindings, the ledger and the forwarding outbox.

The conventions of :mod:`gateway.api.schemas` hold: hashes and Merkle roots are lowercase hex,
times are RFC 3339 UTC with microseconds, request bodies refuse unknown fields. A ledger entry is
shown exactly as it is chained (``body`` is the object whose canonical JSON was hashed), so anyone
can recompute its ``entry_hash`` from the answer alone. Entries, batches and receipts have the JSON
form of :mod:`carbonlink.ledger` (``to_json``): ``Receipt.from_json(answer).check()`` verifies a
receipt offline, with nothing of the gateway.
"""

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carbonlink.ledger import EntryKind, LedgerBatch, LedgerEntry, Receipt
from gateway.api.schemas import UtcTime
from gateway.crediting.model import (
    Binding,
    Credit,
    CreditState,
    CreditTotal,
    DeliveryState,
    Outcome,
    Owner,
    StoredDelivery,
    TotalsBy,
)

MAX_TEXT = 200
"""Characters of a name, consent method or exclusion reason."""
MAX_REFERENCE = 1000
"""Characters of a consent reference (a form number, a URL of a signed document)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the ledger --------------------------------------------------------------------------------------
class EntryOut(BaseModel):
    """One ledger entry as chained: ``entry_hash`` = SHA-256(``previous_hash`` ‖ canonical JSON of the rest)."""

    seq: int
    kind: EntryKind
    recorded_at: UtcTime
    body: dict[str, Any]
    previous_hash: str
    entry_hash: str

    @classmethod
    def of(cls, entry: LedgerEntry) -> "EntryOut":
        return cls(
            seq=entry.seq,
            kind=entry.kind,
            recorded_at=entry.recorded_at,
            body=dict(entry.body),
            previous_hash=entry.previous_hash.hex(),
            entry_hash=entry.entry_hash.hex(),
        )


class BatchOut(BaseModel):
    """A sealed batch: the Merkle root (RFC 9162) over its entries' hashes, chained to the previous root."""

    batch_no: int
    first_seq: int
    last_seq: int
    merkle_root: str
    previous_root: str
    sealed_at: UtcTime

    @classmethod
    def of(cls, batch: LedgerBatch) -> "BatchOut":
        return cls(
            batch_no=batch.batch_no,
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            merkle_root=batch.merkle_root.hex(),
            previous_root=batch.previous_root.hex(),
            sealed_at=batch.sealed_at,
        )


class EntryPage(BaseModel):
    """Ledger entries in ledger order (oldest first)."""

    entries: list[EntryOut]
    next: int | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class BatchPage(BaseModel):
    """Sealed batches in order (oldest first)."""

    batches: list[BatchOut]
    next: int | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class ReceiptOut(BaseModel):
    """What proves a credit is in the ledger: its entry, its batch and the Merkle path to the batch's root."""

    entry: EntryOut
    batch: BatchOut
    proof: list[str] = Field(description="RFC 9162 inclusion proof: sibling hashes from the leaf up, hex.")

    @classmethod
    def of(cls, receipt: Receipt) -> "ReceiptOut":
        return cls(
            entry=EntryOut.of(receipt.entry),
            batch=BatchOut.of(receipt.batch),
            proof=[step.hex() for step in receipt.proof],
        )


# --- credits -----------------------------------------------------------------------------------------
class CreditOut(BaseModel):
    """A credited trip as listed: where it came from, what it is worth, and whether it went to an owner."""

    credit_id: str = Field(description="The credited trip's record hash.")
    record_hash: str
    device_id: str
    vehicle_key: str = Field(description="vin:<VIN hash> or, for a vehicle without VIN, device:<device id>.")
    odometer_start_m: float
    odometer_end_m: float
    period: str = Field(description="The crediting period: the UTC month the trip ended in, YYYY-MM.")
    end_at: UtcTime
    reduction_co2e_g: float
    state: CreditState
    owner_id: str | None
    entry_seq: int = Field(description="The credit's ledger entry.")
    issue_seq: int | None = Field(description="The issue entry; null while the credit is accrued.")
    issued_at: UtcTime | None

    @classmethod
    def of(cls, credit: Credit) -> "CreditOut":
        return cls(**_credit_fields(credit))


def _credit_fields(credit: Credit) -> dict[str, Any]:
    return {
        "credit_id": credit.credit_id,
        "record_hash": credit.record_hash.hex(),
        "device_id": credit.device_id,
        "vehicle_key": credit.vehicle_key,
        "odometer_start_m": credit.odometer_start_m,
        "odometer_end_m": credit.odometer_end_m,
        "period": credit.period,
        "end_at": credit.end_at,
        "reduction_co2e_g": credit.reduction_co2e_g,
        "state": credit.state,
        "owner_id": credit.owner_id,
        "entry_seq": credit.entry.seq,
        "issue_seq": credit.issue_seq,
        "issued_at": credit.issued_at,
    }


class CreditDetail(CreditOut):
    """A credit with its ledger entry: the parameters, charges and reduction it was computed with."""

    entry: EntryOut

    @classmethod
    def of_entry(cls, credit: Credit) -> "CreditDetail":
        return cls(**_credit_fields(credit), entry=EntryOut.of(credit.entry))


class CreditPage(BaseModel):
    """One page of credits, newest (by ledger entry) first."""

    credits: list[CreditOut]
    next: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last page.")


class CreditTotalOut(BaseModel):
    """The credits of one device, owner, period or vehicle, summed."""

    key: str | None = Field(description="The device, owner, period or vehicle; null: credits with no owner yet.")
    credits: int
    issued: int
    reduction_co2e_g: float
    issued_co2e_g: float

    @classmethod
    def of(cls, total: CreditTotal) -> "CreditTotalOut":
        return cls(
            key=total.key,
            credits=total.credits,
            issued=total.issued,
            reduction_co2e_g=total.reduction_co2e_g,
            issued_co2e_g=total.issued_co2e_g,
        )


class CreditTotals(BaseModel):
    """Credit totals grouped one way, by key."""

    by: TotalsBy
    totals: list[CreditTotalOut]


# --- owners and consent ------------------------------------------------------------------------------
class OwnerOut(BaseModel):
    """An account credits are issued to."""

    owner_id: str
    name: str
    created_at: UtcTime

    @classmethod
    def of(cls, owner: Owner) -> "OwnerOut":
        return cls(owner_id=owner.owner_id, name=owner.name, created_at=owner.created_at)


class OwnerList(BaseModel):
    """Every owner account, by owner id."""

    owners: list[OwnerOut]


class OwnerCreate(_Request):
    """A new owner account."""

    owner_id: str = Field(examples=["fleet-owner-01"], description="3-64 characters of a-z, 0-9, '-' or '_'.")
    name: str = Field(min_length=1, max_length=MAX_TEXT, examples=["Example Fleet Ltd"])


class BindingCreate(_Request):
    """An owner's consent to receive the vehicle's credits, as the operator recorded it."""

    owner_id: str
    consented_at: AwareDatetime = Field(description="When the owner consented; not in the future.")
    consent_method: str = Field(
        min_length=1, max_length=MAX_TEXT, examples=["app"], description="How: app, paper, web."
    )
    consent_reference: str = Field(
        default="", max_length=MAX_REFERENCE, description="Where the consent is kept (a form number), may be empty."
    )


class BindingOut(BaseModel):
    """The vehicle's binding now, and how many accrued credits it issued."""

    vehicle_key: str
    owner_id: str
    consented_at: UtcTime
    consent_method: str
    consent_reference: str
    binding_seq: int = Field(description="The ledger entry recording the binding.")
    issued: int = Field(description="Credits the vehicle had accrued, issued to the owner by this binding.")

    @classmethod
    def of(cls, binding: Binding, issued: int) -> "BindingOut":
        return cls(
            vehicle_key=binding.vehicle_key,
            owner_id=binding.owner_id,
            consented_at=binding.consented_at,
            consent_method=binding.consent_method,
            consent_reference=binding.consent_reference,
            binding_seq=binding.binding_seq,
            issued=issued,
        )


class ExclusionCreate(_Request):
    """Why a charge's energy must not be credited here."""

    reason: str = Field(min_length=1, max_length=MAX_TEXT, examples=["credited to the charge point operator"])


class ExclusionOut(BaseModel):
    """A charge marked as credited elsewhere: later credits leave its share of the energy out."""

    record_hash: str
    reason: str = Field(description="The reason given when the charge was first marked.")


# --- forwarding --------------------------------------------------------------------------------------
class DeliveryOut(BaseModel):
    """One issued credit on its way to one sink."""

    delivery_id: int
    sink: str
    idempotency_key: str
    credit_id: str
    state: DeliveryState
    attempts: int
    created_at: UtcTime
    next_attempt_at: UtcTime | None
    last_attempt_at: UtcTime | None
    last_error: str
    delivered_at: UtcTime | None

    @classmethod
    def of(cls, delivery: StoredDelivery) -> "DeliveryOut":
        return cls(
            delivery_id=delivery.delivery_id,
            sink=delivery.sink,
            idempotency_key=delivery.idempotency_key,
            credit_id=delivery.credit_id,
            state=delivery.state,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
        )


class DeliveryPage(BaseModel):
    """One page of deliveries, newest first."""

    deliveries: list[DeliveryOut]
    next: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last page.")


# --- at a glance -------------------------------------------------------------------------------------
class LedgerHead(BaseModel):
    """The newest sealed entry and batch (0 and 0 for an empty ledger)."""

    last_seq: int
    last_batch_no: int


class CreditSums(BaseModel):
    """Every credit, summed."""

    credits: int
    issued: int
    reduction_co2e_g: float
    issued_co2e_g: float


class LedgerSummary(BaseModel):
    """Crediting at a glance: decisions, the queue, the ledger's head, credit totals and forwarding."""

    generated_at: UtcTime
    crediting_enabled: bool
    decisions: dict[Outcome, int] = Field(description="Accepted records by crediting outcome.")
    queued: int = Field(description="Accepted records waiting for their crediting decision.")
    head: LedgerHead
    credits: CreditSums
    deliveries: dict[DeliveryState, int] = Field(description="Deliveries to sinks by state.")
