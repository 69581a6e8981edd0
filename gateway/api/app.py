"""``create_app``: the operator API built around the gateway's store, metrics and readiness.

Nothing exists before ``create_app`` runs (no settings or engines at import time); the gateway's
composition root builds the store and metrics, passes them in, and serves the app with uvicorn.

Errors are translated here, once: a registry error is 400, an unknown device 404, a device or key
registered already 409, a database failure 503 — each with ``{"detail": "<one sentence>"}``, never
a traceback. FastAPI's own validation errors stay 422, their detail naming the parameter.

The OpenAPI schema (``/openapi.json``) and its viewer (``/docs``) are public: they describe the API,
hold no data, and say what ``docs/gateway-api.md`` says; and a browser opening ``/docs`` cannot
send a bearer token — its "Authorize" button is how the token is given for the calls made from it.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from carbonlink import __version__
from gateway.api.context import ApiContext
from gateway.api.params import ParameterError
from gateway.api.routers import credits as credit_routes
from gateway.api.routers import dashboard, devices, exclusions, forwarding, health, ledger, owners, records, rejections
from gateway.api.routers import metrics as metrics_routes
from gateway.api.settings import ApiSettings
from gateway.crediting.service import Crediting
from gateway.errors import ConflictError, DeviceExistsError, GatewayError, StoreError, UnknownDeviceError
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceRegistry
from gateway.store.record_store import RecordStore

logger = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 5
"""What a 503 for a database failure suggests before trying again."""

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
"""The only paths answered without a token; tests check every other route refuses one."""


def _always_ready() -> str | None:
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _status_of(error: GatewayError) -> int:
    if isinstance(error, UnknownDeviceError):
        return status.HTTP_404_NOT_FOUND
    if isinstance(error, DeviceExistsError | ConflictError):
        return status.HTTP_409_CONFLICT
    if isinstance(error, StoreError):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_400_BAD_REQUEST


async def _gateway_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, GatewayError):  # registered for GatewayError only; satisfies the handler signature
        raise exc
    code = _status_of(exc)
    if code == status.HTTP_503_SERVICE_UNAVAILABLE:
        logger.warning("api.store_unavailable error=%r", str(exc))
        return JSONResponse(
            {"detail": f"database unavailable: {exc}"},
            status_code=code,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _parameter_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)


_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header", "body": "body field"}


def _where(loc: Sequence[Any]) -> str:
    """``('query', 'limit')`` → ``query parameter 'limit'``; ``('body',)`` → ``body``."""
    if not loc:
        return "request"
    place, *path = loc
    if not path:
        return str(place)
    return f"{_PLACES.get(str(place), str(place))} '{'.'.join(str(part) for part in path)}'"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = "; ".join(f"{_where(error.get('loc', ()))}: {error.get('msg', 'invalid')}" for error in errors)
    # 'loc' and 'msg' only: 'input' may echo a token-like value back, and 'ctx' holds exception objects.
    listed = [{"loc": list(error.get("loc", ())), "msg": error.get("msg", "")} for error in errors]
    return JSONResponse(
        {"detail": detail or "invalid request", "errors": listed}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def create_app(  # noqa: PLR0913 - keyword-only: each part of the gateway the API serves
    settings: ApiSettings,
    *,
    store: RecordStore,
    metrics: GatewayMetrics,
    readiness: Callable[[], str | None] = _always_ready,
    clock: Callable[[], datetime] = _utc_now,
    crediting: Crediting | None = None,
) -> FastAPI:
    """The operator API over ``store`` and ``metrics``; ``readiness`` returns None when intake is ready."""
    app = FastAPI(
        title="carbonlink gateway",
        version=__version__,
        summary="Operator API: device registry, accepted records, rejections, health and metrics.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.context = ApiContext(
        settings=settings,
        store=store,
        registry=DeviceRegistry(store, clock),
        metrics=metrics,
        readiness=readiness,
        clock=clock,
        crediting=crediting,
    )
    for module in (
        health,
        devices,
        records,
        exclusions,
        rejections,
        credit_routes,
        owners,
        ledger,
        forwarding,
        metrics_routes,
    ):
        app.include_router(module.router)
    if settings.dashboard:
        app.include_router(dashboard.router)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(ParameterError, _parameter_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app
