"""``/v1/forwarding``: issued credits on their way to the sinks (webhook, export file), and dead letters.

The forwarding outbox gets one delivery per issued credit and sink, in the transaction that issues
the credit. A delivery the sink keeps refusing is retried with backoff up to the configured limit,
then left ``dead``: an operator looks at its ``last_error``, mends the sink and retries it here,
which puts it back in line, due now, with its attempts counted from zero. Its idempotency key is
unchanged, so a receiver that honours it never books the credit twice. Pages are cut by keyset on the
rising ``delivery_id``: ``?before=<next>``.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from gateway.api.auth import AdminAccess, ReadAccess
from gateway.api.context import Context
from gateway.api.credit_schemas import DeliveryOut, DeliveryPage
from gateway.api.params import DEFAULT_LIMIT, Limit
from gateway.api.schemas import errors
from gateway.crediting.model import DeliveryState
from gateway.errors import RegistryError

router = APIRouter(prefix="/v1/forwarding", tags=["forwarding"], dependencies=[ReadAccess])

DeliveryId = Annotated[int, Path(ge=1, description="The delivery's id (rises with time).")]


@router.get("")
def list_deliveries(
    ctx: Context,
    state: Annotated[DeliveryState | None, Query(description="pending, delivered or dead.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    before: Annotated[int | None, Query(ge=1, description="The previous page's next.")] = None,
) -> DeliveryPage:
    """Deliveries of issued credits to sinks, newest first."""
    found = ctx.store.ledger.deliveries(state=state, limit=limit + 1, before_id=before)
    page = found[:limit]
    cursor = page[-1].delivery_id if len(found) > limit else None
    return DeliveryPage(deliveries=[DeliveryOut.of(delivery) for delivery in page], next=cursor)


@router.post(
    "/{delivery_id}/retry",
    dependencies=[AdminAccess],
    responses=errors({404: "No delivery has this id.", 409: "The delivery is not dead (pending or delivered)."}),
)
def retry_delivery(delivery_id: DeliveryId, ctx: Context) -> DeliveryOut:
    """Put a dead letter back in line, due now, with its attempts counted from zero."""
    ledger = ctx.store.ledger
    # The store's one error says either "no such delivery" or "not dead": tell them apart by looking first
    # (deliveries are never deleted, so one seen here is still there for the retry).
    if ledger.delivery(delivery_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no delivery {delivery_id}")
    try:
        return DeliveryOut.of(ledger.retry_delivery(delivery_id, at=ctx.clock()))
    except RegistryError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from err
