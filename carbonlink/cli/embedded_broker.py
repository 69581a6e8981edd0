"""The demo's embedded MQTT broker: amqtt in a background thread, on a free loopback port.

For ``carbonlink demo`` only, so that a fresh clone needs nothing outside Python. Production uses
Mosquitto or a clustered MQTT 5 broker (docs/demo.md says why amqtt and what it lacks).

amqtt speaks MQTT 3.1.1 only, and it closes an MQTT 5 CONNECT that carries a will without the
"unsupported protocol version" CONNACK our clients fall back on, so everything that connects to it
must be configured with ``protocol = "3.1.1"`` (:data:`PROTOCOL`).

We own the listening socket (asyncio's server on port 0 tells us the port it got) and hand each
connection to amqtt through its "external" listener, so no port is guessed and none of amqtt's
private attributes is read.
"""

import asyncio
import contextlib
import logging
import threading
from types import TracebackType
from typing import Any, Self

PROTOCOL = "3.1.1"
"""The MQTT version clients must be configured with (``[mqtt] protocol``) for this broker."""

_LISTENER = "default"
_SHUTDOWN_TIMEOUT_S = 3.0
_log = logging.getLogger("carbonlink.demo.broker")


class BrokerError(RuntimeError):
    """The embedded broker could not start (port taken, amqtt missing or failing)."""


class EmbeddedBroker:
    """An MQTT 3.1.1 broker serving ``host`` on ``port`` (0: a free port) until :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port the broker listens on; only after :meth:`start`."""
        if self._port is None:
            raise BrokerError("the embedded broker is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start serving; return once the port accepts connections. Raises :class:`BrokerError`."""
        if self._thread is not None:
            raise BrokerError("the embedded broker was already started")
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise BrokerError(f"the embedded MQTT broker did not start within {timeout_s:.0f} s")
        if self._failure is not None:
            self._thread.join(timeout_s)
            raise BrokerError(f"the embedded MQTT broker could not start on {self.host}: {self._failure}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every connection and the listening socket, and end the thread. Idempotent."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so the thread is ending anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                _log.warning("demo.broker_stop_timeout seconds=%.0f", timeout_s)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # noqa: BLE001 - reported to start(), which raises it as BrokerError
            self._failure = err
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter  # noqa: PLC0415 - demo only
        from amqtt.broker import Broker  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        broker: Any = Broker(_broker_config(self.host), loop=self._loop)
        await broker.start()
        connections: set[asyncio.Task[None]] = set()

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                connections.add(task)
            try:
                await broker.external_connected(StreamReaderAdapter(reader), StreamWriterAdapter(writer), _LISTENER)
            finally:
                connections.discard(task)
                writer.close()

        try:
            server = await asyncio.start_server(on_connection, self.host, self._requested_port)
        except OSError:
            await broker.shutdown()
            raise
        self._port = int(server.sockets[0].getsockname()[1])
        _log.info("demo.broker_started url=%s", self.url)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            # Connections first: amqtt's own shutdown can wait forever on a session whose client is
            # still connected (seen with a subscriber that had just been sent a message).
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            try:
                await asyncio.wait_for(broker.shutdown(), _SHUTDOWN_TIMEOUT_S)
            except TimeoutError:
                _log.warning("demo.broker_shutdown_timeout seconds=%.0f", _SHUTDOWN_TIMEOUT_S)
            await server.wait_closed()


def _broker_config(host: str) -> dict[str, Any]:
    # amqtt needs a "default" listener with a bind address even when it is external (ours); the
    # address is not used. Anonymous clients only: the demo's devices prove who they are by their
    # signatures, and the broker is reachable from loopback only. No $SYS plugin: nothing reads it.
    return {
        "listeners": {_LISTENER: {"type": "external", "bind": f"{host}:0"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
