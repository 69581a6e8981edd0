"""Vehicle identification numbers: checked, and hashed into the key of the credit ledger.

A VIN is 17 characters of ISO 3779's alphabet (digits and capital letters except I, O and Q,
which it leaves out so they are not read as 1 and 0). Records never carry the VIN itself, only
``vin_hash`` = SHA-256 of its 17 ASCII characters in capitals, so one vehicle has one hash
whatever spelling the agent or the operator typed, and the ledger can refuse a kilometre
credited twice even after a key rotation or a device swap (``docs/protocol.md``).
"""

import hashlib
import re

VIN_LENGTH = 17
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


def normalise_vin(vin: str) -> str:
    """The VIN in capitals without surrounding blanks; ValueError when it is not a VIN."""
    text = vin.strip().upper()
    if len(text) != VIN_LENGTH:
        raise ValueError(f"a VIN has {VIN_LENGTH} characters, {vin!r} has {len(text)}")
    if not _VIN.fullmatch(text):
        raise ValueError(f"{vin!r} is not a VIN: only digits and letters other than I, O and Q (ISO 3779)")
    return text


def vin_hash(vin: str) -> bytes:
    """SHA-256 of the normalised VIN's ASCII bytes: the ``vin_hash`` field of records."""
    return hashlib.sha256(normalise_vin(vin).encode("ascii")).digest()
