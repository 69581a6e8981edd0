"""Crediting's and forwarding's Prometheus metrics, in the gateway's registry.

Labels are bounded: a decision's outcome and a sink's name (``webhook``, ``export_file``), never a
device, vehicle or owner.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.crediting.model import CreditingReport, Outcome
from gateway.crediting.settings import EXPORT_FILE_SINK, WEBHOOK_SINK

FORWARDING_RESULTS = ("delivered", "retry", "dead")


class CreditingMetrics:
    """Decisions, ledger growth and deliveries; also the forwarder's observer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "carbonlink_gateway_crediting_decisions",
            "Accepted records by what crediting made of them.",
            ["outcome"],
            registry=registry,
        )
        self.ledger_entries = Counter(
            "carbonlink_gateway_ledger_entries", "Entries appended to the credit ledger.", registry=registry
        )
        self.issued = Counter("carbonlink_gateway_credits_issued", "Credits issued to owners.", registry=registry)
        self.deliveries = Counter(
            "carbonlink_gateway_forwarding_deliveries",
            "Delivery attempts of issued credits by sink and result (retry: failed, tried again later; "
            "dead: given up, waits for an operator).",
            ["sink", "result"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "carbonlink_gateway_forwarding_seconds",
            "Time from a credit's issue to its delivery, by sink.",
            ["sink"],
            buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 86400),
            registry=registry,
        )
        self._decisions = {outcome: self.decisions.labels(outcome=outcome.value) for outcome in Outcome}
        for sink in (WEBHOOK_SINK, EXPORT_FILE_SINK):
            for result in FORWARDING_RESULTS:
                self.deliveries.labels(sink=sink, result=result)

    def decided(self, report: CreditingReport) -> None:
        for outcome, count in report.decided.items():
            self._decisions[outcome].inc(count)
        self.ledger_entries.inc(report.entries)
        self.issued.inc(report.issued)

    def delivered(self, sink: str, latency_s: float) -> None:
        self.deliveries.labels(sink=sink, result="delivered").inc()
        self.delivery_seconds.labels(sink=sink).observe(latency_s)

    def failed(self, sink: str, *, dead: bool) -> None:
        self.deliveries.labels(sink=sink, result="dead" if dead else "retry").inc()
