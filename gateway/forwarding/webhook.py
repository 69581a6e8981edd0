"""The webhook sink: POST each issued credit, signed with the gateway's own key, to one URL over httpx.

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <the credit's id, the same on every attempt>
    Carbonlink-Key-Id: <hex kid>            (see gateway.forwarding.signature)
    Carbonlink-Signature: ed25519=<base64>
    <the payload's exact bytes>

Any 2xx means the receiver has the credit. 408, 425, 429, any 5xx, a timeout or a broken connection
may pass and are retried (a ``Retry-After`` in seconds lengthens the wait); any other answer will not
change by asking again and makes a dead letter at once: other 4xx, and 3xx too, because redirects are
never followed (a signed credit goes only where the operator pointed it). Messages name the URL
without its credentials, query or fragment.
"""

import logging
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from carbonlink import __version__
from carbonlink.keys import DeviceKey
from gateway.errors import ConfigError
from gateway.forwarding.model import Delivery, SinkError
from gateway.forwarding.signature import sign_payload

log = logging.getLogger("carbonlink.gateway.forwarding")

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
"""Client errors that say "not now" rather than "not this" (besides every 5xx)."""
RESPONSE_READ_MAX_BYTES = 64 * 1024
"""Of a response body, read at most this much (a receiver's answer is small; the rest is dropped)."""
ERROR_EXCERPT_CHARS = 200
"""Of a refusing response body, quote at most this much in the error."""
IDEMPOTENCY_KEY_MAX_CHARS = 200
_SERVER_ERROR = 500
_SUCCESS = range(200, 300)
_REDIRECT = range(300, 400)


class WebhookSink:
    """Delivers each credit as one signed HTTP POST (see the module docstring). Not thread-safe: one forwarder."""

    name: str

    def __init__(
        self,
        url: str,
        signing_key: DeviceKey,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        name: str = "webhook",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"a webhook URL must be http(s) with a host, not {safe_url(url)!r}")
        if not timeout_s > 0:
            raise ConfigError(f"a webhook timeout must be above 0 s, not {timeout_s!r}")
        self.name = name
        self.url = url
        self.safe_url = safe_url(url)
        """The URL as messages and logs name it: no credentials, query or fragment."""
        self._secret = parts.password
        self._key = signing_key
        self._timeout_s = timeout_s
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            # identity: an error's excerpt is read raw, and a compressed body would only be noise there.
            headers={"User-Agent": f"carbonlink-gateway/{__version__}", "Accept-Encoding": "identity"},
        )

    def deliver(self, delivery: Delivery) -> None:
        """POST the delivery; return on a 2xx, else raise :class:`SinkError` (see the module docstring)."""
        key = delivery.idempotency_key
        if not key or len(key) > IDEMPOTENCY_KEY_MAX_CHARS or not (key.isascii() and key.isprintable()):
            raise SinkError(
                f"webhook {self.safe_url}: idempotency key {key[:40]!r} cannot be an HTTP header "
                f"(1-{IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters)",
                retryable=False,
            )
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        headers.update(sign_payload(self._key, delivery.payload))
        try:
            with self._client.stream("POST", self.url, content=delivery.payload, headers=headers) as response:
                excerpt = _read_bounded(response)
        except httpx.TimeoutException as err:
            raise SinkError(
                f"webhook {self.safe_url}: no answer within {self._timeout_s:g} s ({type(err).__name__})",
                retryable=True,
            ) from err
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as err:
            # Our own request is at fault: sending it again gives the same.
            raise SinkError(f"webhook {self.safe_url}: cannot send: {self._scrub(str(err))}", retryable=False) from err
        except httpx.HTTPError as err:
            raise SinkError(
                f"webhook {self.safe_url}: {type(err).__name__}: {self._scrub(str(err)) or 'connection failed'}",
                retryable=True,
            ) from err
        self._judge(response, excerpt)

    def _judge(self, response: httpx.Response, excerpt: str) -> None:
        status = response.status_code
        if status in _SUCCESS:
            log.debug("forwarding.webhook.delivered url=%s status=%d", self.safe_url, status)
            return
        answered = f"webhook {self.safe_url} answered {status} {response.reason_phrase}".rstrip()
        if status in _REDIRECT:
            location = safe_url(response.headers.get("Location", ""))
            raise SinkError(f"{answered} to {location!r}: redirects are not followed", retryable=False)
        detail = f": {self._scrub(excerpt)}" if excerpt else ""
        if status in RETRYABLE_STATUSES or status >= _SERVER_ERROR:
            raise SinkError(
                f"{answered}{detail}", retryable=True, retry_after_s=retry_after_s(response.headers.get("Retry-After"))
            )
        raise SinkError(f"{answered}{detail}", retryable=False)

    def _scrub(self, text: str) -> str:
        """``text`` without the URL's password (a library's message might quote the URL)."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()


def safe_url(url: str) -> str:
    """``url`` with its user, password, query and fragment left out: fit for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds; None when absent or an HTTP-date (not read: no clock here)."""
    if value is None:
        return None
    value = value.strip()
    return float(value) if value.isdigit() and value.isascii() else None


def _read_bounded(response: httpx.Response) -> str:
    """Up to :data:`ERROR_EXCERPT_CHARS` of the body, reading at most :data:`RESPONSE_READ_MAX_BYTES` of it."""
    if response.is_stream_consumed:  # read already (an in-memory transport)
        return _excerpt(response.content[:RESPONSE_READ_MAX_BYTES])
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) >= RESPONSE_READ_MAX_BYTES:
            break  # the rest is dropped with the connection
    return _excerpt(bytes(body))


def _excerpt(body: bytes) -> str:
    text = body[: ERROR_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return " ".join(text.split())[:ERROR_EXCERPT_CHARS]
