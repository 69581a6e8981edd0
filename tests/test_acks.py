"""Acks name exactly one record and one outcome, and reading them never crashes."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.acks import Ack, Outcome, decode_ack, encode_ack
from carbonlink.errors import CarbonlinkError, MalformedError
from carbonlink.reasons import RejectionReason

HASH = bytes(range(32))


def test_accepted_ack_round_trips_as_compact_json() -> None:
    """An ack is sorted, compact JSON that reads back to the same value."""
    ack = Ack(record_id="r-1", sequence=7, record_hash=HASH, outcome=Outcome.ACCEPTED)
    encoded = encode_ack(ack)
    assert encoded.startswith(b'{"detail":null,"outcome":"accepted","reason":null,"record_hash":"0001')
    assert decode_ack(encoded) == ack


def test_rejected_ack_carries_its_reason() -> None:
    """A rejection names one of the fixed reasons and may explain it in one line."""
    ack = Ack(
        record_id="r-2",
        sequence=8,
        record_hash=HASH,
        outcome=Outcome.REJECTED,
        reason=RejectionReason.ODOMETER_ROLLBACK,
        detail="odometer 48210.0 km is below the previous record's 48222.4 km",
    )
    assert decode_ack(encode_ack(ack)).reason is RejectionReason.ODOMETER_ROLLBACK


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.REJECTED, None),
        (Outcome.ACCEPTED, RejectionReason.SCHEMA),
        (Outcome.DUPLICATE, RejectionReason.REPLAYED),
    ],
)
def test_reason_exactly_when_rejected(outcome: Outcome, reason: RejectionReason | None) -> None:
    """An ack has a reason if and only if it rejects."""
    with pytest.raises(MalformedError, match="exactly when"):
        Ack(record_id="r", sequence=1, record_hash=HASH, outcome=outcome, reason=reason)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "not UTF-8 JSON"),
        (b"[]", "must be an object"),
        (b'{"record_id":"r","sequence":1}', "must be an object"),
        (
            b'{"detail":null,"outcome":"maybe","reason":null,"record_hash":"'
            + b"00" * 32
            + b'","record_id":"r","sequence":1}',
            "unknown outcome",
        ),
        (
            b'{"detail":null,"outcome":"accepted","reason":null,"record_hash":"00","record_id":"r","sequence":1}',
            "record_hash",
        ),
        (
            b'{"detail":null,"outcome":"accepted","reason":null,"record_hash":"'
            + b"00" * 32
            + b'","record_id":"r","sequence":"1"}',
            "sequence an integer",
        ),
        (b" " * 2000, "over 1024"),
    ],
)
def test_bad_acks_are_refused_with_a_reason(data: bytes, message: str) -> None:
    """Anything that is not exactly an ack raises MalformedError naming the problem."""
    with pytest.raises(MalformedError, match=message):
        decode_ack(data)


@given(st.binary(max_size=1100))
def test_decoding_arbitrary_bytes_raises_only_our_errors(data: bytes) -> None:
    """Whatever arrives on the ack topic, the reader raises nothing but a carbonlink error."""
    with contextlib.suppress(CarbonlinkError):
        decode_ack(data)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_decoding_arbitrary_json_raises_only_our_errors(value: object) -> None:
    """Well-formed JSON of any other shape is refused as malformed, never crashes the reader."""
    import json  # noqa: PLC0415 - only this test builds JSON

    with pytest.raises(MalformedError):
        decode_ack(json.dumps(value).encode())
