"""``carbonlink demo`` as it stands: a key, a chain of signed records, all verifiable."""

from pathlib import Path

import pytest

from carbonlink.chain import check_link
from carbonlink.envelope import verify
from carbonlink.keys import parse_key_file
from carbonlink.records import Record

from cli_runner import run_cli


def test_demo_leaves_a_verifiable_chain(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The demo's records verify with its key, form one chain, and its output says how to inspect them."""
    data_dir = tmp_path / "demo"
    result = run_cli(capsys, "demo", "--data-dir", str(data_dir))
    assert result.code == 0, result.err
    key = parse_key_file((data_dir / "vehicle-1.key").read_text())
    files = sorted(data_dir.glob("record-*.cose"))
    assert [f.name for f in files] == ["record-0001-trip.cose", "record-0002-trip.cose", "record-0003-charge.cose"]
    previous_signed: bytes | None = None
    previous: Record | None = None
    for path in files:
        signed = path.read_bytes()
        record = verify(signed, key.public_key)
        check_link(previous_signed, previous, record)
        previous_signed, previous = signed, record
    assert f"carbonlink inspect {files[0]}" in result.out
    assert key.device_id in result.out


def test_demo_reports_an_unusable_data_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A data directory that cannot be created is one clear error, exit 2."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(capsys, "demo", "--data-dir", str(blocker / "sub"))
    assert result.code == 2
    assert "cannot create data directory" in result.err
