"""Injected faults, each switchable and seeded, with a log of what was injected.

Frame faults act on the encoded frame stream (loss, loss bursts, bus-off gaps, corrupted
checksums, timestamp jumps); signal faults act while encoding (stuck values, out-of-range and
"signal not available" values). Ignition flapping is part of the day plan (``Trip.ignition_flaps``).
The ground truth never sees any of them: it stays the true physics.
"""

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields

import can
import cantools.database

from carbonlink.checksums import crc8_j1850
from simulator.errors import ParameterError
from simulator.frames import CHECKSUM_BYTE, COUNTER_MODULO

STUCK_CANDIDATES = ("BMS_PackVoltage", "BMS_PackCurrent", "VCU_VehicleSpeed", "BMS_SOC", "VCU_Odometer")
"""Signals a stuck-value fault may freeze: the ones energy and distance are computed from."""

SECONDS_PER_HOUR = 3600.0
COUNTER_BYTE = 6
"""The reference bus keeps each message's rolling counter in the low nibble of byte 6."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """Rates of each fault; all zero means a clean bus."""

    loss_pct: float = 0.0
    """Share of frames lost independently."""
    bursts_per_hour: float = 0.0
    burst_s: float = 0.25
    bus_off_per_hour: float = 0.0
    bus_off_s: float = 2.0
    corrupt_pct: float = 0.0
    """Share of checksummed frames whose checksum byte is wrong."""
    jumps_per_hour: float = 0.0
    jump_s: float = 5.0
    """A timestamp jump moves every later frame by ±jump_s."""
    stuck_per_hour: float = 0.0
    stuck_s: float = 10.0
    out_of_range_pct: float = 0.0
    sna_pct: float = 0.0
    ignition_flaps: int = 0
    """Ready off/on toggles at the start of each trip."""
    seed: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "seed":
                continue
            if not math.isfinite(value) or value < 0:
                raise ParameterError(f"fault {item.name} must be a finite non-negative number, got {value}")
            if item.name.endswith("_pct") and value > 100:  # noqa: PLR2004 - percent bound
                raise ParameterError(f"fault {item.name} is a percentage, got {value}")

    @property
    def enabled(self) -> bool:
        """Whether any fault has a non-zero rate (durations alone inject nothing)."""
        return any(getattr(self, name) for name in FAULT_KEYS.values())

    @property
    def signal_faults_enabled(self) -> bool:
        """Whether the encoder must consult the injector for each signal value (costly otherwise)."""
        return bool(self.stuck_per_hour or self.out_of_range_pct or self.sna_pct)


FAULT_KEYS = {
    "loss": "loss_pct",
    "bursts": "bursts_per_hour",
    "bus-off": "bus_off_per_hour",
    "corrupt": "corrupt_pct",
    "jumps": "jumps_per_hour",
    "stuck": "stuck_per_hour",
    "out-of-range": "out_of_range_pct",
    "sna": "sna_pct",
    "flaps": "ignition_flaps",
}
"""Names of ``--faults key=value,...`` and the setting each sets."""


def parse_faults(spec: str, seed: int) -> FaultConfig:
    """Read ``loss=2,bursts=6,...`` (see FAULT_KEYS) into a FaultConfig."""
    settings: dict[str, float | int] = {"seed": seed}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in FAULT_KEYS:
            raise ParameterError(f"fault {item!r} is not KEY=VALUE with KEY one of {', '.join(FAULT_KEYS)}")
        try:
            number = float(value)
        except ValueError as err:
            raise ParameterError(f"fault {key} needs a number, got {value!r}") from err
        settings[FAULT_KEYS[key]] = int(number) if key == "flaps" else number
    return FaultConfig(**settings)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """One entry of the fault log; ``at_s`` is the Unix time of the frame it hit."""

    at_s: float
    kind: str
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"at_s": round(self.at_s, 6), "kind": self.kind, "detail": self.detail}


@dataclass(slots=True)
class _Window:
    start_s: float
    end_s: float


@dataclass(slots=True)
class FaultInjector:
    """Applies a FaultConfig; deterministic for its seed. Keeps the log in ``log``."""

    config: FaultConfig
    database: cantools.database.can.Database
    log: list[InjectedFault] = field(default_factory=list)
    randomly_lost: int = 0
    """Frames dropped by ``loss_pct`` (too many to log one by one)."""
    _random: random.Random = field(init=False)
    _next_burst_s: float = field(init=False, default=math.inf)
    _next_bus_off_s: float = field(init=False, default=math.inf)
    _next_jump_s: float = field(init=False, default=math.inf)
    _next_stuck_s: float = field(init=False, default=math.inf)
    _dropping: _Window | None = field(init=False, default=None)
    _offset_s: float = field(init=False, default=0.0)
    _stuck: dict[str, float] = field(init=False, default_factory=dict)
    _stuck_until_s: float = field(init=False, default=-math.inf)
    _stuck_signal: str | None = field(init=False, default=None)
    _checksummed_ids: frozenset[int] = field(init=False)
    _fault_values: dict[str, tuple[float | None, float]] = field(init=False)
    _frames_started: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.config.seed)  # noqa: S311 - fault timing, not cryptography
        self._checksummed_ids = frozenset(
            message.frame_id
            for message in self.database.messages
            if any(signal.name.endswith("_Checksum") for signal in message.signals)
        )
        self._fault_values = {
            signal.name: _fault_values(signal) for message in self.database.messages for signal in message.signals
        }

    def _arrival(self, after_s: float, per_hour: float) -> float:
        # Poisson process: exponential gaps between events.
        return after_s + self._random.expovariate(per_hour / SECONDS_PER_HOUR) if per_hour > 0 else math.inf

    def summary(self) -> dict[str, int]:
        """How many faults of each kind were injected, with the randomly lost frames."""
        counts: dict[str, int] = {"random_loss": self.randomly_lost}
        for entry in self.log:
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        return counts

    def _start_frames_at(self, time_s: float) -> None:
        # Frame faults run on frame timestamps (Unix time), drawn from the first frame on.
        if self._frames_started:
            return
        self._frames_started = True
        config = self.config
        self._next_burst_s = self._arrival(time_s, config.bursts_per_hour)
        self._next_bus_off_s = self._arrival(time_s, config.bus_off_per_hour)
        self._next_jump_s = self._arrival(time_s, config.jumps_per_hour)

    def frames(self, frames: Iterable[can.Message]) -> Iterator[can.Message]:
        """The frame stream with frame faults applied."""
        config, chance = self.config, self._random.random
        for frame in frames:
            time_s = float(frame.timestamp)
            self._start_frames_at(time_s)
            if self._dropped_by_window(time_s):
                continue
            if config.loss_pct and chance() * 100 < config.loss_pct:
                self.randomly_lost += 1
                continue
            if (
                config.corrupt_pct
                and frame.arbitration_id in self._checksummed_ids
                and chance() * 100 < config.corrupt_pct
            ):
                frame.data = self._corrupt(frame, time_s)
            if time_s >= self._next_jump_s:
                jump_s = self._random.choice((-1.0, 1.0)) * config.jump_s
                self._offset_s += jump_s
                self.log.append(InjectedFault(time_s, "timestamp_jump", f"{jump_s:+.3f} s"))
                self._next_jump_s = self._arrival(time_s, config.jumps_per_hour)
            if self._offset_s:
                frame.timestamp = time_s + self._offset_s
            yield frame

    def _corrupt(self, frame: can.Message, time_s: float) -> bytearray:
        """Corrupt a frame: a wrong checksum or, at even odds, a wrong counter under a valid checksum.

        The first is a bit flipped on the wire; the second a control unit repeating or skipping a frame.
        """
        data = bytearray(frame.data)
        if self._random.random() < 0.5:  # noqa: PLR2004 - even odds
            data[CHECKSUM_BYTE] ^= 1 << self._random.randrange(8)
            self.log.append(InjectedFault(time_s, "corrupt", f"frame 0x{frame.arbitration_id:X} checksum"))
        else:
            wrong = (data[COUNTER_BYTE] + 1 + self._random.randrange(COUNTER_MODULO - 2)) % COUNTER_MODULO
            data[COUNTER_BYTE] = (data[COUNTER_BYTE] & 0xF0) | wrong
            data[CHECKSUM_BYTE] = crc8_j1850(bytes(data[:CHECKSUM_BYTE]))
            self.log.append(InjectedFault(time_s, "corrupt", f"frame 0x{frame.arbitration_id:X} counter"))
        return data

    def _dropped_by_window(self, time_s: float) -> bool:
        if self._dropping is not None and time_s < self._dropping.end_s:
            return True
        self._dropping = None
        config = self.config
        for kind, due_s, length_s, per_hour in (
            ("burst", self._next_burst_s, config.burst_s, config.bursts_per_hour),
            ("bus_off", self._next_bus_off_s, config.bus_off_s, config.bus_off_per_hour),
        ):
            if time_s >= due_s:
                self._dropping = _Window(time_s, time_s + length_s)
                self.log.append(InjectedFault(time_s, kind, f"all frames lost for {length_s:.3f} s"))
                if kind == "burst":
                    self._next_burst_s = self._arrival(time_s, per_hour)
                else:
                    self._next_bus_off_s = self._arrival(time_s, per_hour)
                return True
        return False

    def signal(self, message: str, signal: str, time_s: float, value: float) -> float:
        """The value to encode for a signal: stuck, out of range, not available, or true."""
        del message
        config = self.config
        if config.stuck_per_hour:
            value = self._stuck_value(signal, time_s, value)
        out_of_range, not_available = self._fault_values[signal]
        if config.sna_pct and self._random.random() * 100 < config.sna_pct:
            self.log.append(InjectedFault(time_s, "sna", signal))
            return not_available
        if (
            out_of_range is not None
            and config.out_of_range_pct
            and self._random.random() * 100 < config.out_of_range_pct
        ):
            self.log.append(InjectedFault(time_s, "out_of_range", f"{signal} = {out_of_range:g}"))
            return out_of_range
        return value

    def _stuck_value(self, signal: str, time_s: float, value: float) -> float:
        # Stuck faults are drawn from the first signal seen on (frame times, Unix seconds).
        if self._next_stuck_s == math.inf and self._stuck_until_s == -math.inf:
            self._next_stuck_s = self._arrival(time_s, self.config.stuck_per_hour)
            self._stuck_until_s = time_s
        if time_s >= self._next_stuck_s:
            self._stuck_signal = self._random.choice(STUCK_CANDIDATES)
            self._stuck_until_s = time_s + self.config.stuck_s
            self._stuck = {}
            self.log.append(InjectedFault(time_s, "stuck", f"{self._stuck_signal} for {self.config.stuck_s:.1f} s"))
            self._next_stuck_s = self._arrival(time_s, self.config.stuck_per_hour)
        if signal == self._stuck_signal and time_s < self._stuck_until_s:
            return self._stuck.setdefault(signal, value)
        return value


def _fault_values(signal: cantools.database.can.Signal) -> tuple[float | None, float]:
    """A value outside the signal's DBC range (if its bits leave room for one), and its SNA value.

    "Signal not available" is the all-ones raw pattern of an unsigned signal and the most
    negative raw value of a signed one, as the reference DBC's comments state.
    """
    scale, offset = float(signal.scale), float(signal.offset)
    if signal.is_signed:
        raw_sna, raw_low, raw_high = (
            -(1 << (signal.length - 1)),
            -(1 << (signal.length - 1)) + 1,
            (1 << (signal.length - 1)) - 1,
        )
    else:
        raw_sna, raw_low, raw_high = (1 << signal.length) - 1, 0, (1 << signal.length) - 2
    highest, lowest = raw_high * scale + offset, raw_low * scale + offset
    out_of_range = None
    if signal.maximum is not None and highest > signal.maximum + abs(scale):
        out_of_range = round((signal.maximum + highest) / 2 / scale) * scale
    elif signal.minimum is not None and lowest < signal.minimum - abs(scale):
        out_of_range = round((signal.minimum + lowest) / 2 / scale) * scale
    return out_of_range, raw_sna * scale + offset
