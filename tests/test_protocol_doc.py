"""docs/protocol.md stays true: its vector, fields, reasons, topics and examples match the code."""

import json
import re
from collections.abc import Mapping
from dataclasses import fields
from enum import StrEnum
from pathlib import Path

import cbor2
import pytest

from carbonlink import cbor, topics
from carbonlink.acks import MAX_ACK_BYTES, MAX_DETAIL_CHARS, Outcome, decode_ack, encode_ack
from carbonlink.envelope import MAX_ENVELOPE_BYTES, verify
from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.reasons import RETRYABLE_REASONS, RejectionReason
from carbonlink.records import (
    MAX_QUALITY_FLAGS,
    ChargeMethods,
    ChargeRecord,
    ChargerKind,
    DataQuality,
    Source,
    TripMethods,
    TripRecord,
)
from carbonlink.wire import record_to_map

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
FIRST_VECTOR = json.loads((ROOT / "tests" / "vectors" / "records.json").read_text(encoding="utf-8"))[0]

_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FLOAT_WIDTH = {3: 1, 5: 2, 9: 3}  # encoded length → encoding indicator: _1 half, _2 single, _3 double
_HEADER_LABELS: dict[object, str] = {1: "alg", 3: "content type", 4: "kid"}

SAMPLE_DEVICE = "ev-sample-42"
SAMPLE_GROUP = "gateways"


def _blocks() -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in _FENCE.finditer(DOC)]


def _blocks_of(language: str) -> list[str]:
    return [text for lang, text in _blocks() if lang == language]


def _code_spans() -> set[str]:
    return set(_CODE_SPAN.findall(DOC))


def _diag(value: object, indent: str = "", labels: Mapping[object, str] | None = None) -> str:
    """CBOR diagnostic notation (RFC 8949 §8) of a decoded item, floats with their encoding indicator (§8.1)."""
    inner = indent + "  "
    match value:
        case None | bool() | int() | str():
            return json.dumps(value, ensure_ascii=False)
        case float():
            return f"{value!r}_{_FLOAT_WIDTH[len(cbor.encode(value))]}"
        case bytes():
            return f"h'{value.hex()}'"
        case list() | tuple():
            return "[" + ", ".join(_diag(item, inner) for item in value) + "]"
        case Mapping() if not value:
            return "{}"
        case Mapping():
            names = labels or {}
            entries = [
                f"{inner}{f'/ {names[key]} / ' if key in names else ''}{_diag(key)}: {_diag(item, inner)}"
                for key, item in value.items()
            ]
            return "{\n" + ",\n".join(entries) + f"\n{indent}}}"
    raise TypeError(f"no diagnostic notation for {type(value).__name__}")


def envelope_diagnostic(signed: bytes) -> str:
    """The diagnostic notation of a signed record, protected header and payload as embedded CBOR (RFC 8610 G.3)."""
    message = cbor2.loads(signed)
    protected, unprotected, payload, signature = message.value
    return "\n".join(
        [
            f"{message.tag}([",
            f"  / protected / << {_diag(cbor2.loads(protected), '  ', _HEADER_LABELS)} >>,",
            f"  / unprotected / {_diag(unprotected, '  ')},",
            f"  / payload / << {_diag(cbor2.loads(payload), '  ')} >>,",
            f"  / signature / {_diag(signature)}",
            "])",
        ]
    )


def test_doc_quotes_the_first_golden_vector_exactly() -> None:
    """The doc's one hex block is the first vector's signed bytes; the JSON block after it is its record."""
    blocks = _blocks()
    hex_positions = [i for i, (language, _) in enumerate(blocks) if language == "hex"]
    assert len(hex_positions) == 1
    position = hex_positions[0]
    assert "".join(blocks[position][1].split()) == FIRST_VECTOR["signed"]
    language, text = blocks[position + 1]
    assert language == "json"
    assert json.loads(text) == FIRST_VECTOR["record"]
    for name in ("seed", "device_id", "public_key", "kid", "record_hash"):
        assert f"`{FIRST_VECTOR[name]}`" in DOC, name


def test_doc_diagnostic_notation_is_that_of_the_first_vector() -> None:
    """The doc's CBOR diagnostic notation renders the first vector's envelope, field order and floats included."""
    (text,) = _blocks_of("cbor-diag")
    assert text.strip() == envelope_diagnostic(bytes.fromhex(FIRST_VECTOR["signed"]))


def test_the_pycose_example_verifies_the_vector_and_refuses_changes() -> None:
    """The doc's pycose example returns the first vector's payload, and refuses it altered or under another key."""
    (code,) = _blocks_of("python")
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/protocol.md", "exec"), namespace)  # noqa: S102 - runs the doc's own example
    verify_with_pycose = namespace["verify_with_pycose"]
    assert callable(verify_with_pycose)
    signed = bytes.fromhex(FIRST_VECTOR["signed"])
    public_key = bytes.fromhex(FIRST_VECTOR["public_key"])
    assert verify_with_pycose(signed, public_key) == record_to_map(verify(signed, public_key))
    with pytest.raises(ValueError, match="bad signature"):
        verify_with_pycose(signed[:-1] + bytes([signed[-1] ^ 0x01]), public_key)
    other_key = DeviceKey.from_seed(bytes([0x02]) * 32).public_key.raw
    with pytest.raises(ValueError, match="not a carbonlink header for this key"):
        verify_with_pycose(signed, other_key)


def test_every_rejection_reason_is_documented() -> None:
    """Each rejection reason the code can send appears in the doc as code."""
    missing = [reason.value for reason in RejectionReason if reason.value not in _code_spans()]
    assert not missing


def test_retryable_reasons_are_exactly_those_the_doc_marks() -> None:
    """The rows of the reasons table that say 'Retryable.' are the code's retryable reasons."""
    marked = set(re.findall(r"^\| `([a-z_]+)` \|[^\n]*Retryable\.", DOC, flags=re.MULTILINE))
    assert marked == {reason.value for reason in RETRYABLE_REASONS}


@pytest.mark.parametrize("record_type", [TripRecord, ChargeRecord, DataQuality, TripMethods, ChargeMethods])
def test_every_record_field_is_documented(record_type: type) -> None:
    """Each field of the signed record types appears in the doc as code."""
    missing = [field.name for field in fields(record_type) if field.name not in _code_spans()]
    assert not missing


@pytest.mark.parametrize("enum", [Source, ChargerKind, Outcome])
def test_every_enum_value_is_documented(enum: type[StrEnum]) -> None:
    """Each value of the enums on the wire (sources, charger kinds, ack outcomes) appears in the doc as code."""
    missing = [member.value for member in enum if member.value not in _code_spans()]
    assert not missing


def test_topics_in_the_doc_are_those_the_code_uses() -> None:
    """Every topic pattern in the doc, filled in, is one the code builds, and the doc names each of them."""
    documented = {
        span.replace("{device_id}", SAMPLE_DEVICE).replace("<group>", SAMPLE_GROUP)
        for span in _code_spans()
        if "carbonlink/v1/" in span
    }
    assert documented == {
        topics.records_topic(SAMPLE_DEVICE),
        topics.acks_topic(SAMPLE_DEVICE),
        topics.status_topic(SAMPLE_DEVICE),
        topics.records_subscription(SAMPLE_GROUP),
        topics.records_subscription(None),
        topics.enrolment_topic(SAMPLE_DEVICE),
        topics.enrolment_subscription(SAMPLE_GROUP),
        topics.enrolment_subscription(None),
    }


def test_key_file_example_is_what_the_code_writes() -> None:
    """The doc's key file example is render_key_file's text for the first vector's test key."""
    (text,) = _blocks_of("toml")
    key = DeviceKey.from_seed(bytes.fromhex(FIRST_VECTOR["seed"]), FIRST_VECTOR["device_id"])
    assert text == render_key_file(key)


def test_ack_examples_are_spelled_as_the_code_spells_them() -> None:
    """Each ack example in the doc decodes, and encoding it again gives the same text byte for byte."""
    examples = [text for text in _blocks_of("json") if '"outcome"' in text]
    assert {json.loads(text)["outcome"] for text in examples} == {outcome.value for outcome in Outcome}
    for text in examples:
        data = text.strip().encode("utf-8")
        assert encode_ack(decode_ack(data)) == data


def test_limits_in_the_doc_are_the_codes() -> None:
    """The size and count limits the doc states are the ones the code enforces."""
    for phrase in (
        f"{MAX_ENVELOPE_BYTES} bytes",
        f"{MAX_ACK_BYTES} bytes",
        f"{MAX_DETAIL_CHARS} characters",
        f"at most {MAX_QUALITY_FLAGS}",
        f"nesting deeper than {cbor.MAX_DEPTH}",
    ):
        assert phrase in DOC, phrase
