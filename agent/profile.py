"""Vehicle profiles: which DBC signals carry each canonical quantity, and how to fix them up.

A profile is one TOML file. It names the vehicle's DBC file(s) and, for each quantity of
``agent.readings.Quantity`` the vehicle reports, the message and signal that carry it::

    id = "reference_ev"                     # [a-z0-9_-], names the profile
    name = "carbonlink reference EV"        # for people
    dbc = ["reference:carbonlink_ev.dbc"]   # one or more DBCs, see below

    [checksum]                  # optional: frames to verify (the reference bus's scheme)
    algorithm = "crc8_j1850"    # the only one: CRC-8 SAE J1850 over the bytes before `byte`
    byte = 7                    # default 7
    signal = "_Checksum"        # suffix of the checksum signal; messages without one are not checked
    counter = "_Counter"        # suffix of the rolling counter signal, whose jumps are counted

    [quantities.pack_current_a]
    message = "BMS_Pack"
    signal = "BMS_PackCurrent"
    unit = "A"          # the DBC signal's unit, in any spelling we know; converted to ours
    scale = -1.0        # optional fix-up, applied in that unit: value × scale + offset
    offset = 0.0        # optional
    sna = [-32768]      # optional raw values meaning "not available" (default below)

    [quantities.ready]
    message = "VCU_Drive"
    signal = "VCU_ReadyState"
    true_values = ["Ready"]   # raw values or value names that mean true; anything else is false

    [quantities.speed_kph]    # the other way to give speed: the mean of wheel speeds
    unit = "km/h"
    wheels = [{ message = "ESP_Wheels", signal = "FL" }, { message = "ESP_Wheels", signal = "FR" }]

DBC references: a path relative to the profile file; ``opendbc:NAME.dbc`` for a file inside the
installed ``opendbc`` package's ``dbc`` folder (``opendbc:generator/gm/x.dbc`` for its subfolders);
``reference:NAME.dbc`` for carbonlink's own DBCs (``dbc/`` of a checkout, ``simulator/dbc/`` of an
installed wheel).

Quantities are the names of ``Quantity``: ``pack_voltage_v`` (V), ``pack_current_a`` (A, positive
while the pack discharges), ``soc_pct`` (%), ``speed_kph`` (km/h), ``odometer_m`` (m),
``grid_power_w`` (W), ``energy_discharged_wh`` and ``energy_charged_wh`` (Wh), and the states
``ready``, ``charging`` and ``charger_dc`` (1.0 true, 0.0 false), which take ``true_values`` instead
of ``unit``, ``scale`` and ``offset``. Units we understand: V; A; %; km/h, kph, mph, m/s; m, km, mi;
W, kW; Wh, kWh; each also in the ``Unit_KiloMeterPerHour`` spelling of some brands. A DBC signal
without a unit takes the profile's. The unit must be the DBC's (a check that the right signal was
picked), and values are converted to ours.

"Signal not available" defaults to the all-ones raw value of an unsigned signal (the most negative
raw value of a signed one) when the DBC marks it, by a value name containing "SNA" or a comment
saying "not available"; otherwise no raw value is SNA unless ``sna`` lists some.

Two quantities may not read the same signal, except states sharing one enumeration (one BMS mode
often says both "charging" and "DC"). ``load_profile`` is the only function here that touches
files; ``parse_profile`` and ``bind_profile`` are pure.
"""

import importlib.resources
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cantools
import cantools.database

from agent.errors import ProfileError
from agent.readings import Quantity

STATE_QUANTITIES = frozenset({Quantity.READY, Quantity.CHARGING, Quantity.CHARGER_DC})
"""Quantities that are true or false, read through ``true_values``."""

OUR_UNITS: Mapping[Quantity, str] = {
    Quantity.PACK_VOLTAGE_V: "V",
    Quantity.PACK_CURRENT_A: "A",
    Quantity.SOC_PCT: "%",
    Quantity.SPEED_KPH: "kph",
    Quantity.ODOMETER_M: "m",
    Quantity.GRID_POWER_W: "W",
    Quantity.ENERGY_DISCHARGED_WH: "Wh",
    Quantity.ENERGY_CHARGED_WH: "Wh",
}

_UNITS: Mapping[str, tuple[str, float]] = {
    # spelling (lower case, spaces and a "unit_" prefix removed) → (our unit, factor to it)
    **dict.fromkeys(("v", "volt", "volts"), ("V", 1.0)),
    **dict.fromkeys(("a", "amp", "amps", "amper", "ampere"), ("A", 1.0)),
    **dict.fromkeys(("%", "percent", "pct"), ("%", 1.0)),
    **dict.fromkeys(("km/h", "kph", "kmh", "kilometerperhour"), ("kph", 1.0)),
    "mph": ("kph", 1.609344),
    "m/s": ("kph", 3.6),
    **dict.fromkeys(("m", "meter", "metre"), ("m", 1.0)),
    **dict.fromkeys(("km", "kilometer", "kilometre"), ("m", 1000.0)),
    **dict.fromkeys(("mi", "mile", "miles"), ("m", 1609.344)),
    **dict.fromkeys(("w", "watt"), ("W", 1.0)),
    **dict.fromkeys(("kw", "kilowatt"), ("W", 1000.0)),
    **dict.fromkeys(("wh", "watthour"), ("Wh", 1.0)),
    **dict.fromkeys(("kwh", "kilowatthour"), ("Wh", 1000.0)),
}

CHECKSUM_ALGORITHMS = ("crc8_j1850",)
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOP_KEYS = frozenset({"id", "name", "dbc", "checksum", "quantities"})
_CHECKSUM_KEYS = frozenset({"algorithm", "byte", "signal", "counter"})
_NUMERIC_KEYS = frozenset({"message", "signal", "unit", "scale", "offset", "sna", "wheels"})
_STATE_KEYS = frozenset({"message", "signal", "true_values", "sna"})
_SNA_WORDS = re.compile(r"\bSNA\b|not available", re.IGNORECASE)
_BITS_PER_BYTE = 8


@dataclass(frozen=True, slots=True)
class SignalLayout:
    """Where one DBC signal sits in its message's payload, and its DBC scaling and range.

    The raw value is ``(payload as one integer >> shift) & (2**length - 1)``, the integer read
    big-endian for Motorola signals and little-endian for Intel ones.
    """

    message: str
    name: str
    shift: int
    length: int
    big_endian: bool
    signed: bool
    is_float: bool
    scale: float
    offset: float
    minimum: float | None
    maximum: float | None
    unit: str
    choices: tuple[tuple[int, str], ...]
    multiplexer_ids: tuple[int, ...]
    """The multiplexer values that carry this signal; empty when it is in every frame."""
    sna_marked: bool
    """Whether the DBC marks the conventional SNA raw value (``sna_raw``) by a value name or comment."""

    @property
    def path(self) -> str:
        return f"{self.message}.{self.name}"


@dataclass(frozen=True, slots=True)
class MessageLayout:
    """One message the profile reads: its identity, length and the signals framing it."""

    name: str
    frame_id: int
    is_extended: bool
    length: int
    multiplexer: SignalLayout | None
    counter: SignalLayout | None
    """The rolling counter, when the profile has a ``[checksum]`` table and the message a counter."""
    checksum_byte: int | None
    """The byte holding a CRC of the bytes before it, when the profile verifies this message."""


@dataclass(frozen=True, slots=True)
class QuantityMapping:
    """How one canonical quantity is read: its signal(s), unit conversion and fix-ups."""

    quantity: Quantity
    signals: tuple[SignalLayout, ...]
    """One signal, or several wheel speeds to average."""
    unit: str
    """The unit as the profile wrote it (empty for states)."""
    unit_factor: float
    """Multiplier from ``unit`` to our unit."""
    scale: float
    offset: float
    sna: frozenset[int]
    sna_from_dbc: bool
    """Whether ``sna`` is the default the DBC marks rather than the profile's own list."""
    true_values: frozenset[int] | None
    """Raw values meaning true, for state quantities; None for numeric ones."""


@dataclass(frozen=True, slots=True)
class ChecksumSpec:
    """The ``[checksum]`` table: which frames carry a CRC and a rolling counter."""

    algorithm: str
    byte: int
    signal_suffix: str
    counter_suffix: str


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """A profile as written, checked for shape but not yet against its DBC(s)."""

    source: str
    id: str
    name: str
    dbc: tuple[str, ...]
    checksum: ChecksumSpec | None
    quantities: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class VehicleProfile:
    """A profile checked against its DBC(s): everything the decoder needs, and nothing else."""

    id: str
    name: str
    source: str
    dbc: tuple[str, ...]
    checksum: ChecksumSpec | None
    quantities: tuple[QuantityMapping, ...]
    """In the order of ``Quantity``."""
    messages: tuple[MessageLayout, ...]
    """Every message a quantity reads, in order of frame id."""

    @property
    def frame_ids(self) -> frozenset[tuple[int, bool]]:
        """(arbitration id, is extended) of every frame to read: the bus filter."""
        return frozenset((message.frame_id, message.is_extended) for message in self.messages)

    @property
    def missing(self) -> tuple[Quantity, ...]:
        """The quantities this vehicle does not report (as far as its profile knows)."""
        mapped = {mapping.quantity for mapping in self.quantities}
        return tuple(quantity for quantity in Quantity if quantity not in mapped)

    def mapping(self, quantity: Quantity) -> QuantityMapping | None:
        return next((mapping for mapping in self.quantities if mapping.quantity is quantity), None)


# --- text → spec ------------------------------------------------------------------------------


def parse_profile(text: str, source: str) -> ProfileSpec:
    """Read a profile's TOML text; ``source`` (its file name) prefixes every error message."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{source}: not valid TOML: {err}") from err
    _no_unknown_keys(source, "", document, _TOP_KEYS)
    profile_id = _required(source, document, "id", str)
    if not _ID.fullmatch(profile_id):
        raise ProfileError(f"{source}: id: {profile_id!r} must be lower-case letters, digits, '_' and '-'")
    name = _required(source, document, "name", str)
    dbc = _required(source, document, "dbc", list)
    if not dbc or not all(isinstance(entry, str) and entry for entry in dbc):
        raise ProfileError(f"{source}: dbc: must be a non-empty list of DBC paths")
    quantities = document.get("quantities", {})
    if not isinstance(quantities, dict):
        raise ProfileError(f"{source}: quantities: must be a table of [quantities.NAME] tables")
    known = {quantity.value for quantity in Quantity}
    for key, table in quantities.items():
        if key not in known:
            raise ProfileError(f"{source}: quantities.{key}: unknown quantity; known: {', '.join(sorted(known))}")
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: quantities.{key}: must be a table")
    return ProfileSpec(
        source=source,
        id=profile_id,
        name=name,
        dbc=tuple(dbc),
        checksum=_checksum_spec(source, document.get("checksum")),
        quantities=quantities,
    )


def _checksum_spec(source: str, table: object) -> ChecksumSpec | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ProfileError(f"{source}: checksum: must be a table")
    _no_unknown_keys(source, "checksum.", table, _CHECKSUM_KEYS)
    algorithm = _required(source, table, "algorithm", str, "checksum.")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ProfileError(
            f"{source}: checksum.algorithm: {algorithm!r} unknown; known: {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    byte = table.get("byte", 7)
    if not isinstance(byte, int) or isinstance(byte, bool) or not 1 <= byte < 64:  # noqa: PLR2004 - CAN FD payload
        raise ProfileError(f"{source}: checksum.byte: must be a byte index from 1 to 63, got {byte!r}")
    suffixes = [table.get(key, default) for key, default in (("signal", "_Checksum"), ("counter", "_Counter"))]
    for key, suffix in zip(("signal", "counter"), suffixes, strict=True):
        if not isinstance(suffix, str) or not suffix:
            raise ProfileError(f"{source}: checksum.{key}: must be a signal name suffix such as '_Counter'")
    return ChecksumSpec(algorithm, byte, suffixes[0], suffixes[1])


def _required(source: str, table: Mapping[str, Any], key: str, kind: type, prefix: str = "") -> Any:  # noqa: ANN401
    if key not in table:
        raise ProfileError(f"{source}: {prefix}{key}: missing required key")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise ProfileError(f"{source}: {prefix}{key}: must be a {kind.__name__}, got {value!r}")
    return value


def _no_unknown_keys(source: str, prefix: str, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(f"{source}: {prefix}{unknown[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")


# --- spec + DBCs → profile --------------------------------------------------------------------


def bind_profile(spec: ProfileSpec, databases: Mapping[str, Any]) -> VehicleProfile:
    """Check a spec against its DBCs (cantools databases keyed by the spec's ``dbc`` entries)."""
    messages = _message_index(spec, databases)
    mappings: list[QuantityMapping] = []
    claimed: dict[tuple[str, str], Quantity] = {}
    for quantity in Quantity:
        table = spec.quantities.get(quantity.value)
        if table is None:
            continue
        mapping = _bind_quantity(spec, quantity, table, messages)
        for signal in mapping.signals:
            other = claimed.get((signal.message, signal.name))
            if other is not None and not (quantity in STATE_QUANTITIES and other in STATE_QUANTITIES):
                raise ProfileError(
                    f"{spec.source}: quantities.{quantity.value}: {signal.path} is already read as {other.value}"
                )
            claimed[(signal.message, signal.name)] = quantity
        mappings.append(mapping)
    used = sorted({signal.message for mapping in mappings for signal in mapping.signals}, key=lambda n: messages[n][0])
    layouts = tuple(_message_layout(spec, messages[name][1], mappings) for name in used)
    return VehicleProfile(
        id=spec.id,
        name=spec.name,
        source=spec.source,
        dbc=spec.dbc,
        checksum=spec.checksum,
        quantities=tuple(mappings),
        messages=layouts,
    )


def profile_from_text(text: str, source: str, databases: Mapping[str, Any]) -> VehicleProfile:
    """``parse_profile`` then ``bind_profile``: text and DBCs in, a checked profile out."""
    return bind_profile(parse_profile(text, source), databases)


def _message_index(spec: ProfileSpec, databases: Mapping[str, Any]) -> dict[str, tuple[int, Any]]:
    """Message name → (sort key, cantools message), refusing a name two DBCs both define."""
    index: dict[str, tuple[int, Any]] = {}
    origin: dict[str, str] = {}
    for ref in spec.dbc:
        database = databases.get(ref)
        if database is None:
            raise ProfileError(f"{spec.source}: dbc: {ref!r} was not loaded")
        for message in database.messages:
            if message.name in origin:
                raise ProfileError(
                    f"{spec.source}: dbc: message {message.name} is in both {origin[message.name]} and {ref}"
                )
            origin[message.name] = ref
            index[message.name] = (int(message.frame_id) | (int(message.is_extended_frame) << 29), message)
    return index


def _bind_quantity(
    spec: ProfileSpec, quantity: Quantity, table: Mapping[str, Any], messages: Mapping[str, tuple[int, Any]]
) -> QuantityMapping:
    key = f"quantities.{quantity.value}"
    where = f"{spec.source}: {key}"
    state = quantity in STATE_QUANTITIES
    _no_unknown_keys(spec.source, f"{key}.", table, _STATE_KEYS if state else _NUMERIC_KEYS)
    if "wheels" in table:
        if quantity is not Quantity.SPEED_KPH:
            raise ProfileError(f"{where}.wheels: only speed_kph can be read from wheels")
        if "message" in table or "signal" in table:
            raise ProfileError(f"{where}.wheels: give either wheels or message and signal, not both")
        wheels = table["wheels"]
        if not isinstance(wheels, list) or not wheels or not all(isinstance(wheel, dict) for wheel in wheels):
            raise ProfileError(f"{where}.wheels: must be a list of {{ message, signal }} tables")
        signals = tuple(_signal(spec.source, f"{key}.wheels[{i}]", wheel, messages) for i, wheel in enumerate(wheels))
    else:
        signals = (_signal(spec.source, key, table, messages),)
    sna = _sna(where, table, frozenset().union(*(_default_sna(signal) for signal in signals)))
    if state:
        return QuantityMapping(
            quantity=quantity,
            signals=signals,
            unit="",
            unit_factor=1.0,
            scale=1.0,
            offset=0.0,
            sna=sna,
            sna_from_dbc="sna" not in table,
            true_values=_true_values(where, table, signals[0]),
        )
    unit = _required(spec.source, table, "unit", str, f"{key}.")
    factor = _unit_factor(where, quantity, unit, signals)
    scale, offset = (_number(where, table, name, default) for name, default in (("scale", 1.0), ("offset", 0.0)))
    if scale == 0:
        raise ProfileError(f"{where}.scale: must not be 0")
    return QuantityMapping(
        quantity=quantity,
        signals=signals,
        unit=unit,
        unit_factor=factor,
        scale=scale,
        offset=offset,
        sna=sna,
        sna_from_dbc="sna" not in table,
        true_values=None,
    )


def _signal(source: str, key: str, table: Mapping[str, Any], messages: Mapping[str, tuple[int, Any]]) -> SignalLayout:
    message_name = _required(source, table, "message", str, f"{key}.")
    signal_name = _required(source, table, "signal", str, f"{key}.")
    entry = messages.get(message_name)
    if entry is None:
        raise ProfileError(f"{source}: {key}.message: no message {message_name!r} in the DBC(s)")
    message = entry[1]
    signal = next((s for s in message.signals if s.name == signal_name), None)
    if signal is None:
        raise ProfileError(f"{source}: {key}.signal: message {message_name} has no signal {signal_name!r}")
    if signal.multiplexer_signal is not None:
        multiplexer = message.get_signal_by_name(signal.multiplexer_signal)
        if multiplexer.multiplexer_signal is not None:
            raise ProfileError(f"{source}: {key}.signal: {message_name}.{signal_name} is nested-multiplexed")
    return signal_layout(message, signal, f"{source}: {key}.signal")


def signal_layout(message: Any, signal: Any, where: str) -> SignalLayout:  # noqa: ANN401 - cantools is untyped
    """Our description of a cantools signal; ``where`` prefixes the error if it does not fit."""
    total_bits = int(message.length) * _BITS_PER_BYTE
    start, length = int(signal.start), int(signal.length)
    big_endian = signal.byte_order == "big_endian"
    if big_endian:
        msb = (start // _BITS_PER_BYTE) * _BITS_PER_BYTE + (_BITS_PER_BYTE - 1 - start % _BITS_PER_BYTE)
        shift = total_bits - (msb + length)
    else:
        shift = start
    if shift < 0 or shift + length > total_bits or length < 1:
        raise ProfileError(f"{where}: {message.name}.{signal.name} does not fit in its {message.length}-byte message")
    choices = tuple((int(raw), str(name)) for raw, name in (signal.choices or {}).items())
    signed = bool(signal.is_signed)
    conventional_sna = -(1 << (length - 1)) if signed else (1 << length) - 1
    marked = any(raw == conventional_sna and _SNA_WORDS.search(name) for raw, name in choices) or bool(
        _SNA_WORDS.search(str(signal.comment or ""))
    )
    return SignalLayout(
        message=str(message.name),
        name=str(signal.name),
        shift=shift,
        length=length,
        big_endian=big_endian,
        signed=signed,
        is_float=bool(signal.is_float),
        scale=float(signal.scale),
        offset=float(signal.offset),
        minimum=None if signal.minimum is None else float(signal.minimum),
        maximum=None if signal.maximum is None else float(signal.maximum),
        unit=str(signal.unit or ""),
        choices=choices,
        multiplexer_ids=tuple(int(i) for i in (signal.multiplexer_ids or ())),
        sna_marked=marked and not bool(signal.is_float),
    )


def sna_raw(signal: SignalLayout) -> int:
    """The raw value conventionally meaning "not available": all ones, or most negative if signed."""
    return -(1 << (signal.length - 1)) if signal.signed else (1 << signal.length) - 1


def _default_sna(signal: SignalLayout) -> frozenset[int]:
    return frozenset({sna_raw(signal)}) if signal.sna_marked else frozenset()


def _sna(where: str, table: Mapping[str, Any], default: frozenset[int]) -> frozenset[int]:
    if "sna" not in table:
        return default
    values = table["sna"]
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ProfileError(f"{where}.sna: must be a list of raw integer values")
    return frozenset(values)


def _true_values(where: str, table: Mapping[str, Any], signal: SignalLayout) -> frozenset[int]:
    if "true_values" not in table:
        raise ProfileError(f"{where}.true_values: missing required key (raw values or value names meaning true)")
    values = table["true_values"]
    if not isinstance(values, list) or not values:
        raise ProfileError(f"{where}.true_values: must be a non-empty list of raw values or value names")
    names = {name: raw for raw, name in signal.choices}
    raws: set[int] = set()
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            raws.add(value)
        elif isinstance(value, str) and value in names:
            raws.add(names[value])
        elif isinstance(value, str):
            known = ", ".join(sorted(names)) or "none"
            raise ProfileError(f"{where}.true_values: {signal.path} has no value named {value!r}; its names: {known}")
        else:
            raise ProfileError(f"{where}.true_values: {value!r} is neither a raw integer nor a value name")
    return frozenset(raws)


def _number(where: str, table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ProfileError(f"{where}.{key}: must be a finite number, got {value!r}")
    return float(value)


def normalise_unit(unit: str) -> tuple[str, float] | None:
    """(our unit, factor to it) for a unit as DBCs and profiles spell it; None when unknown."""
    spelling = unit.strip().lower().replace(" ", "")
    spelling = spelling.removeprefix("unit_")
    return _UNITS.get(spelling)


def _unit_factor(where: str, quantity: Quantity, unit: str, signals: Sequence[SignalLayout]) -> float:
    ours = OUR_UNITS[quantity]
    declared = normalise_unit(unit)
    if declared is None or declared[0] != ours:
        raise ProfileError(f"{where}.unit: {unit!r} is not a unit we convert to {ours} for {quantity.value}")
    for signal in signals:
        if not signal.unit:
            continue  # the DBC does not say; the profile's unit stands
        if normalise_unit(signal.unit) != declared:
            raise ProfileError(f"{where}.unit: {unit!r} does not match the DBC unit {signal.unit!r} of {signal.path}")
    return declared[1]


def _message_layout(spec: ProfileSpec, message: Any, mappings: Sequence[QuantityMapping]) -> MessageLayout:  # noqa: ANN401
    where = f"{spec.source}: message {message.name}"
    used = [signal for mapping in mappings for signal in mapping.signals if signal.message == message.name]
    multiplexer = None
    multiplexed = next((signal for signal in used if signal.multiplexer_ids), None)
    if multiplexed is not None:
        selector = message.get_signal_by_name(message.get_signal_by_name(multiplexed.name).multiplexer_signal)
        multiplexer = signal_layout(message, selector, where)
    counter = checksum_byte = None
    checksum = spec.checksum
    if checksum is not None:
        for signal in message.signals:
            if signal.name.endswith(checksum.counter_suffix):
                counter = signal_layout(message, signal, where)
            elif signal.name.endswith(checksum.signal_suffix):
                if int(signal.length) != _BITS_PER_BYTE or int(signal.start) not in (
                    checksum.byte * _BITS_PER_BYTE,
                    checksum.byte * _BITS_PER_BYTE + _BITS_PER_BYTE - 1,
                ):
                    raise ProfileError(f"{where}: {signal.name} must fill byte {checksum.byte} (checksum.byte)")
                checksum_byte = checksum.byte
    return MessageLayout(
        name=str(message.name),
        frame_id=int(message.frame_id),
        is_extended=bool(message.is_extended_frame),
        length=int(message.length),
        multiplexer=multiplexer,
        counter=counter,
        checksum_byte=checksum_byte,
    )


# --- DBC text → database, and the one function that reads files ------------------------------

_MESSAGE_LINE = re.compile(r"^BO_\s+(\d+)\s")
_SIGNAL_LINE = re.compile(r"^\s*SG_\s+(\w+)")
_VALUE_DESCRIPTIONS = re.compile(r"^VAL_\s+(\d+)\s+(\w+)\s[^;]*;[ \t]*\n?", re.MULTILINE)


def parse_dbc(text: str, name: str) -> Any:  # noqa: ANN401 - cantools is untyped
    """A cantools database from DBC text, or a ProfileError naming ``name``.

    Value descriptions (``VAL_``) of signals that no message has are dropped first: they
    describe nothing, some published DBCs (opendbc's) carry a few, and cantools refuses the whole
    file for them. Loading is otherwise lenient (``strict=False``): the profile checks the
    signals it uses.
    """
    try:
        return cantools.database.load_string(_without_stray_values(text), database_format="dbc", strict=False)
    except Exception as err:  # cantools raises bare ValueErrors and its own errors alike
        raise ProfileError(f"{name}: not a readable DBC: {' '.join(str(err).split())}") from err


def _without_stray_values(text: str) -> str:
    defined: set[tuple[str, str]] = set()
    frame_id = None
    for line in text.splitlines():
        if found := _MESSAGE_LINE.match(line):
            frame_id = found.group(1)
        elif (found := _SIGNAL_LINE.match(line)) and frame_id is not None:
            defined.add((frame_id, found.group(1)))

    def keep(match: re.Match[str]) -> str:
        return match.group(0) if (match.group(1), match.group(2)) in defined else ""

    return _VALUE_DESCRIPTIONS.sub(keep, text)


def resolve_dbc(ref: str, profile_dir: Path) -> Path:
    """The file a profile's DBC reference names (see the module docstring for the forms)."""
    scheme, _, rest = ref.partition(":")
    if scheme == "opendbc" and rest:
        return _opendbc_file(rest)
    if scheme == "reference" and rest:
        return _reference_file(rest)
    return profile_dir / ref


def _opendbc_file(name: str) -> Path:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ProfileError(f"opendbc:{name}: must name a file inside opendbc's dbc folder")
    try:
        root = importlib.resources.files("opendbc")
    except ModuleNotFoundError as err:
        raise ProfileError(
            f"opendbc:{name}: the opendbc package is not installed (pip install 'carbonlink[vehicles]')"
        ) from err
    return Path(str(root)) / "dbc" / relative


def _reference_file(name: str) -> Path:
    # carbonlink's own DBCs live in dbc/ beside the packages in a checkout, and in simulator/dbc/
    # of an installed wheel (pyproject's force-include). Found by path: the agent never imports
    # the simulator.
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ProfileError(f"reference:{name}: must name a file of carbonlink's dbc folder")
    packages = Path(__file__).resolve().parent.parent
    for candidate in (packages / "dbc" / relative, packages / "simulator" / "dbc" / relative):
        if candidate.is_file():
            return candidate
    raise ProfileError(f"reference:{name}: not found in {packages / 'dbc'} nor {packages / 'simulator' / 'dbc'}")


def load_profile(path: Path) -> VehicleProfile:
    """Read a profile file and its DBC(s), and check one against the others."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: cannot read: {err}") from err
    spec = parse_profile(text, str(path))
    databases = {}
    for i, ref in enumerate(spec.dbc):
        where = f"{path}: dbc[{i}] {ref!r}"
        try:
            dbc_path = resolve_dbc(ref, path.parent)
            dbc_text = dbc_path.read_text(encoding="utf-8", errors="replace")
        except ProfileError as err:  # the reference itself is bad: it leads the message already
            raise ProfileError(f"{path}: dbc[{i}]: {err}") from err
        except OSError as err:
            raise ProfileError(f"{where}: cannot read {dbc_path}: {err.strerror or err}") from err
        try:
            databases[ref] = parse_dbc(dbc_text, str(dbc_path))
        except ProfileError as err:
            raise ProfileError(f"{where}: {err}") from err
    return bind_profile(spec, databases)
