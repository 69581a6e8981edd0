"""CAN frames in, readings out: a vehicle profile applied to each frame, with counts of what went wrong.

``FrameDecoder(profile).decode(frame)`` returns the ``Reading`` a frame carries, or None when the
frame is of no use. It never raises on a frame: every frame seen lands in exactly one of four
counts, ``frames_used + ignored + truncated + bad_checksum == frames_seen``.

- **ignored**: not one of the profile's frame ids, an error or remote frame, or a multiplexed frame
  whose page carries nothing the profile reads;
- **truncated**: shorter than the DBC's message length (skipped, nothing is guessed);
- **bad_checksum**: the profile has a ``[checksum]`` and the frame's CRC does not match (skipped);
- **used**: a reading came out. Each of its values is converted to our units, fixed up as the
  profile says, and None ("unknown", never zero) when the raw value means "not available"
  (counted as **unavailable**) or lies outside the DBC's [min, max] (counted as **out_of_range**).

A message with a rolling counter (profile ``[checksum].counter``) is expected to count up by one
per frame. Each break is a **counter jump**; **frames_dropped** estimates how many frames a jump
skipped (modulo the counter's range, so a repeated frame reads as a full turn less one). After a
silence longer than ``COUNTER_RESYNC_S`` the counter is taken as it comes (the bus slept).

Speed read from several wheels is the mean of the wheels a frame carries that are available.
Everything per frame id is worked out once, in the constructor: decoding a used frame is a dict
look-up, two ``int.from_bytes`` and a shift, a mask and a multiply-add per signal.
"""

import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import can

from agent.profile import MessageLayout, QuantityMapping, SignalLayout, VehicleProfile
from agent.readings import Quantity, Reading
from carbonlink.checksums import crc8_j1850

COUNTER_RESYNC_S = 1.0
"""A silence of a message longer than this restarts its counter check instead of counting a jump."""


def _key(arbitration_id: int, is_extended: bool) -> int:  # noqa: FBT001 - mirrors can.Message's fields
    """One integer per (id, id type): a standard and an extended frame of the same number differ."""
    return (arbitration_id << 1) | is_extended


_FLOATS = {32: struct.Struct("<f"), 64: struct.Struct("<d")}
"""IEEE floats by bit length (DBC ``SIG_VALTYPE_``), unpacked from the raw bit pattern."""


@dataclass(frozen=True, slots=True)
class DecodeStats:
    """Counts of a decoder's frames and values since it was built (see the module docstring)."""

    frames_seen: int = 0
    frames_used: int = 0
    ignored: int = 0
    truncated: int = 0
    bad_checksum: int = 0
    counter_jumps: int = 0
    frames_dropped: int = 0
    """Estimated frames lost, from the size of counter jumps."""
    out_of_range: int = 0
    unavailable: int = 0


# A field is one signal's recipe, a tuple for speed:
# (big endian, shift, mask, sign bit or 0, float unpacker or None, DBC scale, DBC offset, lowest,
#  highest, gain, bias, SNA raw values, true raw values or None)
_Field = tuple[
    bool,
    int,
    int,
    int,
    struct.Struct | None,
    float,
    float,
    float,
    float,
    float,
    float,
    frozenset[int],
    frozenset[int] | None,
]
_Group = tuple[Quantity, tuple[_Field, ...]]


class _Plan:
    """What to do with one frame id; also holds the message's last counter (the only state)."""

    __slots__ = ("checksum_byte", "counter", "last_counter", "last_time_s", "length", "mux", "pages", "plain")

    def __init__(self, message: MessageLayout, mappings: Sequence[QuantityMapping]) -> None:
        self.length = message.length
        self.checksum_byte = message.checksum_byte
        counter = message.counter
        self.counter = None if counter is None else (counter.big_endian, counter.shift, (1 << counter.length) - 1)
        mux = message.multiplexer
        self.mux = None if mux is None else (mux.big_endian, mux.shift, (1 << mux.length) - 1)
        self.plain = _groups(message.name, mappings, None)
        pages = sorted({i for m in mappings for s in m.signals if s.message == message.name for i in s.multiplexer_ids})
        self.pages = {page: _groups(message.name, mappings, page) for page in pages}
        self.last_counter = -1
        self.last_time_s = -math.inf


def _groups(message: str, mappings: Sequence[QuantityMapping], page: int | None) -> tuple[_Group, ...]:
    """The quantities a message carries in every frame (page None), or in frames of one multiplexer page."""
    groups = []
    for mapping in mappings:
        fields = tuple(
            _field(mapping, signal)
            for signal in mapping.signals
            if signal.message == message and (not signal.multiplexer_ids or page in signal.multiplexer_ids)
        )
        if fields:
            groups.append((mapping.quantity, fields))
    return tuple(groups)


def _field(mapping: QuantityMapping, signal: SignalLayout) -> _Field:
    half_step = abs(signal.scale) / 2
    lowest = -math.inf if signal.minimum is None else signal.minimum - half_step
    highest = math.inf if signal.maximum is None else signal.maximum + half_step
    unpacker = _FLOATS.get(signal.length) if signal.is_float else None
    return (
        signal.big_endian,
        signal.shift,
        (1 << signal.length) - 1,
        (1 << (signal.length - 1)) if signal.signed and not signal.is_float else 0,
        unpacker,
        signal.scale,
        signal.offset,
        lowest,
        highest,
        mapping.scale * mapping.unit_factor,
        mapping.offset * mapping.unit_factor,
        mapping.sna,
        mapping.true_values,
    )


class FrameDecoder:
    """Decodes the frames of one vehicle profile into readings, counting what it cannot use."""

    def __init__(self, profile: VehicleProfile) -> None:
        self.profile = profile
        self._plans: dict[int, _Plan] = {
            _key(message.frame_id, message.is_extended): _Plan(message, profile.quantities)
            for message in profile.messages
        }
        self._seen = self._used = self._ignored = self._truncated = self._bad_checksum = 0
        self._jumps = self._dropped = self._out_of_range = self._unavailable = 0

    def stats(self) -> DecodeStats:
        """A snapshot of the counts so far."""
        return DecodeStats(
            frames_seen=self._seen,
            frames_used=self._used,
            ignored=self._ignored,
            truncated=self._truncated,
            bad_checksum=self._bad_checksum,
            counter_jumps=self._jumps,
            frames_dropped=self._dropped,
            out_of_range=self._out_of_range,
            unavailable=self._unavailable,
        )

    def readings(self, frames: Iterable[can.Message]) -> Iterator[Reading]:
        """The readings of a stream of frames, in order."""
        for frame in frames:
            reading = self.decode(frame)
            if reading is not None:
                yield reading

    def decode(self, frame: can.Message) -> Reading | None:
        """The reading one frame carries, or None (and a count saying why)."""
        self._seen += 1
        plan = self._plans.get((frame.arbitration_id << 1) | frame.is_extended_id)  # _key, inlined
        if plan is None or frame.is_error_frame or frame.is_remote_frame:
            self._ignored += 1
            return None
        data = frame.data
        length = plan.length
        if len(data) < length:
            self._truncated += 1
            return None
        payload = bytes(data[:length])
        checksum_byte = plan.checksum_byte
        if checksum_byte is not None and crc8_j1850(payload[:checksum_byte]) != payload[checksum_byte]:
            self._bad_checksum += 1
            return None
        little = int.from_bytes(payload, "little")
        big = int.from_bytes(payload, "big")
        counter = plan.counter
        if counter is not None:
            counter_big, counter_shift, counter_mask = counter
            self._check_counter(
                plan,
                ((big if counter_big else little) >> counter_shift) & counter_mask,
                counter_mask,
                float(frame.timestamp),
            )
        groups = plan.plain
        if plan.mux is not None:
            mux_big, mux_shift, mux_mask = plan.mux
            groups = plan.pages.get(((big if mux_big else little) >> mux_shift) & mux_mask, groups)
        if not groups:
            self._ignored += 1
            return None
        values: dict[Quantity, float | None] = {}
        for quantity, fields in groups:
            if len(fields) == 1:
                values[quantity] = self._value(fields[0], little, big)
            else:
                known = [v for v in (self._value(field, little, big) for field in fields) if v is not None]
                values[quantity] = sum(known) / len(known) if known else None
        self._used += 1
        return Reading(float(frame.timestamp), values)

    def _value(self, field: _Field, little: int, big: int) -> float | None:
        big_endian, shift, mask, sign_bit, unpacker, scale, offset, lowest, highest, gain, bias, sna, true = field
        raw = ((big if big_endian else little) >> shift) & mask
        if sign_bit and raw & sign_bit:
            raw -= sign_bit << 1
        if raw in sna:
            self._unavailable += 1
            return None
        if unpacker is not None:
            number = float(unpacker.unpack(raw.to_bytes(unpacker.size, "little"))[0])
            physical = number * scale + offset if math.isfinite(number) else math.nan
        else:
            physical = raw * scale + offset
        if not lowest <= physical <= highest:  # NaN fails too
            self._out_of_range += 1
            return None
        if true is not None:
            return 1.0 if raw in true else 0.0
        return physical * gain + bias

    def _check_counter(self, plan: _Plan, counter: int, mask: int, time_s: float) -> None:
        last = plan.last_counter
        if last >= 0 and 0 <= time_s - plan.last_time_s <= COUNTER_RESYNC_S:
            expected = (last + 1) & mask
            if counter != expected:
                self._jumps += 1
                self._dropped += (counter - expected) & mask
        plan.last_counter = counter
        plan.last_time_s = time_s
