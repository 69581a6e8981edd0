"""Crediting: from accepted records to ledger entries, and from owner consent to issued credits.

    credit_queue ──► decide (trip: overlap? parameters? reduction) ──► ledger entries ──► sealed batch
                                                                       └─► issued? ──► forwarding outbox

Intake queues each accepted record in the transaction that accepts it. :meth:`Crediting.run_once`
takes up to a batch of them, in commit order, and decides each in one ledger transaction:

- a charge becomes an input (its vehicle key and period are kept for the trips after it);
- a trip without odometer readings, or whose interval overlaps a credit of the same vehicle (VIN
  hash, whatever device or key sent it), is not credited, and the decision says why;
- any other trip becomes a credit entry with the methodology's result and the exact parameters used;
  when its vehicle is bound to an owner, an issue entry follows and a delivery per sink is queued.

:meth:`Crediting.bind` records an owner's consent as a binding entry and issues every credit the
vehicle accrued while unbound. Nothing here does I/O but through the store.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from carbonlink.credit_entries import (
    BindingEntry,
    CreditEntry,
    IssueEntry,
    check_vehicle_key,
    creditable_trip,
    vehicle_key_for,
)
from carbonlink.errors import CarbonlinkError
from carbonlink.ledger import EntryKind, LedgerError
from carbonlink.methodology import ParameterError, ParameterSet, compute_reduction, crediting_period, resolve_parameters
from carbonlink.records import TripRecord
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import format_time
from gateway.crediting.model import Binding, CreditingReport, CreditToIssue, Outcome, PendingRecord
from gateway.crediting.payload import issued_payload
from gateway.errors import ConfigError, RegistryError
from gateway.store.ledger_writer import LedgerWriter
from gateway.store.sql_ledger import SqlLedger

log = logging.getLogger("carbonlink.gateway.crediting")


class Crediting:
    """Decides accepted records into the ledger and issues credits (see the module docstring)."""

    def __init__(  # noqa: PLR0913 - the composition root injects each collaborator
        self,
        ledger: SqlLedger,
        parameters: ParameterSet,
        *,
        grid_region: str,
        device_regions: Mapping[str, str],
        sinks: Sequence[str],
        clock: Callable[[], datetime],
        batch_max_records: int = 500,
        on_decided: Callable[[CreditingReport], None] = lambda _report: None,
    ) -> None:
        self._ledger = ledger
        self._parameters = parameters
        self._grid_region = grid_region
        self._device_regions = dict(device_regions)
        self._sinks = tuple(sinks)
        self._clock = clock
        self._batch_max_records = batch_max_records
        self._on_decided = on_decided

    # --- deciding ---------------------------------------------------------------------------------------
    def run_once(self) -> CreditingReport:
        """Decide up to one batch of queued records in one transaction."""
        decided: dict[Outcome, int] = {}
        entries = issued = 0
        if not self._ledger.has_queued():  # an idle look takes no write lock
            return CreditingReport(decided=decided, entries=0, issued=0)
        with self._ledger.writing("crediting accepted records", at=self._clock()) as writer:
            for pending in writer.pending(self._batch_max_records):
                try:
                    with writer.savepoint():
                        outcome, appended, issued_now = self._decide(writer, pending)
                except (CarbonlinkError, ValueError) as err:
                    # One record the methodology or the ledger cannot take must not stall the queue behind it.
                    outcome, appended, issued_now = Outcome.NOT_CREDITABLE, 0, 0
                    log.warning("crediting.not_creditable record=%s error=%r", pending.record_hash.hex(), str(err))
                    writer.decide(
                        pending,
                        vehicle_key=_vehicle_key(pending),
                        period=crediting_period(pending.record.end_at),
                        outcome=outcome,
                        detail=f"cannot be credited: {err}",
                    )
                decided[outcome] = decided.get(outcome, 0) + 1
                entries += appended
                issued += issued_now
        report = CreditingReport(decided=decided, entries=entries, issued=issued)
        if decided:
            self._on_decided(report)
        return report

    def run_until_idle(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Decide every queued record (or until ``stopping()``, checked between batches); how many were decided."""
        total = 0
        while not stopping():
            done = sum(self.run_once().decided.values())
            total += done
            if done < self._batch_max_records:
                break
        return total

    def _decide(self, writer: LedgerWriter, pending: PendingRecord) -> tuple[Outcome, int, int]:
        record = pending.record
        key = _vehicle_key(pending)
        period = crediting_period(record.end_at)
        if not isinstance(record, TripRecord):
            writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.CHARGE, detail="")
            return Outcome.CHARGE, 0, 0
        start_m, end_m = record.odometer_start_m, record.odometer_end_m
        if start_m is None or end_m is None:
            detail = "the trip has no odometer readings: its interval cannot be checked against other credits"
            writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.NO_ODOMETER, detail=detail)
            return Outcome.NO_ODOMETER, 0, 0
        if end_m < start_m:
            detail = f"the odometer ran backwards ({start_m:.0f} m to {end_m:.0f} m): no interval to credit"
            writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.NOT_CREDITABLE, detail=detail)
            return Outcome.NOT_CREDITABLE, 0, 0
        overlapping = writer.overlapping_credit(key, start_m, end_m)
        if overlapping is not None:
            detail = f"odometer {start_m:.0f}-{end_m:.0f} m overlaps credit {overlapping} of {key}"
            writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.OVERLAP, detail=detail)
            return Outcome.OVERLAP, 0, 0
        region = self._device_regions.get(pending.device_id, self._grid_region)
        try:
            parameters = resolve_parameters(
                self._parameters, vehicle_class=pending.vehicle_class, grid_region=region, year=record.end_at.year
            )
        except ParameterError as err:
            writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.NOT_CREDITABLE, detail=str(err))
            return Outcome.NOT_CREDITABLE, 0, 0
        charges = writer.charges_of(key, period, record.start_at)
        credit = CreditEntry(
            credit_id=pending.record_hash.hex(),
            record_hash=pending.record_hash.hex(),
            device_id=pending.device_id,
            vehicle_key=key,
            odometer_start_m=start_m,
            odometer_end_m=end_m,
            start_at=format_time(record.start_at),
            end_at=format_time(record.end_at),
            period=period,
            parameters=parameters,
            charges=tuple(charges),
            reduction=compute_reduction(creditable_trip(record), charges, parameters),
        )
        entry = writer.append(EntryKind.CREDIT, credit.to_body())
        writer.add_credit(credit, entry, end_at=record.end_at)
        writer.decide(pending, vehicle_key=key, period=period, outcome=Outcome.CREDITED, detail="")
        binding = writer.binding(key)
        if binding is None:
            return Outcome.CREDITED, 1, 0
        to_issue = CreditToIssue(
            credit_id=credit.credit_id,
            record_hash=pending.record_hash,
            device_id=pending.device_id,
            vehicle_key=key,
            period=period,
            reduction_co2e_g=credit.reduction.reduction_co2e_g,
            entry_seq=entry.seq,
        )
        self._issue(writer, to_issue, binding)
        return Outcome.CREDITED, 2, 1

    # --- issuing ---------------------------------------------------------------------------------------
    def bind(
        self,
        vehicle_key: str,
        owner_id: str,
        *,
        consented_at: datetime,
        consent_method: str,
        consent_reference: str = "",
    ) -> tuple[Binding, int]:
        """Bind the vehicle to the owner under their consent; issue what it accrued. (binding, credits issued)."""
        vehicle_key = _check_consent(vehicle_key, consent_method, consent_reference, consented_at, self._clock())
        with self._ledger.writing(f"binding {vehicle_key} to {owner_id}", at=self._clock()) as writer:
            if not writer.owner_exists(owner_id):
                raise RegistryError(f"there is no owner {owner_id!r}: add the owner first")
            body = BindingEntry(
                vehicle_key=vehicle_key,
                owner_id=owner_id,
                consented_at=format_time(consented_at),
                consent_method=consent_method,
                consent_reference=consent_reference,
            ).to_body()
            entry = writer.append(EntryKind.BINDING, body)
            binding = Binding(
                vehicle_key=vehicle_key,
                owner_id=owner_id,
                consented_at=consented_at,
                consent_method=consent_method,
                consent_reference=consent_reference,
                binding_seq=entry.seq,
            )
            writer.bind(binding)
            accrued = writer.accrued(vehicle_key)
            for credit in accrued:
                self._issue(writer, credit, binding)
        self._on_decided(CreditingReport(decided={}, entries=1 + len(accrued), issued=len(accrued)))
        log.info("crediting.bound vehicle=%s owner=%s issued=%d", vehicle_key, owner_id, len(accrued))
        return binding, len(accrued)

    def _issue(self, writer: LedgerWriter, credit: CreditToIssue, binding: Binding) -> None:
        body = IssueEntry(
            credit_id=credit.credit_id,
            owner_id=binding.owner_id,
            vehicle_key=credit.vehicle_key,
            reduction_co2e_g=credit.reduction_co2e_g,
            binding_seq=binding.binding_seq,
        ).to_body()
        entry = writer.append(EntryKind.ISSUE, body)
        payload = issued_payload(credit, owner_id=binding.owner_id, issue_seq=entry.seq, issued_at=writer.at)
        writer.issue(credit.credit_id, binding.owner_id, entry, dict.fromkeys(self._sinks, payload))


_MAX_TEXT = 200
_MAX_REFERENCE = 1000


def _vehicle_key(pending: PendingRecord) -> str:
    return vehicle_key_for(pending.record.vin_hash or pending.device_vin_hash, pending.device_id)


def check_regions(parameters: ParameterSet, regions: Iterable[str], year: int) -> None:
    """Raise :class:`ConfigError` unless every region has parameters for every vehicle class in ``year``.

    Checked at start: a misspelt region would otherwise make every trip of its vehicles
    ``not_creditable``, a decision that is final.
    """
    for region in sorted(set(regions)):
        for vehicle_class in VehicleClass:
            try:
                resolve_parameters(parameters, vehicle_class=vehicle_class, grid_region=region, year=year)
            except ParameterError as err:
                known = ", ".join(parameters.grid_regions)
                raise ConfigError(
                    f"[crediting] grid region {region!r} cannot be credited: {err} (known: {known})"
                ) from err


def _check_consent(vehicle_key: str, method: str, reference: str, consented_at: datetime, now: datetime) -> str:
    try:
        key = check_vehicle_key(vehicle_key)
    except LedgerError as err:
        raise RegistryError(str(err)) from err
    if not method or len(method) > _MAX_TEXT or not method.isprintable():
        raise RegistryError("the consent method must be 1 to 200 printable characters (e.g. 'app', 'paper')")
    if len(reference) > _MAX_REFERENCE:
        raise RegistryError(f"the consent reference must be at most {_MAX_REFERENCE} characters")
    if consented_at > now:
        raise RegistryError(f"consent cannot be given in the future ({format_time(consented_at)})")
    return key
