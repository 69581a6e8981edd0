"""``carbonlink inspect``: a signed record as JSON, verified when a key is given."""

import base64
import json
from pathlib import Path

import cbor2
import pytest

from carbonlink import cbor
from carbonlink.chain import record_hash
from carbonlink.envelope import content_type, open_envelope, sig_structure, sign
from carbonlink.keys import render_key_file
from carbonlink.records import TripRecord
from carbonlink.wire import record_to_json

from cli_runner import run_cli, run_process
from records_factory import key_from_byte, make_trip

KEY = key_from_byte(11)
OTHER = key_from_byte(12)


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    path = tmp_path / "trip.cose"
    path.write_bytes(sign(make_trip(), KEY))
    return path


def test_valid_record_with_key_exits_0(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """With the right public key, inspect prints the record, valid true, and exits 0."""
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", KEY.public_key.raw.hex())
    assert result.code == 0
    report = json.loads(result.out)
    assert report["valid"] is True
    assert report["kid"] == KEY.kid.hex()
    assert report["type"] == "trip"
    assert report["version"] == 1
    assert report["record"] == record_to_json(make_trip())
    assert report["record_hash"] == record_hash(record_file.read_bytes()).hex()
    assert report["error"] is None
    assert result.err == ""


def test_without_key_the_validity_is_unknown(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """Without --public-key the record is decoded but not vouched for: valid is null."""
    result = run_cli(capsys, "inspect", str(record_file))
    assert result.code == 0
    assert json.loads(result.out)["valid"] is None


def test_tampered_record_exits_1_with_one_line(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """A changed byte makes the record invalid: valid false, exit 1, one-line reason on stderr."""
    data = bytearray(record_file.read_bytes())
    data[-1] ^= 0x01
    record_file.write_bytes(bytes(data))
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", KEY.public_key.raw.hex())
    assert result.code == 1
    assert json.loads(result.out)["valid"] is False
    assert len(result.err.strip().splitlines()) == 1
    assert "signature does not verify" in result.err


def test_wrong_key_exits_1(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """Verifying with another device's key says whose key signed it."""
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", OTHER.public_key.raw.hex())
    assert result.code == 1
    assert KEY.kid.hex() in result.err


def test_wrong_type_exits_1(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """--type charge refuses a trip record."""
    result = run_cli(capsys, "inspect", str(record_file), "--type", "charge", "--public-key", KEY.public_key.raw.hex())
    assert result.code == 1
    assert "expected a charge record" in result.err


def test_signed_but_invalid_record_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A correctly signed payload that breaks the schema is reported invalid with the field named."""
    payload = cbor.encode(dict(cbor2.loads(open_envelope(sign(make_trip(), KEY)).payload), sequence=0))
    protected = cbor.encode({1: -8, 3: content_type(TripRecord), 4: KEY.kid})
    signed = cbor.encode(cbor2.CBORTag(18, [protected, {}, payload, KEY.sign(sig_structure(protected, payload))]))
    path = tmp_path / "bad.cose"
    path.write_bytes(signed)
    result = run_cli(capsys, "inspect", str(path), "--public-key", KEY.public_key.raw.hex())
    assert result.code == 1
    report = json.loads(result.out)
    assert report["valid"] is False
    assert report["record"] is None
    assert "sequence" in report["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), (b"garbage", "not a readable signed record"), (b"", "not a readable signed record")],
    ids=["missing", "garbage", "empty"],
)
def test_unreadable_input_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    """Input that is not a signed record at all exits 2 with the reason, and prints no JSON."""
    path = tmp_path / "input"
    if content is not None:
        path.write_bytes(content)
    result = run_cli(capsys, "inspect", str(path), "--public-key", KEY.public_key.raw.hex())
    assert result.code == 2
    assert message in result.err
    assert result.out == ""


def test_oversized_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file far larger than any record is refused without reading it whole."""
    path = tmp_path / "huge"
    path.write_bytes(b"\xd2" * 1_000_000)
    result = run_cli(capsys, "inspect", str(path))
    assert result.code == 2
    assert "larger than any signed record" in result.err


def test_key_file_as_public_key(capsys: pytest.CaptureFixture[str], tmp_path: Path, record_file: Path) -> None:
    """--public-key may name the device key file itself (its public half is used)."""
    key_path = tmp_path / "car.key"
    key_path.write_text(render_key_file(KEY))
    key_path.chmod(0o600)
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", str(key_path))
    assert result.code == 0
    assert json.loads(result.out)["valid"] is True


def test_public_key_file_in_base64(capsys: pytest.CaptureFixture[str], tmp_path: Path, record_file: Path) -> None:
    """--public-key may name a file holding the public key in base64."""
    key_path = tmp_path / "car.pub"
    key_path.write_text(base64.b64encode(KEY.public_key.raw).decode() + "\n")
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", str(key_path))
    assert result.code == 0


def test_bad_public_key_exits_2(capsys: pytest.CaptureFixture[str], record_file: Path) -> None:
    """A public key that is not 32 bytes is a usage error."""
    result = run_cli(capsys, "inspect", str(record_file), "--public-key", "abcd")
    assert result.code == 2
    assert "--public-key" in result.err


@pytest.mark.parametrize("spelling", ["hex", "base64"])
def test_stdin_in_hex_or_base64(record_file: Path, spelling: str) -> None:
    """'-' reads stdin; records pasted as hex or base64 text are understood."""
    raw = record_file.read_bytes()
    text = raw.hex() if spelling == "hex" else base64.b64encode(raw).decode()
    result = run_process("inspect", "-", "--public-key", KEY.public_key.raw.hex(), stdin=text.encode() + b"\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True
