"""The export file sink: one JSON line per credit, fsynced, each idempotency key once, across re-opens."""

import json
import logging
from pathlib import Path

import pytest

from gateway.forwarding.export_file import ExportFileSink, export_line
from gateway.forwarding.forwarder import Forwarder
from gateway.forwarding.model import Delivery, SinkError
from gateway.forwarding.retry import RetryPolicy

from forwarding_queue import InMemoryForwardingQueue, ManualClock, RecordingObserver

PAYLOAD = b'{"credit_id":"ab12","owner_id":"owner-1","reduction_co2e_g":1234.5}'


def delivery(key: str = "ab12", payload: bytes = PAYLOAD, delivery_id: int = 1) -> Delivery:
    return Delivery(delivery_id=delivery_id, sink="export_file", idempotency_key=key, payload=payload, attempts=0)


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def deliver_all(path: Path, *items: Delivery) -> None:
    sink = ExportFileSink(path)
    try:
        for item in items:
            sink.deliver(item)
    finally:
        sink.close()


def test_each_credit_is_one_canonical_json_line(tmp_path: Path) -> None:
    """A line holds the payload as it came and the idempotency key, in canonical JSON, ending in a newline."""
    path = tmp_path / "credits.jsonl"
    deliver_all(path, delivery())
    expected = b'{"credit":' + PAYLOAD + b',"idempotency_key":"ab12"}\n'
    assert path.read_bytes() == expected
    document = json.loads(expected)
    assert json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n" == expected


def test_a_key_delivered_twice_is_written_once(tmp_path: Path) -> None:
    """Delivering the same key again succeeds and writes nothing."""
    path = tmp_path / "credits.jsonl"
    deliver_all(path, delivery("a"), delivery("b"), delivery("a"), delivery("b"))
    assert [line["idempotency_key"] for line in lines_of(path)] == ["a", "b"]


def test_keys_are_remembered_across_reopening(tmp_path: Path) -> None:
    """A new sink on the same file (a restart) reads the keys back and does not write them again."""
    path = tmp_path / "credits.jsonl"
    deliver_all(path, delivery("a"), delivery("b"))
    deliver_all(path, delivery("b"), delivery("c"), delivery("a"))
    assert [line["idempotency_key"] for line in lines_of(path)] == ["a", "b", "c"]


def test_the_forwarder_writes_a_credit_queued_twice_once(tmp_path: Path) -> None:
    """Two deliveries of one credit (a re-delivery after a crash) both end delivered; the file has it once."""
    path = tmp_path / "credits.jsonl"
    queue, clock = InMemoryForwardingQueue(), ManualClock()
    sink = ExportFileSink(path)
    forwarder = Forwarder(
        queue, {"export_file": sink}, RetryPolicy(), RecordingObserver(), clock=clock, jitter=lambda: 0.5
    )
    for _ in range(2):
        queue.add("export_file", "ab12", PAYLOAD, at=clock())
    assert forwarder.run_once() == 2
    sink.close()
    assert queue.all_in("delivered")
    assert lines_of(path) == [{"credit": json.loads(PAYLOAD), "idempotency_key": "ab12"}]


def test_missing_directories_are_created(tmp_path: Path) -> None:
    """The file's parent directories are made on first use."""
    path = tmp_path / "exports" / "2026" / "credits.jsonl"
    deliver_all(path, delivery())
    assert len(lines_of(path)) == 1


def test_a_line_cut_short_by_a_crash_is_cut_off_and_written_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A last line without its newline (a write cut short) is removed at open; its credit is written whole."""
    path = tmp_path / "credits.jsonl"
    deliver_all(path, delivery("a"))
    whole = path.read_bytes()
    torn = export_line(delivery("b"))[:-9]
    path.write_bytes(whole + torn)
    with caplog.at_level(logging.WARNING, logger="carbonlink.gateway.forwarding"):
        deliver_all(path, delivery("b"), delivery("a"))
    assert path.read_bytes() == whole + export_line(delivery("b"))
    assert any(record.message.startswith("forwarding.export_file.torn_line_cut") for record in caplog.records)


def test_a_line_that_is_not_ours_is_skipped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A line that is not JSON with a key (edited by hand) is left alone and logged; the other keys still count."""
    path = tmp_path / "credits.jsonl"
    path.write_bytes(b"not json\n" + export_line(delivery("a")) + b'{"credit":{}}\n')
    with caplog.at_level(logging.WARNING, logger="carbonlink.gateway.forwarding"):
        deliver_all(path, delivery("a"), delivery("b"))
    assert path.read_bytes().count(b"\n") == 4
    bad = [record.message for record in caplog.records if record.message.startswith("forwarding.export_file.bad_line")]
    assert [message.rsplit(" ", 1)[1] for message in bad] == ["line=1", "line=3"]


def test_a_full_disk_is_a_retryable_error_naming_the_path() -> None:
    """Writing to a device that is full (/dev/full: ENOSPC) gives a retryable SinkError naming the path."""
    path = Path("/dev/full")
    if not path.exists():
        pytest.skip("this system has no /dev/full")
    sink = ExportFileSink(path)
    try:
        with pytest.raises(SinkError, match="export file /dev/full: No space left on device") as caught:
            sink.deliver(delivery())
    finally:
        sink.close()
    assert caught.value.retryable


def test_an_unwritable_path_is_retryable_and_recovers(tmp_path: Path) -> None:
    """A path that cannot be made (its parent is a file) is retryable; once mended, the next attempt writes."""
    blocker = tmp_path / "exports"
    blocker.write_text("in the way", encoding="utf-8")
    path = blocker / "credits.jsonl"
    sink = ExportFileSink(path)
    try:
        with pytest.raises(SinkError) as caught:
            sink.deliver(delivery())
        assert caught.value.retryable
        assert str(caught.value).startswith(f"export file {path}: ")
        blocker.unlink()
        sink.deliver(delivery())
    finally:
        sink.close()
    assert len(lines_of(path)) == 1


def test_a_payload_that_is_not_json_is_refused_for_good(tmp_path: Path) -> None:
    """A payload that is not JSON would spoil the file: a SinkError that is not retryable, nothing written."""
    path = tmp_path / "credits.jsonl"
    sink = ExportFileSink(path)
    try:
        with pytest.raises(SinkError, match="not JSON") as caught:
            sink.deliver(delivery(payload=b'{"credit_id": '))
    finally:
        sink.close()
    assert not caught.value.retryable
    assert not path.exists()


def test_a_payload_over_several_lines_is_written_on_one(tmp_path: Path) -> None:
    """A pretty-printed payload is spelled compactly, so each credit stays one line."""
    path = tmp_path / "credits.jsonl"
    pretty = json.dumps(json.loads(PAYLOAD), indent=2).encode()
    deliver_all(path, delivery(payload=pretty))
    assert path.read_bytes() == b'{"credit":' + PAYLOAD + b',"idempotency_key":"ab12"}\n'
