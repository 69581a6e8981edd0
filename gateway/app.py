"""The gateway's composition root: build every part, connect them, own the threads and the shutdown.

    broker ──► PahoGatewayClient ──► Intake (bounded queue → verify → commit batch) ──► acks ──► broker
                                        │                        │
                                  RegistryCache              RecordStore ◄── operator API (uvicorn thread)
                                                                 │   ▲
                         CreditingWorker (credit_queue → ledger) ┘   └ Forwarder (outbox → webhook, file)

Shutdown order matters for "nothing accepted is lost and every ack leaves": unsubscribe (take no
more messages), let intake finish and commit what is queued and hand over its acks, wait until
the broker confirmed every ack, then disconnect, stop crediting and forwarding (their work waits
in the database for the next start), stop the API and close the store.
"""

import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import uvicorn

from carbonlink.methodology import ParameterSet
from gateway.adapters.mqtt_client import PahoGatewayClient
from gateway.adapters.parameter_file import load_parameters
from gateway.api.app import create_app
from gateway.api.settings import ApiSettings
from gateway.config import GatewayConfig
from gateway.crediting.metrics import CreditingMetrics
from gateway.crediting.service import Crediting, check_regions
from gateway.crediting.sinks import build_sinks, read_signing_key, retry_policy
from gateway.crediting.worker import CreditingWorker
from gateway.enrolment_intake import EnrolmentRegistrar
from gateway.forwarding.forwarder import Forwarder
from gateway.forwarding.model import CreditSink
from gateway.intake import Intake, utc_now
from gateway.metrics import GatewayMetrics
from gateway.registry_cache import RegistryCache
from gateway.store import open_store
from gateway.store.record_store import RecordStore
from gateway.verification import Verifier

log = logging.getLogger("carbonlink.gateway")

MQTT_CONNECT_WAIT_S = 10.0
FORWARD_BATCH_MAX = 10
"""Deliveries a forwarder takes from the outbox at a time."""
FORWARD_IDLE_WAIT_S = 1.0
"""How long the forwarder sleeps when nothing is due (a new issue does not wake it: at most this late)."""
"""How long start waits for the broker's first answer before going on (it keeps retrying)."""


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """How the last stop went."""

    intake_drained: bool
    """Every queued message was committed (False: the time ran out; agents resend the rest)."""
    acks_confirmed: bool
    """The broker confirmed every ack (False: agents will resend and get ``duplicate``)."""


class Gateway:
    """One gateway process: MQTT intake, store and operator API (see the module docstring)."""

    def __init__(
        self, config: GatewayConfig, *, store: RecordStore | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        # Files first: a bad parameter or key file stops the start before anything is opened.
        parameters = load_parameters(config.crediting.parameter_file) if config.crediting.enabled else None
        if parameters is not None:
            regions = [config.crediting.grid_region, *config.crediting.device_regions.values()]
            check_regions(parameters, regions, clock().year)
        key_file = config.forwarding.signing_key_file
        sinks = build_sinks(config.forwarding, None if key_file is None else read_signing_key(key_file))
        try:
            self._build(config, store, clock, parameters, sinks)
        except BaseException:
            for sink in sinks.values():
                sink.close()
            raise

    def _build(
        self,
        config: GatewayConfig,
        store: RecordStore | None,
        clock: Callable[[], datetime],
        parameters: ParameterSet | None,
        sinks: dict[str, CreditSink],
    ) -> None:
        self.store = (
            store if store is not None else open_store(config.store.url, max_rejections=config.store.max_rejections)
        )
        self.registry = RegistryCache(self.store, config.intake.registry_refresh_s)
        enrolment = (
            EnrolmentRegistrar(self.store, self.registry, config.authority_keys, self.metrics, clock)
            if config.authority_keys
            else None
        )
        self.crediting_metrics = CreditingMetrics(self.metrics.registry)
        self.crediting, self.crediting_worker = self._build_crediting(config, parameters, clock)
        self.forwarder = self._build_forwarder(config, sinks, clock)
        self.mqtt = PahoGatewayClient(
            config.mqtt, self._submit, self.metrics, receive_maximum=config.intake.queue_max_messages
        )
        self.intake = Intake(
            store=self.store,
            verifier=Verifier(config.plausibility, timer=self.metrics.time_stage),
            registry=self.registry,
            acks=self.mqtt,
            metrics=self.metrics,
            queue_max_messages=config.intake.queue_max_messages,
            batch_max_messages=config.intake.batch_max_messages,
            batch_max_wait_s=config.intake.batch_max_wait_s,
            store_retry_s=config.intake.store_retry_s,
            enrolment=enrolment,
            clock=clock,
            on_committed=self.crediting_worker.wake if self.crediting_worker is not None else lambda: None,
        )
        self._api_server: uvicorn.Server | None = None
        self._api_thread: threading.Thread | None = None
        self.api_port: int | None = None
        self._stopped = threading.Event()

    def _build_crediting(
        self, config: GatewayConfig, parameters: ParameterSet | None, clock: Callable[[], datetime]
    ) -> tuple[Crediting | None, CreditingWorker | None]:
        settings = config.crediting
        if parameters is None:
            return None, None
        crediting = Crediting(
            self.store.ledger,
            parameters,
            grid_region=settings.grid_region,
            device_regions=settings.device_regions,
            sinks=config.forwarding.sinks,
            clock=clock,
            batch_max_records=settings.batch_max_records,
            on_decided=self.crediting_metrics.decided,
        )
        return crediting, CreditingWorker(crediting, interval_s=settings.interval_s)

    def _build_forwarder(
        self, config: GatewayConfig, sinks: dict[str, CreditSink], clock: Callable[[], datetime]
    ) -> Forwarder | None:
        settings = config.forwarding
        if not sinks:
            return None
        return Forwarder(
            self.store.ledger.forwarding_queue(sinks),
            sinks,
            retry_policy(settings),
            self.crediting_metrics,
            clock=clock,
            jitter=random.random,
            batch_max=FORWARD_BATCH_MAX,
            idle_wait_s=FORWARD_IDLE_WAIT_S,
        )

    def _submit(self, topic: str, payload: bytes, settle: Callable[[], None]) -> bool:
        return self.intake.submit(topic, payload, settle)

    def readiness(self) -> str | None:
        """None when the gateway can take records, else why not (``/readyz``)."""
        return None if self.mqtt.connected else "not connected to the MQTT broker"

    def start(self) -> None:
        if self.crediting_worker is not None:
            self.crediting_worker.start()
        if self.forwarder is not None:
            self.forwarder.start()
        self.intake.start()
        self.mqtt.start(MQTT_CONNECT_WAIT_S)
        if self.config.api.enabled:
            self._start_api()
        log.info("gateway.started store=%s api_port=%s", _safe_url(self.config.store.url), self.api_port)

    def _start_api(self) -> None:
        api = self.config.api
        app = create_app(
            ApiSettings(
                read_tokens=api.read_tokens,
                admin_tokens=api.admin_tokens,
                host=api.host,
                port=api.port,
                dashboard=api.dashboard,
            ),
            store=self.store,
            metrics=self.metrics,
            readiness=self.readiness,
            crediting=self.crediting,
        )
        # Bind here, so a taken port fails start at once and port 0 gives a known port.
        family = socket.AF_INET6 if ":" in api.host else socket.AF_INET
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only for a
        # socket created with it, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((api.host, api.port))
        except OSError as err:
            sock.close()
            raise OSError(f"the operator API cannot listen on {api.host}:{api.port}: {err}") from err
        self.api_port = int(sock.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self._api_server = server
        self._api_thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="gateway-api", daemon=True
        )
        self._api_thread.start()

    def run_until(self, stop: threading.Event) -> ShutdownReport:
        """Start, serve until ``stop`` is set, then shut down cleanly."""
        self.start()
        stop.wait()
        return self.stop()

    def stop(self) -> ShutdownReport:
        timeout_s = self.config.intake.shutdown_timeout_s
        self.mqtt.stop_taking()
        drained = self.intake.stop(timeout_s)
        confirmed = self.mqtt.wait_acks_sent(timeout_s)
        self.mqtt.close()
        # Their work waits in the database for the next start; a transaction cut short is rolled back.
        if self.crediting_worker is not None and not self.crediting_worker.stop(timeout_s):
            log.warning("gateway.crediting_still_running timeout_s=%s", timeout_s)
        if self.forwarder is not None and not self.forwarder.stop(timeout_s):
            log.warning("gateway.forwarding_still_running timeout_s=%s", timeout_s)
        if self._api_server is not None and self._api_thread is not None:
            self._api_server.should_exit = True
            self._api_thread.join(timeout_s)
        self.store.close()
        log.info("gateway.stopped intake_drained=%s acks_confirmed=%s", drained, confirmed)
        return ShutdownReport(intake_drained=drained, acks_confirmed=confirmed)


def _safe_url(url: str) -> str:
    """The store URL without a password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}@{host}"
    return url
