"""``/healthz`` and ``/readyz``: the two endpoints an orchestrator probes without a token.

``/healthz`` says the process answers (a restart is the cure when it does not); ``/readyz`` says
whether the gateway can do its work now — the database answers and intake is connected — so a
load balancer sends operators elsewhere while it is not. Neither tells anything about the data.
"""

from fastapi import APIRouter, Response, status

from gateway.api.context import Context
from gateway.api.schemas import Health
from gateway.errors import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """200 whenever the process answers."""
    return Health(status="alive")


@router.get(
    "/readyz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health, "description": "Not ready, and why."}},
)
def readyz(ctx: Context, response: Response) -> Health:
    """200 when the database answers and intake is ready, else 503 with the reason."""
    try:
        ctx.store.check()
    except StoreError as err:
        reason: str | None = f"store: {err}"
    else:
        reason = ctx.readiness()
    if reason is not None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="not ready", reason=reason)
    return Health(status="ready")
