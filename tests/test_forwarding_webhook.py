"""The webhook sink against a real HTTP receiver on 127.0.0.1, and the signature receivers check."""

import base64
import re
import runpy
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.keys import DeviceKey
from gateway.errors import ConfigError
from gateway.forwarding.model import Delivery, SinkError
from gateway.forwarding.signature import WebhookSignatureError, sign_payload, verify_webhook
from gateway.forwarding.webhook import WebhookSink, retry_after_s, safe_url

from webhook_receiver import Script, WebhookReceiver

GATEWAY_KEY = DeviceKey.from_seed(bytes(range(32)), "gateway-test")
OTHER_KEY = DeviceKey.from_seed(bytes(range(1, 33)), "gateway-other")
PAYLOAD = b'{"credit_id":"ab12","owner_id":"owner-1","reduction_co2e_g":1234.5}'
TIMEOUT_S = 0.3


def delivery(key: str = "ab12", payload: bytes = PAYLOAD) -> Delivery:
    return Delivery(delivery_id=1, sink="webhook", idempotency_key=key, payload=payload, attempts=0)


@pytest.fixture
def sinks() -> Iterator[list[WebhookSink]]:
    """Sinks built by a test, closed after it."""
    made: list[WebhookSink] = []
    yield made
    for sink in made:
        sink.close()


def sink_for(
    made: list[WebhookSink], url: str, *, transport: httpx.BaseTransport | None = None, timeout_s: float = TIMEOUT_S
) -> WebhookSink:
    sink = WebhookSink(url, GATEWAY_KEY, timeout_s=timeout_s, transport=transport)
    made.append(sink)
    return sink


def refusal(sink: WebhookSink, item: Delivery | None = None) -> SinkError:
    with pytest.raises(SinkError) as caught:
        sink.deliver(item or delivery())
    return caught.value


# --- delivery --------------------------------------------------------------------------------------
def test_the_receiver_gets_the_exact_bytes_with_the_promised_headers(sinks: list[WebhookSink]) -> None:
    """A 2xx delivers: the body is the payload byte for byte, with type, idempotency key, key id and signature."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw) as receiver:
        sink_for(sinks, receiver.url()).deliver(delivery())
    assert receiver.booked == {"ab12": PAYLOAD}
    headers = {name.lower(): value for name, value in receiver.headers["ab12"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "ab12"
    assert headers["carbonlink-key-id"] == GATEWAY_KEY.kid.hex()
    assert headers["carbonlink-signature"].startswith("ed25519=")
    assert receiver.bad_signatures == 0


def test_a_repeat_is_answered_and_booked_once(sinks: list[WebhookSink]) -> None:
    """Delivering the same credit twice succeeds both times; the receiver books it once."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw) as receiver:
        sink = sink_for(sinks, receiver.url())
        sink.deliver(delivery())
        sink.deliver(delivery())
    assert receiver.requests["ab12"] == 2
    assert receiver.repeats["ab12"] == 1
    assert list(receiver.booked) == ["ab12"]


def test_a_body_signed_by_another_key_is_refused_by_the_receiver(sinks: list[WebhookSink]) -> None:
    """The receiver's own check (pynacl alone) refuses a gateway it does not know: 401, not retried."""
    with WebhookReceiver(OTHER_KEY.public_key.raw) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert not error.retryable
    assert "401" in str(error)
    assert receiver.bad_signatures == 1
    assert receiver.booked == {}


def test_a_changed_byte_fails_the_receivers_check() -> None:
    """The receiver refuses a body changed after signing (one byte), and books the unchanged one."""
    headers = {"Idempotency-Key": "ab12", "Content-Type": "application/json", **sign_payload(GATEWAY_KEY, PAYLOAD)}
    changed = PAYLOAD.replace(b"1234.5", b"9234.5")
    with WebhookReceiver(GATEWAY_KEY.public_key.raw) as receiver, httpx.Client() as client:
        assert client.post(receiver.url(), content=changed, headers=headers).status_code == 401
        assert client.post(receiver.url(), content=PAYLOAD, headers=headers).status_code == 200
    assert receiver.booked == {"ab12": PAYLOAD}


# --- failures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_not_now_answers_are_retryable(status: int, sinks: list[WebhookSink]) -> None:
    """408, 425, 429 and 5xx may pass: a retryable SinkError naming the URL and the status."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always=status)) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert error.retryable
    assert f"webhook {receiver.url()} answered {status}" in str(error)
    assert error.retry_after_s is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 413, 422])
def test_other_client_errors_are_not_retryable(status: int, sinks: list[WebhookSink]) -> None:
    """Any other 4xx will not change by asking again: a SinkError that is not retryable."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always=status)) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert not error.retryable
    assert f"answered {status}" in str(error)
    assert "scripted failure" in str(error)  # the receiver's own words, for the operator


def test_retry_after_seconds_is_passed_on(sinks: list[WebhookSink]) -> None:
    """A 429 with Retry-After: 7 is retryable after at least 7 s."""
    script = Script(always=429, retry_after="7")
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, script) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert error.retryable
    assert error.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("header", "seconds"), [("120", 120.0), (" 0 ", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-5", None)]
)
def test_retry_after_is_read_in_seconds_only(header: str, seconds: float | None) -> None:
    """Delay-seconds are read; an HTTP-date or a negative number is ignored (the backoff decides)."""
    assert retry_after_s(header) == seconds


def test_a_redirect_is_not_followed(sinks: list[WebhookSink]) -> None:
    """A 3xx is not followed (a signed credit goes only where configured) and is not retried."""
    script = Script(always=307, location="http://user:pw@elsewhere.example/take?token=s3cret")
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, script) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert not error.retryable
    assert "redirects are not followed" in str(error)
    assert "http://elsewhere.example/take" in str(error)
    assert "s3cret" not in str(error)
    assert "pw" not in str(error)
    assert sum(receiver.requests.values()) == 1


def test_no_answer_within_the_timeout_is_retryable(sinks: list[WebhookSink]) -> None:
    """A receiver that stalls past the client's timeout gives a retryable SinkError saying so."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always="stall")) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert error.retryable
    assert f"no answer within {TIMEOUT_S:g} s" in str(error)


def test_a_dropped_connection_is_retryable(sinks: list[WebhookSink]) -> None:
    """A receiver that closes the connection without an answer gives a retryable SinkError."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always="drop")) as receiver:
        error = refusal(sink_for(sinks, receiver.url()))
    assert error.retryable
    assert receiver.url() in str(error)


def test_a_refused_connection_is_retryable(sinks: list[WebhookSink]) -> None:
    """Nobody listening on the port: a retryable SinkError naming the URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refusal(sink_for(sinks, f"http://127.0.0.1:{port}/credits"))
    assert error.retryable
    assert f"http://127.0.0.1:{port}/credits" in str(error)


def test_messages_never_name_the_urls_credentials(sinks: list[WebhookSink]) -> None:
    """The URL's user, password and query (tokens) appear in no message; the receiver still gets basic auth."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always=503)) as receiver:
        url = f"http://registry:hunter2@127.0.0.1:{receiver.port}/credits?token=t0ps3cret"
        error = refusal(sink_for(sinks, url))
    message = str(error)
    assert "hunter2" not in message
    assert "t0ps3cret" not in message
    assert "registry" not in message
    assert f"http://127.0.0.1:{receiver.port}/credits answered 503" in message


@pytest.mark.parametrize("key", ["", "line\nbreak", "ünïcode", "k" * 201])
def test_an_idempotency_key_that_cannot_be_a_header_is_not_retryable(key: str, sinks: list[WebhookSink]) -> None:
    """A key that is empty, too long or not printable ASCII is refused before sending, for good."""
    sink = sink_for(sinks, "http://127.0.0.1:9/credits")
    error = refusal(sink, delivery(key=key))
    assert not error.retryable
    assert "idempotency key" in str(error)


# --- odd transports (httpx's own fake transport) -----------------------------------------------------
def test_a_read_error_of_the_transport_is_retryable(sinks: list[WebhookSink]) -> None:
    """A network error raised by the transport becomes a retryable SinkError naming its kind."""

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    error = refusal(sink_for(sinks, "https://registry.example/credits", transport=httpx.MockTransport(broken)))
    assert error.retryable
    assert "ReadError" in str(error)


def test_a_huge_error_body_is_quoted_short(sinks: list[WebhookSink]) -> None:
    """A refusing receiver's long body is quoted in at most 200 characters, on one line."""
    body = ("error\n" * 100_000).encode()
    transport = httpx.MockTransport(lambda _: httpx.Response(500, content=body))
    error = refusal(sink_for(sinks, "https://registry.example/credits", transport=transport))
    detail = str(error).split("answered 500 Internal Server Error: ", 1)[1]
    assert detail == ("error " * 40)[:200]


def test_an_accepted_answer_of_any_2xx_delivers(sinks: list[WebhookSink]) -> None:
    """202 Accepted and 204 No Content deliver as well as 200."""
    seen: list[bytes] = []

    def accept(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(202 if len(seen) == 1 else 204)

    sink = sink_for(sinks, "https://registry.example/credits", transport=httpx.MockTransport(accept))
    sink.deliver(delivery())
    sink.deliver(delivery())
    assert seen == [PAYLOAD, PAYLOAD]


@pytest.mark.parametrize("url", ["ftp://registry.example/credits", "registry.example/credits", "https:///credits"])
def test_a_webhook_url_must_be_http_with_a_host(url: str) -> None:
    """Anything but an http(s) URL with a host is refused at construction."""
    with pytest.raises(ConfigError, match="http"):
        WebhookSink(url, GATEWAY_KEY)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://u:p@registry.example:8443/a/b?token=x#frag", "https://registry.example:8443/a/b"),
        ("http://[::1]:8080/credits", "http://[::1]:8080/credits"),
        ("https://registry.example", "https://registry.example"),
        ("http://host:notaport/", "<unparsable URL>"),
    ],
)
def test_a_safe_url_keeps_scheme_host_port_and_path_only(url: str, safe: str) -> None:
    """Messages show scheme, host, port and path: no user, password, query or fragment."""
    assert safe_url(url) == safe


# --- the signature ---------------------------------------------------------------------------------
def test_a_signed_body_verifies() -> None:
    """verify_webhook accepts the headers sign_payload made, whatever the case of their names."""
    headers = sign_payload(GATEWAY_KEY, PAYLOAD)
    verify_webhook(PAYLOAD, headers, GATEWAY_KEY.public_key)
    verify_webhook(PAYLOAD, {name.upper(): value for name, value in headers.items()}, GATEWAY_KEY.public_key)


@given(index=st.integers(min_value=0, max_value=len(PAYLOAD) - 1), flip=st.integers(min_value=1, max_value=255))
def test_the_signature_fails_when_one_byte_changes(index: int, flip: int) -> None:
    """Changing any one byte of the body makes verification fail."""
    headers = sign_payload(GATEWAY_KEY, PAYLOAD)
    changed = bytearray(PAYLOAD)
    changed[index] ^= flip
    with pytest.raises(WebhookSignatureError, match="does not verify"):
        verify_webhook(bytes(changed), headers, GATEWAY_KEY.public_key)


def _signature_of(value: bytes) -> str:
    return "ed25519=" + base64.b64encode(value).decode()


@pytest.mark.parametrize(
    ("headers", "complaint"),
    [
        ({}, "no Carbonlink-Signature"),
        ({"Carbonlink-Signature": "hmac-sha256=abc"}, "must start with 'ed25519='"),
        ({"Carbonlink-Signature": "ed25519=not base64!"}, "not base64"),
        ({"Carbonlink-Signature": _signature_of(bytes(10))}, "holds 10 bytes"),
        ({"Carbonlink-Key-Id": OTHER_KEY.kid.hex()}, "signed with key"),
        ({"Carbonlink-Signature": _signature_of(OTHER_KEY.sign(PAYLOAD))}, "does not verify"),
    ],
)
def test_a_bad_signature_header_is_named(headers: dict[str, str], complaint: str) -> None:
    """Missing, malformed, foreign-key or wrong signatures raise WebhookSignatureError saying which."""
    signed = sign_payload(GATEWAY_KEY, PAYLOAD)
    if "Carbonlink-Signature" not in headers and complaint != "no Carbonlink-Signature":
        headers = {**signed, **headers}
    with pytest.raises(WebhookSignatureError, match=complaint):
        verify_webhook(PAYLOAD, headers, GATEWAY_KEY.public_key)


def test_the_receivers_example_in_the_docs_verifies(tmp_path: Path) -> None:
    """docs/forwarding.md's pynacl example accepts a signed body and refuses it when one byte changes."""
    text = (Path(__file__).parent.parent / "docs" / "forwarding.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    module = tmp_path / "receiver_example.py"
    module.write_text(example, encoding="utf-8")
    verify = runpy.run_path(str(module))["verify"]
    headers = {"Idempotency-Key": "ab12", **sign_payload(GATEWAY_KEY, PAYLOAD)}
    public_key_hex = GATEWAY_KEY.public_key.raw.hex()
    verify(PAYLOAD, headers, public_key_hex)
    with pytest.raises(ValueError, match="does not verify"):
        verify(PAYLOAD.replace(b"owner-1", b"owner-2"), headers, public_key_hex)
    with pytest.raises(ValueError, match="no Ed25519 signature"):
        verify(PAYLOAD, {"Idempotency-Key": "ab12"}, public_key_hex)
