"""What a clean audit found: counts and totals, as a text table for people and JSON for machines."""

from dataclasses import asdict, dataclass
from datetime import datetime

from carbonlink.wire import format_time

_G_PER_KG = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSummary:
    """The counts and totals of an export that verified."""

    exported_at: datetime
    devices: int
    records: int
    """Every record line (accepted and refused links)."""
    refused_records: int
    accepted_trips: int
    accepted_charges: int
    entries: int
    batches: int
    credits: int
    bindings: int
    issued: int
    credited_co2e_g: float
    issued_co2e_g: float

    def to_json(self) -> dict[str, object]:
        """The summary as a JSON object (``exported_at`` in the wire spelling)."""
        return asdict(self) | {"exported_at": format_time(self.exported_at)}

    def render_text(self) -> str:
        """A two-column table, one figure per row."""
        rows = [
            ("exported at", format_time(self.exported_at)),
            ("devices", str(self.devices)),
            ("records", f"{self.records} ({self.refused_records} refused)"),
            ("accepted trips", str(self.accepted_trips)),
            ("accepted charges", str(self.accepted_charges)),
            ("ledger entries", str(self.entries)),
            ("batches", str(self.batches)),
            ("credits", str(self.credits)),
            ("bindings", str(self.bindings)),
            ("issued credits", str(self.issued)),
            ("credited", f"{self.credited_co2e_g / _G_PER_KG:.3f} kg CO2e"),
            ("issued", f"{self.issued_co2e_g / _G_PER_KG:.3f} kg CO2e"),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
