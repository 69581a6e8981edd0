"""The signed envelope: a record as a COSE_Sign1 message (RFC 9052) signed with EdDSA/Ed25519.

Wire form (CBOR diagnostic notation)::

    18([                                   / COSE_Sign1 tag /
      << {1: -8,                           / alg: EdDSA /
          3: "application/vnd.carbonlink.trip.v1+cbor",   / content type: record type, version /
          4: h'<32-byte kid>'} >>,         / kid: RFC 9679 thumbprint of the public key /
      {},                                  / unprotected header: always empty /
      << {record fields} >>,               / payload: the record, deterministic CBOR /
      h'<64-byte Ed25519 signature>'
    ])

The signature covers ``["Signature1", protected, h'', payload]`` (RFC 9052 §4.4, no external
data), so any COSE library verifies our records with the public key. Verification checks the
size, the structure and the signature over the exact bytes *before* the payload is decoded.

``sign1``, ``split_sign1`` and ``read_protected_header`` know nothing of records: the enrolment
certificates of :mod:`carbonlink.enrolment` are COSE_Sign1 messages of the same form.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

import cbor2

from carbonlink import cbor
from carbonlink.errors import (
    MalformedError,
    OversizedError,
    SchemaError,
    UnknownVersionError,
    WrongKeyError,
    WrongTypeError,
)
from carbonlink.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, DeviceKey, PublicKey
from carbonlink.records import RECORD_TYPES, Record
from carbonlink.wire import record_from_map, record_to_map

MAX_ENVELOPE_BYTES = 8192
"""Size cap of one signed record. A record is ~700 bytes; the largest valid one ~3 KiB."""

COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4
KID_BYTES = 32

_CONTENT_TYPE = re.compile(r"application/vnd\.carbonlink\.([a-z]+)\.v([0-9]{1,6})\+cbor")


def content_type(record_type: type[Record]) -> str:
    """The content type naming a record type and its version in the protected header."""
    return f"application/vnd.carbonlink.{record_type.RECORD_TYPE}.v{record_type.VERSION}+cbor"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A COSE_Sign1 message taken apart, its header read, its signature not yet checked."""

    record_type: type[Record]
    kid: bytes
    protected: bytes
    payload: bytes
    signature: bytes

    def signed_data(self) -> bytes:
        """The bytes the signature covers: the COSE ``Sig_structure`` of RFC 9052 §4.4."""
        return sig_structure(self.protected, self.payload)

    def check_signature(self, key: PublicKey) -> None:
        """Raise :class:`WrongKeyError` or :class:`BadSignatureError` unless ``key`` signed this."""
        if self.kid != key.kid:
            raise WrongKeyError(f"record is signed by key {self.kid.hex()}, not by the given key {key.kid.hex()}")
        key.verify(self.signed_data(), self.signature)

    def record(self) -> Record:
        """Decode the payload. Call only after the signature verified, unless inspecting."""
        return record_from_map(self.record_type, cbor.decode(self.payload, "payload"))


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, external_aad = h'', payload]`` in deterministic CBOR."""
    return cbor.encode(["Signature1", protected, b"", payload])


def sign(record: Record, key: DeviceKey) -> bytes:
    """Sign a record with a device key: the exact bytes to store, publish and verify."""
    if record.device_id != key.device_id:
        raise SchemaError(f"record device_id {record.device_id!r} is not the key's device {key.device_id!r}")
    signed = sign1(content_type(type(record)), cbor.encode(record_to_map(record)), key)
    if len(signed) > MAX_ENVELOPE_BYTES:
        raise OversizedError(f"signed record is {len(signed)} bytes, over the cap of {MAX_ENVELOPE_BYTES}")
    return signed


def sign1(ctype: str, payload: bytes, key: DeviceKey) -> bytes:
    """A COSE_Sign1 message of ``payload`` signed by ``key`` under the protected header {alg, ctype, kid}.

    Shared by every signed message of the protocol (records, enrolment certificates); each caller
    applies its own size cap.
    """
    protected = cbor.encode({HEADER_ALG: ALG_EDDSA, HEADER_CONTENT_TYPE: ctype, HEADER_KID: key.kid})
    signature = key.sign(sig_structure(protected, payload))
    return cbor.encode(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def split_sign1(data: bytes, *, max_bytes: int, what: str) -> tuple[bytes, bytes, bytes]:
    """The protected header, payload and signature of a COSE_Sign1 message, its structure checked.

    Checks the size cap, the deterministic CBOR, the tag, the four parts and the empty unprotected
    header; nothing inside the protected header or the payload. ``what`` names the message in errors.
    """
    if len(data) > max_bytes:
        raise OversizedError(f"{what} is {len(data)} bytes, over the cap of {max_bytes}")
    message = cbor.decode(data, what)
    if not isinstance(message, cbor2.CBORTag):
        raise MalformedError(f"{what} is not a tagged COSE message")
    if message.tag != COSE_SIGN1_TAG:
        raise WrongTypeError(f"{what} has CBOR tag {message.tag}, not COSE_Sign1 ({COSE_SIGN1_TAG})")
    parts = message.value  # cbor2 decodes a tag's contents immutable: a tuple, maps as frozendict
    if not isinstance(parts, list | tuple) or len(parts) != 4:  # noqa: PLR2004 - COSE_Sign1 has four parts
        raise MalformedError("COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload, signature = parts
    if not (type(protected) is bytes and type(payload) is bytes and type(signature) is bytes):
        raise MalformedError("COSE_Sign1 protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping) or len(unprotected) != 0:
        raise MalformedError("COSE_Sign1 unprotected header must be empty: every header is signed")
    if len(signature) != SIGNATURE_BYTES:
        raise MalformedError(f"Ed25519 signature must be {SIGNATURE_BYTES} bytes, got {len(signature)}")
    return protected, payload, signature


def open_envelope(data: bytes) -> Envelope:
    """Take a signed record apart and read its protected header, without verifying anything else."""
    protected, payload, signature = split_sign1(data, max_bytes=MAX_ENVELOPE_BYTES, what="signed record")
    record_type, kid = _read_protected_header(protected)
    return Envelope(record_type=record_type, kid=kid, protected=protected, payload=payload, signature=signature)


def read_protected_header(protected: bytes) -> tuple[object, bytes]:
    """The content type (as found, not yet checked) and the kid of a protected header.

    The header must hold exactly alg (EdDSA), content type and a 32-byte kid; what the content
    type may name is for the caller to decide.
    """
    header = cbor.decode(protected, "protected header")
    # ``type(...) is int``: in Python True == 1, and a CBOR ``true`` label must not pass for alg.
    if (
        not isinstance(header, dict)
        or any(type(label) is not int for label in header)
        or set(header) != {HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID}
    ):
        raise MalformedError("protected header must hold exactly alg (1), content type (3) and kid (4)")
    if header[HEADER_ALG] != ALG_EDDSA or type(header[HEADER_ALG]) is not int:
        raise MalformedError(f"algorithm {header[HEADER_ALG]!r} is not EdDSA ({ALG_EDDSA})")
    kid = header[HEADER_KID]
    if type(kid) is not bytes or len(kid) != KID_BYTES:
        raise MalformedError(f"kid must be a {KID_BYTES}-byte key thumbprint")
    return header[HEADER_CONTENT_TYPE], kid


def _read_protected_header(protected: bytes) -> tuple[type[Record], bytes]:
    ctype, kid = read_protected_header(protected)
    match = _CONTENT_TYPE.fullmatch(ctype) if isinstance(ctype, str) else None
    if match is None:
        raise WrongTypeError(f"content type {ctype!r} is not a carbonlink record")
    type_name, version = match.group(1), int(match.group(2))
    record_type = RECORD_TYPES.get(type_name)
    if record_type is None:
        raise WrongTypeError(f"unknown record type {type_name!r}; known: {', '.join(RECORD_TYPES)}")
    if version != record_type.VERSION:
        raise UnknownVersionError(
            f"{type_name} record version {version} is not supported (this code reads v{record_type.VERSION})"
        )
    if ctype != content_type(record_type):
        # Same type and version spelled otherwise (``v01``): one record must have one encoding.
        raise MalformedError(f"content type {ctype!r} is not spelled {content_type(record_type)!r}")
    return record_type, kid


def verify(data: bytes, public_key: PublicKey | bytes, expected: type[Record] | None = None) -> Record:
    """Verify signed bytes with a public key and return the record they carry.

    Raises a subclass of :class:`~carbonlink.errors.EnvelopeError` for each way the bytes can
    fail (oversized, malformed, wrong type, unknown version, wrong key, bad signature), or
    :class:`~carbonlink.errors.SchemaError` for a correctly signed but invalid record.
    """
    key = public_key if isinstance(public_key, PublicKey) else PublicKey(_public_key_bytes(public_key))
    envelope = open_envelope(data)
    if expected is not None and envelope.record_type is not expected:
        raise WrongTypeError(
            f"expected a {expected.RECORD_TYPE} record, got a {envelope.record_type.RECORD_TYPE} record"
        )
    envelope.check_signature(key)
    return envelope.record()


def _public_key_bytes(raw: bytes) -> bytes:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise WrongKeyError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return raw
