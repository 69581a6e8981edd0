"""What the gateway's metrics say: ``/metrics`` for Prometheus, ``/v1/summary`` for the dashboard.

Both read the one :class:`~gateway.metrics.GatewayMetrics` registry of this process, so they never
disagree; counts start at zero when the process starts (Prometheus handles the resets). Both need
a token: Prometheus sends one with ``authorization`` in its scrape config.
"""

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

from carbonlink.acks import Outcome
from carbonlink.reasons import RejectionReason
from gateway.api.auth import ReadAccess
from gateway.api.context import Context
from gateway.api.schemas import DeviceCounts, Summary
from gateway.metrics import GatewayMetrics
from gateway.model import DeviceStatus

PROMETHEUS_TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus version scrapes (``generate_latest`` writes it)."""

router = APIRouter(tags=["metrics"], dependencies=[ReadAccess])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_TEXT_0_0_4: {}}, "description": "Prometheus text format 0.0.4."}},
)
def metrics(ctx: Context) -> Response:
    """Every metric of this gateway process in the Prometheus text format."""
    return Response(content=generate_latest(ctx.metrics.registry), media_type=PROMETHEUS_TEXT_0_0_4)


def _values(metric: MetricWrapperBase) -> Iterator[Sample]:
    """The current value samples of a counter or gauge (not the ``_created`` timestamps)."""
    for family in metric.collect():
        wanted = {family.name, f"{family.name}_total"}
        yield from (sample for sample in family.samples if sample.name in wanted)


def _summary_counts(gateway_metrics: GatewayMetrics) -> tuple[dict[Outcome, int], dict[RejectionReason, int]]:
    by_outcome = dict.fromkeys(Outcome, 0)
    by_reason = dict.fromkeys(RejectionReason, 0)
    for sample in _values(gateway_metrics.messages):
        outcome = Outcome(sample.labels["outcome"])
        by_outcome[outcome] += int(sample.value)
        if outcome is Outcome.REJECTED:
            by_reason[RejectionReason(sample.labels["reason"])] += int(sample.value)
    return by_outcome, by_reason


@router.get("/v1/summary", tags=["summary"])
def summary(ctx: Context) -> Summary:
    """Counts by outcome and reason, queue depths, the broker connection and the registry, at a glance."""
    by_outcome, by_reason = _summary_counts(ctx.metrics)
    devices = ctx.store.devices()
    revoked = sum(1 for device in devices if device.status is DeviceStatus.REVOKED)
    connected = any(sample.value >= 1 for sample in _values(ctx.metrics.mqtt_connected))
    return Summary(
        generated_at=ctx.clock(),
        messages=by_outcome,
        rejections=by_reason,
        queue_depth={s.labels["queue"]: int(s.value) for s in _values(ctx.metrics.queue_depth)},
        queue_overflows={s.labels["queue"]: int(s.value) for s in _values(ctx.metrics.queue_overflows)},
        mqtt_connected=connected,
        devices=DeviceCounts(total=len(devices), active=len(devices) - revoked, revoked=revoked),
    )
