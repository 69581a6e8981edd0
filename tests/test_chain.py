"""The chain rule: sequence +1 and the previous record's hash, per device."""

import hashlib

import pytest

from carbonlink.chain import GENESIS_PREVIOUS_HASH, check_link, record_hash
from carbonlink.envelope import sign
from carbonlink.errors import ChainError
from carbonlink.reasons import RejectionReason

from records_factory import key_from_byte, make_charge, make_trip

KEY = key_from_byte(3)


def test_record_hash_is_sha256_of_the_signed_bytes() -> None:
    """A record is named by the SHA-256 of exactly the bytes that were signed and sent."""
    signed = sign(make_trip(), KEY)
    assert record_hash(signed) == hashlib.sha256(signed).digest()


def test_first_record_follows_nothing() -> None:
    """Sequence 1 with 32 zero bytes as previous hash starts a chain."""
    check_link(None, None, make_trip(sequence=1, previous_record_hash=GENESIS_PREVIOUS_HASH))


def test_first_record_must_have_sequence_one() -> None:
    """A device's first record with sequence 2 means one was lost."""
    with pytest.raises(ChainError) as caught:
        check_link(None, None, make_trip(sequence=2))
    assert caught.value.reason is RejectionReason.SEQUENCE_GAP


def test_successor_links_by_sequence_and_hash() -> None:
    """The next record names the previous record's hash and the next sequence number."""
    first = make_trip()
    first_signed = sign(first, KEY)
    second = make_charge(sequence=2, previous_record_hash=record_hash(first_signed))
    check_link(first_signed, first, second)


@pytest.mark.parametrize(("sequence", "reason"), [(3, RejectionReason.SEQUENCE_GAP), (1, RejectionReason.SEQUENCE_GAP)])
def test_skipped_or_repeated_sequence_is_a_gap(sequence: int, reason: RejectionReason) -> None:
    """A sequence number that does not rise by exactly one is refused as a gap."""
    first = make_trip()
    first_signed = sign(first, KEY)
    with pytest.raises(ChainError) as caught:
        check_link(first_signed, first, make_charge(sequence=sequence, previous_record_hash=record_hash(first_signed)))
    assert caught.value.reason is reason


def test_wrong_previous_hash_is_a_chain_break() -> None:
    """A record naming another predecessor breaks the chain."""
    first = make_trip()
    first_signed = sign(first, KEY)
    with pytest.raises(ChainError) as caught:
        check_link(first_signed, first, make_charge(sequence=2, previous_record_hash=b"\x01" * 32))
    assert caught.value.reason is RejectionReason.CHAIN_BREAK


def test_records_of_two_devices_do_not_chain() -> None:
    """Each device has its own chain."""
    first = make_trip()
    first_signed = sign(first, KEY)
    other = make_charge(device_id="ev-other-car", sequence=2, previous_record_hash=record_hash(first_signed))
    with pytest.raises(ChainError) as caught:
        check_link(first_signed, first, other)
    assert caught.value.reason is RejectionReason.DEVICE_MISMATCH
