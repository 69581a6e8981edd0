"""``/v1/ledger``: the hash-chained ledger as it is, its sealed batches, and crediting at a glance.

Entries and batches are read in ledger order (oldest first), the order an auditor checks them in:
``next`` is the last ``seq`` (or ``batch_no``) of a page and ``?after=<next>`` continues after it.
Only sealed entries are listed; a crediting transaction seals its entries before it commits, so
that is every committed one.
"""

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.auth import ReadAccess
from gateway.api.context import Context
from gateway.api.credit_schemas import (
    BatchOut,
    BatchPage,
    CreditSums,
    EntryOut,
    EntryPage,
    LedgerHead,
    LedgerSummary,
)
from gateway.api.params import DEFAULT_LIMIT, MAX_LIMIT
from gateway.crediting.model import Outcome, TotalsBy

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], dependencies=[ReadAccess])

OldestFirstLimit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}, in ledger order.")
]


@router.get("/entries")
def list_entries(
    ctx: Context,
    after: Annotated[int, Query(ge=0, description="Entries after this seq: the previous page's next.")] = 0,
    limit: OldestFirstLimit = DEFAULT_LIMIT,
) -> EntryPage:
    """Ledger entries by seq: credits, bindings and issues, each chained to the one before it."""
    found = ctx.store.ledger.entries(after_seq=after, limit=limit + 1)
    page = found[:limit]
    cursor = page[-1].seq if len(found) > limit else None
    return EntryPage(entries=[EntryOut.of(entry) for entry in page], next=cursor)


@router.get("/batches")
def list_batches(
    ctx: Context,
    after: Annotated[int, Query(ge=0, description="Batches after this number: the previous page's next.")] = 0,
    limit: OldestFirstLimit = DEFAULT_LIMIT,
) -> BatchPage:
    """Sealed batches by number, each with its Merkle root and the root before it."""
    found = ctx.store.ledger.batches(after_no=after, limit=limit + 1)
    page = found[:limit]
    cursor = page[-1].batch_no if len(found) > limit else None
    return BatchPage(batches=[BatchOut.of(batch) for batch in page], next=cursor)


@router.get("/summary")
def ledger_summary(ctx: Context) -> LedgerSummary:
    """Records by crediting outcome, the crediting queue, the ledger's head, credit totals and deliveries."""
    ledger = ctx.store.ledger
    decisions = dict.fromkeys(Outcome, 0)
    decisions.update({Outcome(outcome): count for outcome, count in ledger.decisions().items()})
    by_period = ledger.totals(TotalsBy.PERIOD)
    last_seq, last_batch_no = ledger.head()
    return LedgerSummary(
        generated_at=ctx.clock(),
        crediting_enabled=ctx.crediting is not None,
        decisions=decisions,
        queued=ledger.queued(),
        head=LedgerHead(last_seq=last_seq, last_batch_no=last_batch_no),
        credits=CreditSums(
            credits=sum(total.credits for total in by_period),
            issued=sum(total.issued for total in by_period),
            reduction_co2e_g=sum(total.reduction_co2e_g for total in by_period),
            issued_co2e_g=sum(total.issued_co2e_g for total in by_period),
        ),
        deliveries=ledger.delivery_counts(),
    )
