"""Signing and verifying records: each way signed bytes can fail has its own error."""

from dataclasses import replace

import cbor2
import pytest

from carbonlink import cbor
from carbonlink.envelope import (
    MAX_ENVELOPE_BYTES,
    content_type,
    open_envelope,
    sig_structure,
    sign,
    verify,
)
from carbonlink.errors import (
    BadSignatureError,
    MalformedError,
    OversizedError,
    SchemaError,
    UnknownVersionError,
    WrongKeyError,
    WrongTypeError,
)
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import ChargeRecord, TripRecord

from records_factory import key_from_byte, make_charge, make_trip

KEY = key_from_byte(7)


def _resign(protected: dict[object, object], payload: bytes, key: DeviceKey = KEY, tag: int = 18) -> bytes:
    """A validly signed message with a hand-made header: to reach checks behind the signature."""
    protected_bytes = cbor.encode(protected)
    signature = key.sign(sig_structure(protected_bytes, payload))
    return cbor.encode(cbor2.CBORTag(tag, [protected_bytes, {}, payload, signature]))


def _payload(record: TripRecord | ChargeRecord) -> bytes:
    return open_envelope(sign(record, KEY)).payload


def test_signed_trip_verifies_to_the_same_record() -> None:
    """What the car signs is what the gateway reads back."""
    trip = make_trip()
    assert verify(sign(trip, KEY), KEY.public_key) == trip


def test_signed_charge_verifies_with_raw_public_key_bytes() -> None:
    """Verify accepts the 32 raw public-key bytes as well as a PublicKey."""
    charge = make_charge()
    assert verify(sign(charge, KEY), KEY.public_key.raw, expected=ChargeRecord) == charge


def test_signing_is_deterministic() -> None:
    """Ed25519 and deterministic CBOR: the same record and key give the same bytes."""
    assert sign(make_trip(), KEY) == sign(make_trip(), KEY)


def test_header_names_type_version_and_key() -> None:
    """The protected header carries the content type and the key's thumbprint."""
    envelope = open_envelope(sign(make_charge(), KEY))
    assert envelope.record_type is ChargeRecord
    assert envelope.kid == KEY.kid
    assert content_type(ChargeRecord) == "application/vnd.carbonlink.charge.v1+cbor"


def test_signing_a_record_of_another_device_is_refused() -> None:
    """A key signs only records of its own device id."""
    with pytest.raises(SchemaError, match="not the key's device"):
        sign(make_trip(device_id="ev-someone-else"), KEY)


def test_oversized_input_is_refused_before_decoding() -> None:
    """Anything over the size cap is refused without being parsed."""
    with pytest.raises(OversizedError) as caught:
        verify(b"\xd2" + b"\x00" * MAX_ENVELOPE_BYTES, KEY.public_key)
    assert caught.value.reason is RejectionReason.TOO_LARGE


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"not cbor at all", cbor.encode([1, 2, 3]), cbor.encode(cbor2.CBORTag(18, [b"", {}, b""]))],
    ids=["empty", "break-byte", "text", "untagged-array", "three-parts"],
)
def test_malformed_input_is_refused(data: bytes) -> None:
    """Bytes that are not a COSE_Sign1 structure raise MalformedError."""
    with pytest.raises(MalformedError):
        verify(data, KEY.public_key)


def test_trailing_bytes_are_refused() -> None:
    """A valid message followed by anything is not a valid message."""
    with pytest.raises(MalformedError, match="after its CBOR item"):
        verify(sign(make_trip(), KEY) + b"\x00", KEY.public_key)


def test_non_deterministic_outer_encoding_is_refused() -> None:
    """The same message re-spelled with a longer length head is refused: one value, one spelling."""
    signed = sign(make_trip(), KEY)
    assert signed[:2] == b"\xd2\x84"
    respelled = b"\xd2\x98\x04" + signed[2:]  # array(4) with a one-byte length argument
    with pytest.raises(MalformedError, match="deterministic"):
        verify(respelled, KEY.public_key)


def test_cose_mac0_is_the_wrong_type() -> None:
    """A COSE_Mac0 (tag 17) is not a signed record."""
    trip = make_trip()
    mac0 = _resign({1: -8, 3: content_type(TripRecord), 4: KEY.kid}, _payload(trip), tag=17)
    with pytest.raises(WrongTypeError, match="tag 17"):
        verify(mac0, KEY.public_key)


def test_unknown_version_is_refused_after_reading_the_header() -> None:
    """A record version this code does not know raises UnknownVersionError."""
    future = _resign({1: -8, 3: "application/vnd.carbonlink.trip.v2+cbor", 4: KEY.kid}, _payload(make_trip()))
    with pytest.raises(UnknownVersionError, match="version 2") as caught:
        verify(future, KEY.public_key)
    assert caught.value.reason is RejectionReason.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "ctype", ["application/vnd.carbonlink.parking.v1+cbor", "application/json", 42], ids=["unknown", "foreign", "int"]
)
def test_unknown_record_type_is_wrong_type(ctype: object) -> None:
    """A content type that is not a known carbonlink record type raises WrongTypeError."""
    message = _resign({1: -8, 3: ctype, 4: KEY.kid}, _payload(make_trip()))
    with pytest.raises(WrongTypeError):
        verify(message, KEY.public_key)


def test_expected_type_mismatch_is_wrong_type() -> None:
    """A caller that expects a charge record does not get a trip."""
    with pytest.raises(WrongTypeError, match="expected a charge record"):
        verify(sign(make_trip(), KEY), KEY.public_key, expected=ChargeRecord)


def test_another_key_is_the_wrong_key() -> None:
    """Verifying with another device's key names both key ids."""
    with pytest.raises(WrongKeyError, match=KEY.kid.hex()) as caught:
        verify(sign(make_trip(), KEY), key_from_byte(8).public_key)
    assert caught.value.reason is RejectionReason.BAD_SIGNATURE


def test_forged_signature_is_a_bad_signature() -> None:
    """A message whose signature was made by another key under our kid fails verification."""
    impostor = key_from_byte(9)
    protected = cbor.encode({1: -8, 3: content_type(TripRecord), 4: KEY.kid})
    payload = _payload(make_trip())
    forged = cbor.encode(cbor2.CBORTag(18, [protected, {}, payload, impostor.sign(sig_structure(protected, payload))]))
    with pytest.raises(BadSignatureError) as caught:
        verify(forged, KEY.public_key)
    assert type(caught.value) is BadSignatureError


def test_changed_payload_breaks_the_signature() -> None:
    """Raising the distance after signing is caught by the signature."""
    signed = sign(make_trip(distance_m=12_400.0), KEY)
    inflated = _payload(make_trip(distance_m=99_400.0))
    envelope = open_envelope(signed)
    tampered = cbor.encode(cbor2.CBORTag(18, [envelope.protected, {}, inflated, envelope.signature]))
    with pytest.raises(BadSignatureError):
        verify(tampered, KEY.public_key)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({1: -7, 3: "application/vnd.carbonlink.trip.v1+cbor"}, "exactly alg"),
        ({1: -7, 3: "application/vnd.carbonlink.trip.v1+cbor", 4: KEY.kid}, "not EdDSA"),
        ({1: -8, 3: "application/vnd.carbonlink.trip.v1+cbor", 4: b"short"}, "kid must be"),
        ({1: -8, 3: "application/vnd.carbonlink.trip.v1+cbor", 4: KEY.kid, 5: b""}, "exactly alg"),
    ],
    ids=["no-kid", "es256", "short-kid", "extra-header"],
)
def test_protected_header_must_be_exactly_ours(header: dict[object, object], message: str) -> None:
    """Another algorithm, a short kid or an extra header parameter is malformed."""
    with pytest.raises(MalformedError, match=message):
        verify(_resign(header, _payload(make_trip())), KEY.public_key)


def test_unprotected_header_must_be_empty() -> None:
    """Nothing may ride unsigned beside the record."""
    envelope = open_envelope(sign(make_trip(), KEY))
    parts = [envelope.protected, {4: KEY.kid}, envelope.payload, envelope.signature]
    with pytest.raises(MalformedError, match="unprotected header must be empty"):
        verify(cbor.encode(cbor2.CBORTag(18, parts)), KEY.public_key)


def test_validly_signed_but_invalid_record_is_a_schema_error() -> None:
    """The signature is checked first; a correctly signed bad record then fails the schema."""
    payload = cbor.encode(dict(cbor2.loads(_payload(make_trip())), sequence=0))
    message = _resign({1: -8, 3: content_type(TripRecord), 4: KEY.kid}, payload)
    with pytest.raises(SchemaError, match="sequence"):
        verify(message, KEY.public_key)


def test_record_with_every_optional_reading_absent_verifies() -> None:
    """None readings survive signing (as CBOR null) and verification."""
    trip = replace(make_trip(), odometer_start_m=None, odometer_end_m=None, soc_start_pct=None, vin_hash=None)
    assert verify(sign(trip, KEY), KEY.public_key) == trip


def test_boolean_header_label_is_not_alg() -> None:
    """CBOR true is not the integer 1: a header labelled with true is malformed, not EdDSA."""
    protected = cbor2.dumps({True: -8, 3: content_type(TripRecord), 4: KEY.kid}, canonical=True)  # ours refuses it
    payload = _payload(make_trip())
    parts = [protected, {}, payload, KEY.sign(sig_structure(protected, payload))]
    message = cbor.encode(cbor2.CBORTag(18, parts))
    with pytest.raises(MalformedError, match="protected header"):
        verify(message, KEY.public_key)


@pytest.mark.parametrize("version", ["v01", "v000001"])
def test_version_with_leading_zeros_is_another_spelling(version: str) -> None:
    """Version 1 has one spelling; 'v01' would give the same record a second valid encoding."""
    message = _resign({1: -8, 3: f"application/vnd.carbonlink.trip.{version}+cbor", 4: KEY.kid}, _payload(make_trip()))
    with pytest.raises(MalformedError, match="is not spelled"):
        verify(message, KEY.public_key)


def test_encoder_refuses_maps_whose_order_rules_differ() -> None:
    """Keys of mixed kinds could sort differently under RFC 7049 and RFC 8949: refused outright."""
    with pytest.raises(TypeError, match="mixed kinds"):
        cbor.encode({24: 0, -1: 0})
    with pytest.raises(TypeError, match="mixed kinds"):
        cbor.encode({"a": {1: 0, "b": 0}})
    assert cbor.encode({1: 1, -1: 6, -2: b""}) == bytes.fromhex("a3010120062140")
