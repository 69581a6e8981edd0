"""What every request handler may use, built once by ``create_app`` and handed in as a dependency.

Handlers take ``ctx: Context`` rather than reaching for module globals, so a test builds an app
around its own store, metrics and clock, and nothing exists before ``create_app`` runs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from gateway.api.settings import ApiSettings
from gateway.crediting.service import Crediting
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceRegistry
from gateway.store.record_store import RecordStore


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    """The gateway's parts the API reads and changes."""

    settings: ApiSettings
    store: RecordStore
    registry: DeviceRegistry
    metrics: GatewayMetrics
    readiness: Callable[[], str | None]
    """None when intake is ready, else why not (e.g. "mqtt not connected")."""
    clock: Callable[[], datetime]
    crediting: Crediting | None = None
    """Binding owners issues credits through it; None when crediting is off (those routes answer 409)."""


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(api_context)]
