"""A real webhook receiver on 127.0.0.1 for forwarding tests: fails on cue, checks signatures, books once.

It is what a registry's endpoint should be: it verifies the ``Carbonlink-Signature`` with pynacl
alone (not with carbonlink's own code), answers 401 to a bad one, and books each body under its
``Idempotency-Key``; a repeat is answered 200 and not booked again.

Failures are scripted per idempotency key: ``plan[k]`` is what the (k+1)-th request of every key
gets, and ``always`` what every request gets after the plan (None: success). A step is an HTTP
status to answer with, or one of:

- ``"drop"``: read the request, close the connection without an answer;
- ``"stall"``: read the request and wait ``stall_s`` (past the client's timeout) before answering;
- ``"book-then-drop"``: book the body, then close without an answer (the sender must try again and
  get "already booked").
"""

import base64
import binascii
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import nacl.exceptions
import nacl.signing

HOST = "127.0.0.1"
STALL_S = 5.0
"""How long a stalled answer waits at most (stopping the receiver ends the wait at once)."""
STOP_TIMEOUT_S = 10.0
SHUTDOWN_POLL_S = 0.01
"""How often the serving loop looks for a stop (the stdlib's 0.5 s would add that much to every test)."""

Step = int | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What the receiver does with each request (see the module docstring)."""

    plan: Sequence[Step] = ()
    always: Step | None = None
    stall_s: float = STALL_S
    retry_after: str | None = None
    """A ``Retry-After`` header for every answer."""
    location: str | None = None
    """A ``Location`` header for every answer (for redirects)."""


class WebhookReceiver:
    """A ThreadingHTTPServer on a free loopback port, run on its own thread (see the module docstring)."""

    def __init__(self, public_key: bytes, script: Script | None = None) -> None:
        self._verify_key = nacl.signing.VerifyKey(public_key)
        self.script = script if script is not None else Script()
        self.booked: dict[str, bytes] = {}
        """Bodies by idempotency key, booked once each."""
        self.headers: dict[str, dict[str, str]] = {}
        """The headers of the request that booked each key."""
        self.requests: Counter[str] = Counter()
        """Requests received per idempotency key."""
        self.repeats: Counter[str] = Counter()
        """Requests for a key booked already (answered 200, not booked again)."""
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._server = _Server((HOST, 0), _Handler)
        self._server.receiver = self
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name=f"webhook-{self.port}",
            daemon=True,
        )

    def url(self, path: str = "/credits") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.release.set()  # ends every stalled answer
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_S)

    def step_for(self, key: str) -> Step | None:
        """Count a request of ``key`` and say what it gets."""
        with self.lock:
            self.requests[key] += 1
            index = self.requests[key] - 1
        plan = self.script.plan
        return plan[index] if index < len(plan) else self.script.always

    def count_bad_signature(self) -> None:
        with self.lock:
            self.bad_signatures += 1

    def signature_verifies(self, body: bytes, signature_header: str | None) -> bool:
        if signature_header is None or not signature_header.startswith("ed25519="):
            return False
        try:
            signature = base64.b64decode(signature_header.removeprefix("ed25519="), validate=True)
            self._verify_key.verify(body, signature)
        except (binascii.Error, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True

    def book(self, key: str, body: bytes, headers: dict[str, str]) -> bool:
        """Book ``body`` under ``key``; False when the key was booked already."""
        with self.lock:
            if key in self.booked:
                self.repeats[key] += 1
                return False
            self.booked[key] = body
            self.headers[key] = headers
            return True


class _Server(ThreadingHTTPServer):
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do: the sink pools connections
    disable_nagle_algorithm = True  # headers and body go in two writes: Nagle would hold the body ~40 ms
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = self.headers.get("Idempotency-Key", "")
        step = receiver.step_for(key)
        if step == "stall":
            receiver.release.wait(receiver.script.stall_s)
        if step in ("drop", "stall"):
            self.close_connection = True
        elif isinstance(step, int):
            self._answer(step, {"error": "scripted failure"})
        elif not receiver.signature_verifies(body, self.headers.get("Carbonlink-Signature")):
            receiver.count_bad_signature()
            self._answer(401, {"error": "bad signature"})
        else:
            booked = receiver.book(key, body, dict(self.headers.items()))
            if step == "book-then-drop":
                self.close_connection = True
            else:
                self._answer(200, {"status": "booked" if booked else "already booked"})

    def _answer(self, status: int, document: dict[str, str]) -> None:
        script = self.server.receiver.script
        content = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            if script.retry_after is not None:
                self.send_header("Retry-After", script.retry_after)
            if script.location is not None:
                self.send_header("Location", script.location)
            self.end_headers()
            self.wfile.write(content)
        except OSError:  # the client gave up (a timeout test): nothing to answer
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class names it so
        """Quiet: tests read the receiver's counters, not its access log."""
