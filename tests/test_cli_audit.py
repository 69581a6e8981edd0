"""``carbonlink audit``: exit 0 with a summary, 1 with the first discrepancy, 2 when it cannot read."""

import json
from pathlib import Path

import pytest

from cli_runner import run_cli, run_process
from ledger_exports import Export, build_export


@pytest.fixture(scope="module")
def clean() -> Export:
    return build_export()


def tampered(clean: Export) -> Export:
    export = clean.copy()
    index = export.find("record", lambda line: line["device_id"] == "car-b" and line["sequence"] == 2)
    export.lines[index]["record_hash"] = "ab" * 32
    return export


def test_a_clean_export_exits_0_with_a_summary(tmp_path: Path, clean: Export) -> None:
    """As its own process, the audit of a clean export prints the summary table and exits 0."""
    path = clean.write(tmp_path / "ledger.jsonl")
    result = run_process("audit", str(path))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.startswith("The ledger export verifies.\n")
    assert "credits           8\n" in out
    assert "issued credits    6\n" in out
    assert "kg CO2e" in out
    assert result.stderr == b""


def test_a_clean_export_as_json(tmp_path: Path, clean: Export) -> None:
    """--json prints one object with ok true and the summary's figures."""
    result = run_process("audit", str(clean.write(tmp_path / "ledger.jsonl")), "--json")
    assert result.returncode == 0
    answer = json.loads(result.stdout)
    assert answer["ok"] is True
    assert answer["summary"]["credits"] == 8
    assert answer["summary"]["records"] == 14


def test_a_tampered_export_exits_1_naming_the_line(tmp_path: Path, clean: Export) -> None:
    """A discrepancy ends the audit with exit 1 and one line on stderr that names the line and the problem."""
    path = tampered(clean).write(tmp_path / "ledger.jsonl")
    result = run_process("audit", str(path))
    assert result.returncode == 1
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert err.startswith("carbonlink: audit failed: line 14: record abababababababab… of device car-b: record_hash")


def test_a_tampered_export_as_json(tmp_path: Path, clean: Export) -> None:
    """With --json a discrepancy is an object with ok false, the line and the problem."""
    path = tampered(clean).write(tmp_path / "ledger.jsonl")
    result = run_process("audit", str(path), "--json")
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert answer["line"] == 14
    assert "record_hash is not the SHA-256" in answer["problem"]


def test_the_export_can_come_on_standard_input(clean: Export) -> None:
    """'-' reads the export from standard input."""
    result = run_process("audit", "-", stdin=clean.text().encode())
    assert result.returncode == 0, result.stderr.decode()


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable file is a usage error, not a discrepancy."""
    result = run_cli(capsys, "audit", str(tmp_path / "missing.jsonl"))
    assert result.code == 2
    assert "cannot read" in result.err
    assert result.out == ""


def test_a_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory is not a readable export."""
    assert run_cli(capsys, "audit", str(tmp_path)).code == 2


def test_a_truncated_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean: Export) -> None:
    """A file without its end line fails in-process too, naming its last line."""
    text = clean.text()
    path = tmp_path / "cut.jsonl"
    path.write_text(text[: text.rindex('{"type"')], encoding="utf-8")
    result = run_cli(capsys, "audit", str(path))
    assert result.code == 1
    assert f"line {len(clean.lines) - 1}: the file ends without its end line" in result.err


def test_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a file the command prints its usage and exits 2."""
    result = run_cli(capsys, "audit")
    assert result.code == 2
    assert "LEDGER.jsonl" in result.err
