"""The export's line model: every kind of line to text and back, and precise errors for bad lines."""

import base64
import json
from datetime import UTC, datetime

import pytest

from carbonlink.ledger import EntryKind, LedgerBatch, LedgerEntry, next_entry, seal_batch
from carbonlink.ledger_export import (
    ExportDevice,
    ExportEnd,
    ExportFormatError,
    ExportHeader,
    ExportKey,
    ExportLine,
    ExportRecord,
    export_line,
    parse_export_line,
)
from carbonlink.reasons import RejectionReason

from ledger_exports import KEY_A1, build_export

AT = datetime(2026, 11, 24, 7, 30, 0, 123456, tzinfo=UTC)
ENTRY = next_entry(None, EntryKind.BINDING, {"vehicle_key": "device:car-a"}, AT)
LINES: list[ExportLine] = [
    ExportHeader(exported_at=AT, gateway_kid=KEY_A1.kid, gateway_public_key=KEY_A1.public_key.raw),
    ExportHeader(exported_at=AT, gateway_kid=None, gateway_public_key=None),
    ExportDevice(
        device_id="car-a",
        vehicle_class="compact",
        vin_hash=bytes(range(32)),
        status="active",
        keys=(
            ExportKey(kid=KEY_A1.kid, public_key=KEY_A1.public_key.raw, added_at=AT, retired_at=AT, revoked_at=None),
        ),
    ),
    ExportRecord(
        record_hash=bytes(32), device_id="car-a", sequence=3, refused_for=RejectionReason.OVERLAP, signed=b"\x00\xff"
    ),
    ExportRecord(record_hash=bytes(32), device_id="car-a", sequence=1, refused_for=None, signed=b"signed"),
    ENTRY,
    seal_batch(None, [ENTRY], AT),
    ExportEnd(lines=6),
]


@pytest.mark.parametrize("value", LINES, ids=lambda value: type(value).__name__)
def test_every_line_kind_round_trips(value: ExportLine) -> None:
    """parse_export_line(export_line(x)) == x for every kind of line."""
    text = export_line(value)
    assert "\n" not in text
    assert parse_export_line(text, 1) == value
    assert parse_export_line(text + "\n", 1) == value


def test_lines_are_compact_json_with_type_first() -> None:
    """A line is compact JSON starting with its type; bytes are lowercase hex, signed bytes base64."""
    record = export_line(LINES[3])
    assert record.startswith('{"type":"record",')
    assert json.loads(record) == {
        "type": "record",
        "record_hash": "00" * 32,
        "device_id": "car-a",
        "sequence": 3,
        "refused_for": "overlap",
        "signed": base64.b64encode(b"\x00\xff").decode(),
    }
    header = json.loads(export_line(LINES[0]))
    assert header == {
        "type": "header",
        "format": "carbonlink-ledger",
        "version": 1,
        "exported_at": "2026-11-24T07:30:00.123456Z",
        "gateway_kid": KEY_A1.kid.hex(),
        "gateway_public_key": KEY_A1.public_key.raw.hex(),
    }


def test_entry_and_batch_lines_carry_the_ledgers_json() -> None:
    """Entry and batch lines are the ledger's JSON forms with a type."""
    assert json.loads(export_line(ENTRY)) == {"type": "entry", **ENTRY.to_json()}
    batch = seal_batch(None, [ENTRY], AT)
    assert json.loads(export_line(batch)) == {"type": "batch", **batch.to_json()}


def test_a_built_export_parses_line_by_line() -> None:
    """Every line of a whole export reads as its kind, in the file's order."""
    lines = build_export().text().splitlines()
    kinds = [type(parse_export_line(line, number)).__name__ for number, line in enumerate(lines, start=1)]
    assert kinds[0] == "ExportHeader"
    assert kinds[-1] == "ExportEnd"
    assert {"ExportDevice", "ExportRecord", "LedgerEntry", "LedgerBatch"} <= set(kinds)
    assert isinstance(parse_export_line(lines[-2], 1), LedgerBatch)
    assert isinstance(parse_export_line(lines[-8], 1), LedgerEntry)


def line_with(value: ExportLine, **changes: object) -> str:
    return json.dumps(json.loads(export_line(value)) | changes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "line 7: not a JSON object"),
        ("[]", "line 7: not a JSON object"),
        ('{"lines": 1}', "line 7: line type None is not one of: header, device, record, entry, batch, end"),
        ('{"type": "end", "lines": -1}', "line 7: end line: lines must be a count"),
        ('{"type": "end", "lines": 1, "extra": 2}', "line 7: end line: end has unknown fields: extra"),
        ('{"type": "end", "lines": Infinity}', "Infinity is not a JSON number"),
        ('{"type": "end", "type": "end", "lines": 1}', "key 'type' appears twice"),
        (line_with(LINES[0], format="other"), "header line: format 'other' is not 'carbonlink-ledger'"),
        (line_with(LINES[0], version=True), "header line: version True is not supported"),
        (line_with(LINES[0], gateway_kid=None), "gateway_kid and gateway_public_key are both given or both null"),
        (line_with(LINES[0], exported_at="2026-11-24T07:30:00Z"), "header line: exported_at"),
        (line_with(LINES[2], device_id="Car A"), "device line: device_id 'Car A' is not of the form"),
        (line_with(LINES[2], vehicle_class="tank"), "device line: vehicle_class 'tank' is not one of"),
        (line_with(LINES[2], keys=[]), "device line: keys must be a non-empty list"),
        (line_with(LINES[2], vin_hash="00"), "device line: vin_hash must be 32 bytes in lowercase hex"),
        (line_with(LINES[2], status=""), "device line: status '' is not of the form"),
        (line_with(LINES[3], sequence=0), "record line: sequence must be an integer from 1"),
        (line_with(LINES[3], refused_for="boredom"), "record line: refused_for 'boredom' is not a rejection reason"),
        (line_with(LINES[3], signed="***"), "record line: signed is not base64"),
        (line_with(LINES[3], signed=5), "record line: signed must be base64 text"),
        (line_with(ENTRY, kind="gift"), "entry line: entry.kind 'gift'"),
        (line_with(LINES[6], merkle_root="XYZ"), "batch line: batch.merkle_root must be 32 bytes"),
    ],
)
def test_bad_lines_are_named_with_their_line_number(text: str, message: str) -> None:
    """Every malformed line raises ExportFormatError whose message starts with the line number."""
    with pytest.raises(ExportFormatError) as caught:
        parse_export_line(text, 7)
    assert message in str(caught.value)
    assert caught.value.line_no == 7
    assert str(caught.value) == f"line 7: {caught.value.problem}"


def test_a_device_key_needs_every_field() -> None:
    """A key lacking a field is named by its position in the device line."""
    device = json.loads(export_line(LINES[2]))
    del device["keys"][0]["revoked_at"]
    with pytest.raises(ExportFormatError, match="line 2: device line: keys\\[0\\] lacks fields: revoked_at"):
        parse_export_line(json.dumps(device), 2)


def test_export_line_refuses_other_values() -> None:
    """Only the export's line kinds have a line."""
    with pytest.raises(TypeError):
        export_line("header")  # type: ignore[arg-type]
