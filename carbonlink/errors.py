"""The errors of the shared core.

Every failure raised by :mod:`carbonlink` is a :class:`CarbonlinkError`; each one that a
gateway turns into a rejection carries the :class:`~carbonlink.reasons.RejectionReason` it
stands for, so acks, the database, metrics and the API all name a failure the same way::

    CarbonlinkError
    ├── KeyFormatError (ValueError)          a key or key file that cannot be read
    ├── SchemaError (ValueError)             a record whose fields break the schema
    ├── ChainError (ValueError)              a record that does not follow its predecessor
    └── EnvelopeError (ValueError)           signed bytes that cannot be accepted
        ├── OversizedError                   longer than MAX_ENVELOPE_BYTES
        ├── MalformedError                   not CBOR, not a COSE_Sign1, not deterministic
        ├── WrongTypeError                   another COSE type, an unknown or unexpected record type
        ├── UnknownVersionError              a record version this code does not know
        └── BadSignatureError                the signature does not verify
            └── WrongKeyError                signed by another key than the one given
"""

from carbonlink.reasons import RejectionReason


class CarbonlinkError(Exception):
    """Base of every error raised by the shared core."""

    reason: RejectionReason = RejectionReason.MALFORMED


class KeyFormatError(CarbonlinkError, ValueError):
    """A key, public key or key file is not in the expected format."""


class SchemaError(CarbonlinkError, ValueError):
    """A record's fields are missing, of the wrong type or out of their range."""

    reason = RejectionReason.SCHEMA


class ChainError(CarbonlinkError, ValueError):
    """A record does not follow its predecessor (sequence number or previous-record hash)."""

    def __init__(self, message: str, reason: RejectionReason) -> None:
        super().__init__(message)
        self.reason = reason


class EnvelopeError(CarbonlinkError, ValueError):
    """Signed bytes that cannot be accepted as a carbonlink record."""


class OversizedError(EnvelopeError):
    """The signed bytes are longer than the size cap."""

    reason = RejectionReason.TOO_LARGE


class MalformedError(EnvelopeError):
    """The bytes are not deterministic CBOR forming a COSE_Sign1 message."""

    reason = RejectionReason.MALFORMED


class WrongTypeError(EnvelopeError):
    """The message is another COSE type, or names an unknown or unexpected record type."""

    reason = RejectionReason.MALFORMED


class UnknownVersionError(EnvelopeError):
    """The protected header names a record version this code does not know."""

    reason = RejectionReason.UNSUPPORTED_VERSION


class BadSignatureError(EnvelopeError):
    """The signature does not verify over the exact signed bytes."""

    reason = RejectionReason.BAD_SIGNATURE


class WrongKeyError(BadSignatureError):
    """The record names (by ``kid``) another key than the one it is verified with."""
