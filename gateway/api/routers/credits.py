"""``/v1/credits``: credited trips, newest first, with their ledger entries, receipts and totals.

Credits come from the store's crediting tables (``store.ledger``), which the crediting worker fills;
they are read here whether or not this gateway process runs the worker. Pages are cut by keyset on
the credit's ledger entry: ``next`` is the ``entry_seq`` of a page's last credit and ``?before=<next>``
asks for older ones, so a page stays right while new credits are appended.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from gateway.api.auth import ReadAccess
from gateway.api.context import ApiContext, Context
from gateway.api.credit_schemas import CreditDetail, CreditOut, CreditPage, CreditTotalOut, CreditTotals, ReceiptOut
from gateway.api.params import DEFAULT_LIMIT, Limit
from gateway.api.schemas import errors
from gateway.crediting.model import Credit, CreditQuery, CreditState, TotalsBy
from gateway.registry import parse_device_id

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
"""A crediting period: the UTC month, YYYY-MM."""

router = APIRouter(prefix="/v1/credits", tags=["credits"], dependencies=[ReadAccess])

_NOT_FOUND = errors({404: "No credit has this id."})


@router.get("", responses=errors({400: "A device id that is not valid."}))
def list_credits(  # noqa: PLR0913 - one argument per query parameter
    *,
    ctx: Context,
    device_id: Annotated[str | None, Query(description="Only credits of trips this device sent.")] = None,
    owner_id: Annotated[str | None, Query(description="Only credits issued to this owner.")] = None,
    vehicle_key: Annotated[str | None, Query(description="Only this vehicle's: vin:<hex> or device:<id>.")] = None,
    period: Annotated[str | None, Query(pattern=PERIOD_PATTERN, description="Only this month, YYYY-MM.")] = None,
    state: Annotated[CreditState | None, Query(description="accrued (no owner yet) or issued.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    before: Annotated[int | None, Query(ge=1, description="The previous page's next.")] = None,
) -> CreditPage:
    """Credits, newest (by ledger entry) first; every filter given must hold."""
    query = CreditQuery(
        device_id=None if device_id is None else parse_device_id(device_id),
        owner_id=owner_id,
        vehicle_key=vehicle_key,
        period=period,
        state=state,
        limit=limit + 1,  # one more than asked: tells whether a next page exists
        before_seq=before,
    )
    found = ctx.store.ledger.credits(query)
    page = found[:limit]
    cursor = page[-1].entry.seq if len(found) > limit else None
    return CreditPage(credits=[CreditOut.of(credit) for credit in page], next=cursor)


# Declared before /{credit_id}, which would otherwise take "totals" for a credit id.
@router.get("/totals")
def credit_totals(
    ctx: Context,
    by: Annotated[TotalsBy, Query(description="Group by device, owner, period (YYYY-MM) or vehicle.")],
) -> CreditTotals:
    """Credits counted and summed per device, owner, period or vehicle (all credits, accrued and issued)."""
    return CreditTotals(by=by, totals=[CreditTotalOut.of(total) for total in ctx.store.ledger.totals(by)])


def _credit(ctx: ApiContext, credit_id: str) -> Credit:
    credit = ctx.store.ledger.credit(credit_id.lower())
    if credit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no credit has id {credit_id.lower()}")
    return credit


@router.get("/{credit_id}", responses=_NOT_FOUND)
def get_credit(credit_id: str, ctx: Context) -> CreditDetail:
    """A credit with its ledger entry: the exact parameters, charges and reduction it was computed with."""
    return CreditDetail.of_entry(_credit(ctx, credit_id))


@router.get("/{credit_id}/receipt", responses=_NOT_FOUND)
def get_receipt(credit_id: str, ctx: Context) -> ReceiptOut:
    """The credit entry's receipt: the entry, its sealed batch and the Merkle proof from one to the other."""
    credit = _credit(ctx, credit_id)
    receipt = ctx.store.ledger.receipt(credit.entry.seq)
    if receipt is None:  # cannot happen: every entry is sealed in the transaction that appends it
        detail = f"credit {credit.credit_id}: its ledger entry {credit.entry.seq} is in no sealed batch"
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=detail)
    return ReceiptOut.of(receipt)
