"""Zero-touch enrolment at intake: carry out :func:`gateway.enrolment.decide_enrolment` on the store.

The intake worker hands every message of an enrolment topic here, in arrival order, before the
records of the same batch are judged — so an agent's first records (published after its
certificate) find their device registered. Each outcome is logged and counted
(``carbonlink_gateway_enrolments_total{result=...}``); nothing is acknowledged, the agent sends
its certificate again on every connection anyway.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from carbonlink.keys import PublicKey
from carbonlink.topics import device_of_enrolment_topic
from gateway.enrolment import Refused, Register, decide_enrolment
from gateway.errors import DeviceExistsError, StoreError
from gateway.metrics import GatewayMetrics
from gateway.model import Enrolment
from gateway.registry_cache import RegistryCache
from gateway.store.record_store import RecordStore
from gateway.verification import InboundMessage

log = logging.getLogger("carbonlink.gateway")


class EnrolmentRegistrar:
    """Register the devices that present a valid enrolment certificate (see the module docstring)."""

    def __init__(
        self,
        store: RecordStore,
        registry: RegistryCache,
        authority_keys: Sequence[PublicKey],
        metrics: GatewayMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._store, self._registry, self._authority_keys = store, registry, tuple(authority_keys)
        self._metrics, self._clock = metrics, clock

    def handle(self, message: InboundMessage) -> None:
        device_id = device_of_enrolment_topic(message.topic)
        if device_id is None:
            return
        decision = decide_enrolment(
            message.payload,
            topic_device_id=device_id,
            authority_keys=self._authority_keys,
            existing=self._store.device(device_id),
            now=message.received_at,
        )
        result = decision.result
        if isinstance(decision, Register):
            try:
                self._store.add_device(
                    decision.device_id,
                    decision.public_key,
                    vehicle_class=decision.vehicle_class,
                    vin_hash=decision.vin_hash,
                    enrolment=Enrolment.CERTIFICATE,
                    at=self._clock(),
                )
            except DeviceExistsError as err:  # another gateway registered it a moment ago, or the key is taken
                result = "refused"
                log.warning("enrolment.refused device=%s reason=exists detail=%r", device_id, str(err)[:200])
            except StoreError as err:  # the agent presents its certificate again on its next connection
                result = "failed"
                log.error("enrolment.failed device=%s error=%r", device_id, str(err)[:200])  # noqa: TRY400 - known failure, no traceback
            else:
                self._registry.forget(device_id)
                log.info(
                    "enrolment.registered device=%s class=%s authority=%r",
                    device_id,
                    decision.vehicle_class.value,
                    decision.certificate.authority,
                )
        elif isinstance(decision, Refused):
            log.warning("enrolment.refused device=%s reason=%s detail=%r", device_id, decision.reason, decision.detail)
        self._metrics.enrolments.labels(result=result).inc()
