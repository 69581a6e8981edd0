"""``/v1/rejections``: messages the gateway refused, with the reason from the one fixed list.

Rejections are kept for unregistered devices too (reason ``unknown_device``), so a ``device_id``
filter is only checked for its spelling, not looked up. Pages are cut by keyset on the rising
``rejection_id``: ``?before=<next>``.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime

from carbonlink.reasons import RejectionReason
from gateway.api.auth import ReadAccess
from gateway.api.context import ApiContext, Context
from gateway.api.params import DEFAULT_LIMIT, Limit
from gateway.api.schemas import RejectionOut, RejectionPage, Responses, errors
from gateway.model import RejectionQuery, StoredRejection
from gateway.registry import parse_device_id

router = APIRouter(prefix="/v1/rejections", tags=["rejections"], dependencies=[ReadAccess])

_NOT_FOUND = errors({404: "No stored rejection has this id."})
_RAW: Responses = {
    status.HTTP_200_OK: {"content": {"application/octet-stream": {}}, "description": "The payload as kept."}
}
RejectionId = Annotated[int, Path(ge=1, description="The rejection's id (rises with time).")]


@router.get(
    "",
    responses=errors({400: "A device id that is not valid."}),
)
def list_rejections(  # noqa: PLR0913 - one argument per query parameter
    *,
    ctx: Context,
    device_id: Annotated[str | None, Query(description="Only messages on this device's topic.")] = None,
    reason: Annotated[RejectionReason | None, Query(description="Only this reason.")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Only messages received at or after.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    before: Annotated[int | None, Query(ge=1, description="The previous page's next.")] = None,
) -> RejectionPage:
    """Stored rejections, newest first."""
    query = RejectionQuery(
        device_id=None if device_id is None else parse_device_id(device_id),
        reason=reason,
        since=since,
        limit=limit + 1,  # one more than asked: tells whether a next page exists
        before_id=before,
    )
    found = ctx.store.rejections(query)
    page = found[:limit]
    cursor = page[-1].rejection_id if len(found) > limit else None
    return RejectionPage(rejections=[RejectionOut.of(rejection) for rejection in page], next=cursor)


def _stored(ctx: ApiContext, rejection_id: int) -> StoredRejection:
    rejection = ctx.store.rejection(rejection_id)
    if rejection is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no stored rejection has id {rejection_id} (old ones are deleted)"
        )
    return rejection


@router.get("/{rejection_id}", responses=_NOT_FOUND)
def get_rejection(rejection_id: RejectionId, ctx: Context) -> RejectionOut:
    return RejectionOut.of(_stored(ctx, rejection_id))


@router.get(
    "/{rejection_id}/raw",
    response_class=Response,
    responses=_NOT_FOUND | _RAW,
)
def get_rejection_raw(rejection_id: RejectionId, ctx: Context) -> Response:
    """The refused payload as kept (cut at 8 KiB; ``X-Payload-Size`` tells how many bytes came)."""
    rejection = _stored(ctx, rejection_id)
    return Response(
        content=rejection.payload,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="rejection-{rejection.rejection_id}.bin"',
            "X-Payload-Size": str(rejection.payload_size),
        },
    )
