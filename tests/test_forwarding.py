"""The forwarder: issued credits reach a real webhook receiver exactly once, through failures, or die visibly."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonlink.keys import DeviceKey
from gateway.errors import StoreError
from gateway.forwarding.export_file import ExportFileSink
from gateway.forwarding.forwarder import Forwarder
from gateway.forwarding.model import CreditSink, Delivery, SinkError
from gateway.forwarding.retry import RetryPolicy
from gateway.forwarding.webhook import WebhookSink

from forwarding_queue import InMemoryForwardingQueue, ManualClock, RecordingObserver
from waiting import wait_for
from webhook_receiver import Script, Step, WebhookReceiver

GATEWAY_KEY = DeviceKey.from_seed(bytes(range(32)), "gateway-test")
POLICY = RetryPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, max_attempts=6)
TIMEOUT_S = 0.2
PASSES_MAX = 50
"""Passes a driven test makes at most before it gives up (each moves the clock past every retry)."""


def credit(number: int) -> tuple[str, bytes]:
    """An idempotency key and the canonical JSON payload of a made-up issued credit."""
    key = f"{number:064x}"
    return key, f'{{"credit_id":"{key}","reduction_co2e_g":{100 + number}.5}}'.encode()


class Setup:
    """A forwarder with an in-memory outbox, a manual clock and a fixed jitter draw."""

    def __init__(self, sinks: dict[str, CreditSink], *, policy: RetryPolicy = POLICY, jitter: float = 1.0) -> None:
        self.queue = InMemoryForwardingQueue()
        self.clock = ManualClock()
        self.observer = RecordingObserver()
        self.forwarder = Forwarder(
            self.queue, sinks, policy, self.observer, clock=self.clock, jitter=lambda: jitter, batch_max=10
        )

    def queue_credits(self, count: int, sink: str = "webhook") -> list[int]:
        return [self.queue.add(sink, *credit(number), at=self.clock()) for number in range(count)]

    def drive(self) -> int:
        """Run passes, moving the clock past every retry, until nothing is pending; the number of passes."""
        for passes in range(1, PASSES_MAX + 1):
            self.forwarder.run_once()
            if "pending" not in self.queue.states().values():
                return passes
            self.clock.advance(POLICY.max_s)
        pytest.fail(f"deliveries still pending after {PASSES_MAX} passes: {self.queue.states()}")


@pytest.fixture
def webhooks() -> Iterator[list[WebhookSink]]:
    made: list[WebhookSink] = []
    yield made
    for sink in made:
        sink.close()


def webhook(made: list[WebhookSink], receiver: WebhookReceiver) -> WebhookSink:
    sink = WebhookSink(receiver.url(), GATEWAY_KEY, timeout_s=TIMEOUT_S)
    made.append(sink)
    return sink


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param([503, 503, 503], id="unavailable"),
        pytest.param(["drop", "drop"], id="dropped"),
        pytest.param(["stall"], id="timed-out"),
        pytest.param(["book-then-drop", "book-then-drop"], id="booked-but-unanswered"),
        pytest.param([500, "drop", "book-then-drop", 429], id="mixed"),
    ],
)
def test_each_credit_arrives_exactly_once_despite_failures(plan: list[Step], webhooks: list[WebhookSink]) -> None:
    """Every credit is booked once, byte for byte, however its first attempts fail; all end delivered."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(plan=plan)) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)})
        ids = setup.queue_credits(4)
        setup.drive()
    assert receiver.booked == dict(credit(number) for number in range(4))
    assert receiver.bad_signatures == 0
    assert all(count == len(plan) + 1 for count in receiver.requests.values())
    assert setup.queue.all_in("delivered")
    assert {setup.queue.get(delivery_id).attempts for delivery_id in ids} == {len(plan) + 1}
    assert len(setup.observer.delivered_to) == 4
    assert setup.observer.failures == [("webhook", False)] * (4 * len(plan))


def test_retry_times_grow_and_are_capped(webhooks: list[WebhookSink]) -> None:
    """Against a receiver that is down, the waits between attempts double from 1 s up to the 8 s cap."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always=503)) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)})
        [delivery_id] = setup.queue_credits(1)
        setup.drive()
    history = setup.queue.get(delivery_id).history
    waits_s = [(attempt.retry_at - attempt.at).total_seconds() for attempt in history if attempt.retry_at is not None]
    assert waits_s == [1, 2, 4, 8, 8]


def test_a_delivery_is_not_tried_again_before_its_retry_time(webhooks: list[WebhookSink]) -> None:
    """A failed delivery is not due until its retry time: a pass before it sends nothing."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(plan=[503])) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)})
        setup.queue_credits(1)
        assert setup.forwarder.run_once() == 1
        setup.clock.advance(0.999)
        assert setup.forwarder.run_once() == 0
        setup.clock.advance(0.001)
        assert setup.forwarder.run_once() == 1
    assert sum(receiver.requests.values()) == 2
    assert setup.queue.all_in("delivered")


def test_after_the_limit_a_delivery_is_a_dead_letter_with_the_last_error(webhooks: list[WebhookSink]) -> None:
    """After max_attempts failures the delivery is dead (no retry time) and keeps the last error."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(plan=[503] * 5, always=502)) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)})
        [delivery_id] = setup.queue_credits(1)
        setup.drive()
    item = setup.queue.get(delivery_id)
    assert item.state == "dead"
    assert item.attempts == POLICY.max_attempts
    assert item.history[-1].retry_at is None
    assert item.last_error == f'webhook {receiver.url()} answered 502 Bad Gateway: {{"error": "scripted failure"}}'
    assert setup.observer.failures == [("webhook", False)] * 5 + [("webhook", True)]
    assert receiver.booked == {}


def test_a_400_is_a_dead_letter_at_once(webhooks: list[WebhookSink]) -> None:
    """A receiver that refuses the credit (400) is not asked again: dead after one attempt."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always=400)) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)})
        [delivery_id] = setup.queue_credits(1)
        assert setup.drive() == 1
    item = setup.queue.get(delivery_id)
    assert (item.state, item.attempts) == ("dead", 1)
    assert "answered 400" in (item.last_error or "")
    assert sum(receiver.requests.values()) == 1


def test_retry_after_is_honoured(webhooks: list[WebhookSink]) -> None:
    """A 429 with Retry-After: 5 makes the next attempt wait 5 s, not the backoff's 1 s."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(plan=[429], retry_after="5")) as receiver:
        setup = Setup({"webhook": webhook(webhooks, receiver)}, jitter=0.0)
        [delivery_id] = setup.queue_credits(1)
        setup.forwarder.run_once()
    [attempt] = setup.queue.get(delivery_id).history
    assert attempt.retry_at == attempt.at + timedelta(seconds=5)


def test_a_delivery_for_a_sink_not_configured_is_a_dead_letter(tmp_path: Path) -> None:
    """A delivery naming a sink this gateway lacks dies at once, saying which sinks there are; others go on."""
    export = ExportFileSink(tmp_path / "credits.jsonl")
    setup = Setup({"export_file": export})
    [missing] = setup.queue_credits(1, sink="webhook")
    [present] = setup.queue_credits(1, sink="export_file")
    setup.drive()
    export.close()
    item = setup.queue.get(missing)
    assert item.state == "dead"
    assert item.last_error == "no sink 'webhook' is configured on this gateway (configured: export_file)"
    assert setup.queue.get(present).state == "delivered"
    assert setup.observer.failures == [("webhook", True)]


class FailingOnceSink:
    """A sink with a bug: its first delivery raises something other than SinkError, then it works."""

    name = "buggy"

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.calls = 0
        self.closed = False

    def deliver(self, delivery: Delivery) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("a bug in the sink")
        self.taken.append(delivery.idempotency_key)

    def close(self) -> None:
        self.closed = True


def test_an_unexpected_exception_from_a_sink_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    """A sink's bug does not stop forwarding: logged as forwarding.failed, retried later, then delivered."""
    sink = FailingOnceSink()
    setup = Setup({"buggy": sink})
    [delivery_id] = setup.queue_credits(1, sink="buggy")
    with caplog.at_level(logging.WARNING, logger="carbonlink.gateway.forwarding"):
        assert setup.drive() == 2
    assert sink.taken == [credit(0)[0]]
    first = setup.queue.get(delivery_id).history[0]
    assert first.retry_at is not None
    assert first.error == "sink 'buggy' failed: KeyError: 'a bug in the sink'"
    assert any(record.message.startswith("forwarding.failed") and record.exc_info for record in caplog.records)


def test_latency_is_measured_from_the_credits_issue() -> None:
    """The observer hears the time from the delivery's creation to its delivery, by the injected clock."""
    sink = FailingOnceSink()
    sink.calls = 1  # no bug this time
    setup = Setup({"buggy": sink})
    setup.queue.add("buggy", *credit(0), at=setup.clock(), created_at=setup.clock() - timedelta(seconds=42))
    setup.forwarder.run_once()
    assert setup.observer.delivered_to == [("buggy", 42.0)]


def test_a_not_retryable_sink_error_makes_a_dead_letter_of_any_sink() -> None:
    """Whatever the sink, a SinkError that is not retryable ends the delivery with its message."""

    class RefusingSink:
        name = "refusing"

        def deliver(self, delivery: Delivery) -> None:
            raise SinkError(f"refused {delivery.idempotency_key[:6]}", retryable=False)

        def close(self) -> None:
            """Nothing to release."""

    setup = Setup({"refusing": RefusingSink()})
    [delivery_id] = setup.queue_credits(1, sink="refusing")
    setup.drive()
    assert setup.queue.get(delivery_id).last_error == "refused 000000"
    assert setup.queue.get(delivery_id).state == "dead"


# --- the thread ------------------------------------------------------------------------------------
def utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxDownOnce(InMemoryForwardingQueue):
    """An outbox whose first read fails like a database that is down."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        self.reads += 1
        if self.reads == 1:
            raise StoreError("the database is down")
        return super().due(now, limit)


def test_the_thread_delivers_through_failures_and_stops(
    webhooks: list[WebhookSink], caplog: pytest.LogCaptureFixture
) -> None:
    """Started, the forwarder survives an outbox error, retries failed attempts and books every credit once."""
    policy = RetryPolicy(initial_s=0.01, multiplier=2.0, max_s=0.05, max_attempts=10)
    queue = OutboxDownOnce()
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(plan=[503, "drop"])) as receiver:
        forwarder = Forwarder(
            queue,
            {"webhook": webhook(webhooks, receiver)},
            policy,
            RecordingObserver(),
            clock=utc_now,  # the real clock: this test runs in real time
            jitter=lambda: 0.5,
            batch_max=2,
            idle_wait_s=0.01,
        )
        for number in range(5):
            queue.add("webhook", *credit(number), at=utc_now())
        with caplog.at_level(logging.ERROR, logger="carbonlink.gateway.forwarding"):
            forwarder.start()
            forwarder.wake()
            wait_for(lambda: queue.all_in("delivered"), "every credit delivered")
            assert forwarder.stop(timeout_s=5.0)
    assert receiver.booked == dict(credit(number) for number in range(5))
    assert any(record.message.startswith("forwarding.pass_failed") for record in caplog.records)


class UnclosableSink(FailingOnceSink):
    """A sink whose close fails."""

    def close(self) -> None:
        raise OSError("cannot close")


def test_stop_closes_every_sink_even_when_one_fails_to_close(caplog: pytest.LogCaptureFixture) -> None:
    """A forwarder that never ran stops at once and closes its sinks; one failing to close is logged, not fatal."""
    first, second = FailingOnceSink(), FailingOnceSink()
    setup = Setup({"a": first, "broken": UnclosableSink(), "b": second})
    with caplog.at_level(logging.ERROR, logger="carbonlink.gateway.forwarding"):
        assert setup.forwarder.stop(timeout_s=0.0)
    assert first.closed
    assert second.closed
    assert [record.message for record in caplog.records] == ["forwarding.close_failed sink=broken"]


def test_a_thread_still_in_an_attempt_keeps_its_sinks_open(webhooks: list[WebhookSink]) -> None:
    """Stop reports False while an attempt outlasts its time, and leaves the sinks open; a later stop closes them."""
    with WebhookReceiver(GATEWAY_KEY.public_key.raw, Script(always="stall")) as receiver:
        sink = WebhookSink(receiver.url(), GATEWAY_KEY, timeout_s=5.0)
        webhooks.append(sink)
        setup = Setup({"webhook": sink})
        setup.queue_credits(1)
        setup.forwarder.start()
        wait_for(lambda: sum(receiver.requests.values()) == 1, "the attempt to reach the receiver")
        assert not setup.forwarder.stop(timeout_s=0.0)
        assert not sink._client.is_closed
        receiver.release.set()  # the stalled answer ends: the attempt fails, the thread sees the stop
        assert setup.forwarder.stop(timeout_s=5.0)
    assert sink._client.is_closed
