"""The agent's composition root: profile, decoder, segmenter, sealer, outbox and uplink, run on one source.

The reader (the calling thread) takes frames from the bus or the log and runs the pipeline; the
uplink drains the outbox in its own threads, so a slow or absent broker never holds up CAN
reading. ``request_stop`` (the CLI calls it on SIGTERM and SIGINT) ends the run cleanly:

- on a **live bus** the open trip or charge session is sealed as it stands (it ends at its last
  reading) and the next one starts when the agent is back: nothing measured is thrown away;
- on a **log** the open segment is left unsealed: the next run over the same log skips every
  frame up to the end of the last sealed record (the outbox keeps that moment with its chain
  head) and seals the segment whole, so stopping, or killing, the agent and running it again
  gives the same records as one uninterrupted run, none of them twice.

Then the uplink gets a few seconds to finish publishes in flight, the status file is written a
last time and the outbox closed. What the outbox holds survives any stop, graceful or not.
"""

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import can

import carbonlink
from agent.adapters.can_sources import open_bus, read_log
from agent.config import AgentConfig, read_enrolment_file
from agent.decoding import FrameDecoder
from agent.errors import ProfileError, SourceError
from agent.outbox.tinydb_outbox import TinyDbOutbox
from agent.pipeline import Pipeline, SealFailure
from agent.profile import VehicleProfile, load_profile, resolve_dbc
from agent.profiles import shipped_profile
from agent.sealing import Provenance, Sealer
from agent.segmentation import Segmenter
from agent.status_file import status_path, write_status
from agent.uplink.paho_uplink import PahoUplink
from carbonlink.keys import DeviceKey
from carbonlink.records import Record, TripRecord

_LOG = logging.getLogger("agent")

RECV_TIMEOUT_S = 0.5
"""Longest wait for a frame before the reader looks at the stop flag and the clock."""
HOUSEKEEPING_S = 5.0
"""How often the status file is written and refused segments are offered to the outbox again."""
LOG_CHECK_EVERY = 4096
"""Frames read from a log between two looks at the stop flag and the clock."""
UPLINK_STOP_TIMEOUT_S = 5.0
REOPEN_BACKOFF_MAX_S = 30.0
REJECTED_SHOWN = 20
"""Rejected records listed in the status file (the outbox keeps more)."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended."""

    reason: str
    """``stopped`` (asked to), ``log_finished`` or ``uplink_refused`` (the broker refused us for good)."""
    frames: int
    records_sealed: int
    unacknowledged: int
    lost_segments: int


def profile_path(spec: str) -> Path:
    """A profile file: ``spec`` itself when it names a .toml file, else the shipped profile of that id."""
    if spec.endswith(".toml") or os.sep in spec:
        return Path(spec)
    return shipped_profile(spec)


def dbc_hash(profile: VehicleProfile) -> bytes:
    """SHA-256 over the profile's DBC files, in the profile's order: which DBC produced the figures."""
    digest = hashlib.sha256()
    for ref in profile.dbc:
        path = resolve_dbc(ref, Path(profile.source).parent)
        try:
            digest.update(path.read_bytes())
        except OSError as err:
            raise ProfileError(f"{profile.source}: cannot read DBC {path}: {err.strerror or err}") from err
    return digest.digest()


def _describe(record: Record) -> str:
    figures = (
        f"distance_m={record.distance_m:.1f} energy_out_wh={record.energy_out_wh:.1f} "
        f"energy_regen_wh={record.energy_regen_wh:.1f}"
        if isinstance(record, TripRecord)
        else f"energy_in_wh={record.energy_in_wh:.1f}"
    )
    return (
        f"type={record.RECORD_TYPE} sequence={record.sequence} start_at={record.start_at.isoformat()} "
        f"end_at={record.end_at.isoformat()} {figures} frames_dropped={record.quality.frames_dropped} "
        f"gaps={record.quality.gaps}"
    )


class _Housekeeping:
    """Periodic chores of the reader thread: offer refused segments again, write the status file."""

    def __init__(self, clock: Callable[[], float], work: Callable[[], None]) -> None:
        self._clock = clock
        self._work = work
        self._next_at = clock()

    def when_due(self) -> None:
        if self._clock() >= self._next_at:
            self.now()

    def now(self) -> None:
        self._next_at = self._clock() + HOUSEKEEPING_S
        self._work()


class Agent:
    """One vehicle's agent: build it from a validated config and the device key, then :meth:`run`."""

    def __init__(
        self,
        config: AgentConfig,
        key: DeviceKey,
        *,
        log: logging.Logger = _LOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._key = key
        self._log = log
        self._clock = clock
        self._stop = threading.Event()
        self._status_path = status_path(config.outbox_path)
        self._started_at = datetime.now(UTC)
        self._last_error: str | None = None
        self._last_sealed: str | None = None
        self._skipped_frames = 0
        self._source_open = False

    def request_stop(self) -> None:
        """End the run at the next frame or within ``RECV_TIMEOUT_S`` (signal-handler safe)."""
        self._stop.set()

    def run(self) -> RunResult:
        """Read the source until it ends or a stop is requested; every sealed record is in the outbox."""
        config = self._config
        profile = load_profile(profile_path(config.profile))
        provenance = Provenance(
            agent_version=carbonlink.__version__,
            dbc_hash=dbc_hash(profile),
            profile_id=profile.id,
            vin_hash=config.vin_hash,
            clock_synced=config.clock_synced,
        )
        enrolment = self._enrolment()
        outbox = TinyDbOutbox(config.outbox_path, config.max_unacknowledged, self._key.public_key)
        try:
            for report in outbox.quarantined_at_open:
                self._error(f"outbox.quarantined {report}")
            uplink = (
                None
                if config.mqtt is None
                else PahoUplink(config.mqtt, outbox, self._key.device_id, enrolment=enrolment)
            )
            pipeline = Pipeline(
                FrameDecoder(profile),
                Segmenter(config.segmentation),
                Sealer(self._key, outbox, provenance, battery_capacity_wh=config.battery_capacity_wh),
                on_sealed=lambda record: self._sealed(record, uplink),
                on_seal_failed=self._seal_failed,
            )
            self._log.info(
                "agent.started device_id=%s profile=%s source=%s outbox=%s uplink=%s pid=%d",
                self._key.device_id,
                profile.id,
                self._source_name(),
                config.outbox_path,
                "none" if config.mqtt is None else f"{config.mqtt.host}:{config.mqtt.port}",
                os.getpid(),
            )
            if uplink is not None:
                uplink.start()
            try:
                reason = self._read(pipeline, outbox, uplink, profile)
            finally:
                if uplink is not None:
                    uplink.stop(UPLINK_STOP_TIMEOUT_S)
                self._write_status(pipeline, outbox, uplink, pipeline_state="stopped")
            counts = outbox.counts()
            result = RunResult(
                reason=reason,
                frames=pipeline.report.frames,
                records_sealed=pipeline.report.records_sealed,
                unacknowledged=counts.pending + counts.sent,
                lost_segments=pipeline.report.lost_segments,
            )
            self._log.info(
                "agent.stopped reason=%s frames=%d records_sealed=%d unacknowledged=%d",
                result.reason,
                result.frames,
                result.records_sealed,
                result.unacknowledged,
            )
            return result
        finally:
            outbox.close()

    def _enrolment(self) -> bytes | None:
        """The enrolment certificate to publish on connect, checked against the key this agent signs with."""
        path = self._config.enrolment_file
        if path is None:
            return None
        signed, certificate = read_enrolment_file(path, self._key.device_id, self._key.public_key)
        self._log.info(
            "enrolment.loaded file=%s authority=%r authority_kid=%s expires_at=%s",
            path,
            certificate.authority,
            certificate.authority_kid.hex(),
            certificate.expires_at.isoformat(),
        )
        if certificate.expires_at <= datetime.now(UTC):
            # Not fatal: the car's clock may be wrong, and a registered device needs no certificate.
            self._log.warning("enrolment.expired file=%s expires_at=%s", path, certificate.expires_at.isoformat())
        return signed

    # --- reading -------------------------------------------------------------------------------

    def _read(
        self, pipeline: Pipeline, outbox: TinyDbOutbox, uplink: PahoUplink | None, profile: VehicleProfile
    ) -> str:
        housekeeping = self._housekeeping(pipeline, outbox, uplink)
        source = self._config.source
        if source.log_file is None:
            self._read_bus(pipeline, profile, housekeeping)
            pipeline.finish()  # seal what is open: on a live bus nothing comes back for it
            return "stopped"
        head = outbox.chain_head()
        resume_after_s = None if head is None else head.end_at_s
        finished = self._read_log(pipeline, source.log_file, resume_after_s, housekeeping)
        if not finished:
            self._log.info("segment.left_open reason=stopped the next run over this log seals it whole")
            return "stopped"
        pipeline.finish()
        if uplink is None:
            return "log_finished"
        return self._wait_until_delivered(pipeline, outbox, uplink, housekeeping)

    def _read_log(
        self, pipeline: Pipeline, path: Path, resume_after_s: float | None, housekeeping: _Housekeeping
    ) -> bool:
        """Feed the log's frames; False when a stop was requested before its end."""
        if resume_after_s is not None:
            self._log.info("source.resume log=%s after=%s", path, datetime.fromtimestamp(resume_after_s, UTC))
        stop = self._stop
        frames: Iterator[can.Message] = read_log(path)
        self._source_open = True
        housekeeping.now()
        for count, frame in enumerate(frames, 1):
            if resume_after_s is not None and frame.timestamp <= resume_after_s:
                self._skipped_frames += 1
            else:
                pipeline.feed(frame)
            if count % LOG_CHECK_EVERY == 0:
                housekeeping.when_due()
                if stop.is_set():
                    return False
        return not stop.is_set()

    def _read_bus(self, pipeline: Pipeline, profile: VehicleProfile, housekeeping: _Housekeeping) -> None:
        source = self._config.source
        interface, channel = source.interface or "", source.channel or ""
        failures = 0
        while not self._stop.is_set():
            try:
                bus = open_bus(interface, channel, bitrate=source.bitrate, fd=source.fd, frame_ids=profile.frame_ids)
            except SourceError as err:
                cause = err.__cause__
                if isinstance(cause, NotImplementedError | ValueError | ImportError) or not isinstance(
                    cause, OSError | can.CanError
                ):
                    raise  # an unknown interface or a bad option: retrying will not help
                failures += 1
                self._error(f"source.open_failed attempt={failures} error={str(err)!r}")
                self._stop.wait(min(REOPEN_BACKOFF_MAX_S, 2.0 ** min(failures, 5)))
                housekeeping.when_due()
                continue
            failures = 0
            self._log.info("source.opened interface=%s channel=%s", interface, channel)
            self._source_open = True
            housekeeping.now()
            try:
                self._receive(bus, pipeline, housekeeping)
            except (can.CanError, OSError) as err:
                self._error(f"source.lost interface={interface} channel={channel} error={str(err)!r}")
            finally:
                self._source_open = False
                bus.shutdown()

    def _receive(self, bus: can.BusABC, pipeline: Pipeline, housekeeping: _Housekeeping) -> None:
        clock, stop = self._clock, self._stop
        last_frame_s: float | None = None
        last_frame_at = clock()
        while not stop.is_set():
            frame = bus.recv(RECV_TIMEOUT_S)
            now = clock()
            if frame is not None:
                pipeline.feed(frame)
                last_frame_s, last_frame_at = frame.timestamp, now
            elif last_frame_s is not None:
                # The frames' clock is the vehicle's: advance it by the wall time the bus was quiet.
                pipeline.tick(last_frame_s + (now - last_frame_at))
            housekeeping.when_due()

    def _wait_until_delivered(
        self, pipeline: Pipeline, outbox: TinyDbOutbox, uplink: PahoUplink, housekeeping: _Housekeeping
    ) -> str:
        """After a log: keep the uplink running until the gateway has settled every record."""
        while not self._stop.is_set():
            counts = outbox.counts()
            waiting = counts.pending + counts.sent + pipeline.report.unsealed
            if waiting == 0:
                return "log_finished"
            if uplink.last_error is not None:
                return "uplink_refused"
            housekeeping.when_due()
            self._stop.wait(0.2)
        return "stopped"

    # --- reporting -------------------------------------------------------------------------------

    def _housekeeping(self, pipeline: Pipeline, outbox: TinyDbOutbox, uplink: PahoUplink | None) -> "_Housekeeping":
        def work() -> None:
            if pipeline.report.unsealed:
                pipeline.retry_unsealed()
            self._write_status(pipeline, outbox, uplink, pipeline_state="running")

        return _Housekeeping(self._clock, work)

    def _sealed(self, record: Record, uplink: PahoUplink | None) -> None:
        self._last_sealed = _describe(record)
        self._log.info("record.sealed %s", self._last_sealed)
        if uplink is not None:
            uplink.notify()

    def _seal_failed(self, failure: SealFailure) -> None:
        kind = failure.segment.kind.value
        totals = failure.segment.totals
        figures = (
            f"segment={kind} start_s={totals.start_s:.3f} end_s={totals.end_s:.3f} distance_m={totals.distance_m:.1f} "
            f"energy_out_wh={totals.energy_out_wh:.1f} energy_regen_wh={totals.energy_regen_wh:.1f}"
        )
        if failure.kept:
            self._error(f"outbox.refused {figures} waits_in_memory=yes error={str(failure.error)!r}")
        else:
            self._error(f"record.lost {figures} error={str(failure.error)!r}", level=logging.CRITICAL)

    def _error(self, message: str, level: int = logging.ERROR) -> None:
        self._last_error = f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}"
        self._log.log(level, message)

    def _source_name(self) -> str:
        source = self._config.source
        return f"log:{source.log_file}" if source.log_file is not None else f"{source.interface}:{source.channel}"

    def _write_status(
        self, pipeline: Pipeline, outbox: TinyDbOutbox, uplink: PahoUplink | None, *, pipeline_state: str
    ) -> None:
        report = pipeline.report
        counts = outbox.counts()
        uplink_status: dict[str, Any] | None = None
        if uplink is not None:
            snapshot = uplink.status()
            uplink_status = asdict(snapshot) | {
                "last_error": None if snapshot.last_error is None else str(snapshot.last_error)
            }
        status = {
            "state": pipeline_state,
            "pid": os.getpid(),
            "device_id": self._key.device_id,
            "source": self._source_name(),
            "source_open": self._source_open,
            "started_at": self._started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "decoder": asdict(pipeline.decoder_stats()),
            "pipeline": {
                "frames": report.frames,
                "frames_skipped_already_sealed": self._skipped_frames,
                "readings": report.readings,
                "records_sealed": report.records_sealed,
                "discarded_segments": report.discarded_segments,
                "unsealed": report.unsealed,
                "lost_segments": report.lost_segments,
                "last_sealed": self._last_sealed,
            },
            "outbox": asdict(counts)
            | {"path": str(outbox.path), "max_unacknowledged": self._config.max_unacknowledged},
            "rejected": [
                {
                    "sequence": entry.sequence,
                    "record_id": entry.record_id,
                    "reason": entry.reason,
                    "detail": entry.detail,
                }
                for entry in outbox.rejected()[-REJECTED_SHOWN:]
            ],
            "uplink": uplink_status,
            "last_error": self._last_error,
        }
        try:
            write_status(self._status_path, status)
        except OSError as err:  # a full disk must not stop the reader; the outbox is what matters
            self._log.warning("status.write_failed path=%s error=%r", self._status_path, str(err))
