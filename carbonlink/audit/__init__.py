"""``carbonlink audit``: re-verify a ledger export offline, from the export alone.

The audit reads the export's lines in order and stops at the first discrepancy, naming its line:

- :mod:`~carbonlink.audit.records`: device keys, record signatures, record hashes, device chains;
- :mod:`~carbonlink.audit.ledger`: the ledger's hash chain and its Merkle batches;
- :mod:`~carbonlink.audit.credits`: each credit recomputed from its trip, charges and parameters;
  double counting (a trip credited twice, overlapping odometer intervals); bindings and issues;
- :mod:`~carbonlink.audit.runner`: the stream over the lines and the end line's count;
- :mod:`~carbonlink.audit.summary`: what a clean audit reports.

Everything is pure: the caller reads the file and hands over its lines.
"""

from carbonlink.audit.errors import AuditError
from carbonlink.audit.runner import MAX_LINE_CHARS, LedgerAudit, audit_lines
from carbonlink.audit.summary import AuditSummary

__all__ = ["MAX_LINE_CHARS", "AuditError", "AuditSummary", "LedgerAudit", "audit_lines"]
