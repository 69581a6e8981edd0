"""The offline audit: a clean export passes; each kind of tampering stops it at the right line."""

import base64
import hashlib
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonlink.audit import MAX_LINE_CHARS, AuditError, AuditSummary, audit_lines
from carbonlink.chain import record_hash
from carbonlink.envelope import sign
from carbonlink.ledger import EntryKind
from carbonlink.testing import sample_trip

from ledger_exports import KEY_A1, KEY_B, OWNER, Export, build_export

CLEAN = build_export()


@pytest.fixture
def export() -> Export:
    return CLEAN.copy()


def run(export: Export) -> AuditSummary:
    return audit_lines(export.text().splitlines(keepends=True))


def failure(export: Export | str) -> AuditError:
    text = export if isinstance(export, str) else export.text()
    with pytest.raises(AuditError) as caught:
        audit_lines(text.encode("utf-8").splitlines(keepends=True))
    return caught.value


def expect(export: Export | str, line_no: int, pattern: str) -> None:
    err = failure(export)
    assert err.line_no == line_no, str(err)
    assert pattern in err.problem, str(err)
    assert str(err).startswith(f"line {line_no}: ")


def record_index(export: Export, device_id: str, sequence: int) -> int:
    return export.find("record", lambda line: line["device_id"] == device_id and line["sequence"] == sequence)


def entry_index(export: Export, kind: str, nth: int = 0) -> int:
    return export.find("entry", lambda line: line["kind"] == kind, nth)


# --- a clean export ----------------------------------------------------------------------------------------
def test_a_clean_export_passes_with_its_summary(export: Export) -> None:
    """The export of a fleet with a key rotation, a refused link and an overlapping device verifies."""
    summary = run(export)
    assert (summary.devices, summary.records, summary.refused_records) == (3, 14, 1)
    assert (summary.accepted_trips, summary.accepted_charges) == (10, 3)
    assert (summary.entries, summary.batches, summary.credits, summary.bindings, summary.issued) == (15, 5, 8, 1, 6)
    reductions = [line["body"]["reduction"]["reduction_co2e_g"] for line in export.entries("credit")]
    assert summary.credited_co2e_g == pytest.approx(sum(reductions))
    assert summary.issued_co2e_g == pytest.approx(sum(reductions[:6]))
    assert summary.issued_co2e_g < summary.credited_co2e_g


def test_the_summary_renders_as_a_table_and_json(export: Export) -> None:
    """The text table lists every figure in kg; the JSON form keeps grams."""
    summary = run(export)
    text = summary.render_text()
    assert "credits" in text
    assert f"{summary.credited_co2e_g / 1000:.3f} kg CO2e" in text
    assert json.loads(json.dumps(summary.to_json()))["credited_co2e_g"] == summary.credited_co2e_g


def test_the_audit_accepts_text_lines_and_a_last_line_without_newline(export: Export) -> None:
    """Lines may come as str or bytes; the final newline is optional."""
    assert run(export) == audit_lines(export.text().rstrip("\n").split("\n"))


def test_lines_are_read_one_at_a_time(export: Export) -> None:
    """The audit consumes an iterator lazily and stops reading at the first discrepancy."""
    export.lines[record_index(export, "car-a", 2)]["record_hash"] = "00" * 32
    lines = export.text().splitlines(keepends=True)
    read: list[int] = []

    def feed() -> Iterator[str]:
        for number, line in enumerate(lines, start=1):
            read.append(number)
            yield line

    with pytest.raises(AuditError):
        audit_lines(feed())
    assert read[-1] == record_index(export, "car-a", 2) + 1 < len(lines)


# --- records -----------------------------------------------------------------------------------------------
def flip(signed_b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(signed_b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


@pytest.mark.parametrize("where", ["signature", "payload"])
def test_one_byte_of_a_record_changed(export: Export, where: str) -> None:
    """A changed byte of the signed bytes fails the signature, even with the record hash recomputed."""
    index = record_index(export, "car-a", 2)
    line = export.lines[index]
    raw = base64.b64decode(line["signed"])
    at = len(raw) - 1 if where == "signature" else raw.index(b"car-a-00000002") + 6
    line["signed"] = flip(line["signed"], at)
    line["record_hash"] = hashlib.sha256(base64.b64decode(line["signed"])).hexdigest()
    expect(export, index + 1, "of device car-a: signature does not verify with key")


def test_one_byte_changed_without_fixing_the_hash(export: Export) -> None:
    """A changed byte is first seen as a record hash that no longer matches the bytes."""
    index = record_index(export, "car-b", 1)
    export.lines[index]["signed"] = flip(export.lines[index]["signed"], 40)
    expect(export, index + 1, "record_hash is not the SHA-256 of the signed bytes")


def test_a_wrong_record_hash(export: Export) -> None:
    """A record line whose hash is not that of its bytes fails."""
    index = record_index(export, "car-a", 7)
    export.lines[index]["record_hash"] = "ab" * 32
    expect(export, index + 1, "record abababababababab… of device car-a: record_hash is not the SHA-256")


def test_a_record_removed_from_the_middle_of_a_chain(export: Export) -> None:
    """Removing a record leaves a sequence gap at the next one."""
    index = record_index(export, "car-a", 3)
    del export.lines[index]
    expect(export, index + 1, "(sequence 4) breaks the device's chain: sequence 4 does not follow: expected 3")


def test_a_record_from_another_device_swapped_in(export: Export) -> None:
    """Another device's record under this device's name is signed by a key the device does not have."""
    index = record_index(export, "car-a", 2)
    other = export.lines[record_index(export, "car-b", 2)]
    export.lines[index] = other | {"device_id": "car-a"}
    expect(export, index + 1, f"signed by key {KEY_B.kid.hex()[:16]}…, which is not a key of device car-a")


def test_a_record_from_a_forked_chain_swapped_in(export: Export) -> None:
    """A different record of the same device and sequence breaks the link to the next record."""
    index = record_index(export, "car-b", 2)
    previous = bytes.fromhex(export.lines[index - 1]["record_hash"])
    forged = sample_trip(
        device_id="car-b", record_id="car-b-forged", sequence=2, previous_record_hash=previous, distance_m=99_000.0
    )
    signed = sign(forged, KEY_B)
    export.lines[index] |= {"record_hash": record_hash(signed).hex(), "signed": base64.b64encode(signed).decode()}
    expect(export, index + 2, "(sequence 3) breaks the device's chain: previous_record_hash")


def test_a_record_of_the_right_device_with_a_changed_sequence_on_the_line(export: Export) -> None:
    """The line's device and sequence must be the signed record's."""
    index = record_index(export, "car-a", 2)
    export.lines[index]["sequence"] = 9
    expect(export, index + 1, "the signed record has sequence 2, the line says 9")


def test_a_key_replaced_in_a_device_line(export: Export) -> None:
    """With another key (and its kid) in the device line, the device's records no longer verify."""
    device = export.lines[export.find("device", lambda line: line["device_id"] == "car-b")]
    device["keys"][0] |= {"kid": KEY_A1.kid.hex(), "public_key": KEY_A1.public_key.raw.hex()}
    expect(export, record_index(export, "car-b", 1) + 1, "which is not a key of device car-b")


def test_a_public_key_replaced_but_not_its_kid(export: Export) -> None:
    """A device line whose kid is not the thumbprint of its public key fails at that line."""
    index = export.find("device", lambda line: line["device_id"] == "car-b")
    export.lines[index]["keys"][0]["public_key"] = KEY_A1.public_key.raw.hex()
    expect(export, index + 1, "device car-b: kid")


def test_a_record_of_an_unknown_device(export: Export) -> None:
    """A record whose device has no device line fails."""
    del export.lines[export.find("device", lambda line: line["device_id"] == "car-c")]
    expect(export.reseal(), record_index(export, "car-c", 1) + 1, "there is no device line for car-c")


# --- the ledger's hash chain and batches -------------------------------------------------------------------
def test_an_entry_body_changed(export: Export) -> None:
    """A changed body breaks the entry's hash."""
    index = entry_index(export, "binding")
    export.lines[index]["body"]["consent_reference"] = "form 2026-118"
    expect(export, index + 1, "the ledger's hash chain breaks: entry 9: entry_hash")


def test_an_entry_removed(export: Export) -> None:
    """A removed entry leaves a gap in the seqs."""
    index = entry_index(export, "credit", 3)
    del export.lines[index]
    export.lines[-1]["lines"] -= 1
    expect(export, index + 1, "entry 5: seq does not follow the entry before it (expected 4)")


def test_an_entry_hash_recomputed_after_a_change(export: Export) -> None:
    """Re-hashing the chain after a change still breaks the root of the entry's batch."""
    index = entry_index(export, "binding")
    export.lines[index]["body"]["consent_reference"] = "form 2026-118"
    export.reseal(batches=False)
    batch = export.find("batch", lambda line: line["first_seq"] <= 9 <= line["last_seq"])
    expect(export, batch + 1, "batch 3: merkle_root")


def test_a_batch_root_changed(export: Export) -> None:
    """A batch root that is not the root of its entries fails."""
    index = export.find("batch", nth=1)
    export.lines[index]["merkle_root"] = "11" * 32
    expect(export, index + 1, "batch 2: merkle_root 1111")


def test_a_batch_chained_to_another_root(export: Export) -> None:
    """Each batch names the root of the batch before it."""
    index = export.find("batch", nth=2)
    export.lines[index]["previous_root"] = export.lines[index - 2]["merkle_root"]
    expect(export, index + 1, "batch 3: previous_root")


def test_entries_left_out_of_every_batch(export: Export) -> None:
    """Every entry must be sealed: a missing last batch is found at the end line."""
    del export.lines[export.find("batch", nth=4)]
    export.reseal(batches=False)
    export.lines[-1]["lines"] = len(export.lines) - 1
    expect(export, len(export.lines), "entries 13-15 are in no batch")


def test_a_batch_past_the_last_entry(export: Export) -> None:
    """A batch may not seal entries the file does not have."""
    index = export.find("batch", nth=4)
    export.lines[index]["last_seq"] = 16
    expect(export, index + 1, "seals entries up to 16, but the last entry is 15")


# --- credits -------------------------------------------------------------------------------------------------
def test_a_credit_reduction_changed_with_hashes_recomputed(export: Export) -> None:
    """A stated reduction that is not what the methodology gives fails, whatever the hashes say."""
    index = entry_index(export, "credit", 6)
    export.lines[index]["body"]["reduction"]["reduction_co2e_g"] += 1.0
    expect(export.reseal(), index + 1, "reduction reduction_co2e_g is")


def test_a_credit_parameter_changed_with_hashes_recomputed(export: Export) -> None:
    """A changed stored parameter no longer gives the stored reduction."""
    index = entry_index(export, "credit", 0)
    export.lines[index]["body"]["parameters"]["baseline_fuel_l_per_100km"]["value"] = 9.5
    expect(export.reseal(), index + 1, "recomputed")


def test_a_parameter_changed_with_its_reduction_recomputed(export: Export) -> None:
    """One parameters version means one value per parameter: a credit that differs from the others fails."""
    index = entry_index(export, "credit", 1)
    body = export.lines[index]["body"]
    body["parameters"]["charging_efficiency"]["value"] = 0.99
    export.lines[index]["body"] = export.recomputed(body)
    expect(
        export.reseal(), index + 1, "parameter charging.efficiency (vintage 2022) of parameters version 2026.1 is 0.99"
    )


def test_a_credit_for_another_vehicle_class(export: Export) -> None:
    """A credit must use the baseline of its device's class."""
    index = entry_index(export, "credit", 6)
    export.lines[index]["body"]["parameters"]["vehicle_class"] = "bus"
    expect(export.reseal(), index + 1, "parameters are for vehicle class 'bus', but device car-b is 'suv'")


def test_a_credit_odometer_changed(export: Export) -> None:
    """The credited interval must be the signed trip's."""
    index = entry_index(export, "credit", 2)
    export.lines[index]["body"]["odometer_end_m"] += 500.0
    expect(export.reseal(), index + 1, "odometer_end_m is")


def test_a_charge_energy_changed_with_its_reduction_recomputed(export: Export) -> None:
    """A credit's charges must state the signed charge's energies."""
    index = entry_index(export, "credit", 4)
    body = export.lines[index]["body"]
    body["charges"][0]["grid_energy_wh"] += 100.0
    export.lines[index]["body"] = export.recomputed(body)
    expect(export.reseal(), index + 1, "states energy_in_wh")


def test_a_charge_that_ended_after_the_trip_started(export: Export) -> None:
    """A credit may only use charges that ended by the trip's start."""
    late_charge = export.lines[record_index(export, "car-a", 8)]["record_hash"]
    index = entry_index(export, "credit", 5)
    body = export.lines[index]["body"]
    body["charges"].append(
        {"record_hash": late_charge, "energy_in_wh": 4650.0, "grid_energy_wh": 5166.7, "excluded": False}
    )
    export.lines[index]["body"] = export.recomputed(body)
    expect(export.reseal(), index + 1, "after the trip started")


def test_two_credits_of_one_vehicle_with_overlapping_odometer_intervals(export: Export) -> None:
    """car-c sits on car-a's VIN and drove the same odometer range: crediting it as well fails."""
    first = export.lines[entry_index(export, "credit", 0)]
    trip = export.lines[record_index(export, "car-c", 1)]["record_hash"]
    record = export.record_of(trip)
    body = json.loads(json.dumps(first["body"])) | {
        "credit_id": trip,
        "record_hash": trip,
        "device_id": "car-c",
        "start_at": record.start_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "end_at": record.end_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    index = entry_index(export, "binding")
    export.lines.insert(index, first | {"body": export.recomputed(body)})
    expect(export.reseal(), index + 1, "overlaps credit")


def test_the_same_record_credited_twice(export: Export) -> None:
    """A second credit of a trip fails, wherever it is."""
    first = export.lines[entry_index(export, "credit", 2)]
    index = entry_index(export, "binding")
    export.lines.insert(index, json.loads(json.dumps(first)))
    expect(export.reseal(), index + 1, "is credited twice (first by entry 3)")


def test_a_refused_record_credited(export: Export) -> None:
    """A link refused for its content is never credited."""
    first = export.lines[entry_index(export, "credit", 6)]
    trip = export.lines[record_index(export, "car-b", 3)]["record_hash"]
    body = json.loads(json.dumps(first["body"])) | {"credit_id": trip, "record_hash": trip}
    index = entry_index(export, "binding")
    export.lines.insert(index, first | {"body": body})
    expect(export.reseal(), index + 1, "was refused (implausible_energy) and cannot be credited")


def test_a_credit_of_a_record_not_in_the_export(export: Export) -> None:
    """A credit must name a record of the export."""
    index = entry_index(export, "credit", 7)
    export.lines[index]["body"] |= {"credit_id": "ee" * 32, "record_hash": "ee" * 32}
    expect(export.reseal(), index + 1, "is not among the export's records")


def test_a_charge_of_another_vehicle(export: Export) -> None:
    """A credit may only use its own vehicle's charges."""
    charge = export.lines[record_index(export, "car-a", 4)]["record_hash"]
    index = entry_index(export, "credit", 7)
    body = export.lines[index]["body"]
    body["charges"] = [{"record_hash": charge, "energy_in_wh": 4650.0, "grid_energy_wh": 5166.7, "excluded": False}]
    export.lines[index]["body"] = export.recomputed(body)
    expect(export.reseal(), index + 1, "is of vehicle vin:")


def test_a_charge_listed_twice(export: Export) -> None:
    """Each charge counts once in a credit."""
    index = entry_index(export, "credit", 4)
    body = export.lines[index]["body"]
    body["charges"] = body["charges"] * 2
    export.lines[index]["body"] = export.recomputed(body)
    expect(export.reseal(), index + 1, "is listed twice")


def test_a_charge_credited_as_a_trip(export: Export) -> None:
    """Only trips are credited."""
    charge = export.lines[record_index(export, "car-a", 4)]["record_hash"]
    index = entry_index(export, "credit", 7)
    export.lines[index]["body"] |= {"credit_id": charge, "record_hash": charge}
    expect(export.reseal(), index + 1, "is a charge, not a trip")


def test_parameters_of_another_year(export: Export) -> None:
    """A credit uses the parameters of its trip's year."""
    index = entry_index(export, "credit", 7)
    export.lines[index]["body"]["parameters"]["crediting_year"] = 2025
    expect(export.reseal(), index + 1, "parameters are for year 2025, but the trip ended in 2026")


def test_an_export_without_ledger_entries_passes(export: Export) -> None:
    """A gateway that credited nothing yet exports a valid, empty ledger."""
    export.lines = [line for line in export.lines if line["type"] not in {"entry", "batch"}]
    summary = run(export.reseal())
    assert (summary.entries, summary.batches, summary.credits, summary.credited_co2e_g) == (0, 0, 0, 0.0)


# --- bindings and issues ---------------------------------------------------------------------------------
def issue_body(export: Export, credit_nth: int, binding_seq: int, owner: str = OWNER) -> dict[str, object]:
    credit = export.lines[entry_index(export, "credit", credit_nth)]["body"]
    return {
        "credit_id": credit["credit_id"],
        "owner_id": owner,
        "vehicle_key": credit["vehicle_key"],
        "reduction_co2e_g": credit["reduction"]["reduction_co2e_g"],
        "binding_seq": binding_seq,
    }


def test_an_issue_without_a_binding(export: Export) -> None:
    """An unbound vehicle's credit is never issued: an issue naming no binding fails."""
    index = export.append_entry(EntryKind.ISSUE, issue_body(export, 6, binding_seq=1))
    expect(export, index + 1, "binding_seq 1 is no binding entry before it")


def test_an_issue_under_another_vehicles_binding(export: Export) -> None:
    """The binding an issue names must bind the credit's vehicle to the issue's owner."""
    binding_seq = export.lines[entry_index(export, "binding")]["seq"]
    index = export.append_entry(EntryKind.ISSUE, issue_body(export, 6, binding_seq=binding_seq))
    expect(export, index + 1, f"binding {binding_seq} binds vin:")


def test_a_credit_issued_twice(export: Export) -> None:
    """No credit is issued twice."""
    binding_seq = export.lines[entry_index(export, "binding")]["seq"]
    first_issue = export.lines[entry_index(export, "issue", 0)]["seq"]
    index = export.append_entry(EntryKind.ISSUE, issue_body(export, 0, binding_seq=binding_seq))
    expect(export, index + 1, f"the credit was issued before, by entry {first_issue}")


def test_an_issue_of_a_credit_that_does_not_exist(export: Export) -> None:
    """An issue must follow its credit."""
    binding_seq = export.lines[entry_index(export, "binding")]["seq"]
    index = export.append_entry(
        EntryKind.ISSUE, issue_body(export, 0, binding_seq=binding_seq) | {"credit_id": "dd" * 32}
    )
    expect(export, index + 1, "no credit entry before it has this credit_id")


def test_an_issue_with_another_amount(export: Export) -> None:
    """An issue repeats its credit's reduction exactly."""
    index = entry_index(export, "issue", 2)
    export.lines[index]["body"]["reduction_co2e_g"] *= 2
    expect(export.reseal(), index + 1, "is not the credit's")


def test_an_issue_under_a_replaced_binding(export: Export) -> None:
    """Once a vehicle is bound to another owner, the old binding issues nothing."""
    index = entry_index(export, "binding")
    rebinding = json.loads(json.dumps(export.lines[index]))
    rebinding["body"]["owner_id"] = "owner-2"
    export.lines.insert(index + 1, rebinding)
    export.reseal()
    old_seq = export.lines[index]["seq"]
    expect(export, index + 3, f"binding {old_seq} was replaced by binding {old_seq + 1} before it")


def test_a_binding_recorded_before_its_consent(export: Export) -> None:
    """Consent must be given by the time the binding is recorded."""
    index = entry_index(export, "binding")
    export.lines[index]["body"]["consented_at"] = "2030-01-01T00:00:00.000000Z"
    expect(export.reseal(), index + 1, "is after the binding was recorded")


def test_a_record_signed_with_a_key_after_it_was_retired(export: Export) -> None:
    """A key retired at a rotation signs nothing that ends later."""
    device = export.lines[export.find("device", lambda line: line["device_id"] == "car-a")]
    device["keys"][0]["retired_at"] = "2026-11-24T09:00:00.000000Z"
    expect(export, record_index(export, "car-a", 2) + 1, "ends at 2026-11-24T09:02:00.123456Z, after its key")


# --- the file as a whole --------------------------------------------------------------------------------------
def test_a_file_without_its_end_line(export: Export) -> None:
    """A file cut after a whole line is truncated: the end line is missing."""
    del export.lines[-1]
    expect(export, len(export.lines), "the file ends without its end line")


def test_an_end_line_with_the_wrong_count(export: Export) -> None:
    """A file missing lines before the end line is caught by its count."""
    export.lines[-1]["lines"] += 1
    expect(export, len(export.lines), "the end line counts 39 lines before it, but there are 38")


def test_a_file_cut_inside_a_line(export: Export) -> None:
    """A file cut in the middle of a line fails at that line."""
    text = export.text()
    expect(text[: len(text) - 60], len(export.lines) - 1, "not a JSON object")


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("garbage\n", "not a JSON object"),
        ("[1, 2]\n", "not a JSON object"),
        ("\n", "the line is empty"),
        ('{"type": "gift"}\n', "line type 'gift' is not one of"),
        ('{"type": "end", "lines": 1, "lines": 2}\n', "key 'lines' appears twice"),
        ('{"type": "end", "lines": NaN}\n', "NaN is not a JSON number"),
    ],
)
def test_a_garbage_line(export: Export, garbage: str, message: str) -> None:
    """A line that is not an export line stops the audit there."""
    lines = export.text().splitlines(keepends=True)
    lines.insert(5, garbage)
    expect("".join(lines), 6, message)


def test_lines_after_the_end_line(export: Export) -> None:
    """Nothing may follow the end line."""
    expect(export.text() + export.text().splitlines(keepends=True)[-1], len(export.lines) + 1, "more after the end")


def test_lines_out_of_order(export: Export) -> None:
    """A device line after the record lines is out of order."""
    device = export.lines.pop(export.find("device", lambda line: line["device_id"] == "car-c"))
    index = record_index(export, "car-a", 1) + 1
    export.lines.insert(index, device)
    expect(export, index + 1, "a device line after the record lines")


def test_the_first_line_must_be_the_header(export: Export) -> None:
    """A file that does not start with its header fails at line 1."""
    del export.lines[0]
    expect(export.reseal(), 1, "the first line must be the header")


def test_a_header_with_another_gateway_kid(export: Export) -> None:
    """The gateway's kid must be its public key's thumbprint."""
    export.lines[0]["gateway_kid"] = "00" * 32
    expect(export, 1, "gateway_kid")


def test_a_header_of_another_version(export: Export) -> None:
    """Only version 1 of the format is read."""
    export.lines[0]["version"] = 2
    expect(export, 1, "version 2 is not supported")


def test_a_device_listed_twice(export: Export) -> None:
    """One line per device."""
    export.lines.insert(2, export.lines[1])
    expect(export.reseal(), 3, "device car-a appears twice")


def test_an_empty_file() -> None:
    """An empty file has no header."""
    expect("", 1, "the file is empty")


def test_an_overlong_line(export: Export) -> None:
    """A line longer than the limit is refused without being parsed."""
    lines = export.text().splitlines(keepends=True)
    lines.insert(3, "x" * (MAX_LINE_CHARS + 5) + "\n")
    expect("".join(lines), 4, "longer than")


def test_a_line_that_is_not_utf8(export: Export) -> None:
    """Bytes that are not UTF-8 are named by their line."""
    lines = export.text().encode().splitlines(keepends=True)
    lines[2] = b"\xff\xfe" + lines[2]
    with pytest.raises(AuditError, match="line 3: the line is not UTF-8"):
        audit_lines(lines)


def _last_links() -> set[int]:
    last: dict[str, int] = {}
    for index, line in enumerate(CLEAN.lines):
        if line["type"] == "record":
            last[line["device_id"]] = index
    return set(last.values())


REMOVABLE = [index for index in range(len(CLEAN.lines) - 1) if index not in _last_links()]
"""Every line but the end line and each device's newest record: a chain's end can be cut unseen
(docs/ledger.md, "What the audit cannot see")."""


@settings(max_examples=40)
@given(st.sampled_from(REMOVABLE))
def test_any_line_removed_fails(index: int) -> None:
    """Whichever line is taken out (and the end count fixed), the audit fails."""
    export = CLEAN.copy()
    del export.lines[index]
    export.lines[-1]["lines"] -= 1
    with pytest.raises(AuditError):
        run(export)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _paths(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _paths(item, (*path, position))


@settings(max_examples=200)
@given(st.data(), JSON_VALUES)
def test_any_value_anywhere_gives_an_audit_error_or_passes(data: st.DataObject, value: object) -> None:
    """Whatever JSON value replaces whatever field (hashes recomputed or not), the audit answers cleanly.

    It either passes or raises AuditError naming a line: never another exception.
    """
    export = CLEAN.copy()
    index = data.draw(st.integers(min_value=0, max_value=len(export.lines) - 1))
    paths = [path for path in _paths(export.lines[index]) if path]
    path = data.draw(st.sampled_from(paths))
    target: object = export.lines[index]
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    if data.draw(st.booleans()):
        try:
            export.reseal()
        except (KeyError, TypeError, ValueError, IndexError):
            return  # the change broke what reseal needs to read; nothing to audit
    try:
        run(export)
    except AuditError as err:
        stopped_at = err.line_no
    else:
        return
    assert 1 <= stopped_at <= len(export.lines)


RECORD_LINES = [index for index, line in enumerate(CLEAN.lines) if line["type"] == "record"]


@settings(max_examples=100)
@given(st.sampled_from(RECORD_LINES), st.data())
def test_any_byte_of_any_record_changed_fails_at_that_record(index: int, data: st.DataObject) -> None:
    """Whichever byte of whichever record changes (its hash recomputed), the audit stops at that record."""
    export = CLEAN.copy()
    line = export.lines[index]
    raw = bytearray(base64.b64decode(line["signed"]))
    at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    line["signed"] = base64.b64encode(bytes(raw)).decode("ascii")
    line["record_hash"] = hashlib.sha256(bytes(raw)).hexdigest()
    err = failure(export)
    assert err.line_no == index + 1
    assert err.problem.startswith(f"record {line['record_hash'][:16]}… of device {line['device_id']}: ")
