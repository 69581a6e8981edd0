"""Sealing: a closed segment becomes a signed record, chained, and stored before any publish."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.integration import Totals
from agent.outbox import ChainHead
from agent.segmentation import Segment, SegmentKind
from carbonlink.chain import GENESIS_PREVIOUS_HASH
from carbonlink.envelope import sign
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

COUNTER_TOLERANCE = 0.05
"""Relative disagreement between integrated energy and the BMS counters that raises a flag."""
COUNTER_TOLERANCE_WH = 20.0
"""Absolute slack for the counters' resolution and their 2 s update period."""
SOC_TOLERANCE = 0.15
"""Relative disagreement between integrated net energy and the SOC change × capacity that raises a
flag: a BMS's SOC is a filtered estimate, and capacity × ΔSOC ignores the pack's voltage curve."""
SOC_SLACK_PCT = 0.5
"""Absolute slack in SOC points: the BMS's resolution, which dominates on short segments."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """What produced the figures: carried by every record."""

    agent_version: str
    dbc_hash: bytes
    profile_id: str
    vin_hash: bytes | None = None
    clock_synced: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class BusQuality:
    """Decoder counts over the segment (frames the bus lost or spoiled)."""

    frames_dropped: int = 0
    out_of_range: int = 0


def _at(time_s: float) -> datetime:
    return datetime.fromtimestamp(time_s, UTC)


def _soc_disagrees(totals: Totals, battery_capacity_wh: float | None) -> bool:
    """Whether the SOC change × capacity contradicts the integrated net energy (None: not checkable)."""
    if battery_capacity_wh is None or totals.soc_start_pct is None or totals.soc_end_pct is None:
        return False
    from_soc_wh = (totals.soc_start_pct - totals.soc_end_pct) * battery_capacity_wh / 100.0  # > 0: pack emptied
    integrated_wh = totals.energy_out_wh - totals.energy_regen_wh
    allowed_wh = max(
        SOC_TOLERANCE * max(abs(from_soc_wh), abs(integrated_wh)), SOC_SLACK_PCT * battery_capacity_wh / 100.0
    )
    return abs(from_soc_wh - integrated_wh) > allowed_wh


def _flags(totals: Totals, kind: SegmentKind, battery_capacity_wh: float | None) -> tuple[str, ...]:
    """Cross-checks that failed: integrated energy against the battery's own counters and its SOC."""
    flags = []
    if _soc_disagrees(totals, battery_capacity_wh):
        flags.append("soc_energy_mismatch")
    if kind is SegmentKind.TRIP:
        start, end, integrated = totals.discharged_start_wh, totals.discharged_end_wh, totals.energy_out_wh
    else:
        start, end, integrated = totals.charged_start_wh, totals.charged_end_wh, totals.energy_regen_wh
    if start is not None and end is not None:
        counted = end - start
        if abs(counted - integrated) > max(COUNTER_TOLERANCE * max(counted, integrated), COUNTER_TOLERANCE_WH):
            flags.append("energy_counter_mismatch")
    if totals.gaps:
        flags.append("gaps_not_bridged")
    if totals.soc_start_pct is None:
        flags.append("soc_unavailable")
    return tuple(sorted(flags))


@dataclass(frozen=True, slots=True)
class ChainPosition:
    """Where a new record goes in its device's chain."""

    sequence: int
    previous_record_hash: bytes
    record_id: str


def build_record(  # noqa: PLR0913 - every input is a value, named
    segment: Segment,
    *,
    device_id: str,
    chain: ChainPosition,
    provenance: Provenance,
    bus: BusQuality,
    battery_capacity_wh: float | None = None,
) -> Record:
    """The record of a closed segment (pure: every input is a value)."""
    totals = segment.totals
    has_odometer = totals.odometer_start_m is not None and totals.odometer_end_m is not None
    soc_source = Source.BMS if totals.soc_start_pct is not None else Source.UNAVAILABLE
    quality = DataQuality(
        samples=totals.power_samples,
        frames_dropped=bus.frames_dropped,
        gaps=totals.gaps,
        gap_duration_s=totals.gap_duration_s,
        out_of_range=bus.out_of_range,
        unavailable=totals.unavailable,
        coverage_pct=totals.coverage_pct,
        flags=_flags(totals, segment.kind, battery_capacity_wh),
    )
    common: dict[str, Any] = {
        "device_id": device_id,
        "record_id": chain.record_id,
        "sequence": chain.sequence,
        "previous_record_hash": chain.previous_record_hash,
        "start_at": _at(totals.start_s),
        "end_at": _at(totals.end_s),
        "clock_synced": provenance.clock_synced,
        "odometer_start_m": totals.odometer_start_m,
        "odometer_end_m": totals.odometer_end_m,
        "soc_start_pct": totals.soc_start_pct,
        "soc_end_pct": totals.soc_end_pct,
        "counter_discharged_start_wh": totals.discharged_start_wh,
        "counter_discharged_end_wh": totals.discharged_end_wh,
        "counter_charged_start_wh": totals.charged_start_wh,
        "counter_charged_end_wh": totals.charged_end_wh,
        "quality": quality,
        "agent_version": provenance.agent_version,
        "dbc_hash": provenance.dbc_hash,
        "profile_id": provenance.profile_id,
        "vin_hash": provenance.vin_hash,
    }
    if segment.kind is SegmentKind.TRIP:
        return TripRecord(
            **common,
            distance_m=totals.distance_m,
            energy_out_wh=totals.energy_out_wh,
            energy_regen_wh=totals.energy_regen_wh,
            methods=TripMethods(
                distance=Source.ODOMETER if has_odometer else Source.SPEED_INTEGRAL,
                energy=Source.VOLTAGE_CURRENT_INTEGRAL,
                soc=soc_source,
            ),
        )
    charger = (
        ChargerKind.UNKNOWN if totals.charger_dc is None else (ChargerKind.DC if totals.charger_dc else ChargerKind.AC)
    )
    return ChargeRecord(
        **common,
        charger=charger,
        # Energy into the pack: charging shows as negative (regenerative-sign) power; anything the
        # pack gave out meanwhile (auxiliaries while plugged in) is netted out.
        energy_in_wh=max(0.0, totals.energy_regen_wh - totals.energy_out_wh),
        grid_energy_wh=totals.grid_energy_wh if totals.grid_power_seen else None,
        methods=ChargeMethods(
            energy=Source.VOLTAGE_CURRENT_INTEGRAL,
            grid_energy=Source.CHARGER if totals.grid_power_seen else Source.UNAVAILABLE,
            soc=soc_source,
        ),
    )


class SealedStore(Protocol):
    """Where sealed records go: the part of :class:`agent.outbox.Outbox` that sealing needs.

    A replay keeps its records in memory instead (``agent.replay.sealed``).
    """

    def chain_head(self) -> ChainHead | None:
        """The last record ever sealed here, or None for a new device."""

    def append(self, signed: bytes, sequence: int, record_id: str) -> None:
        """Store a new record and make it the chain head; raises OutboxError when it cannot."""


class Sealer:
    """Seals segments with the device key and appends them to the outbox, in chain order."""

    def __init__(
        self, key: DeviceKey, outbox: SealedStore, provenance: Provenance, *, battery_capacity_wh: float | None = None
    ) -> None:
        self._key = key
        self._outbox = outbox
        self._provenance = provenance
        self._battery_capacity_wh = battery_capacity_wh
        """Usable pack energy, for the SOC cross-check; None when the vehicle's is not configured."""

    def seal(self, segment: Segment, bus: BusQuality) -> tuple[Record, bytes]:
        """Sign the segment's record and store it (durably) before anyone may publish it."""
        head = self._outbox.chain_head()
        record = build_record(
            segment,
            device_id=self._key.device_id,
            chain=ChainPosition(
                sequence=1 if head is None else head.sequence + 1,
                previous_record_hash=GENESIS_PREVIOUS_HASH if head is None else head.record_hash,
                record_id=str(uuid.uuid4()),
            ),
            provenance=self._provenance,
            bus=bus,
            battery_capacity_wh=self._battery_capacity_wh,
        )
        signed = sign(record, self._key)
        self._outbox.append(signed, record.sequence, record.record_id)
        return record, signed
