"""The webhook's signature headers: the gateway signs each body; receivers verify it with its public key.

    Carbonlink-Key-Id: <hex RFC 9679 thumbprint of the gateway's Ed25519 public key>
    Carbonlink-Signature: ed25519=<standard base64 of the Ed25519 signature of the exact body bytes>

The signature covers the body only, byte for byte as received (verify before parsing). It carries no
time: a replayed body is the same credit, which the receiver books once by its idempotency key and
credit id. ``docs/forwarding.md`` shows a receiver verifying it with pynacl alone.
"""

import base64
import binascii
from collections.abc import Mapping

from carbonlink.errors import BadSignatureError
from carbonlink.keys import SIGNATURE_BYTES, DeviceKey, PublicKey
from gateway.errors import GatewayError

KEY_ID_HEADER = "Carbonlink-Key-Id"
SIGNATURE_HEADER = "Carbonlink-Signature"
SIGNATURE_SCHEME = "ed25519="


class WebhookSignatureError(GatewayError, ValueError):
    """A webhook body whose signature headers are missing, malformed, of another key, or do not verify."""


def sign_payload(key: DeviceKey, body: bytes) -> dict[str, str]:
    """The signature headers for ``body``, signed with the gateway's own key."""
    signature = base64.b64encode(key.sign(body)).decode("ascii")
    return {KEY_ID_HEADER: key.kid.hex(), SIGNATURE_HEADER: f"{SIGNATURE_SCHEME}{signature}"}


def verify_webhook(body: bytes, headers: Mapping[str, str], public_key: PublicKey) -> None:
    """Raise :class:`WebhookSignatureError` unless ``headers`` carry a valid signature of ``body`` by ``public_key``.

    Header names are matched without regard to case, as HTTP has them.
    """
    by_name = {name.lower(): value for name, value in headers.items()}
    key_id = by_name.get(KEY_ID_HEADER.lower())
    if key_id is not None and key_id.strip().lower() != public_key.kid.hex():
        raise WebhookSignatureError(
            f"the body is signed with key {key_id.strip()[:64]!r}, not the gateway key {public_key.kid.hex()}"
        )
    value = by_name.get(SIGNATURE_HEADER.lower())
    if value is None:
        raise WebhookSignatureError(f"the request has no {SIGNATURE_HEADER} header")
    value = value.strip()
    if not value.startswith(SIGNATURE_SCHEME):
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} must start with {SIGNATURE_SCHEME!r}")
    try:
        signature = base64.b64decode(value.removeprefix(SIGNATURE_SCHEME), validate=True)
    except binascii.Error as err:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} is not base64: {err}") from err
    if len(signature) != SIGNATURE_BYTES:
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER} holds {len(signature)} bytes; an Ed25519 signature is {SIGNATURE_BYTES}"
        )
    try:
        public_key.verify(body, signature)
    except BadSignatureError as err:
        raise WebhookSignatureError(
            f"the signature does not verify with the gateway key {public_key.kid.hex()}: the body was changed "
            "or signed by another key"
        ) from err
