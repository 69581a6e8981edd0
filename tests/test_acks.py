"""Acks name exactly one record and one outcome, and reading them never crashes."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink.acks import MAX_ACK_BYTES, Ack, Outcome, decode_ack, encode_ack
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
        (b" " * 2049, "over 2048"),
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


def test_ack_for_unreadable_bytes_names_only_their_hash() -> None:
    """Bytes the gateway cannot read are still acknowledged, by the hash of what was sent."""
    ack = Ack(
        record_id=None,
        sequence=None,
        record_hash=HASH,
        outcome=Outcome.REJECTED,
        reason=RejectionReason.MALFORMED,
        detail="signed record is not valid CBOR",
    )
    assert decode_ack(encode_ack(ack)) == ack


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record_id": "has space"}, "not a record id"),
        ({"sequence": 0}, "out of range"),
        ({"record_hash": b"short"}, "32 bytes"),
        ({"detail": "two\nlines"}, "printable line"),
        ({"detail": "x" * 201}, "at most 200"),
    ],
)
def test_ack_fields_are_validated(changes: dict[str, object], message: str) -> None:
    """An ack with a malformed id, sequence, hash or detail cannot be built."""
    values: dict[str, object] = {"record_id": "r-1", "sequence": 1, "record_hash": HASH, "outcome": Outcome.ACCEPTED}
    with pytest.raises(MalformedError, match=message):
        Ack(**(values | changes))  # type: ignore[arg-type]


_record_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True)
_details = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")), max_size=200)


@given(
    record_id=st.none() | _record_ids,
    sequence=st.none() | st.integers(1, 2**63 - 1),
    reason=st.sampled_from(RejectionReason),
    detail=st.none() | _details,
)
def test_every_valid_ack_fits_and_reads_back(
    record_id: str | None, sequence: int | None, reason: RejectionReason, detail: str | None
) -> None:
    """Whatever a valid ack holds, it encodes within the size cap and decodes to itself."""
    ack = Ack(
        record_id=record_id, sequence=sequence, record_hash=HASH, outcome=Outcome.REJECTED, reason=reason, detail=detail
    )
    assert decode_ack(encode_ack(ack)) == ack


def test_longest_ack_fits_the_cap() -> None:
    """The largest possible ack (longest id, 200 four-byte characters) is within MAX_ACK_BYTES."""
    ack = Ack(
        record_id="r" * 128,
        sequence=2**63 - 1,
        record_hash=HASH,
        outcome=Outcome.REJECTED,
        reason=RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY,
        detail="\U0001f600" * 200,
    )
    assert len(encode_ack(ack)) <= MAX_ACK_BYTES
