"""A real uvicorn serving an ASGI app on a free 127.0.0.1 port in a thread, for tests through HTTP.

``serving(app)`` binds the port itself (no race between picking a free port and listening), starts
uvicorn in a thread, waits until it accepts requests and stops it when the block ends::

    with serving(create_app(settings, store=store, metrics=metrics)) as server:
        httpx.get(f"{server.url}/healthz")
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from waiting import wait_for

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 10.0


class ApiServer:
    """One uvicorn server in a thread on a socket bound to a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        # IPPROTO_TCP stated, not left 0: asyncio sets TCP_NODELAY on accepted connections only when the
        # listening socket says TCP, and without it every response waits ~40 ms for a delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((HOST, 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"uvicorn-{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self._server.started or not self._thread.is_alive(), "uvicorn to start")
        if not self._server.started:
            pytest.fail(f"uvicorn on {self.url} stopped before it started (see the captured log)", pytrace=False)

    def stop(self) -> None:
        """Ask uvicorn to exit (it finishes open requests first) and join its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()
        if self._thread.is_alive():
            pytest.fail(f"uvicorn on {self.url} did not stop within {STOP_TIMEOUT_S} s", pytrace=False)


@contextmanager
def serving(app: FastAPI) -> Iterator[ApiServer]:
    server = ApiServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()
