"""The committed golden vectors in ``tests/vectors/`` pin the wire format byte for byte.

These tests never regenerate the vectors: a change to the signed bytes fails here until the vectors
are rewritten on purpose with ``tests/vectors/make_vectors.py`` and the diff is reviewed.
"""

import hashlib
import json
import types
from collections.abc import Iterator
from dataclasses import fields
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints

import pytest

from carbonlink.chain import check_link, record_hash
from carbonlink.envelope import open_envelope, sign, verify
from carbonlink.errors import CarbonlinkError, ChainError
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import Record, TripRecord
from carbonlink.wire import record_from_json, record_to_json

VECTORS = Path(__file__).parent / "vectors"

# RFC 9679 thumbprint input for an Ed25519 key, before the 32 key bytes: {1: 1, -1: 6, -2: h'...'}
THUMBPRINT_PREFIX = bytes.fromhex("a301012006215820")


class RecordVector(TypedDict):
    """One entry of records.json: a valid record, its key and its exact signed bytes."""

    name: str
    description: str
    seed: str
    device_id: str
    public_key: str
    kid: str
    signed: str
    record_hash: str
    type: str
    record: dict[str, object]


class InvalidVector(TypedDict):
    """One entry of invalid.json: bytes (zero-padded to ``pad_to_length`` if given) and the error they raise."""

    name: str
    description: str
    error: str
    public_key: str
    hex: str
    pad_to_length: NotRequired[int]


def _load(name: str) -> Any:  # noqa: ANN401 - JSON; typed by the constants it fills
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


RECORD_VECTORS: list[RecordVector] = _load("records.json")
INVALID_VECTORS: list[InvalidVector] = _load("invalid.json")
BY_NAME = {vector["name"]: vector for vector in RECORD_VECTORS}

each_vector = pytest.mark.parametrize("vector", RECORD_VECTORS, ids=[v["name"] for v in RECORD_VECTORS])
each_invalid = pytest.mark.parametrize("invalid", INVALID_VECTORS, ids=[v["name"] for v in INVALID_VECTORS])


def _record(vector: RecordVector) -> Record:
    return record_from_json(vector["type"], vector["record"])


def _signed(vector: RecordVector) -> bytes:
    return bytes.fromhex(vector["signed"])


def _invalid_bytes(invalid: InvalidVector) -> bytes:
    data = bytes.fromhex(invalid["hex"])
    return data.ljust(invalid.get("pad_to_length", len(data)), b"\x00")


def _optional_fields(record_type: type[Record]) -> Iterator[str]:
    hints = get_type_hints(record_type)
    for field in fields(record_type):
        hint = hints[field.name]
        if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
            yield field.name


@each_vector
def test_signing_the_record_gives_exactly_the_signed_bytes(vector: RecordVector) -> None:
    """Signing a vector's record with its seed and device id reproduces its signed bytes exactly."""
    key = DeviceKey.from_seed(bytes.fromhex(vector["seed"]), vector["device_id"])
    assert sign(_record(vector), key).hex() == vector["signed"]


@each_vector
def test_verifying_the_signed_bytes_gives_the_record(vector: RecordVector) -> None:
    """Verifying a vector's signed bytes with its public key returns its record, in JSON form too."""
    record = verify(_signed(vector), bytes.fromhex(vector["public_key"]))
    assert vector["type"] == record.RECORD_TYPE
    assert record_to_json(record) == vector["record"]
    assert record == _record(vector)


@each_vector
def test_public_key_kid_and_hash_follow_from_seed_and_bytes(vector: RecordVector) -> None:
    """The public key comes from the seed, the kid is its RFC 9679 thumbprint, the hash is SHA-256 of the bytes."""
    key = DeviceKey.from_seed(bytes.fromhex(vector["seed"]), vector["device_id"])
    public_key = bytes.fromhex(vector["public_key"])
    assert key.public_key.raw == public_key
    assert hashlib.sha256(THUMBPRINT_PREFIX + public_key).hexdigest() == vector["kid"] == key.kid.hex()
    assert hashlib.sha256(_signed(vector)).hexdigest() == vector["record_hash"] == record_hash(_signed(vector)).hex()
    envelope = open_envelope(_signed(vector))
    assert envelope.kid.hex() == vector["kid"]
    assert vector["type"] == envelope.record_type.RECORD_TYPE
    assert vector["record"]["device_id"] == vector["device_id"]


def _chains() -> dict[str, list[RecordVector]]:
    ordered = sorted(RECORD_VECTORS, key=lambda v: (v["device_id"], _record(v).sequence))
    return {device: list(group) for device, group in groupby(ordered, key=lambda v: v["device_id"])}


def test_vectors_of_each_device_form_an_unbroken_chain() -> None:
    """Each device's vectors link by sequence and previous-record hash; a sequence-1 vector links to genesis."""
    chains = _chains()
    assert [v["name"] for v in chains["ev-golden-0001"]] == ["chain-1-trip", "chain-2-charge", "chain-3-trip"]
    for chain in chains.values():
        if chain[0]["record"]["sequence"] == 1:
            check_link(None, None, _record(chain[0]))
        for previous, current in pairwise(chain):
            check_link(_signed(previous), _record(previous), _record(current))


def test_chain_vectors_do_not_link_when_one_is_missing_or_altered() -> None:
    """Skipping chain-2 is a sequence gap; a changed byte of chain-1's signed bytes breaks chain-2's link."""
    first, second, third = (BY_NAME[name] for name in ("chain-1-trip", "chain-2-charge", "chain-3-trip"))
    with pytest.raises(ChainError) as gap:
        check_link(_signed(first), _record(first), _record(third))
    assert gap.value.reason is RejectionReason.SEQUENCE_GAP
    altered = bytearray(_signed(first))
    altered[-1] ^= 0x01
    with pytest.raises(ChainError) as broken:
        check_link(bytes(altered), _record(first), _record(second))
    assert broken.value.reason is RejectionReason.CHAIN_BREAK


@each_invalid
def test_invalid_input_raises_exactly_its_named_error(invalid: InvalidVector) -> None:
    """Verifying each invalid input raises the very error class it names, not a parent or a sibling."""
    with pytest.raises(CarbonlinkError) as caught:
        verify(_invalid_bytes(invalid), bytes.fromhex(invalid["public_key"]))
    assert type(caught.value).__name__ == invalid["error"]


def test_invalid_inputs_are_checked_with_the_chain_key() -> None:
    """Every invalid input is verified with the public key of the chain vectors."""
    assert {invalid["public_key"] for invalid in INVALID_VECTORS} == {BY_NAME["chain-1-trip"]["public_key"]}


def test_vector_files_hold_the_required_cases() -> None:
    """The vectors keep the cases the protocol relies on: none may be dropped silently."""
    bare = BY_NAME["trip-optional-none"]
    assert bare["type"] == "trip"
    assert all(bare["record"][name] is None for name in _optional_fields(TripRecord))
    assert _record(bare).quality.flags
    assert BY_NAME["chain-2-charge"]["record"]["grid_energy_wh"] is not None
    assert BY_NAME["trip-with-vin-hash"]["record"]["vin_hash"] is not None
    expected = {
        "flipped-payload-byte": "BadSignatureError",
        "truncated": "MalformedError",
        "trailing-byte": "MalformedError",
        "cose-mac0-tag": "WrongTypeError",
        "version-2": "UnknownVersionError",
        "unknown-type-parking": "WrongTypeError",
        "oversized": "OversizedError",
        "unknown-field": "SchemaError",
        "other-key": "WrongKeyError",
        "unprotected-header-not-empty": "MalformedError",
    }
    assert expected.items() <= {invalid["name"]: invalid["error"] for invalid in INVALID_VECTORS}.items()
    names = [vector["name"] for vector in RECORD_VECTORS] + [invalid["name"] for invalid in INVALID_VECTORS]
    assert len(names) == len(set(names))
