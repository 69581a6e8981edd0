"""One replay: recorded CAN logs of one vehicle → the agent's own pipeline → the records it would seal.

    logs ──► agent.replay.logs (only the profile's ids, time order) ──► agent.pipeline.Pipeline
             (FrameDecoder → Segmenter → Sealer, exactly the agent's) ──► SealedRecords (memory)

Nothing here decodes, segments or integrates by itself: the pipeline is the agent's, so a replay
shows what the agent would have produced from the same frames. Ctrl-C (KeyboardInterrupt) ends the
replay with what was sealed so far (``interrupted``); the segment still open is left out, as the
agent leaves it open when it stops reading a log.
"""

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import carbonlink
from agent.app import dbc_hash, profile_path
from agent.decoding import DecodeStats, FrameDecoder
from agent.pipeline import Pipeline
from agent.profile import load_profile
from agent.readings import Reading
from agent.replay.logs import LogReport, merge_logs
from agent.replay.sealed import SealedRecords
from agent.sealing import Provenance, SealedStore, Sealer
from agent.segmentation import Segmenter, SegmenterSettings
from carbonlink.keys import DeviceKey
from carbonlink.records import Record

PROGRESS_EVERY_FRAMES = 20_000
"""Frames the profile needs between progress reports."""
REPLAY_DEVICE_ID = "replay"
"""The device id of the throw-away key that seals a replay nobody asked to sign."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """What to replay and how the agent is set up for it."""

    logs: tuple[Path, ...]
    profile: str = "reference_ev"
    """A shipped profile's id or a profile file (as ``[device] profile`` of agent.toml)."""
    channels: frozenset[str] | None = None
    """Only frames of these channels, as the logs name them (None: every channel)."""
    segmentation: SegmenterSettings = field(default_factory=SegmenterSettings)
    battery_capacity_wh: float | None = None
    key: DeviceKey | None = None
    """Sign with this device key (``--sign``); None: a throw-away key, the signatures are not kept."""
    vin_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """How far a replay is: frames read from the logs (all ids) and frames the profile used."""

    frames_read: int
    frames_used: int
    records: int
    elapsed_s: float
    bytes_done: int
    """How far into the logs on disk (compressed bytes for gzip), of ``bytes_total``."""
    bytes_total: int


@dataclass(slots=True, kw_only=True)
class ReplayResult:
    """What a replay produced and everything counted on the way."""

    profile_id: str
    records: list[Record]
    signed: list[bytes]
    logs: list[LogReport]
    decode: DecodeStats
    frames_fed: int
    """Frames of the profile's ids handed to the pipeline (after channel selection and time checks)."""
    discarded_segments: int
    interrupted: bool
    elapsed_s: float
    signed_with: DeviceKey | None
    """The key the records were signed with when it was the user's (``--sign``)."""


def replay(
    options: ReplayOptions,
    *,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    on_reading: Callable[[Reading], None] | None = None,
    outbox: SealedStore | None = None,
) -> ReplayResult:
    """Run the logs through the agent's pipeline (see the module docstring).

    With ``outbox`` every sealed record is also stored there, continuing its chain, and frames up
    to the end of its last record are skipped: replaying the same logs into the same outbox again
    seals nothing twice (as ``agent run`` over a log it has read before).

    Raises ``agent.errors.ProfileError`` for a profile that does not load and
    ``agent.replay.logs.LogFormatError`` for a log that cannot be read at all.
    """
    started = time.monotonic()
    profile = load_profile(profile_path(options.profile))
    key = options.key or DeviceKey.from_seed(secrets.token_bytes(32), REPLAY_DEVICE_ID)
    provenance = Provenance(
        agent_version=carbonlink.__version__,
        dbc_hash=dbc_hash(profile),
        profile_id=profile.id,
        vin_hash=options.vin_hash,
    )
    sealed = SealedRecords(forward_to=outbox)
    head = sealed.chain_head()
    resume_after_s = None if head is None else head.end_at_s
    pipeline = Pipeline(
        FrameDecoder(profile),
        Segmenter(options.segmentation),
        Sealer(key, sealed, provenance, battery_capacity_wh=options.battery_capacity_wh),
        on_reading=on_reading,
        keep_sealed=True,
    )
    frames, reports = merge_logs(options.logs, profile.frame_ids, channels=options.channels)
    interrupted = False

    def progress() -> None:
        if on_progress is not None:
            on_progress(
                ReplayProgress(
                    frames_read=sum(report.frames_read for report in reports),
                    frames_used=pipeline.decoder_stats().frames_used,
                    records=pipeline.report.records_sealed,
                    elapsed_s=time.monotonic() - started,
                    bytes_done=sum(report.position_bytes for report in reports),
                    bytes_total=sum(report.size_bytes for report in reports),
                )
            )

    try:
        for count, frame in enumerate(frames, 1):
            if resume_after_s is None or frame.timestamp > resume_after_s:
                pipeline.feed(frame)
            if count % PROGRESS_EVERY_FRAMES == 0:
                progress()
    except KeyboardInterrupt:
        # Ctrl-C: the frames so far are a valid partial replay, which the caller still reports.
        interrupted = True
    if not interrupted:
        pipeline.finish()
    progress()
    return ReplayResult(
        profile_id=profile.id,
        records=list(pipeline.report.sealed),
        signed=list(sealed.signed),
        logs=reports,
        decode=pipeline.decoder_stats(),
        frames_fed=pipeline.report.frames,
        discarded_segments=pipeline.report.discarded_segments,
        interrupted=interrupted,
        elapsed_s=time.monotonic() - started,
        signed_with=options.key,
    )


def logs_in_order(paths: Sequence[Path]) -> tuple[Path, ...]:
    """The paths as given, each once (a log named twice would double every frame)."""
    return tuple(dict.fromkeys(path.resolve() for path in paths))
