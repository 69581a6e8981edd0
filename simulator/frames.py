"""DBC-driven periodic senders: bus states in, timestamped CAN frames out.

Each message is sent at its ``GenMsgCycleTime`` with the latest bus state; messages with a
``*_Counter`` signal get a rolling 4-bit counter, messages with a ``*_Checksum`` signal a CRC-8
SAE J1850 over bytes 0..6 in byte 7, and a multiplexed message cycles through its multiplexer
values, one per frame. Pure apart from building ``can.Message`` values: no bus, no file, no clock.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import can
import cantools
import cantools.database

from carbonlink.checksums import crc8_j1850
from simulator.bus_state import BusState
from simulator.errors import DbcError
from simulator.reference_signals import SignalSource

COUNTER_MODULO = 16
CHECKSUM_BYTE = 7

SignalOverride = Callable[[str, str, float, float], float]
"""(message, signal, frame time as Unix seconds, true value) → value to encode: where signal faults come in."""


def load_dbc(path: Path) -> cantools.database.can.Database:
    """Read a DBC file, translating cantools' errors into a DbcError naming the file."""
    try:
        database = cantools.database.load_file(str(path), database_format="dbc", strict=True)
    except (OSError, UnicodeDecodeError) as err:
        raise DbcError(f"cannot read DBC {path}: {err}") from err
    except Exception as err:
        raise DbcError(f"{path} is not a valid DBC: {err}") from err
    if not isinstance(database, cantools.database.can.Database):
        raise DbcError(f"{path} is not a CAN database")
    return database


@dataclass(frozen=True, slots=True)
class _Layout:
    value_signals: tuple[tuple[str, SignalSource], ...]
    counter: str | None
    checksum: str | None
    multiplexer: str | None
    mux_values: tuple[int, ...]
    mux_signals: Mapping[int, tuple[tuple[str, SignalSource], ...]]


class MessageEncoder:
    """Encodes one message of the DBC from bus states, keeping its counter and multiplexer turn."""

    def __init__(self, message: cantools.database.can.Message, sources: Mapping[str, SignalSource]) -> None:
        self.name: str = message.name
        self.frame_id: int = message.frame_id
        self.is_extended_id: bool = message.is_extended_frame
        if not message.cycle_time:
            raise DbcError(f"message {message.name} has no GenMsgCycleTime attribute")
        self.cycle_us: int = int(message.cycle_time) * 1000
        self._message = message
        self._layout = self._plan(message, sources)
        self._counter = 0
        self._mux_turn = 0

    @staticmethod
    def _plan(message: cantools.database.can.Message, sources: Mapping[str, SignalSource]) -> _Layout:
        counter = checksum = multiplexer = None
        plain: list[tuple[str, SignalSource]] = []
        muxed: dict[int, list[tuple[str, SignalSource]]] = {}
        for signal in message.signals:
            if signal.name.endswith("_Counter"):
                counter = signal.name
            elif signal.name.endswith("_Checksum"):
                if signal.length != 8 or signal.start not in (56, 63):  # byte 7 in either byte order  # noqa: PLR2004
                    raise DbcError(f"{message.name}.{signal.name} must fill byte 7 (CRC-8 over bytes 0..6)")
                checksum = signal.name
            elif signal.is_multiplexer:
                multiplexer = signal.name
            else:
                source = sources.get(signal.name)
                if source is None:
                    raise DbcError(f"no bus-state source for signal {message.name}.{signal.name}")
                ids = signal.multiplexer_ids
                if ids:
                    for mux_id in ids:
                        muxed.setdefault(mux_id, []).append((signal.name, source))
                else:
                    plain.append((signal.name, source))
        return _Layout(
            value_signals=tuple(plain),
            counter=counter,
            checksum=checksum,
            multiplexer=multiplexer,
            mux_values=tuple(sorted(muxed)),
            mux_signals={mux_id: tuple(entries) for mux_id, entries in muxed.items()},
        )

    def encode(self, state: BusState, time_s: float, override: SignalOverride | None = None) -> bytes:
        """The payload of this message's next frame."""
        layout = self._layout
        entries = layout.value_signals
        values: dict[str, float] = {}
        if layout.multiplexer is not None:
            mux_id = layout.mux_values[self._mux_turn % len(layout.mux_values)]
            self._mux_turn += 1
            values[layout.multiplexer] = mux_id
            entries = entries + layout.mux_signals[mux_id]
        for name, source in entries:
            value = source(state)
            values[name] = value if override is None else override(self.name, name, time_s, value)
        if layout.counter is not None:
            values[layout.counter] = self._counter
            self._counter = (self._counter + 1) % COUNTER_MODULO
        if layout.checksum is not None:
            values[layout.checksum] = 0
        data = bytearray(self._message.encode(values, scaling=True, padding=False, strict=False))
        if layout.checksum is not None:
            data[CHECKSUM_BYTE] = crc8_j1850(bytes(data[:CHECKSUM_BYTE]))
        return bytes(data)


class FrameScheduler:
    """Sends each active message at its cycle time with the state current at that time.

    Messages start staggered by a fraction of a millisecond each, as real control units do, so
    that frames of different messages never share a timestamp.
    """

    def __init__(
        self,
        database: cantools.database.can.Database,
        sources: Mapping[str, SignalSource],
        message_names: Iterable[str],
        *,
        origin_s: float = 0.0,
        override: SignalOverride | None = None,
    ) -> None:
        # Times are kept relative to the simulation's start, where a float has microsecond
        # resolution for years; ``origin_s`` (a Unix time) is added only to the frames' stamps.
        self._origin_s = origin_s
        self._encoders: dict[str, MessageEncoder] = {}
        known = {message.name for message in database.messages}
        for name in message_names:
            if name not in known:
                raise DbcError(f"the DBC lacks message {name}, which the simulator sends")
            self._encoders[name] = MessageEncoder(database.get_message_by_name(name), sources)
        # Schedules run in integer microseconds: adding 0.01 s 360,000 times an hour must not drift.
        self._stagger_us = {name: 300 * i for i, name in enumerate(self._encoders)}
        self._next_due_us: dict[str, int] = {}
        self._override = override

    def activate(self, names: Iterable[str], now_s: float) -> None:
        """Make exactly ``names`` the messages on the bus from ``now_s`` on."""
        wanted = set(names)
        unknown = wanted - set(self._encoders)
        if unknown:
            raise DbcError(f"messages not prepared: {', '.join(sorted(unknown))}")
        now_us = round(now_s * 1e6)
        self._next_due_us = {
            name: self._next_due_us.get(name, now_us + self._stagger_us[name])
            for name in self._encoders
            if name in wanted
        }

    def frames_until(self, end_s: float, state: BusState) -> list[can.Message]:
        """Every frame due before ``end_s``, encoded from ``state``, in time order."""
        frames: list[can.Message] = []
        end_us = round(end_s * 1e6)
        for name, first_due_us in self._next_due_us.items():
            encoder = self._encoders[name]
            due_us = first_due_us
            while due_us < end_us:
                stamp_s = self._origin_s + due_us / 1e6
                frames.append(
                    can.Message(
                        timestamp=stamp_s,
                        arbitration_id=encoder.frame_id,
                        is_extended_id=encoder.is_extended_id,
                        data=encoder.encode(state, stamp_s, self._override),
                        check=False,
                    )
                )
                due_us += encoder.cycle_us
            self._next_due_us[name] = due_us
        frames.sort(key=_timestamp)
        return frames


def _timestamp(frame: can.Message) -> float:
    return float(frame.timestamp)
