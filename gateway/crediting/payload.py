"""What the forwarding sinks receive for an issued credit: one canonical JSON object.

Built in one place, for the issue itself and for a delivery added later (a sink configured after
the credit was issued, or a credit issued by a process without that sink), so both are the same bytes.
"""

from datetime import datetime

from carbonlink.ledger import canonical_json
from carbonlink.wire import format_time
from gateway.crediting.model import CreditToIssue


def issued_payload(credit: CreditToIssue, *, owner_id: str, issue_seq: int, issued_at: datetime) -> bytes:
    """The canonical JSON a sink gets for ``credit``, issued to ``owner_id`` by ledger entry ``issue_seq``."""
    return canonical_json(
        {
            "credit_id": credit.credit_id,
            "record_hash": credit.record_hash.hex(),
            "owner_id": owner_id,
            "vehicle_key": credit.vehicle_key,
            "device_id": credit.device_id,
            "period": credit.period,
            "reduction_co2e_g": credit.reduction_co2e_g,
            "credit_seq": credit.entry_seq,
            "issue_seq": issue_seq,
            "issued_at": format_time(issued_at),
        }
    )
