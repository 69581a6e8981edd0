"""``/v1/records/{record_hash}/exclusion``: mark a charge as credited elsewhere, so it is not credited here.

When the energy of a charge session is claimed by someone else (a charge point operator's own
credit scheme), an operator marks that charge record. Trips credited from then on leave its share
of the vehicle's charged energy out (``credited_share`` in the methodology); credits already in
the append-only ledger are not changed. Marking is idempotent: the first reason given stays.
"""

from fastapi import APIRouter, HTTPException, status

from gateway.api.auth import AdminAccess, ReadAccess
from gateway.api.context import Context
from gateway.api.credit_schemas import ExclusionCreate, ExclusionOut
from gateway.api.params import parse_digest
from gateway.api.schemas import errors

router = APIRouter(prefix="/v1/records", tags=["records"], dependencies=[ReadAccess])


@router.post(
    "/{record_hash}/exclusion",
    dependencies=[AdminAccess],
    responses=errors(
        {
            400: "The hash is not 64 hex digits, the record is no accepted charge, or the reason is empty.",
            404: "No record has this hash.",
        }
    ),
)
def exclude_charge(record_hash: str, body: ExclusionCreate, ctx: Context) -> ExclusionOut:
    """Mark an accepted charge record as credited elsewhere: later credits leave its energy out."""
    digest = parse_digest(record_hash, "record_hash")
    if ctx.store.record(digest) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no record has hash {digest.hex()}")
    if not body.reason.strip() or not body.reason.isprintable():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="reason: must be printable characters, not only spaces")
    ledger = ctx.store.ledger
    ledger.exclude_charge(digest, body.reason, at=ctx.clock())  # RegistryError (400) for a trip or a refused link
    return ExclusionOut(record_hash=digest.hex(), reason=ledger.excluded_charge(digest) or body.reason)
