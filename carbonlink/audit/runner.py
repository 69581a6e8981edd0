"""The audit as a stream: feed the export's lines one by one, get a summary or the first discrepancy.

Lines must come in the export's order (header, devices, records, entries, batches, end); each is
checked as it arrives and then forgotten, except for the small facts later lines are checked
against (see :mod:`carbonlink.audit.records`). Memory therefore grows with devices, records and
entries, never with the size of the signed bytes, and one line is read at a time.
"""

from collections.abc import Iterable

from carbonlink.audit.credits import CreditCheck
from carbonlink.audit.errors import AuditError
from carbonlink.audit.ledger import LedgerCheck
from carbonlink.audit.records import RecordCheck, short
from carbonlink.audit.summary import AuditSummary
from carbonlink.keys import thumbprint
from carbonlink.ledger import LedgerBatch, LedgerEntry
from carbonlink.ledger_export import (
    LINE_TYPES,
    ExportDevice,
    ExportEnd,
    ExportFormatError,
    ExportHeader,
    ExportLine,
    ExportRecord,
    parse_export_line,
)

MAX_LINE_CHARS = 1 << 20
"""Longest line read (1 MiB): a credit entry is a few KiB, a record line at most ~11 KiB."""

_ORDER = tuple(LINE_TYPES.values())


class LedgerAudit:
    """One audit of one export: :meth:`feed` every line in order, then :meth:`finish`."""

    def __init__(self) -> None:
        self._header: ExportHeader | None = None
        self._section = -1
        self._line_no = 0
        self._ended = False
        self._records = RecordCheck()
        self._ledger = LedgerCheck()
        self._credits = CreditCheck(self._records)

    def feed(self, line_no: int, raw: str | bytes) -> None:
        """Check one line (with or without its newline); :class:`AuditError` at the first discrepancy."""
        self._line_no = line_no
        if self._ended:
            raise AuditError(line_no, "there is more after the end line")
        if len(raw) > MAX_LINE_CHARS + 1:  # + 1: the newline
            raise AuditError(line_no, f"the line is longer than {MAX_LINE_CHARS} characters")
        text = _text(line_no, raw)
        if not text.strip():
            raise AuditError(line_no, "the line is empty")
        try:
            value = parse_export_line(text, line_no)
        except ExportFormatError as err:
            raise AuditError(line_no, err.problem) from err
        self._check_order(line_no, LINE_TYPES[type(value)])
        self._take(line_no, value)

    def _take(self, line_no: int, value: ExportLine) -> None:
        match value:
            case ExportHeader():
                self._take_header(line_no, value)
            case ExportDevice():
                self._records.add_device(line_no, value)
            case ExportRecord():
                self._records.add_record(line_no, value)
            case LedgerEntry():
                self._ledger.add_entry(line_no, value)
                self._credits.add_entry(line_no, value)
            case LedgerBatch():
                self._ledger.add_batch(line_no, value)
            case ExportEnd():
                if value.lines != line_no - 1:
                    raise AuditError(
                        line_no, f"the end line counts {value.lines} lines before it, but there are {line_no - 1}"
                    )
                self._ledger.finish(line_no)
                self._ended = True

    def finish(self) -> AuditSummary:
        """After the last line: the summary, or :class:`AuditError` when the file was cut short."""
        if self._header is None:
            raise AuditError(1, "the file is empty: there is no header line")
        if not self._ended:
            raise AuditError(
                self._line_no, "the file ends without its end line: it is truncated or was not written whole"
            )
        records, ledger, crediting = self._records, self._ledger, self._credits
        return AuditSummary(
            exported_at=self._header.exported_at,
            devices=records.devices,
            records=records.records,
            refused_records=len(records.refused),
            accepted_trips=records.accepted_trips,
            accepted_charges=records.accepted_charges,
            entries=ledger.entries,
            batches=ledger.batches,
            credits=crediting.credits,
            bindings=crediting.bindings,
            issued=crediting.issued,
            credited_co2e_g=crediting.credited_co2e_g,
            issued_co2e_g=crediting.issued_co2e_g,
        )

    def _check_order(self, line_no: int, kind: str) -> None:
        section = _ORDER.index(kind)
        if self._section < 0 and kind != "header":
            raise AuditError(line_no, f"the first line must be the header, not a {kind} line")
        if section < self._section or (kind == "header" and self._section >= 0):
            raise AuditError(
                line_no, f"a {kind} line after the {_ORDER[self._section]} lines: the order is {', '.join(_ORDER)}"
            )
        self._section = section

    def _take_header(self, line_no: int, header: ExportHeader) -> None:
        if header.gateway_public_key is not None and header.gateway_kid != thumbprint(header.gateway_public_key):
            kid = b"" if header.gateway_kid is None else header.gateway_kid
            raise AuditError(line_no, f"gateway_kid {short(kid)} is not the thumbprint of gateway_public_key")
        self._header = header


def audit_lines(lines: Iterable[str | bytes]) -> AuditSummary:
    """Audit an export given as its lines, in order; :class:`AuditError` names the first discrepancy."""
    audit = LedgerAudit()
    for line_no, raw in enumerate(lines, start=1):
        audit.feed(line_no, raw)
    return audit.finish()


def _text(line_no: int, raw: str | bytes) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise AuditError(line_no, f"the line is not UTF-8 ({err})") from err
