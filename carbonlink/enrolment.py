"""Enrolment certificates: a fleet authority vouches that a device key belongs to one of its vehicles.

A gateway configured with the authority's public key registers a device that presents a valid
certificate on its first contact, with no operator step ("zero-touch"). The certificate is a
COSE_Sign1 message of the same form as a record (:mod:`carbonlink.envelope`), signed by the
*authority's* key::

    18([
      << {1: -8, 3: "application/vnd.carbonlink.enrolment.v1+cbor", 4: h'<kid of the authority key>'} >>,
      {},
      << {"device_id": ..., "public_key": h'<32 bytes>', "vehicle_class": ..., "vin_hash": h'..' / null,
          "issued_at": ..., "expires_at": ..., "authority": ...} >>,
      h'<64-byte Ed25519 signature>'
    ])

An authority key is an ordinary device key file (``carbonlink keys generate --device-id
fleet-authority``); only its use differs. :func:`read_certificate` checks size, structure, the
signature against the configured authority keys and the validity period, in that order, before
trusting anything in the payload. :func:`read_certificate_unverified` is for the vehicle, which
holds its certificate but not the authority's key: it checks the form and reads the fields, and
proves nothing.

Errors are those of :mod:`carbonlink.errors`, plus :class:`ValidityError` for a certificate used
outside its validity period.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from carbonlink import cbor
from carbonlink.envelope import read_protected_header, sig_structure, sign1, split_sign1
from carbonlink.errors import (
    CarbonlinkError,
    KeyFormatError,
    SchemaError,
    UnknownVersionError,
    WrongKeyError,
    WrongTypeError,
)
from carbonlink.keys import DeviceKey, PublicKey, check_device_id
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import format_time, parse_time

CONTENT_TYPE = "application/vnd.carbonlink.enrolment.v1+cbor"
"""The content type of the protected header: what the message is, and its version."""
_CONTENT_TYPE_STEM = "application/vnd.carbonlink.enrolment."
MAX_CERTIFICATE_BYTES = 2048
"""Size cap of a certificate; the largest valid one is about 700 bytes (a 128-character authority name)."""
HASH_BYTES = 32
MAX_AUTHORITY_CHARS = 128
ISSUE_CLOCK_LEEWAY = timedelta(minutes=5)
"""A certificate issued this little in the reader's future is valid already: the authority's clock
and the gateway's differ by a little, and a car enrolled the minute its certificate was made must not
be refused for it. Expiry has no leeway."""

FIELDS = ("device_id", "public_key", "vehicle_class", "vin_hash", "issued_at", "expires_at", "authority")
"""The payload's keys, all present, no other."""


class ValidityError(CarbonlinkError, ValueError):
    """A correctly signed certificate used before its ``issued_at`` or after its ``expires_at``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolmentCertificate:
    """What a fleet authority certified about one device, with the kid of the key that signed it."""

    device_id: str
    public_key: PublicKey
    """The device's Ed25519 key: the key its records will be verified with."""
    vehicle_class: VehicleClass
    vin_hash: bytes | None
    """SHA-256 of the vehicle's VIN (``carbonlink.vin``), or None when the authority did not give one."""
    issued_at: datetime
    expires_at: datetime
    authority: str
    """The authority's name, for humans; the authority is identified by ``authority_kid``."""
    authority_kid: bytes
    """The kid (RFC 9679 thumbprint) of the authority key that signed the certificate."""

    def is_valid_at(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in the validity period (with the leeway for a fresh certificate)."""
        return self.issued_at - ISSUE_CLOCK_LEEWAY <= moment < self.expires_at


def issue_certificate(  # noqa: PLR0913 - every field of the certificate is named by its issuer
    authority_key: DeviceKey,
    *,
    device_public_key: PublicKey,
    device_id: str,
    vehicle_class: VehicleClass,
    vin_hash: bytes | None,
    issued_at: datetime,
    expires_at: datetime,
    authority: str,
) -> bytes:
    """Sign an enrolment certificate with the authority's key: the exact bytes to give the vehicle."""
    if device_public_key == authority_key.public_key:
        raise SchemaError("the authority key cannot certify itself as a device key")
    payload = {
        "device_id": device_id,
        "public_key": device_public_key.raw,
        "vehicle_class": VehicleClass(vehicle_class).value,
        "vin_hash": vin_hash,
        "issued_at": _time_text(issued_at, "issued_at"),
        "expires_at": _time_text(expires_at, "expires_at"),
        "authority": authority,
    }
    _read_payload(payload, authority_kid=authority_key.kid)  # the same checks a reader applies
    signed = sign1(CONTENT_TYPE, cbor.encode(payload), authority_key)
    if len(signed) > MAX_CERTIFICATE_BYTES:
        raise SchemaError(f"enrolment certificate is {len(signed)} bytes, over the cap of {MAX_CERTIFICATE_BYTES}")
    return signed


def read_certificate(data: bytes, authority_keys: Sequence[PublicKey], *, now: datetime) -> EnrolmentCertificate:
    """Verify a certificate against the configured authority keys and the time ``now``; return it.

    Raises, in the order checked: :class:`~carbonlink.errors.OversizedError`,
    :class:`~carbonlink.errors.MalformedError` (not deterministic CBOR, not a COSE_Sign1, a bad
    header), :class:`~carbonlink.errors.WrongTypeError` (another content type, e.g. a record),
    :class:`~carbonlink.errors.UnknownVersionError`, :class:`~carbonlink.errors.WrongKeyError` (signed
    by no configured authority key), :class:`~carbonlink.errors.BadSignatureError`,
    :class:`~carbonlink.errors.SchemaError` (payload fields) and :class:`ValidityError`.
    """
    protected, payload, signature, kid = _open(data)
    authority = next((key for key in authority_keys if key.kid == kid), None)
    if authority is None:
        configured = f"{len(authority_keys)} configured" if authority_keys else "none is configured"
        raise WrongKeyError(
            f"enrolment certificate is signed by key {kid.hex()}, which is not a fleet authority key ({configured})"
        )
    authority.verify(sig_structure(protected, payload), signature)
    certificate = _read_payload(cbor.decode(payload, "certificate payload"), authority_kid=kid)
    if now < certificate.issued_at - ISSUE_CLOCK_LEEWAY:
        raise ValidityError(
            f"enrolment certificate of {certificate.device_id} is not valid before "
            f"{format_time(certificate.issued_at)} (now {format_time(now)})"
        )
    if now >= certificate.expires_at:
        raise ValidityError(
            f"enrolment certificate of {certificate.device_id} expired at "
            f"{format_time(certificate.expires_at)} (now {format_time(now)})"
        )
    return certificate


def read_certificate_unverified(data: bytes) -> EnrolmentCertificate:
    """Read a certificate's fields, checking its form but NOT its signature nor its validity period.

    For the vehicle, which does not hold the authority's key, to check that a certificate names it;
    and for humans. Nothing read this way may be trusted.
    """
    _protected, payload, _signature, kid = _open(data)
    return _read_payload(cbor.decode(payload, "certificate payload"), authority_kid=kid)


def _open(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    protected, payload, signature = split_sign1(data, max_bytes=MAX_CERTIFICATE_BYTES, what="enrolment certificate")
    ctype, kid = read_protected_header(protected)
    if ctype != CONTENT_TYPE:
        if isinstance(ctype, str) and ctype.startswith(_CONTENT_TYPE_STEM):
            raise UnknownVersionError(f"enrolment certificate content type {ctype!r} is not {CONTENT_TYPE!r}")
        raise WrongTypeError(f"content type {ctype!r} is not an enrolment certificate ({CONTENT_TYPE})")
    return protected, payload, signature, kid


def _time_text(moment: datetime, name: str) -> str:
    if moment.tzinfo is None:
        raise SchemaError(f"{name} must be an aware datetime (UTC), not a naive one")
    return format_time(moment)


def _read_payload(value: object, *, authority_kid: bytes) -> EnrolmentCertificate:
    """The payload map as a certificate, every field of exactly its type; SchemaError naming the field."""
    if not isinstance(value, Mapping):
        raise SchemaError(f"certificate payload must be a map, got {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in FIELDS)
    if unknown:
        raise SchemaError(f"certificate has unknown fields: {', '.join(unknown)}")
    missing = [name for name in FIELDS if name not in value]
    if missing:
        raise SchemaError(f"certificate lacks fields: {', '.join(missing)}")
    issued_at = parse_time(_text(value, "issued_at"), "certificate issued_at")
    expires_at = parse_time(_text(value, "expires_at"), "certificate expires_at")
    if expires_at <= issued_at:
        raise SchemaError(f"certificate expires_at {format_time(expires_at)} is not after issued_at")
    return EnrolmentCertificate(
        device_id=_device_id(value),
        public_key=_public_key(value),
        vehicle_class=_vehicle_class(value),
        vin_hash=_vin_hash(value),
        issued_at=issued_at,
        expires_at=expires_at,
        authority=_authority(value),
        authority_kid=authority_kid,
    )


def _text(value: Mapping[object, object], name: str) -> str:
    item = value[name]
    if type(item) is not str:
        raise SchemaError(f"certificate {name} must be text, got {type(item).__name__}")
    return item


def _device_id(value: Mapping[object, object]) -> str:
    try:
        return check_device_id(_text(value, "device_id"))
    except KeyFormatError as err:
        raise SchemaError(f"certificate device_id: {err}") from err


def _public_key(value: Mapping[object, object]) -> PublicKey:
    raw = value["public_key"]
    if type(raw) is not bytes:
        raise SchemaError(f"certificate public_key must be a byte string, got {type(raw).__name__}")
    try:
        return PublicKey(raw)
    except KeyFormatError as err:
        raise SchemaError(f"certificate public_key: {err}") from err


def _vehicle_class(value: Mapping[object, object]) -> VehicleClass:
    text = _text(value, "vehicle_class")
    try:
        return VehicleClass(text)
    except ValueError as err:
        known = ", ".join(member.value for member in VehicleClass)
        raise SchemaError(f"certificate vehicle_class {text!r} is not one of: {known}") from err


def _vin_hash(value: Mapping[object, object]) -> bytes | None:
    digest = value["vin_hash"]
    if digest is None:
        return None
    if type(digest) is not bytes or len(digest) != HASH_BYTES:
        raise SchemaError(f"certificate vin_hash must be {HASH_BYTES} bytes or null")
    return digest


def _authority(value: Mapping[object, object]) -> str:
    name = _text(value, "authority")
    if not 1 <= len(name) <= MAX_AUTHORITY_CHARS or not name.isprintable() or name != name.strip():
        raise SchemaError(
            f"certificate authority must be 1-{MAX_AUTHORITY_CHARS} printable characters without "
            f"surrounding blanks, got {name[:40]!r}"
        )
    return name
