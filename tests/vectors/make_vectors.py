"""Write the golden test vectors of the wire format: ``records.json`` and ``invalid.json`` here.

Run it only when the wire format changes on purpose::

    .venv/bin/python tests/vectors/make_vectors.py

The tests never run this script and never regenerate the files: they check the code against the
committed JSON, so a change to the signed bytes fails them until someone reruns this script and a
reviewer reads the diff of the vectors. ``docs/protocol.md`` quotes the first vector; update it in the
same change (``tests/test_protocol_doc.py`` says where it drifted).

Every key here comes from a published test seed (32 copies of one byte). None is a secret, and no
device may ever use one. Ed25519 signing (RFC 8032) and deterministic CBOR are both deterministic,
so running the script twice writes the same files.
"""

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import cbor2

from carbonlink import cbor
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import (
    ALG_EDDSA,
    COSE_SIGN1_TAG,
    HEADER_ALG,
    HEADER_CONTENT_TYPE,
    HEADER_KID,
    MAX_ENVELOPE_BYTES,
    content_type,
    sig_structure,
    sign,
)
from carbonlink.keys import DeviceKey
from carbonlink.records import (
    ChargeMethods,
    ChargeRecord,
    ChargerKind,
    DataQuality,
    Record,
    Source,
    TripMethods,
    TripRecord,
)
from carbonlink.wire import record_to_json, record_to_map

HERE = Path(__file__).resolve().parent
COSE_MAC0_TAG = 17
ALG_ES256 = -7

DBC_HASH = hashlib.sha256(b"carbonlink reference DBC, test vectors").digest()
VIN_HASH = hashlib.sha256(b"TESTVIN0000000001").digest()


def _key(byte: int, device_id: str) -> DeviceKey:
    return DeviceKey.from_seed(bytes([byte]) * 32, device_id)


KEY_A = _key(0x01, "ev-golden-0001")
"""The chain's key: signs the three chain vectors and is the key every invalid vector is checked with."""
KEY_B = _key(0x02, "ev-golden-0002")
KEY_C = _key(0x03, "ev-golden-0003")


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


_QUALITY = DataQuality(
    samples=17_230,
    frames_dropped=3,
    gaps=0,
    gap_duration_s=0.0,
    out_of_range=1,
    unavailable=0,
    coverage_pct=99.9,
    flags=(),
)


@dataclass(frozen=True, slots=True)
class Vector:
    """One valid record, its key and the description the JSON file gives it."""

    name: str
    description: str
    key: DeviceKey
    record: Record

    def to_json(self) -> dict[str, object]:
        signed = sign(self.record, self.key)
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.key.seed.hex(),
            "device_id": self.key.device_id,
            "public_key": self.key.public_key.raw.hex(),
            "kid": self.key.kid.hex(),
            "signed": signed.hex(),
            "record_hash": record_hash(signed).hex(),
            "type": self.record.RECORD_TYPE,
            "record": record_to_json(self.record),
        }


def _chain() -> list[Vector]:
    trip_1 = TripRecord(
        device_id=KEY_A.device_id,
        record_id="3f0c9a52-7e0a-4f0e-9f43-8d1d2f3c0001",
        sequence=1,
        previous_record_hash=GENESIS_PREVIOUS_HASH,
        start_at=_at("2026-03-02T07:41:05.250000"),
        end_at=_at("2026-03-02T08:09:47.730000"),
        clock_synced=True,
        odometer_start_m=48_210_000.0,
        odometer_end_m=48_222_400.0,
        soc_start_pct=80.0,
        soc_end_pct=76.5,
        counter_discharged_start_wh=9_120_500.0,
        counter_discharged_end_wh=9_122_360.0,
        counter_charged_start_wh=8_900_100.0,
        counter_charged_end_wh=8_900_410.0,
        quality=_QUALITY,
        agent_version="0.1.0",
        dbc_hash=DBC_HASH,
        profile_id="reference-ev",
        distance_m=12_400.0,
        energy_out_wh=1_860.0,
        energy_regen_wh=310.0,
        methods=TripMethods(distance=Source.ODOMETER, energy=Source.VOLTAGE_CURRENT_INTEGRAL, soc=Source.BMS),
    )
    signed_1 = sign(trip_1, KEY_A)
    charge_2 = ChargeRecord(
        device_id=KEY_A.device_id,
        record_id="3f0c9a52-7e0a-4f0e-9f43-8d1d2f3c0002",
        sequence=2,
        previous_record_hash=record_hash(signed_1),
        start_at=_at("2026-03-02T08:25:00.000000"),
        end_at=_at("2026-03-02T09:40:12.500000"),
        clock_synced=True,
        odometer_start_m=48_222_400.0,
        odometer_end_m=48_222_400.0,
        soc_start_pct=76.5,
        soc_end_pct=90.0,
        counter_discharged_start_wh=9_122_360.0,
        counter_discharged_end_wh=9_122_395.5,
        counter_charged_start_wh=8_900_410.0,
        counter_charged_end_wh=8_907_560.0,
        quality=replace(_QUALITY, samples=45_120, frames_dropped=0, out_of_range=0, coverage_pct=100.0),
        agent_version="0.1.0",
        dbc_hash=DBC_HASH,
        profile_id="reference-ev",
        charger=ChargerKind.AC,
        energy_in_wh=7_150.0,
        grid_energy_wh=7_900.0,
        methods=ChargeMethods(energy=Source.ENERGY_COUNTER, grid_energy=Source.CHARGER, soc=Source.BMS),
    )
    signed_2 = sign(charge_2, KEY_A)
    trip_3 = replace(
        trip_1,
        record_id="3f0c9a52-7e0a-4f0e-9f43-8d1d2f3c0003",
        sequence=3,
        previous_record_hash=record_hash(signed_2),
        start_at=_at("2026-03-02T17:02:11.000001"),
        end_at=_at("2026-03-02T17:29:58.999999"),
        odometer_start_m=48_222_400.0,
        odometer_end_m=48_232_275.5,
        soc_start_pct=90.0,
        soc_end_pct=85.25,
        counter_discharged_start_wh=9_122_395.5,
        counter_discharged_end_wh=9_123_950.0,
        counter_charged_start_wh=8_907_560.0,
        counter_charged_end_wh=8_907_801.0,
        quality=replace(_QUALITY, samples=16_660, gaps=1, gap_duration_s=2.75, coverage_pct=99.82),
        distance_m=9_875.5,
        energy_out_wh=1_554.5,
        energy_regen_wh=241.0,
    )
    return [
        Vector("chain-1-trip", "First record of a device: a trip, sequence 1, genesis previous hash.", KEY_A, trip_1),
        Vector(
            "chain-2-charge",
            "AC charge with grid energy from the charger; follows chain-1-trip (sequence 2).",
            KEY_A,
            charge_2,
        ),
        Vector("chain-3-trip", "Trip with one bridged-over gap; follows chain-2-charge (sequence 3).", KEY_A, trip_3),
    ]


def _others() -> list[Vector]:
    bare_trip = TripRecord(
        device_id=KEY_B.device_id,
        record_id="9b2e4c1d-0000-4000-8000-000000000001",
        sequence=1,
        previous_record_hash=GENESIS_PREVIOUS_HASH,
        start_at=_at("2026-03-03T12:00:00.000000"),
        end_at=_at("2026-03-03T12:14:30.062500"),
        clock_synced=False,
        odometer_start_m=None,
        odometer_end_m=None,
        soc_start_pct=None,
        soc_end_pct=None,
        counter_discharged_start_wh=None,
        counter_discharged_end_wh=None,
        counter_charged_start_wh=None,
        counter_charged_end_wh=None,
        quality=replace(
            _QUALITY,
            samples=8_030,
            frames_dropped=120,
            gaps=2,
            gap_duration_s=14.5,
            unavailable=35,
            coverage_pct=97.25,
            flags=("energy_vs_soc_unchecked",),
        ),
        agent_version="0.1.0",
        dbc_hash=DBC_HASH,
        profile_id="minimal-can-profile",
        vin_hash=None,
        distance_m=4_310.25,
        energy_out_wh=702.0,
        energy_regen_wh=0.0,
        methods=TripMethods(
            distance=Source.SPEED_INTEGRAL, energy=Source.VOLTAGE_CURRENT_INTEGRAL, soc=Source.UNAVAILABLE
        ),
    )
    vin_trip = TripRecord(
        device_id=KEY_C.device_id,
        record_id="c0ffee00-1041",
        sequence=1041,
        previous_record_hash=hashlib.sha256(b"record 1040 of ev-golden-0003, not part of the vectors").digest(),
        start_at=_at("2027-01-15T06:30:00.500000"),
        end_at=_at("2027-01-15T07:45:10.000000"),
        clock_synced=True,
        odometer_start_m=150_003_125.0,
        odometer_end_m=150_071_380.0,
        soc_start_pct=95.5,
        soc_end_pct=61.0,
        counter_discharged_start_wh=31_000_250.0,
        counter_discharged_end_wh=31_011_980.0,
        counter_charged_start_wh=29_500_000.0,
        counter_charged_end_wh=29_500_845.0,
        quality=replace(_QUALITY, samples=45_000, frames_dropped=0, out_of_range=0, coverage_pct=100.0),
        agent_version="0.1.0",
        dbc_hash=DBC_HASH,
        profile_id="reference-ev",
        vin_hash=VIN_HASH,
        distance_m=68_255.0,
        energy_out_wh=11_730.0,
        energy_regen_wh=845.0,
        methods=TripMethods(distance=Source.ODOMETER, energy=Source.ENERGY_COUNTER, soc=Source.BMS),
    )
    dc_charge = ChargeRecord(
        device_id=KEY_C.device_id,
        record_id="c0ffee00-1042",
        sequence=1042,
        previous_record_hash=record_hash(sign(vin_trip, KEY_C)),
        start_at=_at("2027-01-15T07:52:00.000000"),
        end_at=_at("2027-01-15T08:19:30.000000"),
        clock_synced=True,
        odometer_start_m=150_071_380.0,
        odometer_end_m=150_071_380.0,
        soc_start_pct=61.0,
        soc_end_pct=88.0,
        counter_discharged_start_wh=31_011_980.0,
        counter_discharged_end_wh=31_012_002.0,
        counter_charged_start_wh=29_500_845.0,
        counter_charged_end_wh=29_521_935.0,
        quality=replace(_QUALITY, samples=16_500, frames_dropped=0, out_of_range=0, coverage_pct=100.0),
        agent_version="0.1.0",
        dbc_hash=DBC_HASH,
        profile_id="reference-ev",
        vin_hash=VIN_HASH,
        charger=ChargerKind.DC,
        energy_in_wh=21_090.0,
        grid_energy_wh=None,
        methods=ChargeMethods(energy=Source.VOLTAGE_CURRENT_INTEGRAL, grid_energy=Source.UNAVAILABLE, soc=Source.BMS),
    )
    return [
        Vector(
            "trip-optional-none",
            "Trip of a vehicle exposing no odometer, SOC, energy counters or VIN: every optional field null, "
            "distance from the speed integral, clock not synchronised, one quality flag.",
            KEY_B,
            bare_trip,
        ),
        Vector(
            "trip-with-vin-hash",
            "Trip in the middle of a device's chain (sequence 1041) carrying vin_hash = SHA-256 of the ASCII "
            "text TESTVIN0000000001.",
            KEY_C,
            vin_trip,
        ),
        Vector(
            "charge-dc-without-grid-energy",
            "DC charge whose charger reports no grid energy (null); follows trip-with-vin-hash (sequence 1042).",
            KEY_C,
            dc_charge,
        ),
    ]


# --- invalid inputs, all checked with KEY_A's public key -------------------------------------------


def _protected(record: Record, *, alg: int = ALG_EDDSA, ctype: str | None = None) -> bytes:
    """A protected header for ``record`` under KEY_A's kid, with the given alg and content type."""
    return cbor.encode(
        {HEADER_ALG: alg, HEADER_CONTENT_TYPE: ctype or content_type(type(record)), HEADER_KID: KEY_A.kid}
    )


def _envelope(protected: bytes, payload: bytes, unprotected: dict[int, object] | None = None) -> bytes:
    """A COSE_Sign1 message whose signature by KEY_A over ``protected`` and ``payload`` is valid."""
    signature = KEY_A.sign(sig_structure(protected, payload))
    return cbor.encode(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, unprotected or {}, payload, signature]))


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _invalid(first: Record, first_signed: bytes) -> list[dict[str, object]]:
    protected = _protected(first)
    payload = cbor.encode(record_to_map(first))
    parts: tuple[bytes, dict[int, object], bytes, bytes] = (
        protected,
        {},
        payload,
        KEY_A.sign(sig_structure(protected, payload)),
    )
    assert _envelope(protected, payload) == first_signed, "the builder here must sign as sign() does"

    def re_signed_payload(**changes: object) -> bytes:
        return _envelope(protected, cbor.encode(record_to_map(first) | changes))

    without_vin_hash = {name: value for name, value in record_to_map(first).items() if name != "vin_hash"}
    duplicate_alg = (
        bytes([0xA4])  # a map of 4 pairs, alg given twice
        + cbor.encode(HEADER_ALG)
        + cbor.encode(ALG_EDDSA)
        + protected[1:]
    )
    indefinite = bytes([0xC0 | COSE_SIGN1_TAG, 0x9F]) + b"".join(cbor.encode(part) for part in parts) + bytes([0xFF])
    cases: list[tuple[str, str, str, bytes]] = [
        (
            "flipped-payload-byte",
            "chain-1-trip with the last byte of its dbc_hash flipped: still deterministic CBOR, signature fails.",
            "BadSignatureError",
            _flip(first_signed, first_signed.index(DBC_HASH) + len(DBC_HASH) - 1),
        ),
        (
            "flipped-signature-byte",
            "chain-1-trip with the first byte of its signature flipped.",
            "BadSignatureError",
            _flip(first_signed, len(first_signed) - 64),
        ),
        ("truncated", "chain-1-trip without its last byte.", "MalformedError", first_signed[:-1]),
        ("trailing-byte", "chain-1-trip followed by one zero byte.", "MalformedError", first_signed + b"\x00"),
        (
            "untagged",
            "The four parts of chain-1-trip as a bare array: the COSE_Sign1 tag 18 is required.",
            "MalformedError",
            cbor.encode(list(parts)),
        ),
        (
            "indefinite-length",
            "chain-1-trip with its outer array in indefinite-length encoding.",
            "MalformedError",
            indefinite,
        ),
        (
            "cose-mac0-tag",
            "The parts of chain-1-trip under CBOR tag 17 (COSE_Mac0) instead of 18 (COSE_Sign1).",
            "WrongTypeError",
            cbor.encode(cbor2.CBORTag(COSE_MAC0_TAG, list(parts))),
        ),
        (
            "unprotected-header-not-empty",
            "chain-1-trip with its kid repeated in the unprotected header {4: kid}.",
            "MalformedError",
            _envelope(protected, payload, {HEADER_KID: KEY_A.kid}),
        ),
        (
            "protected-header-duplicate-key",
            "Protected header giving alg (1) twice, correctly signed: duplicate map keys are refused.",
            "MalformedError",
            _envelope(duplicate_alg, payload),
        ),
        (
            "alg-es256",
            "Protected header naming ES256 (-7) instead of EdDSA (-8), correctly signed with Ed25519.",
            "MalformedError",
            _envelope(_protected(first, alg=ALG_ES256), payload),
        ),
        (
            "version-2",
            "Content type application/vnd.carbonlink.trip.v2+cbor, correctly signed.",
            "UnknownVersionError",
            _envelope(_protected(first, ctype="application/vnd.carbonlink.trip.v2+cbor"), payload),
        ),
        (
            "unknown-type-parking",
            "Content type application/vnd.carbonlink.parking.v1+cbor, correctly signed.",
            "WrongTypeError",
            _envelope(_protected(first, ctype="application/vnd.carbonlink.parking.v1+cbor"), payload),
        ),
        (
            "other-key",
            "chain-1-trip signed by another key (seed 32 x 0x02) for the same device id: kid names that key.",
            "WrongKeyError",
            sign(first, _key(0x02, KEY_A.device_id)),
        ),
        (
            "payload-not-deterministic",
            "chain-1-trip's payload in cbor2's default, non-deterministic encoding, correctly signed.",
            "MalformedError",
            _envelope(protected, cbor2.dumps(record_to_map(first))),
        ),
        (
            "unknown-field",
            "chain-1-trip's payload with an extra field odometer_offset_m, correctly signed.",
            "SchemaError",
            re_signed_payload(odometer_offset_m=0.0),
        ),
        (
            "missing-null-field",
            "chain-1-trip's payload without its vin_hash: null fields must be present, correctly signed.",
            "SchemaError",
            _envelope(protected, cbor.encode(without_vin_hash)),
        ),
        (
            "integer-for-float",
            "chain-1-trip's payload with distance_m as the integer 12400 instead of a float, correctly signed.",
            "SchemaError",
            re_signed_payload(distance_m=12_400),
        ),
    ]
    vectors: list[dict[str, object]] = [
        {"name": name, "description": text, "error": error, "public_key": KEY_A.public_key.raw.hex(), "hex": data.hex()}
        for name, text, error, data in cases
    ]
    vectors.append(
        {
            "name": "oversized",
            "description": f"chain-1-trip padded with zero bytes to {MAX_ENVELOPE_BYTES + 1} bytes: "
            "refused on its size before it is parsed (else it would be MalformedError, for trailing bytes).",
            "error": "OversizedError",
            "public_key": KEY_A.public_key.raw.hex(),
            "hex": first_signed.hex(),
            "pad_to_length": MAX_ENVELOPE_BYTES + 1,
        }
    )
    return vectors


def _write(name: str, content: object) -> None:
    path = HERE / name
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    vectors = _chain() + _others()
    _write("records.json", [vector.to_json() for vector in vectors])
    first = vectors[0]
    _write("invalid.json", _invalid(first.record, sign(first.record, first.key)))


if __name__ == "__main__":
    main()
