"""The demo's result per vehicle, read from the gateway's store, and the check against the simulator's truth.

A vehicle passes when every trip of the simulator's ground truth was credited exactly once: one
credit whose time span overlaps the true trip, and no credit left over, its distance and battery
energy within the agent's accuracy of the truth. Charges are never credited (they are inputs), but
every true charge must have been accepted as a record.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carbonlink.credit_entries import CreditEntry
from carbonlink.text_table import aligned_rows
from carbonlink.wire import parse_time

if TYPE_CHECKING:
    from gateway.store.record_store import RecordStore

DISTANCE_TOLERANCE = 0.01
"""The agent's target on a lossy bus (tests/test_agent_accuracy.py: 1 % with 2 % of frames lost)."""
ENERGY_TOLERANCE = 0.02
"""Net battery energy is out - regen, two figures each within 1 %: their difference within about 2 %."""
_G_PER_KG = 1000.0
_M_PER_KM = 1000.0
_WH_PER_KWH = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleResult:
    """One row of the demo's table."""

    device_id: str
    vehicle_class: str
    trips: int
    charges: int
    km: float
    """Credited distance (the odometer intervals the ledger holds)."""
    kwh: float
    """Battery energy of the credited trips."""
    accepted: int
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejections on the vehicle's topic, by reason."""
    duplicates: int = 0
    credited_kg: float = 0.0
    problems: tuple[str, ...] = ()
    """Why the vehicle fails the truth check; empty when it passes."""

    @property
    def passed(self) -> bool:
        return not self.problems


def vehicle_result(  # noqa: PLR0913 - keyword-only: each source of the row
    store: "RecordStore",
    *,
    device_id: str,
    vehicle_class: str,
    truth: list[dict[str, Any]],
    delivered: bool,
    duplicates: int,
) -> VehicleResult:
    """The vehicle's row, from the store (credits, records, rejections) checked against ``truth``."""
    from gateway.crediting.model import CreditQuery  # noqa: PLC0415 - the gateway loads only when the demo runs
    from gateway.model import RecordQuery, RejectionQuery  # noqa: PLC0415

    credits_ = store.ledger.credits(CreditQuery(device_id=device_id, limit=10_000))
    entries = [CreditEntry.from_body(credit.entry.body) for credit in credits_]
    records = store.records(RecordQuery(device_id=device_id, limit=10_000))
    rejections = store.rejections(RejectionQuery(device_id=device_id, limit=10_000))
    true_trips = [entry for entry in truth if entry["type"] == "trip"]
    true_charges = [entry for entry in truth if entry["type"] == "charge"]
    problems = list(_trip_problems(true_trips, entries))
    accepted_charges = sum(1 for record in records if record.record_type == "charge")
    if accepted_charges != len(true_charges):
        problems.append(f"{len(true_charges)} true charge(s), {accepted_charges} accepted")
    if not delivered:
        problems.append("the agent's outbox was not empty at the end")
    return VehicleResult(
        device_id=device_id,
        vehicle_class=vehicle_class,
        trips=len(true_trips),
        charges=len(true_charges),
        km=sum(entry.odometer_end_m - entry.odometer_start_m for entry in entries) / _M_PER_KM,
        kwh=sum(entry.reduction.battery_energy_wh for entry in entries) / _WH_PER_KWH,
        accepted=len(records),
        rejected=Counter(rejection.reason.value for rejection in rejections),
        duplicates=duplicates,
        credited_kg=sum(credit.reduction_co2e_g for credit in credits_) / _G_PER_KG,
        problems=tuple(problems),
    )


def _trip_problems(true_trips: list[dict[str, Any]], entries: list[CreditEntry]) -> list[str]:
    spans = [(parse_time(entry.start_at), parse_time(entry.end_at)) for entry in entries]
    problems = []
    used: set[int] = set()
    for number, trip in enumerate(true_trips, start=1):
        start, end = parse_time(str(trip["start_at"])), parse_time(str(trip["end_at"]))
        matching = [index for index, span in enumerate(spans) if _overlap(span, (start, end))]
        if len(matching) != 1:
            problems.append(f"true trip {number} ({trip['start_at']}) has {len(matching)} credits, not 1")
        else:
            problems.extend(_figure_problems(number, trip, entries[matching[0]]))
        used.update(matching)
    extra = len(spans) - len(used)
    if extra:
        problems.append(f"{extra} credit(s) match no true trip")
    return problems


def _figure_problems(number: int, trip: dict[str, Any], entry: CreditEntry) -> list[str]:
    true_distance_m = float(trip["distance_m"])
    true_battery_wh = max(0.0, float(trip["energy_out_wh"]) - float(trip["energy_regen_wh"]))
    figures = (
        ("distance", entry.odometer_end_m - entry.odometer_start_m, true_distance_m, DISTANCE_TOLERANCE, "m"),
        ("battery energy", entry.reduction.battery_energy_wh, true_battery_wh, ENERGY_TOLERANCE, "Wh"),
    )
    return [
        f"true trip {number}: credited {name} {credited:.0f} {unit}, truth {truth:.0f} {unit} (over {tolerance:.0%})"
        for name, credited, truth, tolerance, unit in figures
        if abs(credited - truth) > tolerance * truth
    ]


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def render_table(results: list[VehicleResult]) -> list[str]:
    """The result table as lines of text, one row per vehicle and a total."""
    header = ("VEHICLE", "CLASS", "TRIPS", "CHARGES", "KM", "KWH", "ACCEPTED", "REJECTED", "KG CO2E", "CHECK")
    rows = [
        (
            r.device_id,
            r.vehicle_class,
            str(r.trips),
            str(r.charges),
            f"{r.km:.1f}",
            f"{r.kwh:.2f}",
            str(r.accepted),
            _rejected_text(r),
            f"{r.credited_kg:.3f}",
            "ok" if r.passed else "FAILED",
        )
        for r in results
    ]
    total = (
        "total",
        "",
        str(sum(r.trips for r in results)),
        str(sum(r.charges for r in results)),
        f"{sum(r.km for r in results):.1f}",
        f"{sum(r.kwh for r in results):.2f}",
        str(sum(r.accepted for r in results)),
        str(sum(sum(r.rejected.values()) for r in results)),
        f"{sum(r.credited_kg for r in results):.3f}",
        "ok" if all(r.passed for r in results) else "FAILED",
    )
    lines = aligned_rows(header, [*rows, total])
    for result in results:
        lines.extend(f"  {result.device_id}: {problem}" for problem in result.problems)
    return lines


def _rejected_text(result: VehicleResult) -> str:
    parts = [f"{count} {reason}" for reason, count in sorted(result.rejected.items())]
    if result.duplicates:
        parts.append(f"{result.duplicates} duplicate")
    return ", ".join(parts) if parts else "0"
