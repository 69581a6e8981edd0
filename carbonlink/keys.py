"""Ed25519 device keys: signing, verification, key ids and the key-file text format.

A vehicle holds one private key; the gateway knows its public key. The ``kid`` that names a
key in every envelope is the RFC 9679 COSE Key Thumbprint (SHA-256 over the deterministic
CBOR of ``{1: 1 (OKP), -1: 6 (Ed25519), -2: x}``), so anyone holding the public key can
recompute it with any COSE library.

This module reads and writes key files as *text*; opening files, their permissions and
randomness stay with the caller (the CLI, the agent's adapters).
"""

import base64
import binascii
import hashlib
import re
import tomllib
from dataclasses import dataclass, field

import cbor2
import nacl.exceptions
import nacl.signing

from carbonlink.errors import BadSignatureError, KeyFormatError

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

KEY_FILE_FORMAT = "carbonlink-device-key-v1"

_COSE_KTY, _COSE_KTY_OKP = 1, 1
_COSE_CRV, _COSE_CRV_ED25519 = -1, 6
_COSE_X = -2

_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def thumbprint(public_key: bytes) -> bytes:
    """The RFC 9679 COSE Key Thumbprint (SHA-256) of an Ed25519 public key: our ``kid``."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise KeyFormatError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    required = {_COSE_KTY: _COSE_KTY_OKP, _COSE_CRV: _COSE_CRV_ED25519, _COSE_X: public_key}
    return hashlib.sha256(cbor2.dumps(required, canonical=True)).digest()


def default_device_id(public_key: bytes) -> str:
    """A device id derived from a device's first public key: ``ev-`` and 16 base32 letters."""
    letters = base64.b32encode(thumbprint(public_key)).decode("ascii").lower()
    return f"ev-{letters[:16]}"


def check_device_id(device_id: str) -> str:
    """Return the device id if it is safe in topic names and records, else raise."""
    if _DEVICE_ID.fullmatch(device_id) is None:
        raise KeyFormatError(
            f"device id {device_id!r} must be 3-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
        )
    return device_id


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key, as the gateway and auditors hold it."""

    raw: bytes
    kid: bytes = field(init=False, repr=False, compare=False)
    """The RFC 9679 thumbprint, computed once: every verification compares it."""
    _verify_key: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise KeyFormatError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(self.raw)}")
        object.__setattr__(self, "kid", thumbprint(self.raw))
        object.__setattr__(self, "_verify_key", nacl.signing.VerifyKey(self.raw))

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`BadSignatureError` unless ``signature`` signs ``message`` with this key."""
        try:
            self._verify_key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as err:
            raise BadSignatureError("the signature does not verify with this public key") from err

    @classmethod
    def from_text(cls, text: str) -> "PublicKey":
        """Read a public key spelled as 64 hex digits or as (URL-safe or standard) base64."""
        text = text.strip()
        if _HEX_KEY.fullmatch(text):
            return cls(bytes.fromhex(text))
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except binascii.Error as err:
            raise KeyFormatError("a public key must be 64 hex digits or base64 of 32 bytes") from err
        return cls(raw)


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A vehicle's private Ed25519 key with the device id it signs for."""

    device_id: str
    seed: bytes = field(repr=False)
    public_key: PublicKey = field(init=False, repr=False, compare=False)
    _signing_key: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        if len(self.seed) != SEED_BYTES:
            raise KeyFormatError(f"an Ed25519 private key seed is {SEED_BYTES} bytes, got {len(self.seed)}")
        signing_key = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "_signing_key", signing_key)
        object.__setattr__(self, "public_key", PublicKey(bytes(signing_key.verify_key)))

    @classmethod
    def from_seed(cls, seed: bytes, device_id: str | None = None) -> "DeviceKey":
        """The key for a 32-byte seed; the device id defaults to one derived from the public key."""
        if len(seed) != SEED_BYTES:
            raise KeyFormatError(f"an Ed25519 private key seed is {SEED_BYTES} bytes, got {len(seed)}")
        public = bytes(nacl.signing.SigningKey(seed).verify_key)
        return cls(device_id=device_id or default_device_id(public), seed=seed)

    @property
    def kid(self) -> bytes:
        return self.public_key.kid

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (RFC 8032, deterministic)."""
        return self._signing_key.sign(message).signature


def render_key_file(key: DeviceKey) -> str:
    """The text of a device key file (TOML): secret, to be written with mode 0600."""
    return (
        "# carbonlink device key: the private key a vehicle signs its records with.\n"
        "# Keep it secret: file mode 0600, never in a repository or a log.\n"
        f'format = "{KEY_FILE_FORMAT}"\n'
        'algorithm = "Ed25519"\n'
        f'device_id = "{key.device_id}"\n'
        f'private_key_seed = "{key.seed.hex()}"\n'
        f'public_key = "{key.public_key.raw.hex()}"\n'
        f'kid = "{key.kid.hex()}"\n'
    )


def parse_key_file(text: str) -> DeviceKey:
    """Read the text of a device key file, checking that its parts agree."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise KeyFormatError(f"not a carbonlink key file (not TOML: {err})") from err
    if table.get("format") != KEY_FILE_FORMAT:
        raise KeyFormatError(f"not a carbonlink key file (format must be {KEY_FILE_FORMAT!r})")
    if table.get("algorithm") != "Ed25519":
        raise KeyFormatError(f"unsupported key algorithm {table.get('algorithm')!r}; only Ed25519 is supported")
    device_id, seed_hex = table.get("device_id"), table.get("private_key_seed")
    if not isinstance(device_id, str):
        raise KeyFormatError("key file lacks device_id")
    if not isinstance(seed_hex, str) or _HEX_KEY.fullmatch(seed_hex) is None:
        raise KeyFormatError("key file private_key_seed must be 64 hex digits")
    key = DeviceKey(device_id=check_device_id(device_id), seed=bytes.fromhex(seed_hex))
    stated_public = table.get("public_key")
    if stated_public is not None and stated_public != key.public_key.raw.hex():
        raise KeyFormatError("key file is corrupt: public_key does not belong to private_key_seed")
    return key


def key_file_permission_problem(mode: int) -> str | None:
    """Why a key file with these permission bits is unsafe, or ``None`` if it is not."""
    if mode & 0o077:
        return f"key file is readable by other users (mode {mode & 0o777:04o}); restrict it with chmod 600"
    return None
