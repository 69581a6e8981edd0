"""The verification rules of intake: one message in, one verdict out, cheapest check first.

size cap → topic and device id → envelope → key lookup (device known and active, key not
revoked) → signature over the exact bytes → schema → replay (sequence, previous-record hash,
duplicate) → plausibility → overlap (no kilometre of a vehicle twice). The first failing check
names the rejection reason; nothing here does I/O. What the rules need to know about the world —
the device registry and each device's chain so far — comes through the two small protocols below,
which intake answers from its caches and the store.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from carbonlink.acks import Outcome
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import MAX_ENVELOPE_BYTES, open_envelope
from carbonlink.errors import CarbonlinkError
from carbonlink.keys import PublicKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import Record, TripRecord
from carbonlink.topics import device_of_records_topic
from gateway.metrics import Stage
from gateway.model import ChainHead, Device, DeviceStatus, KeyStatus, RegisteredKey
from gateway.plausibility import PlausibilitySettings, check_plausibility

MAX_DETAIL_CHARS = 200
MAX_CACHED_KEYS = 100_000
"""Public keys kept ready for verification; beyond this the cache starts again (bounded memory)."""


class Registry(Protocol):
    """Registered devices, as intake sees them (possibly cached for a moment)."""

    def device(self, device_id: str) -> Device | None: ...


class ChainView(Protocol):
    """Each device's accepted records so far: committed ones and those accepted earlier in the batch."""

    def head(self, device_id: str) -> ChainHead | None: ...

    def hash_at(self, device_id: str, sequence: int) -> bytes | None: ...

    def hash_of_id(self, device_id: str, record_id: str) -> bytes | None: ...

    def overlapping_trip(self, vin_hash: bytes, odometer_start_m: float, odometer_end_m: float) -> bytes | None: ...

    def refusal(self, device_id: str, record_hash: bytes) -> RejectionReason | None:
        """Why a stored chain link was refused for its content; None when it was accepted."""
        ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message as it came off the broker."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to do with one message, and everything the store and the ack need to know about it."""

    outcome: Outcome
    record_hash: bytes
    device_id: str | None
    """The device id of the topic, when it was a valid records topic."""
    reason: RejectionReason | None = None
    detail: str | None = None
    record: Record | None = None
    """Set once the payload was decoded (after the signature verified)."""
    kid: bytes | None = None
    chained: bool = False
    """The record is authentic and the next link of its device's chain: committed as such even when
    its content is refused (plausibility, overlap), so the device's next record can follow it."""


StageTimer = Callable[[Stage, float], None]
T = TypeVar("T")


@dataclass(slots=True)
class _Progress:
    """What the checks learnt so far about one message: the verdict carries it, whatever the outcome."""

    record_hash: bytes
    device_id: str | None
    kid: bytes | None = None
    record: Record | None = None
    chained: bool = False

    def verdict(self, outcome: Outcome, rejection: "_Rejection | None" = None) -> Verdict:
        return Verdict(
            outcome=outcome,
            record_hash=self.record_hash,
            device_id=self.device_id,
            reason=None if rejection is None else rejection.reason,
            detail=None if rejection is None else rejection.detail,
            record=self.record,
            kid=self.kid,
            chained=self.chained,
        )


@dataclass(frozen=True, slots=True)
class _UsableKey:
    registered: RegisteredKey
    verifier: PublicKey


def _no_timer(_stage: Stage, _seconds: float) -> None:
    pass


class _Rejection(Exception):  # noqa: N818 - control flow inside this module only, never raised out of it
    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail[:MAX_DETAIL_CHARS]


def _translated(step: Callable[[], T]) -> T:
    """Run a step of the shared core, turning its error into the rejection it names."""
    try:
        return step()
    except CarbonlinkError as err:
        raise _Rejection(err.reason, str(err)) from err


class Verifier:
    """Judge messages against the registry and the chains (see the module docstring).

    One verifier serves one thread, intake's worker: its cache of loaded public keys has no lock.
    """

    def __init__(self, plausibility: PlausibilitySettings, timer: StageTimer = _no_timer) -> None:
        self._plausibility = plausibility
        self._timer = timer
        self._public_keys: dict[bytes, PublicKey] = {}

    def judge(self, message: InboundMessage, registry: Registry, chains: ChainView) -> Verdict:
        progress = _Progress(record_hash(message.payload), device_of_records_topic(message.topic))
        try:
            outcome = self._checks(message, progress, registry, chains)
        except _Rejection as rejection:
            return progress.verdict(Outcome.REJECTED, rejection)
        return progress.verdict(outcome)

    def _checks(self, message: InboundMessage, progress: "_Progress", registry: Registry, chains: ChainView) -> Outcome:
        """Run every check in order; raise :class:`_Rejection` at the first that fails."""
        clock = time.perf_counter()
        if len(message.payload) > MAX_ENVELOPE_BYTES:
            raise _Rejection(
                RejectionReason.TOO_LARGE, f"{len(message.payload)} bytes, over the cap of {MAX_ENVELOPE_BYTES}"
            )
        device_id = progress.device_id
        if device_id is None:
            raise _Rejection(RejectionReason.BAD_TOPIC, f"{message.topic[:120]!r} is not a records topic")
        envelope = _translated(lambda: open_envelope(message.payload))
        progress.kid = envelope.kid
        clock = self._lap(Stage.ENVELOPE, clock)
        device, key = self._key(registry, device_id, envelope.kid)
        clock = self._lap(Stage.KEY_LOOKUP, clock)
        _translated(lambda: envelope.check_signature(key.verifier))
        clock = self._lap(Stage.SIGNATURE, clock)
        record = progress.record = _translated(envelope.record)
        self._check_identity(record, device_id, key.registered)
        clock = self._lap(Stage.SCHEMA, clock)
        head = chains.head(device_id)
        duplicate = self._check_replay(record, progress.record_hash, head, chains)
        clock = self._lap(Stage.REPLAY, clock)
        if duplicate:
            refused_for = chains.refusal(device_id, progress.record_hash)
            if refused_for is not None:  # a resend of a link refused before: the same final answer
                raise _Rejection(refused_for, f"resent; refused before for {refused_for}")
            return Outcome.DUPLICATE
        progress.chained = True
        finding = check_plausibility(
            record,
            vehicle_class=device.vehicle_class,
            previous=head,
            received_at=message.received_at,
            settings=self._plausibility,
        )
        if finding is not None:
            raise _Rejection(finding.reason, finding.detail)
        self._check_overlap(record, chains)
        self._lap(Stage.PLAUSIBILITY, clock)
        return Outcome.ACCEPTED

    def _lap(self, stage: Stage, started: float) -> float:
        now = time.perf_counter()
        self._timer(stage, now - started)
        return now

    def _key(self, registry: Registry, device_id: str, kid: bytes) -> tuple[Device, "_UsableKey"]:
        device = registry.device(device_id)
        if device is None:
            raise _Rejection(RejectionReason.UNKNOWN_DEVICE, f"no device {device_id} is registered")
        if device.status is DeviceStatus.REVOKED:
            raise _Rejection(RejectionReason.REVOKED_KEY, f"device {device_id} is revoked")
        key = device.key(kid)
        if key is None:
            raise _Rejection(
                RejectionReason.BAD_SIGNATURE, f"signed by key {kid.hex()[:16]}…, not a key of device {device_id}"
            )
        if key.status is KeyStatus.REVOKED:
            raise _Rejection(RejectionReason.REVOKED_KEY, f"key {kid.hex()[:16]}… of device {device_id} is revoked")
        verifier = self._public_keys.get(key.public_key)
        if verifier is None:  # built once per key: it hashes the key for its kid and loads it into libsodium
            if len(self._public_keys) >= MAX_CACHED_KEYS:
                self._public_keys.clear()
            verifier = self._public_keys[key.public_key] = PublicKey(key.public_key)
        return device, _UsableKey(key, verifier)

    @staticmethod
    def _check_identity(record: Record, device_id: str, key: RegisteredKey) -> None:
        if record.device_id != device_id:
            raise _Rejection(
                RejectionReason.DEVICE_MISMATCH,
                f"record of device {record.device_id} arrived on the topic of device {device_id}",
            )
        if key.retired_at is not None and record.end_at > key.retired_at:
            raise _Rejection(
                RejectionReason.REVOKED_KEY,
                f"key {key.kid.hex()[:16]}… was replaced at {key.retired_at.isoformat()}; "
                f"this record ends after that ({record.end_at.isoformat()})",
            )

    @staticmethod
    def _check_overlap(record: Record, chains: ChainView) -> None:
        """No kilometre twice: a trip's odometer interval must not overlap one accepted for the same vehicle."""
        start_m, end_m = record.odometer_start_m, record.odometer_end_m
        if not isinstance(record, TripRecord) or record.vin_hash is None or start_m is None or end_m is None:
            return
        other = chains.overlapping_trip(record.vin_hash, start_m, end_m)
        if other is not None:
            raise _Rejection(
                RejectionReason.OVERLAP,
                f"odometer {start_m / 1000:.1f}–{end_m / 1000:.1f} km overlaps accepted trip {other.hex()[:16]}… "
                "of the same vehicle",
            )

    @staticmethod
    def _check_replay(record: Record, digest: bytes, head: ChainHead | None, chains: ChainView) -> bool:
        """True for an exact resend of an accepted record; raises for every other break of the chain."""
        if head is not None and digest == head.record_hash:
            return True
        expected = 1 if head is None else head.sequence + 1
        device_id = record.device_id
        if record.sequence < expected:
            if chains.hash_at(device_id, record.sequence) == digest:
                return True
            raise _Rejection(
                RejectionReason.REPLAYED,
                f"sequence {record.sequence} is taken by another accepted record (next expected: {expected})",
            )
        if record.sequence > expected:
            raise _Rejection(
                RejectionReason.SEQUENCE_GAP,
                f"sequence {record.sequence} arrived before {expected}; send the missing records first",
            )
        previous = GENESIS_PREVIOUS_HASH if head is None else head.record_hash
        if record.previous_record_hash != previous:
            raise _Rejection(
                RejectionReason.CHAIN_BREAK,
                f"previous_record_hash {record.previous_record_hash.hex()[:16]}… is not the hash of "
                f"accepted record {expected - 1} ({previous.hex()[:16]}…)",
            )
        if chains.hash_of_id(device_id, record.record_id) is not None:
            raise _Rejection(
                RejectionReason.REPLAYED, f"record_id {record.record_id} is taken by another accepted record"
            )
        return False
