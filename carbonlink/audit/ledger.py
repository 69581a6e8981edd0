"""The ledger's hash chain and its batches: every entry hash, every Merkle root, nothing unsealed.

Entries must run from seq 1 without a gap, each naming its predecessor's hash and hashing to its
stated ``entry_hash`` (:func:`carbonlink.ledger.check_entry`). Batches must be numbered from 1,
cover the entries one after another without gap or overlap, chain their roots, and each record
the RFC 9162 Merkle root of its entries (:func:`carbonlink.ledger.check_batch`). At the end of the
file every entry must be in a batch.

Entry hashes wait in one flat buffer (32 bytes each) until their batch arrives, and leave it then.
"""

from carbonlink.audit.errors import AuditError
from carbonlink.ledger import HASH_BYTES, LedgerBatch, LedgerEntry, LedgerError, check_batch, check_entry


class LedgerCheck:
    """Checks entry and batch lines in file order."""

    def __init__(self) -> None:
        self._last_entry: LedgerEntry | None = None
        self._last_batch: LedgerBatch | None = None
        self._unsealed = bytearray()
        """Hashes of the entries after the last batch, in seq order (deleting from the front is cheap)."""
        self.entries = 0
        self.batches = 0

    @property
    def sealed_seq(self) -> int:
        """The last entry sealed in a batch (0 before the first batch)."""
        return 0 if self._last_batch is None else self._last_batch.last_seq

    @property
    def last_seq(self) -> int:
        return 0 if self._last_entry is None else self._last_entry.seq

    def add_entry(self, line_no: int, entry: LedgerEntry) -> None:
        """Take an entry line: it must follow the last entry and hash to its ``entry_hash``."""
        try:
            check_entry(self._last_entry, entry)
        except LedgerError as err:
            raise AuditError(line_no, f"the ledger's hash chain breaks: {err}") from err
        self._last_entry = entry
        self._unsealed += entry.entry_hash
        self.entries += 1

    def add_batch(self, line_no: int, batch: LedgerBatch) -> None:
        """Take a batch line: it must follow the last batch and record the root of its entries."""
        if batch.last_seq > self.last_seq:
            raise AuditError(
                line_no,
                f"batch {batch.batch_no} seals entries up to {batch.last_seq}, but the last entry is {self.last_seq}",
            )
        first = self.sealed_seq + 1
        # Only the entries after the last batch are still here; check_batch names any gap or overlap.
        start = max(batch.first_seq - first, 0) * HASH_BYTES
        end = (batch.last_seq - first + 1) * HASH_BYTES
        hashes = [bytes(self._unsealed[i : i + HASH_BYTES]) for i in range(start, max(start, end), HASH_BYTES)]
        try:
            check_batch(self._last_batch, batch, hashes)
        except LedgerError as err:
            raise AuditError(line_no, str(err)) from err
        del self._unsealed[:end]
        self._last_batch = batch
        self.batches += 1

    def finish(self, line_no: int) -> None:
        """At the end line: every entry must be sealed in a batch."""
        if self.sealed_seq != self.last_seq:
            raise AuditError(
                line_no, f"entries {self.sealed_seq + 1}-{self.last_seq} are in no batch: the ledger is not all sealed"
            )
