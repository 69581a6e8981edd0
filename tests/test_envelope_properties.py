"""Properties of the signed envelope over every record, every corruption and arbitrary input.

For all records the strategies in ``records_factory`` build: signing round-trips, any change to
the signed bytes is refused with an :class:`~carbonlink.errors.EnvelopeError`, arbitrary input
only ever raises the core's own errors, and a payload that is correctly signed but not spelled
in deterministic CBOR is refused although its signature verifies.
"""

import contextlib
import json
import struct
from dataclasses import replace

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonlink import cbor
from carbonlink.envelope import (
    ALG_EDDSA,
    COSE_SIGN1_TAG,
    HEADER_ALG,
    HEADER_CONTENT_TYPE,
    HEADER_KID,
    content_type,
    open_envelope,
    sig_structure,
    sign,
    verify,
)
from carbonlink.errors import (
    EnvelopeError,
    MalformedError,
    SchemaError,
    WrongKeyError,
    WrongTypeError,
)
from carbonlink.keys import DeviceKey
from carbonlink.records import RECORD_TYPES, ChargeRecord, Record, TripRecord
from carbonlink.wire import record_from_json, record_from_map, record_to_json, record_to_map

from records_factory import key_from_byte, make_charge, make_trip, records

KEY = key_from_byte(0x01)
OTHER_KEY = key_from_byte(0x02)  # the same device id, another key pair


def _own(record: Record) -> Record:
    """The record as KEY's device would sign it."""
    return replace(record, device_id=KEY.device_id)


def _other_type(record: Record) -> type[Record]:
    return ChargeRecord if isinstance(record, TripRecord) else TripRecord


def _sign_payload(payload: bytes, record_type: type[Record], key: DeviceKey = KEY) -> bytes:
    """A COSE_Sign1 with our protected header and a valid signature over any payload bytes."""
    protected = cbor.encode(
        {HEADER_ALG: ALG_EDDSA, HEADER_CONTENT_TYPE: content_type(record_type), HEADER_KID: key.kid}
    )
    signature = key.sign(sig_structure(protected, payload))
    return cbor.encode(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


# --- round trips -------------------------------------------------------------------------------


@given(records)
def test_signed_record_round_trips_with_its_key_and_type_only(record: Record) -> None:
    """A signed record verifies to an equal record with its key; another key or the other type is refused."""
    record = _own(record)
    signed = sign(record, KEY)
    assert verify(signed, KEY.public_key) == record
    assert verify(signed, KEY.public_key.raw, expected=type(record)) == record
    assert sign(record, KEY) == signed  # signing is deterministic
    with pytest.raises(WrongKeyError):
        verify(signed, OTHER_KEY.public_key)
    with pytest.raises(WrongKeyError):
        verify(signed, OTHER_KEY.public_key.raw)
    with pytest.raises(WrongTypeError):
        verify(signed, KEY.public_key, expected=_other_type(record))


@given(records)
def test_payload_and_json_views_round_trip(record: Record) -> None:
    """A record survives its CBOR payload map (deterministic encoding, strict decoding) and its JSON view."""
    decoded = cbor.decode(cbor.encode(record_to_map(record)), "payload")
    assert record_from_map(type(record), decoded) == record
    text = json.dumps(record_to_json(record))
    assert record_from_json(record.RECORD_TYPE, json.loads(text)) == record


# --- any change to the signed bytes is refused -------------------------------------------------
# Drawing a record is what takes the time, so each example checks several changes to one record.


@st.composite
def signed_records(draw: st.DrawFn) -> tuple[Record, bytes]:
    record = _own(draw(records))
    return record, sign(record, KEY)


@given(signed_records(), st.data())
def test_any_flipped_byte_is_refused(signed_record: tuple[Record, bytes], data: st.DataObject) -> None:
    """Verification fails with an EnvelopeError (never a record, never a SchemaError) when any byte changes."""
    _, signed = signed_record
    last = len(signed) - 1
    # Every byte is reachable; headers (the first ~90 bytes) and signature (the last 64) are drawn often.
    indexes = st.integers(0, last) | st.integers(0, 95) | st.integers(last - 65, last)
    flips = data.draw(st.lists(st.tuples(indexes, st.integers(1, 255)), min_size=1, max_size=8), label="flips")
    for index, mask in flips:
        corrupted = bytearray(signed)
        corrupted[index] ^= mask
        with pytest.raises(EnvelopeError):
            verify(bytes(corrupted), KEY.public_key)


@given(signed_records(), st.data())
def test_truncated_or_extended_bytes_are_malformed(signed_record: tuple[Record, bytes], data: st.DataObject) -> None:
    """Verifying the signed bytes cut to any shorter length, or with bytes after them, fails with MalformedError."""
    _, signed = signed_record
    lengths = data.draw(st.lists(st.integers(0, len(signed) - 1), min_size=1, max_size=8), label="lengths")
    for length in lengths:
        with pytest.raises(MalformedError):
            verify(signed[:length], KEY.public_key)
    extra = data.draw(st.binary(min_size=1, max_size=16), label="extra")
    with pytest.raises(MalformedError, match="after its CBOR item"):
        verify(signed + extra, KEY.public_key)


# --- arbitrary input raises only the core's own errors -----------------------------------------

_hashable_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=24) | st.binary(max_size=40)
)
_scalars = _hashable_scalars | st.floats()
_tag_numbers = st.integers(0, 300) | st.sampled_from([1000, 55799, 2**32, 2**64 - 1])

cbor_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(_hashable_scalars, children, max_size=5)
        | st.builds(cbor2.CBORTag, _tag_numbers, children)
    ),
    max_leaves=24,
)
"""Anything cbor2 can encode: scalars, arrays, maps and tags (with and without a meaning to cbor2)."""

_content_types = st.sampled_from(
    [
        content_type(TripRecord),
        content_type(ChargeRecord),
        "application/vnd.carbonlink.trip.v2+cbor",
        "application/vnd.carbonlink.credit.v1+cbor",
        "application/cbor",
    ]
) | st.from_regex(r"application/vnd\.carbonlink\.[a-z]{1,8}\.v[0-9]{1,7}\+cbor", fullmatch=True)


_VALID_RECORDS: list[Record] = [make_trip(device_id=KEY.device_id), make_charge(device_id=KEY.device_id)]
_VALID_PAYLOADS = [cbor.encode(record_to_map(record)) for record in _VALID_RECORDS]


_one_in_four = st.integers(0, 3).map(lambda n: n == 3)  # shrinks towards False: plausible
"""Whether to make one part arbitrary: most messages then fail only at one of the deeper checks."""


@st.composite
def cose_shaped(draw: st.DrawFn) -> bytes:
    """A tag-18 message whose parts are each mostly plausible, sometimes arbitrary, to reach deep checks."""
    kids = st.sampled_from([KEY.kid, OTHER_KEY.kid])
    header: dict[object, object] = {
        HEADER_ALG: draw(cbor_values) if draw(_one_in_four) else ALG_EDDSA,
        HEADER_CONTENT_TYPE: draw(cbor_values) if draw(_one_in_four) else draw(_content_types),
        HEADER_KID: draw(st.binary(max_size=40) | cbor_values) if draw(_one_in_four) else draw(kids),
    }
    if draw(_one_in_four):
        header |= draw(st.dictionaries(_hashable_scalars, cbor_values, min_size=1, max_size=2))
    protected = cbor2.dumps(header, canonical=not draw(_one_in_four))
    if draw(_one_in_four):
        protected = draw(st.binary(max_size=64))
    parts: list[object] = [
        protected,
        draw(cbor_values) if draw(_one_in_four) else {},
        draw(st.binary(max_size=512)) if draw(_one_in_four) else draw(st.sampled_from(_VALID_PAYLOADS)),
        draw(cbor_values) if draw(_one_in_four) else draw(st.binary(min_size=64, max_size=64)),
    ]
    if draw(_one_in_four):
        parts = draw(st.lists(st.sampled_from(range(4)).map(parts.__getitem__) | cbor_values, max_size=6))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, parts), canonical=draw(st.booleans()))


def _read_everything(data: bytes) -> None:
    """Run every reader over ``data``: each may refuse it, but only with the core's errors.

    ``verify`` must always refuse (nothing here carries KEY's signature) and only with an
    EnvelopeError: no SchemaError can come before the signature checks.
    """
    with pytest.raises(EnvelopeError):
        verify(data, KEY.public_key)
    try:
        envelope = open_envelope(data)
    except EnvelopeError:
        pass
    else:
        with contextlib.suppress(MalformedError, SchemaError):
            envelope.record()
    with contextlib.suppress(MalformedError):
        cbor.decode(data, "input")


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_core_errors(data: bytes) -> None:
    """verify, open_envelope and cbor.decode refuse arbitrary bytes only with the core's own errors."""
    _read_everything(data)


@given(st.binary(max_size=2048))
def test_bytes_after_a_cose_sign1_head_raise_only_core_errors(rest: bytes) -> None:
    """Arbitrary bytes after the COSE_Sign1 tag and array head (d2 84) raise only the core's errors."""
    _read_everything(b"\xd2\x84" + rest)


@given(st.lists(cbor_values, max_size=6), st.booleans())
def test_tagged_arbitrary_structures_raise_only_core_errors(parts: list[object], canonical: bool) -> None:  # noqa: FBT001 - a drawn flag
    """Any CBOR structure wrapped as COSE_Sign1 (tag 18) is refused only with the core's errors."""
    _read_everything(cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, parts), canonical=canonical))


@given(cose_shaped())
def test_cose_shaped_messages_raise_only_core_errors(data: bytes) -> None:
    """Messages shaped like ours, with any part arbitrary, are refused only with the core's errors."""
    _read_everything(data)


@st.composite
def arbitrary_payloads(draw: st.DrawFn) -> bytes:
    """Payload bytes from random to nearly valid: a valid record's map with one key dropped, added or changed."""
    kind = draw(st.sampled_from(["bytes", "value", "dropped", "added", "changed", "valid"]))
    if kind == "bytes":
        return draw(st.binary(max_size=512))
    if kind == "value":
        return cbor2.dumps(draw(cbor_values), canonical=True)
    valid = record_to_map(draw(st.sampled_from(_VALID_RECORDS)))
    name = draw(st.sampled_from(sorted(valid)))
    fields: dict[object, object] = dict(valid.items())
    if kind == "dropped":
        del fields[name]
    elif kind == "added":
        fields[draw(_hashable_scalars)] = draw(cbor_values)
    elif kind == "changed":
        fields[name] = draw(cbor_values)
    return cbor2.dumps(fields, canonical=True)  # cbor2 itself: the core's encode refuses mixed key kinds


@given(arbitrary_payloads(), st.sampled_from(list(RECORD_TYPES.values())))
def test_signed_arbitrary_payload_gives_a_record_or_a_core_error(payload: bytes, record_type: type[Record]) -> None:
    """A correctly signed envelope around any payload yields its record, or MalformedError / SchemaError."""
    try:
        record = verify(_sign_payload(payload, record_type), KEY.public_key)
    except (MalformedError, SchemaError):
        return
    assert type(record) is record_type
    assert cbor.encode(record_to_map(record)) == payload  # one record, one spelling


# --- correctly signed, but not deterministic CBOR ----------------------------------------------

_WIDTHS = (0, 1, 2, 4, 8)  # bytes of argument after the initial byte; 0: argument in the initial byte
_ADDITIONAL_INFO = {1: 24, 2: 25, 4: 26, 8: 27}


def _head(major: int, argument: int, width: int) -> bytes:
    """A CBOR head (RFC 8949 §3) with its argument spelled in exactly ``width`` bytes."""
    if width == 0:
        return bytes([major << 5 | argument])
    return bytes([major << 5 | _ADDITIONAL_INFO[width]]) + argument.to_bytes(width, "big")


def _read_head(item: bytes) -> tuple[int, int, int]:
    """Major type, argument and argument width of an encoded item's head."""
    major, info = item[0] >> 5, item[0] & 0x1F
    if info < 24:
        return major, info, 0
    width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return major, int.from_bytes(item[1 : 1 + width], "big"), width


def _widened(item: bytes) -> bytes:
    """The same item with its head one size longer than needed (integers, strings, arrays, maps)."""
    major, argument, width = _read_head(item)
    wider = _WIDTHS[_WIDTHS.index(width) + 1]
    return _head(major, argument, wider) + item[1 + width :]


def _as_float64(item: bytes) -> bytes:
    """A float item re-encoded as a float64, whatever size its shortest exact form has."""
    value = cbor2.loads(item)
    assert type(value) is float
    return b"\xfb" + struct.pack(">d", value)


def _pairs(fields: dict[str, object]) -> list[tuple[bytes, bytes]]:
    """A map's (key, value) encodings in deterministic order."""
    pairs = [(cbor.encode(key), cbor.encode(value)) for key, value in fields.items()]
    return sorted(pairs, key=lambda pair: pair[0])


def _map_head(length: int) -> bytes:
    """The shortest head of a map of ``length`` pairs (records have 24: a one-byte argument)."""
    return _head(5, length, 0 if length < 24 else 1)


def _map(pairs: list[tuple[bytes, bytes]], head: bytes | None = None) -> bytes:
    return (head or _map_head(len(pairs))) + b"".join(key + value for key, value in pairs)


Respelling = tuple[str, str]
"""What to spell differently, and at which field of the payload map ("" for the map itself)."""


def _field(key: bytes) -> str:
    name = cbor2.loads(key)
    assert isinstance(name, str)
    return name


def _respellings(pairs: list[tuple[bytes, bytes]]) -> list[Respelling]:
    """Ways to spell the same payload map other than deterministically."""
    options: list[Respelling] = [("map head", ""), ("indefinite map", "")]
    options += [("swap with next", _field(key)) for key, _ in pairs[:-1]]
    options += [("key head", _field(key)) for key, _ in pairs]
    for key, value in pairs:
        major, _, width = _read_head(value)
        if major <= 5 and width < 8:  # integers to maps; an argument of 8 bytes cannot widen
            options.append(("value head", _field(key)))
        if value[0] in (0xF9, 0xFA):  # a float16 or float32: its value needs no float64
            options.append(("float64", _field(key)))
    return options


def _respell(pairs: list[tuple[bytes, bytes]], how: Respelling) -> bytes:
    kind, name = how
    if kind == "map head":
        return _map(pairs, head=_widened(_map_head(len(pairs))))
    if kind == "indefinite map":
        return b"\xbf" + b"".join(key + value for key, value in pairs) + b"\xff"
    pairs = list(pairs)
    i = [_field(key) for key, _ in pairs].index(name)
    key, value = pairs[i]
    if kind == "swap with next":
        pairs[i], pairs[i + 1] = pairs[i + 1], pairs[i]
    elif kind == "key head":
        pairs[i] = (_widened(key), value)
    elif kind == "value head":
        pairs[i] = (key, _widened(value))
    elif kind == "float64":
        pairs[i] = (key, _as_float64(value))
    return _map(pairs)


def _assert_respelled_payload_is_refused(record: Record, how: Respelling) -> None:
    fields = record_to_map(record)
    pairs = _pairs(fields)
    assert _map(pairs) == cbor.encode(fields)  # the hand-built encoder matches the deterministic one...
    payload = _respell(pairs, how)
    assert payload != cbor.encode(fields)
    assert cbor2.loads(payload) == fields  # ...and the respelling carries the same value
    signed = _sign_payload(payload, type(record))
    open_envelope(signed).check_signature(KEY.public_key)  # the signature is valid
    with pytest.raises(MalformedError, match=r"deterministic|indefinite"):
        verify(signed, KEY.public_key)


HAND_BUILT: dict[str, Respelling] = {
    "keys out of order": ("swap with next", "sequence"),
    "float16 value spelled as float64": ("float64", "distance_m"),
    "integer head one byte too long": ("value head", "sequence"),
    "map head one byte too long": ("map head", ""),
    "indefinite-length map": ("indefinite map", ""),
    "key length one byte too long": ("key head", "record_id"),
}


@pytest.mark.parametrize("how", HAND_BUILT.values(), ids=HAND_BUILT.keys())
def test_hand_built_non_deterministic_payload_is_refused(how: Respelling) -> None:
    """A correctly signed payload in a non-deterministic spelling is refused with MalformedError."""
    record = make_trip(device_id=KEY.device_id)
    assert how in _respellings(_pairs(record_to_map(record)))
    _assert_respelled_payload_is_refused(record, how)


def test_hand_built_deterministic_payload_is_accepted() -> None:
    """The same hand-built payload, spelled deterministically and signed, verifies to its record."""
    record = make_charge(device_id=KEY.device_id)
    payload = _map(_pairs(record_to_map(record)))
    assert verify(_sign_payload(payload, ChargeRecord), KEY.public_key) == record


@given(records, st.data())
def test_any_non_deterministic_payload_spelling_is_refused(record: Record, data: st.DataObject) -> None:
    """Every respelling of a signed payload (order, head sizes, float sizes, lengths) is refused with MalformedError."""
    record = _own(record)
    options = _respellings(_pairs(record_to_map(record)))
    for how in data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=4, unique=True), label="respellings"):
        _assert_respelled_payload_is_refused(record, how)


@pytest.mark.parametrize(
    ("offset", "spelling"),
    [(1, b"\x98\x04"), (0, b"\xd8\x12")],
    ids=["COSE array head one byte too long", "tag number one byte too long"],
)
def test_unsigned_outer_layer_cannot_be_respelled(offset: int, spelling: bytes) -> None:
    """The unsigned outer layer (tag and array head) is refused with MalformedError when respelled."""
    signed = sign(make_trip(device_id=KEY.device_id), KEY)
    respelled = signed[:offset] + spelling + signed[offset + 1 :]
    assert cbor2.loads(respelled) == cbor2.loads(signed)
    with pytest.raises(MalformedError, match="deterministic"):
        verify(respelled, KEY.public_key)


# --- the map key order of RFC 8949 §4.2.1 -----------------------------------------------------
# cbor2's canonical mode sorts map keys shortest encoding first (RFC 7049 §3.9); RFC 8949 §4.2.1
# sorts them bytewise. The two orders differ for some keys, e.g. 32 (18 20) and -1 (20), or the
# arrays ("aaaa",) (81 64 61616161) and (1, 2) (82 01 02): carbonlink.cbor must then refuse the
# map or use the bytewise order, never the other one.

_map_keys = (
    st.integers(-(2**70), 2**70)
    | st.integers(-30, 30)
    | st.text(max_size=30)
    | st.binary(max_size=30)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
    | st.tuples(st.integers(-30, 3000))
    | st.tuples(st.text(max_size=5), st.integers(-30, 30))
)


def _bytewise_pairs(fields: dict[object, object]) -> list[tuple[bytes, bytes]]:
    """A map's (key, value) encodings in RFC 8949 §4.2.1 order, by cbor2 and a byte sort alone."""
    return sorted(
        (cbor2.dumps(key, canonical=True), cbor2.dumps(value, canonical=True)) for key, value in fields.items()
    )


def _bytewise_map(fields: dict[object, object]) -> bytes:
    return _map(_bytewise_pairs(fields))


@given(st.dictionaries(_map_keys, st.integers(0, 99), max_size=6))
def test_encode_sorts_map_keys_bytewise_or_refuses_the_map(fields: dict[object, object]) -> None:
    """cbor.encode either refuses a map (TypeError) or spells it with its keys in RFC 8949 §4.2.1 order."""
    try:
        encoded = cbor.encode(fields)
    except TypeError:
        return
    assert encoded == _bytewise_map(fields)


@given(st.dictionaries(_map_keys, st.integers(0, 99), min_size=2, max_size=6), st.data())
def test_decode_accepts_map_keys_only_in_bytewise_order(fields: dict[object, object], data: st.DataObject) -> None:
    """cbor.decode reads a map in RFC 8949 §4.2.1 order if cbor.encode takes it, and refuses any other order."""
    bytewise = _bytewise_map(fields)
    try:
        cbor.encode(fields)
    except TypeError:
        with pytest.raises(MalformedError):
            cbor.decode(bytewise, "map")
    else:
        assert cbor.decode(bytewise, "map") == fields
    pairs = _bytewise_pairs(fields)
    i = data.draw(st.integers(0, len(pairs) - 2), label="swap with next")
    pairs[i], pairs[i + 1] = pairs[i + 1], pairs[i]
    with pytest.raises(MalformedError):
        cbor.decode(_map(pairs), "map")


def test_keys_that_sort_differently_by_length_and_bytes_are_handled() -> None:
    """The two known examples where shortest-first and bytewise order differ are refused or bytewise."""
    examples: list[dict[object, object]] = [{32: 1, -1: 2}, {(1, 2): 0, ("aaaa",): 1}]
    for fields in examples:
        try:
            encoded = cbor.encode(fields)
        except TypeError:
            continue
        assert encoded == _bytewise_map(fields)
