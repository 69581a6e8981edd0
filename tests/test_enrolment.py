"""Enrolment certificates: issued by a fleet authority, read strictly, and the gateway's decision on them."""

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from pycose.keys.curves import Ed25519
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from carbonlink import cbor
from carbonlink.enrolment import (
    CONTENT_TYPE,
    FIELDS,
    ISSUE_CLOCK_LEEWAY,
    MAX_CERTIFICATE_BYTES,
    ValidityError,
    issue_certificate,
    read_certificate,
    read_certificate_unverified,
)
from carbonlink.envelope import sig_structure, sign, sign1
from carbonlink.errors import (
    BadSignatureError,
    CarbonlinkError,
    MalformedError,
    OversizedError,
    SchemaError,
    UnknownVersionError,
    WrongKeyError,
    WrongTypeError,
)
from carbonlink.keys import DeviceKey, PublicKey
from carbonlink.testing import sample_trip
from carbonlink.topics import (
    device_of_enrolment_topic,
    device_of_records_topic,
    enrolment_subscription,
    enrolment_topic,
)
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash
from gateway.enrolment import (
    AlreadyRegistered,
    EnrolmentDecision,
    EnrolmentRefusal,
    Refused,
    Register,
    decide_enrolment,
)
from gateway.model import Device, DeviceStatus, Enrolment, RegisteredKey

AUTHORITY = DeviceKey.from_seed(bytes([0x03]) * 32, "fleet-authority")
OTHER_AUTHORITY = DeviceKey.from_seed(bytes([0x05]) * 32, "rogue-authority")
DEVICE = DeviceKey.from_seed(bytes([0x01]) * 32, "ev-golden-0001")
OTHER_DEVICE = DeviceKey.from_seed(bytes([0x07]) * 32, "ev-other-0002")
VIN_HASH = vin_hash("WVWZZZ1KZ8W000001")
ISSUED_AT = datetime(2026, 3, 1, tzinfo=UTC)
EXPIRES_AT = datetime(2027, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")


def certificate(key: DeviceKey = DEVICE, signer: DeviceKey = AUTHORITY, **overrides: object) -> bytes:
    """A certificate for ``key`` signed by ``signer``, with the fields of the doc's example unless overridden."""
    values: dict[str, object] = {
        "device_public_key": key.public_key,
        "device_id": key.device_id,
        "vehicle_class": VehicleClass.COMPACT,
        "vin_hash": VIN_HASH,
        "issued_at": ISSUED_AT,
        "expires_at": EXPIRES_AT,
        "authority": "Example Fleet Authority",
    }
    values.update(overrides)
    return issue_certificate(signer, **values)  # type: ignore[arg-type]


def payload_map(**changes: object) -> dict[str, object]:
    """A valid payload as a plain map, with keys changed (a value of ``...`` removes the key)."""
    payload: dict[str, object] = {
        "device_id": DEVICE.device_id,
        "public_key": DEVICE.public_key.raw,
        "vehicle_class": "compact",
        "vin_hash": VIN_HASH,
        "issued_at": "2026-03-01T00:00:00.000000Z",
        "expires_at": "2027-03-01T00:00:00.000000Z",
        "authority": "Example Fleet Authority",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not ...}


# --- issuing and reading ---------------------------------------------------------------------------


def test_a_certificate_reads_back_as_issued() -> None:
    """read_certificate returns every certified field and the kid of the authority that signed it."""
    read = read_certificate(certificate(), [AUTHORITY.public_key], now=NOW)
    assert read.device_id == DEVICE.device_id
    assert read.public_key == DEVICE.public_key
    assert read.vehicle_class is VehicleClass.COMPACT
    assert read.vin_hash == VIN_HASH
    assert (read.issued_at, read.expires_at) == (ISSUED_AT, EXPIRES_AT)
    assert read.authority == "Example Fleet Authority"
    assert read.authority_kid == AUTHORITY.kid


def test_the_wire_form_is_a_cose_sign1_by_the_authority() -> None:
    """Tag 18, protected header {alg -8, the enrolment content type, the authority's kid}, empty unprotected header."""
    message = cbor2.loads(certificate())
    assert message.tag == 18
    protected, unprotected, payload, _signature = message.value
    assert cbor2.loads(protected) == {1: -8, 3: CONTENT_TYPE, 4: AUTHORITY.kid}
    assert unprotected == {}
    assert set(cbor2.loads(payload)) == set(FIELDS)


def test_any_cose_library_verifies_a_certificate_with_the_authority_key() -> None:
    """pycose, knowing nothing of carbonlink, verifies the signature with the authority's public key."""
    protected, _unprotected, payload, signature = cbor2.loads(certificate()).value
    message = Sign1Message.from_cose_obj([protected, {}, payload, signature], True)  # noqa: FBT003 - pycose's API
    message.key = OKPKey(crv=Ed25519, x=AUTHORITY.public_key.raw)
    assert message.verify_signature()
    message.key = OKPKey(crv=Ed25519, x=OTHER_AUTHORITY.public_key.raw)
    assert not message.verify_signature()


def test_optional_vin_and_any_vehicle_class() -> None:
    """A certificate without a VIN hash carries null; the class round-trips for every class."""
    for vehicle_class in VehicleClass:
        read = read_certificate(
            certificate(vin_hash=None, vehicle_class=vehicle_class), [AUTHORITY.public_key], now=NOW
        )
        assert read.vin_hash is None
        assert read.vehicle_class is vehicle_class


def test_the_right_authority_among_several_is_found() -> None:
    """A gateway may trust several authorities; the certificate's kid picks the one that verifies it."""
    signed = certificate(signer=OTHER_AUTHORITY)
    read = read_certificate(signed, [AUTHORITY.public_key, OTHER_AUTHORITY.public_key], now=NOW)
    assert read.authority_kid == OTHER_AUTHORITY.kid


def test_every_changed_byte_is_refused() -> None:
    """Flipping any one bit anywhere in a certificate makes it fail to read."""
    signed = certificate()
    for index in range(len(signed)):
        tampered = signed[:index] + bytes([signed[index] ^ 0x01]) + signed[index + 1 :]
        with pytest.raises(CarbonlinkError):
            read_certificate(tampered, [AUTHORITY.public_key], now=NOW)


def test_a_changed_signature_is_a_bad_signature() -> None:
    """The last byte belongs to the signature: it fails as BadSignatureError, not as malformed."""
    signed = certificate()
    with pytest.raises(BadSignatureError, match="does not verify"):
        read_certificate(signed[:-1] + bytes([signed[-1] ^ 0x80]), [AUTHORITY.public_key], now=NOW)


def test_a_certificate_of_another_authority_is_refused() -> None:
    """Signed by a key the reader does not trust: WrongKeyError naming that key; likewise when none is trusted."""
    signed = certificate(signer=OTHER_AUTHORITY)
    with pytest.raises(WrongKeyError, match=f"{OTHER_AUTHORITY.kid.hex()}.*not a fleet authority key \\(1 configured"):
        read_certificate(signed, [AUTHORITY.public_key], now=NOW)
    with pytest.raises(WrongKeyError, match="none is configured"):
        read_certificate(certificate(), [], now=NOW)


def test_a_certificate_whose_kid_names_a_trusted_key_but_another_signed_it_is_refused() -> None:
    """The kid is only a hint: a signature by another key under the trusted kid fails verification."""
    protected = cbor.encode({1: -8, 3: CONTENT_TYPE, 4: AUTHORITY.kid})
    payload = cbor.encode(payload_map())
    forged = cbor.encode(
        cbor2.CBORTag(18, [protected, {}, payload, OTHER_AUTHORITY.sign(sig_structure(protected, payload))])
    )
    with pytest.raises(BadSignatureError):
        read_certificate(forged, [AUTHORITY.public_key], now=NOW)


@pytest.mark.parametrize(
    ("now", "error"),
    [
        (EXPIRES_AT, "expired at 2027-03-01T00:00:00.000000Z"),
        (EXPIRES_AT + timedelta(days=400), "expired at"),
        (ISSUED_AT - ISSUE_CLOCK_LEEWAY - timedelta(microseconds=1), "not valid before 2026-03-01T00:00:00.000000Z"),
    ],
    ids=["at-expiry", "long-expired", "not-yet-valid"],
)
def test_a_certificate_outside_its_validity_period_is_refused(now: datetime, error: str) -> None:
    """At or after expires_at, or before issued_at (beyond the clock leeway), it is a ValidityError."""
    with pytest.raises(ValidityError, match=error):
        read_certificate(certificate(), [AUTHORITY.public_key], now=now)


@pytest.mark.parametrize(
    "now",
    [ISSUED_AT - ISSUE_CLOCK_LEEWAY, ISSUED_AT, EXPIRES_AT - timedelta(microseconds=1)],
    ids=["issuer-clock-ahead", "at-issue", "last-moment"],
)
def test_a_certificate_is_valid_from_just_before_issue_until_expiry(now: datetime) -> None:
    """The period runs from issued_at less the leeway for clocks that differ, up to (not including) expires_at."""
    assert read_certificate(certificate(), [AUTHORITY.public_key], now=now).device_id == DEVICE.device_id


def test_a_record_is_not_a_certificate() -> None:
    """A record signed by a trusted key is refused by its content type, before any signature check."""
    record = sign(sample_trip(device_id=DEVICE.device_id), DEVICE)
    with pytest.raises(WrongTypeError, match="not an enrolment certificate"):
        read_certificate(record, [DEVICE.public_key], now=NOW)


def test_another_version_is_refused_as_unknown() -> None:
    """An enrolment certificate of a version this code does not read is an UnknownVersionError."""
    signed = sign1("application/vnd.carbonlink.enrolment.v2+cbor", cbor.encode(payload_map()), AUTHORITY)
    with pytest.raises(UnknownVersionError, match="v2"):
        read_certificate(signed, [AUTHORITY.public_key], now=NOW)


def test_an_oversized_certificate_is_refused_before_parsing() -> None:
    """Bytes beyond the cap are refused as OversizedError, whatever they hold."""
    with pytest.raises(OversizedError, match=f"over the cap of {MAX_CERTIFICATE_BYTES}"):
        read_certificate(bytes(MAX_CERTIFICATE_BYTES + 1), [AUTHORITY.public_key], now=NOW)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"role": "admin"}, "unknown fields: role"),
        ({"vin_hash": ...}, "lacks fields: vin_hash"),
        ({"device_id": "EV 1"}, "device_id"),
        ({"device_id": 42}, "device_id must be text"),
        ({"public_key": b"\x01" * 31}, "public_key"),
        ({"public_key": "00" * 32}, "public_key must be a byte string"),
        ({"vehicle_class": "tank"}, "vehicle_class 'tank' is not one of"),
        ({"vin_hash": b"\x00" * 16}, "vin_hash must be 32 bytes"),
        ({"issued_at": "2026-03-01T00:00:00Z"}, "issued_at"),
        ({"expires_at": "2026-03-01T00:00:00.000000Z"}, "is not after issued_at"),
        ({"authority": ""}, "authority must be 1-128"),
        ({"authority": " padded"}, "authority must be"),
        ({"authority": "x" * 129}, "authority must be"),
    ],
)
def test_payload_fields_are_read_strictly(changes: dict[str, object], message: str) -> None:
    """A correctly signed certificate with a bad field is a SchemaError naming the field."""
    signed = sign1(CONTENT_TYPE, cbor.encode(payload_map(**changes)), AUTHORITY)
    with pytest.raises(SchemaError, match=message):
        read_certificate(signed, [AUTHORITY.public_key], now=NOW)


def test_a_payload_that_is_not_a_map_is_refused() -> None:
    """The payload must be a map of the fields."""
    signed = sign1(CONTENT_TYPE, cbor.encode(["device_id"]), AUTHORITY)
    with pytest.raises(SchemaError, match="must be a map"):
        read_certificate(signed, [AUTHORITY.public_key], now=NOW)


def test_a_payload_not_in_deterministic_cbor_is_malformed() -> None:
    """Signed but not deterministic (a non-shortest integer head): refused, so one certificate has one encoding."""
    payload = cbor.encode(payload_map())
    respelled = b"\xb8\x07" + payload[1:]  # the map head for 7 entries in two bytes instead of one
    with pytest.raises(MalformedError, match="deterministic"):
        read_certificate(sign1(CONTENT_TYPE, respelled, AUTHORITY), [AUTHORITY.public_key], now=NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issued_at": datetime(2026, 3, 1)}, "aware datetime"),  # noqa: DTZ001 - the naive time under test
        ({"expires_at": ISSUED_AT}, "not after issued_at"),
        ({"device_public_key": AUTHORITY.public_key}, "cannot certify itself"),
        ({"authority": "two\nlines"}, "printable"),
        ({"device_id": "Not Valid"}, "device_id"),
    ],
)
def test_issuing_refuses_what_a_reader_would_refuse(overrides: dict[str, object], message: str) -> None:
    """The issuer never writes a certificate that fails to read, nor one of the authority for itself."""
    with pytest.raises(SchemaError, match=message):
        certificate(DEVICE, AUTHORITY, **overrides)


def test_unverified_reading_checks_the_form_but_not_the_signer_nor_the_time() -> None:
    """For the vehicle: the fields of any well-formed certificate, whoever signed it, whenever; garbage fails."""
    read = read_certificate_unverified(certificate(signer=OTHER_AUTHORITY, expires_at=ISSUED_AT + timedelta(1)))
    assert read.device_id == DEVICE.device_id
    assert read.authority_kid == OTHER_AUTHORITY.kid
    with pytest.raises(MalformedError):
        read_certificate_unverified(b"\x00not cbor")
    with pytest.raises(WrongTypeError):
        read_certificate_unverified(sign(sample_trip(device_id=DEVICE.device_id), DEVICE))


def test_the_example_in_the_protocol_doc_is_what_the_code_issues() -> None:
    """docs/protocol.md §10.1 quotes, byte for byte, the certificate the code issues for its stated inputs."""
    section = DOC[DOC.index("## 10. Enrolment certificates") : DOC.index("## 11.")]
    (block,) = re.findall(r"^```text\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert "".join(block.split()) == certificate().hex()
    assert f"{len(certificate())} bytes" in section
    assert f"`{AUTHORITY.public_key.raw.hex()}`" in section
    assert f"`{AUTHORITY.kid.hex()}`" in section
    for name in (*FIELDS, CONTENT_TYPE, *(refusal.value for refusal in EnrolmentRefusal)):
        assert f"`{name}`" in section, name
    assert f"at most {MAX_CERTIFICATE_BYTES} bytes" in section


# --- topics ----------------------------------------------------------------------------------------


def test_enrolment_topics() -> None:
    """Each vehicle has an enrolment topic; gateways subscribe to all of them, shared when grouped."""
    assert enrolment_topic("ev-1a") == "carbonlink/v1/vehicles/ev-1a/enrolment"
    assert enrolment_subscription("gateways") == "$share/gateways/carbonlink/v1/vehicles/+/enrolment"
    assert enrolment_subscription(None) == "carbonlink/v1/vehicles/+/enrolment"


@pytest.mark.parametrize(
    ("topic", "device_id"),
    [
        ("carbonlink/v1/vehicles/ev-1a/enrolment", "ev-1a"),
        ("carbonlink/v1/vehicles/ev-1a/records", None),
        ("carbonlink/v1/vehicles/EV 1/enrolment", None),
        ("carbonlink/v1/vehicles/ev-1a/enrolment/x", None),
        ("carbonlink/v2/vehicles/ev-1a/enrolment", None),
    ],
)
def test_device_of_enrolment_topic(topic: str, device_id: str | None) -> None:
    """Only a well-formed enrolment topic yields its device id; a records topic is not one, nor the reverse."""
    assert device_of_enrolment_topic(topic) == device_id
    assert device_of_records_topic(enrolment_topic("ev-1a")) is None


# --- the gateway's decision ------------------------------------------------------------------------


def registered(
    key: DeviceKey = DEVICE,
    *,
    status: DeviceStatus = DeviceStatus.ACTIVE,
    retired: bool = False,
    revoked_key: bool = False,
) -> Device:
    """A device as the store returns it, registered under ``DEVICE``'s id with ``key``."""
    added_at = datetime(2026, 1, 1, tzinfo=UTC)
    return Device(
        device_id=DEVICE.device_id,
        vehicle_class=VehicleClass.UNSPECIFIED,
        vin_hash=None,
        status=status,
        registered_at=added_at,
        enrolment=Enrolment.OPERATOR,
        keys=(
            RegisteredKey(
                kid=key.kid,
                public_key=key.public_key.raw,
                added_at=added_at,
                retired_at=NOW if retired else None,
                revoked_at=NOW if revoked_key else None,
            ),
        ),
    )


Why = EnrolmentRefusal


def decide(
    data: bytes, *, topic_device_id: str = DEVICE.device_id, existing: Device | None = None
) -> EnrolmentDecision:
    return decide_enrolment(
        data, topic_device_id=topic_device_id, authority_keys=[AUTHORITY.public_key], existing=existing, now=NOW
    )


def test_a_valid_certificate_of_a_new_device_registers_it() -> None:
    """First contact: register with the certified key, class and VIN hash."""
    decision = decide(certificate())
    assert isinstance(decision, Register)
    assert decision.result == "register"
    assert decision.device_id == DEVICE.device_id
    assert decision.public_key == DEVICE.public_key
    assert decision.vehicle_class is VehicleClass.COMPACT
    assert decision.vin_hash == VIN_HASH
    assert decision.certificate.authority_kid == AUTHORITY.kid


def test_a_device_registered_with_this_key_needs_nothing() -> None:
    """Agents send their certificate on every connection: for a registered device with this key, nothing to do."""
    decision = decide(certificate(), existing=registered())
    assert decision == AlreadyRegistered(device_id=DEVICE.device_id)
    assert decision.result == "already_registered"


@pytest.mark.parametrize(
    ("data", "topic_device_id", "existing", "reason", "detail"),
    [
        (certificate()[:-1] + b"\x00", DEVICE.device_id, None, Why.INVALID_CERTIFICATE, "signature"),
        (b"garbage", DEVICE.device_id, None, Why.INVALID_CERTIFICATE, "not valid CBOR"),
        (certificate(signer=OTHER_AUTHORITY), DEVICE.device_id, None, Why.UNKNOWN_AUTHORITY, "not a fleet"),
        (certificate(expires_at=NOW), DEVICE.device_id, None, Why.NOT_VALID_NOW, "expired"),
        (certificate(issued_at=NOW + timedelta(days=1)), DEVICE.device_id, None, Why.NOT_VALID_NOW, "before"),
        (certificate(OTHER_DEVICE), DEVICE.device_id, None, Why.DEVICE_MISMATCH, OTHER_DEVICE.device_id),
        (certificate(), DEVICE.device_id, registered(OTHER_DEVICE), Why.KEY_CONFLICT, "another key"),
        (certificate(), DEVICE.device_id, registered(retired=True), Why.KEY_CONFLICT, "retired"),
        (certificate(), DEVICE.device_id, registered(revoked_key=True), Why.KEY_CONFLICT, "revoked"),
        (certificate(), DEVICE.device_id, registered(status=DeviceStatus.REVOKED), Why.DEVICE_REVOKED, "revoked"),
        (certificate()[:-1] + b"\x00", DEVICE.device_id, registered(), Why.INVALID_CERTIFICATE, "signature"),
    ],
    ids=[
        "tampered",
        "garbage",
        "other-authority",
        "expired",
        "not-yet-valid",
        "topic-of-another-device",
        "registered-with-another-key",
        "key-retired",
        "key-revoked",
        "device-revoked",
        "tampered-for-a-registered-device",
    ],
)  # fmt: skip
def test_refusals_say_why(
    data: bytes, topic_device_id: str, existing: Device | None, reason: EnrolmentRefusal, detail: str
) -> None:
    """Anything but a valid certificate of a new device, or of the same device and key, is refused with its reason."""
    decision = decide(data, topic_device_id=topic_device_id, existing=existing)
    assert isinstance(decision, Refused)
    assert decision.result == "refused"
    assert decision.reason is reason
    assert decision.device_id == topic_device_id
    assert detail in decision.detail


def test_enrolment_never_replaces_a_key_even_with_a_valid_certificate() -> None:
    """A valid certificate for a new key of a registered device changes nothing: rotation is the operator's act."""
    rotated = DeviceKey.from_seed(bytes([0x09]) * 32, DEVICE.device_id)
    decision = decide(certificate(rotated), existing=registered())
    assert isinstance(decision, Refused)
    assert decision.reason is EnrolmentRefusal.KEY_CONFLICT
    assert rotated.kid.hex() in decision.detail


def test_the_existing_device_must_be_the_topics() -> None:
    """Passing the wrong device is a caller's bug, not an enrolment outcome."""
    stranger = dataclasses.replace(registered(), device_id=OTHER_DEVICE.device_id)
    with pytest.raises(ValueError, match="not the topic's"):
        decide(certificate(), existing=stranger)


def test_the_decision_uses_the_given_time() -> None:
    """The same certificate registers before its expiry and is refused after it: time is an input."""
    signed = certificate()
    before = decide_enrolment(
        signed, topic_device_id=DEVICE.device_id, authority_keys=[AUTHORITY.public_key], existing=None, now=NOW
    )
    after = decide_enrolment(
        signed, topic_device_id=DEVICE.device_id, authority_keys=[AUTHORITY.public_key], existing=None, now=EXPIRES_AT
    )
    assert isinstance(before, Register)
    assert isinstance(after, Refused)
    assert PublicKey(before.public_key.raw) == DEVICE.public_key
