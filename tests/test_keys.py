"""Device keys: thumbprint ids, the key-file text format and reading public keys."""

import base64

import pytest

from carbonlink.errors import BadSignatureError, KeyFormatError
from carbonlink.keys import (
    DeviceKey,
    PublicKey,
    default_device_id,
    key_file_permission_problem,
    parse_key_file,
    render_key_file,
)

from records_factory import key_from_byte


def test_key_file_round_trip() -> None:
    """A rendered key file reads back to the same key and device id."""
    key = key_from_byte(5, "ev-van-07")
    assert parse_key_file(render_key_file(key)) == key


def test_default_device_id_is_derived_from_the_public_key() -> None:
    """Without a chosen id, the device id is stable for the key and safe in topics."""
    key = DeviceKey.from_seed(b"\x05" * 32)
    assert key.device_id == default_device_id(key.public_key.raw)
    assert key.device_id.startswith("ev-")
    assert len(key.device_id) == 19


def test_key_repr_never_shows_the_seed() -> None:
    """Printing a key (in a log line, a traceback) does not leak the private key."""
    key = key_from_byte(5)
    assert (b"\x05" * 32).hex() not in repr(key)
    assert "seed" not in repr(key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not = [toml", "not TOML"),
        ('format = "ssh"', "format must be"),
        ('format = "carbonlink-device-key-v1"\nalgorithm = "RSA"', "only Ed25519"),
        ('format = "carbonlink-device-key-v1"\nalgorithm = "Ed25519"', "lacks device_id"),
        (
            'format = "carbonlink-device-key-v1"\nalgorithm = "Ed25519"\ndevice_id = "ev-1"\nprivate_key_seed = "00"',
            "64 hex digits",
        ),
        (
            (
                'format = "carbonlink-device-key-v1"\nalgorithm = "Ed25519"\ndevice_id = "EV"\n'
                f'private_key_seed = "{"00" * 32}"'
            ),
            "device id 'EV'",
        ),
    ],
)
def test_bad_key_files_are_refused_by_name(text: str, message: str) -> None:
    """A key file that is not ours, or incomplete, raises KeyFormatError saying what is wrong."""
    with pytest.raises(KeyFormatError, match=message):
        parse_key_file(text)


def test_key_file_with_a_foreign_public_key_is_corrupt() -> None:
    """A key file whose public key does not match its seed is refused as corrupt."""
    text = render_key_file(key_from_byte(5)).replace(
        key_from_byte(5).public_key.raw.hex(), key_from_byte(6).public_key.raw.hex()
    )
    with pytest.raises(KeyFormatError, match="corrupt"):
        parse_key_file(text)


@pytest.mark.parametrize(("mode", "unsafe"), [(0o100600, False), (0o100400, False), (0o100640, True), (0o100604, True)])
def test_permission_problem_when_others_can_read(mode: int, unsafe: bool) -> None:  # noqa: FBT001 - parametrized flag
    """A key file readable by group or others is reported; owner-only is fine."""
    assert (key_file_permission_problem(mode) is not None) is unsafe


def test_public_key_reads_hex_and_both_base64_alphabets() -> None:
    """A public key may be pasted as hex, standard or URL-safe base64 (padded or not)."""
    raw = bytes(range(200, 232))
    for text in (raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert PublicKey.from_text(f"  {text}\n").raw == raw


@pytest.mark.parametrize("text", ["", "zz", "00" * 31, base64.b64encode(b"\x00" * 33).decode()])
def test_public_key_of_wrong_size_is_refused(text: str) -> None:
    """Only 32 bytes make an Ed25519 public key."""
    with pytest.raises(KeyFormatError):
        PublicKey.from_text(text)


def test_public_key_verify_raises_on_a_bad_signature() -> None:
    """PublicKey.verify raises BadSignatureError, never returns False."""
    key = key_from_byte(5)
    signature = key.sign(b"message")
    key.public_key.verify(b"message", signature)
    with pytest.raises(BadSignatureError):
        key.public_key.verify(b"massage", signature)
    with pytest.raises(BadSignatureError):
        key.public_key.verify(b"message", signature[:63])


def test_seed_of_wrong_length_is_refused() -> None:
    """A private key seed is exactly 32 bytes."""
    with pytest.raises(KeyFormatError, match="32 bytes"):
        DeviceKey.from_seed(b"\x00" * 31)
