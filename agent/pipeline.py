"""The agent's synchronous pipeline: frame → reading → segment → sealed record in the outbox.

One thread runs it (the CAN reader's); the outbox is the hand-off to the uplink, which the
``on_sealed`` callback wakes after each seal. Nothing here touches the network.

A segment whose record cannot be stored (the outbox is full, or the disk refuses the write) is
not dropped: it waits in memory, at most ``MAX_UNSEALED`` of them, and is sealed before anything
newer as soon as the outbox takes records again, so the chain keeps time order. Past that bound
the newest segment is refused and reported: the outbox's policy is to keep the oldest records.
"""

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import can

from agent.decoding import DecodeStats, FrameDecoder
from agent.errors import OutboxError
from agent.readings import Reading
from agent.sealing import BusQuality, Sealer
from agent.segmentation import Segment, Segmenter
from carbonlink.records import Record

MAX_UNSEALED = 100
"""Segments held in memory while the outbox refuses records: about ten days of a car's driving."""


@dataclass(slots=True)
class PipelineReport:
    """What a run of the pipeline did."""

    frames: int = 0
    readings: int = 0
    records_sealed: int = 0
    sealed: list[Record] = field(default_factory=list)
    """The sealed records themselves, only with ``keep_sealed`` (a long-running agent keeps none)."""
    discarded_segments: int = 0
    """Candidates too short to be trips or charges (an ignition flap), never sealed."""
    unsealed: int = 0
    """Segments waiting in memory because the outbox refused their records."""
    lost_segments: int = 0
    """Segments refused because the outbox stayed full and the memory backlog was full too."""


@dataclass(frozen=True, slots=True)
class SealFailure:
    """A segment the outbox did not take, and why."""

    segment: Segment
    error: OutboxError
    kept: bool
    """True when the segment waits in memory for another try; False when it is lost."""


class Pipeline:
    """Decode, segment, seal; call :meth:`feed` per frame, :meth:`tick` when idle, :meth:`finish` at the end."""

    def __init__(  # noqa: PLR0913 - the collaborators and callbacks are injected here, once
        self,
        decoder: FrameDecoder,
        segmenter: Segmenter,
        sealer: Sealer,
        *,
        on_sealed: Callable[[Record], None] | None = None,
        on_seal_failed: Callable[[SealFailure], None] | None = None,
        on_reading: Callable[[Reading], None] | None = None,
        keep_sealed: bool = False,
    ) -> None:
        self._decoder = decoder
        self._segmenter = segmenter
        self._sealer = sealer
        self._on_sealed = on_sealed
        self._on_seal_failed = on_seal_failed
        self._on_reading = on_reading
        """Sees every decoded reading before segmentation (the replay's plots); None on a vehicle."""
        self._keep_sealed = keep_sealed
        """Keep every sealed record in the report (tests, replays); a long-running agent does not."""
        self.report = PipelineReport()
        self._counted = (0, 0)
        self._unsealed: deque[tuple[Segment, BusQuality]] = deque()

    def feed(self, frame: can.Message) -> None:
        self.report.frames += 1
        reading = self._decoder.decode(frame)
        if reading is None:
            return
        self.report.readings += 1
        if self._on_reading is not None:
            self._on_reading(reading)
        closed = self._segmenter.feed(reading)
        if closed:
            self._seal_all(closed)

    def tick(self, time_s: float) -> None:
        """No frame came for a while; ``time_s`` is where the frames' clock would be now."""
        self._seal_all(self._segmenter.tick(time_s))

    def run(self, frames: Iterable[can.Message]) -> PipelineReport:
        """Feed every frame of a finite source, then finish."""
        for frame in frames:
            self.feed(frame)
        self.finish()
        return self.report

    def finish(self) -> None:
        """The source ended (log over, agent stopping): seal what is open."""
        self._seal_all(self._segmenter.finish())

    def decoder_stats(self) -> DecodeStats:
        """What the decoder counted so far (frames used, truncated, bad checksums, ...)."""
        return self._decoder.stats()

    def retry_unsealed(self) -> None:
        """Try again to store the segments waiting in memory (the outbox may have room now)."""
        self._seal_all([])

    def _seal_all(self, closed: list[Segment]) -> None:
        for segment in closed:
            self._queue(segment)
        self.report.discarded_segments = self._segmenter.discarded
        while self._unsealed:
            segment, bus = self._unsealed[0]
            try:
                record, _signed = self._sealer.seal(segment, bus)
            except OutboxError as err:
                if self._on_seal_failed is not None:
                    self._on_seal_failed(SealFailure(segment, err, kept=True))
                break
            self._unsealed.popleft()
            self.report.records_sealed += 1
            if self._keep_sealed:
                self.report.sealed.append(record)
            if self._on_sealed is not None:
                self._on_sealed(record)
        self.report.unsealed = len(self._unsealed)

    def _queue(self, segment: Segment) -> None:
        # Bus quality is attributed to the segment closed next: decoder counts since the last one.
        stats = self._decoder.stats()
        dropped, out_of_range = stats.frames_dropped, stats.out_of_range
        bus = BusQuality(frames_dropped=dropped - self._counted[0], out_of_range=out_of_range - self._counted[1])
        self._counted = (dropped, out_of_range)
        if len(self._unsealed) >= MAX_UNSEALED:
            self.report.lost_segments += 1
            if self._on_seal_failed is not None:
                error = OutboxError(f"{MAX_UNSEALED} segments already wait for room in the outbox")
                self._on_seal_failed(SealFailure(segment, error, kept=False))
            return
        self._unsealed.append((segment, bus))
