"""Reading a signed record from a file or stdin and reporting what it holds."""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from carbonlink.chain import record_hash
from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, CliError
from carbonlink.envelope import COSE_SIGN1_TAG, MAX_ENVELOPE_BYTES, open_envelope
from carbonlink.errors import BadSignatureError, EnvelopeError, SchemaError
from carbonlink.keys import PublicKey
from carbonlink.records import Record
from carbonlink.wire import record_to_json

# Text spellings of a record (hex doubles, base64 adds a third) plus whitespace fit in this.
MAX_INPUT_BYTES = 3 * MAX_ENVELOPE_BYTES
_COSE_SIGN1_FIRST_BYTE = 0xC0 | COSE_SIGN1_TAG
_HEX_TEXT = re.compile(rb"(?:[0-9a-fA-F]{2})+")


def read_signed_input(source: str, stdin: BinaryIO) -> bytes:
    """The signed bytes in a file (or ``-`` for stdin), given raw or as hex or base64 text."""
    try:
        if source == "-":
            data = stdin.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as err:
        raise CliError(f"cannot read {source}: {err.strerror}") from err
    if len(data) > MAX_INPUT_BYTES:
        raise CliError(f"{source} is larger than any signed record ({MAX_INPUT_BYTES} bytes at most)")
    return _unspell(data)


def _unspell(data: bytes) -> bytes:
    if data[:1] == bytes([_COSE_SIGN1_FIRST_BYTE]):
        return data
    text = b"".join(data.split())
    if _HEX_TEXT.fullmatch(text):
        return bytes.fromhex(text.decode("ascii"))
    try:
        decoded = base64.b64decode(
            text.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        return data
    return decoded if decoded[:1] == bytes([_COSE_SIGN1_FIRST_BYTE]) else data


@dataclass(frozen=True, slots=True)
class InspectionReport:
    """What ``carbonlink inspect`` prints and how it exits."""

    valid: bool | None
    kid: bytes
    record_type: str
    version: int
    record_hash: bytes
    record: Record | None
    error: str | None

    @property
    def exit_code(self) -> int:
        return EXIT_INVALID if self.valid is False else EXIT_OK

    def to_json(self) -> str:
        body = {
            "valid": self.valid,
            "kid": self.kid.hex(),
            "type": self.record_type,
            "version": self.version,
            "record_hash": self.record_hash.hex(),
            "record": None if self.record is None else record_to_json(self.record),
            "error": self.error,
        }
        return json.dumps(body, indent=2)


def inspect_record(data: bytes, public_key: PublicKey | None, required_type: str | None) -> InspectionReport:
    """Decode signed bytes; verify them when a key is given. Unreadable input raises CliError."""
    try:
        envelope = open_envelope(data)
    except EnvelopeError as err:
        raise CliError(f"not a readable signed record: {err}") from err
    error: str | None = None
    valid: bool | None = None
    if public_key is not None:
        try:
            envelope.check_signature(public_key)
            valid = True
        except BadSignatureError as err:
            valid, error = False, f"invalid: {err}"
    record: Record | None = None
    try:
        record = envelope.record()
    except (EnvelopeError, SchemaError) as err:
        valid, error = False, error or f"invalid: payload: {err}"
    if required_type is not None and required_type != envelope.record_type.RECORD_TYPE:
        valid, error = (
            False,
            error or f"invalid: expected a {required_type} record, got {envelope.record_type.RECORD_TYPE}",
        )
    return InspectionReport(
        valid=valid,
        kid=envelope.kid,
        record_type=envelope.record_type.RECORD_TYPE,
        version=envelope.record_type.VERSION,
        record_hash=record_hash(data),
        record=record,
        error=error,
    )
