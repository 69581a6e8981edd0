"""The RFC 8032 Ed25519 test vectors pass through our key handling.

Source: RFC 8032, "Edwards-Curve Digital Signature Algorithm (EdDSA)", section 7.1 "Test Vectors
for Ed25519" (https://www.rfc-editor.org/rfc/rfc8032.txt): TEST 1, TEST 2, TEST 3 and
TEST SHA(abc). TEST 1024 (a 1023-byte message) is left out. Hex strings are split into 16-byte
lines like in the RFC, so they can be compared with it line by line.

The values come from that RFC. A failing vector here means a transcription error until
proven otherwise.
"""

import hashlib
from dataclasses import dataclass

import pytest

from carbonlink.errors import BadSignatureError
from carbonlink.keys import PUBLIC_KEY_BYTES, SEED_BYTES, SIGNATURE_BYTES, DeviceKey, PublicKey


@dataclass(frozen=True)
class Vector:
    """One RFC 8032 §7.1 test: secret key (the seed), public key, message and signature."""

    name: str
    secret: bytes
    public: bytes
    message: bytes
    signature: bytes


def _hex(*lines: str) -> bytes:
    return bytes.fromhex("".join(lines))


VECTORS = (
    Vector(
        name="TEST 1",
        secret=_hex("9d61b19deffd5a60ba844af492ec2cc4", "4449c5697b326919703bac031cae7f60"),
        public=_hex("d75a980182b10ab7d54bfed3c964073a", "0ee172f3daa62325af021a68f707511a"),
        message=b"",
        signature=_hex(
            "e5564300c360ac729086e2cc806e828a",
            "84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46b",
            "d25bf5f0595bbe24655141438e7a100b",
        ),
    ),
    Vector(
        name="TEST 2",
        secret=_hex("4ccd089b28ff96da9db6c346ec114e0f", "5b8a319f35aba624da8cf6ed4fb8a6fb"),
        public=_hex("3d4017c3e843895a92b70aa74d1b7ebc", "9c982ccf2ec4968cc0cd55f12af4660c"),
        message=_hex("72"),
        signature=_hex(
            "92a009a9f0d4cab8720e820b5f642540",
            "a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c",
            "387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ),
    Vector(
        name="TEST 3",
        secret=_hex("c5aa8df43f9f837bedb7442f31dcb7b1", "66d38535076f094b85ce3a2e0b4458f7"),
        public=_hex("fc51cd8e6218a1a38da47ed00230f058", "0816ed13ba3303ac5deb911548908025"),
        message=_hex("af82"),
        signature=_hex(
            "6291d657deec24024827e69c3abe01a3",
            "0ce548a284743a445e3680d7db5ac3ac",
            "18ff9b538d16f290ae67f760984dc659",
            "4a7c15e9716ed28dc027beceea1ec40a",
        ),
    ),
    Vector(
        name="TEST SHA(abc)",
        secret=_hex("833fe62409237b9d62ec77587520911e", "9a759cec1d19755b7da901b96dca3d42"),
        public=_hex("ec172b93ad5e563bf4932c70e1245034", "c35467ef2efd4d64ebf819683467e2bf"),
        message=_hex(
            "ddaf35a193617abacc417349ae204131",
            "12e6fa4e89a97ea20a9eeee64b55d39a",
            "2192992a274fc1a836ba3c23a3feebbd",
            "454d4423643ce80e2a9ac94fa54ca49f",
        ),
        signature=_hex(
            "dc2a4459e7369633a52b1bf277839a00",
            "201009a3efbf3ecb69bea2186c26b589",
            "09351fc9ac90b3ecfdfbc7c66431e030",
            "3dca179c138ac17ad9bef1177331a704",
        ),
    ),
)

ALL = pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
WITH_MESSAGE = pytest.mark.parametrize(
    "vector", [v for v in VECTORS if v.message], ids=[v.name for v in VECTORS if v.message]
)


def _flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def test_vectors_are_transcribed_with_their_rfc_lengths() -> None:
    """Every vector has a 32-byte secret and public key, a 64-byte signature and its stated message length."""
    assert [len(v.message) for v in VECTORS] == [0, 1, 2, 64]
    for vector in VECTORS:
        assert (len(vector.secret), len(vector.public), len(vector.signature)) == (
            SEED_BYTES,
            PUBLIC_KEY_BYTES,
            SIGNATURE_BYTES,
        )


def test_sha_abc_message_is_the_sha512_of_abc() -> None:
    """The TEST SHA(abc) message is, as its name says, SHA-512 of the three bytes "abc"."""
    (vector,) = (v for v in VECTORS if v.name == "TEST SHA(abc)")
    assert vector.message == hashlib.sha512(b"abc").digest()


@ALL
def test_seed_gives_the_vector_public_key(vector: Vector) -> None:
    """A device key made from the vector's secret key has the vector's public key."""
    assert DeviceKey.from_seed(vector.secret).public_key.raw == vector.public


@ALL
def test_signing_gives_the_vector_signature(vector: Vector) -> None:
    """Signing the vector's message with its secret key gives exactly the vector's signature."""
    assert DeviceKey.from_seed(vector.secret).sign(vector.message) == vector.signature


@ALL
def test_vector_signature_verifies(vector: Vector) -> None:
    """The vector's signature verifies over its message with its public key (no exception)."""
    PublicKey(vector.public).verify(vector.message, vector.signature)


@ALL
def test_any_flipped_signature_bit_fails_verification(vector: Vector) -> None:
    """Verification fails with BadSignatureError when any single bit of the signature flips."""
    key = PublicKey(vector.public)
    for bit in range(SIGNATURE_BYTES * 8):
        with pytest.raises(BadSignatureError):
            key.verify(vector.message, _flip_bit(vector.signature, bit))


@WITH_MESSAGE
def test_any_flipped_message_bit_fails_verification(vector: Vector) -> None:
    """Verification fails with BadSignatureError when any single bit of the message flips."""
    key = PublicKey(vector.public)
    for bit in range(len(vector.message) * 8):
        with pytest.raises(BadSignatureError):
            key.verify(_flip_bit(vector.message, bit), vector.signature)


@ALL
def test_signature_does_not_verify_under_another_vector_key(vector: Vector) -> None:
    """A vector's signature fails with BadSignatureError under every other vector's public key."""
    for other in VECTORS:
        if other is not vector:
            with pytest.raises(BadSignatureError):
                PublicKey(other.public).verify(vector.message, vector.signature)
