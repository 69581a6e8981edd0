"""Credits, bindings and issues: recomputed from the signed records, never counted twice.

A credit entry must name an accepted trip of the export, copy its device, vehicle key, odometer
interval, times and period, use parameters of the device's vehicle class and the trip's year, list
only accepted charges of the same vehicle and period that ended by the trip's start with their
signed energies, and state exactly the reduction that
:func:`carbonlink.methodology.compute_reduction` gives for all that. No trip is credited twice, no
two credits of one vehicle overlap in odometer interval, and one parameters version means one value
per parameter across the whole ledger.

A binding must carry a consent given by the time it was recorded. An issue must follow its credit
and name the vehicle's current binding to the same owner; no credit is issued twice.
"""

import bisect
from dataclasses import dataclass

from carbonlink.audit.errors import AuditError
from carbonlink.audit.records import RecordCheck, TripFacts, short
from carbonlink.credit_entries import BindingEntry, CreditEntry, IssueEntry
from carbonlink.errors import CarbonlinkError
from carbonlink.ledger import EntryKind, LedgerEntry, LedgerError, json_time
from carbonlink.methodology import ChargeEnergy, Parameter, compute_reduction, crediting_period
from carbonlink.wire import format_time


@dataclass(slots=True)
class _Credit:
    seq: int
    vehicle_key: str
    reduction_co2e_g: float
    issued_seq: int | None = None


@dataclass(frozen=True, slots=True)
class _Binding:
    seq: int
    vehicle_key: str
    owner_id: str


class CreditCheck:
    """Checks the bodies of entries (already hash-checked) against the records and one another."""

    def __init__(self, records: RecordCheck) -> None:
        self._records = records
        self._credits: dict[str, _Credit] = {}
        self._intervals: dict[str, list[tuple[float, float, str]]] = {}
        """Per vehicle key, credited odometer intervals sorted by (start, end), pairwise not overlapping."""
        self._bindings: dict[int, _Binding] = {}
        self._current_binding: dict[str, int] = {}
        self._parameters: dict[tuple[str, str, str], Parameter] = {}
        """(methodology version, parameters version, ``name@vintage``) → the parameter as first used."""
        self.issued = 0
        self.credited_co2e_g = 0.0
        self.issued_co2e_g = 0.0

    @property
    def credits(self) -> int:
        return len(self._credits)

    @property
    def bindings(self) -> int:
        return len(self._bindings)

    def add_entry(self, line_no: int, entry: LedgerEntry) -> None:
        """Check one entry's body against everything before it."""
        try:
            if entry.kind is EntryKind.CREDIT:
                self._credit(line_no, entry.seq, CreditEntry.from_body(entry.body))
            elif entry.kind is EntryKind.BINDING:
                self._binding(line_no, entry, BindingEntry.from_body(entry.body))
            else:
                self._issue(line_no, entry.seq, IssueEntry.from_body(entry.body))
        except LedgerError as err:
            raise AuditError(line_no, f"entry {entry.seq} ({entry.kind}): {err}") from err

    # --- credits ----------------------------------------------------------------------------------------
    def _credit(self, line_no: int, seq: int, credit: CreditEntry) -> None:
        what = f"credit {credit.credit_id[:16]}… (entry {seq})"
        trip = self._trip(line_no, what, credit)
        self._check_trip_copy(line_no, what, credit, trip)
        self._check_parameters(line_no, what, credit, trip)
        self._check_charges(line_no, what, credit, trip)
        self._check_reduction(line_no, what, credit, trip)
        self._check_overlap(line_no, what, credit)
        self._credits[credit.credit_id] = _Credit(
            seq=seq, vehicle_key=credit.vehicle_key, reduction_co2e_g=credit.reduction.reduction_co2e_g
        )
        self.credited_co2e_g += credit.reduction.reduction_co2e_g

    def _trip(self, line_no: int, what: str, credit: CreditEntry) -> TripFacts:
        digest = bytes.fromhex(credit.record_hash)
        earlier = self._credits.get(credit.credit_id)
        if earlier is not None:
            raise AuditError(line_no, f"{what}: trip {short(digest)} is credited twice (first by entry {earlier.seq})")
        trip = self._records.trips.pop(digest, None)
        if trip is not None:
            return trip
        refused = self._records.refused.get(digest)
        if refused is not None:
            raise AuditError(line_no, f"{what}: record {short(digest)} was refused ({refused}) and cannot be credited")
        if digest in self._records.charges:
            raise AuditError(line_no, f"{what}: record {short(digest)} is a charge, not a trip")
        raise AuditError(line_no, f"{what}: trip {short(digest)} is not among the export's records")

    @staticmethod
    def _check_trip_copy(line_no: int, what: str, credit: CreditEntry, trip: TripFacts) -> None:
        expected: dict[str, object] = {
            "device_id": trip.device_id,
            "vehicle_key": trip.vehicle_key,
            "odometer_start_m": trip.odometer_start_m,
            "odometer_end_m": trip.odometer_end_m,
            "start_at": format_time(trip.start_at),
            "end_at": format_time(trip.end_at),
            "period": crediting_period(trip.end_at),
        }
        for name, value in expected.items():
            stated = getattr(credit, name)
            if stated != value:
                raise AuditError(line_no, f"{what}: {name} is {stated!r}, but the signed trip gives {value!r}")

    def _check_parameters(self, line_no: int, what: str, credit: CreditEntry, trip: TripFacts) -> None:
        parameters = credit.parameters
        device = self._records.device(trip.device_id)
        vehicle_class = None if device is None else device.vehicle_class
        if parameters.vehicle_class != vehicle_class:
            raise AuditError(
                line_no,
                f"{what}: parameters are for vehicle class {parameters.vehicle_class!r}, "
                f"but device {trip.device_id} is {vehicle_class!r}",
            )
        if parameters.crediting_year != trip.end_at.year:
            raise AuditError(
                line_no,
                f"{what}: parameters are for year {parameters.crediting_year}, "
                f"but the trip ended in {trip.end_at.year}",
            )
        for parameter in _parameters_of(credit):
            key = (
                parameters.methodology_version,
                parameters.parameters_version,
                f"{parameter.name}@{parameter.vintage}",
            )
            first = self._parameters.setdefault(key, parameter)
            if first != parameter:
                raise AuditError(
                    line_no,
                    f"{what}: parameter {parameter.name} (vintage {parameter.vintage}) of parameters version "
                    f"{parameters.parameters_version} "
                    f"is {parameter.value} {parameter.unit}, but an earlier credit used {first.value} {first.unit} "
                    "under the same version",
                )

    def _check_charges(self, line_no: int, what: str, credit: CreditEntry, trip: TripFacts) -> None:
        seen: set[bytes] = set()
        for charge in credit.charges:
            digest = charge.record_hash
            where = f"{what}: charge {short(digest)}"
            if digest in seen:
                raise AuditError(line_no, f"{where} is listed twice")
            seen.add(digest)
            facts = self._records.charges.get(digest)
            if facts is None:
                refused = self._records.refused.get(digest)
                why = f"was refused ({refused})" if refused is not None else "is not an accepted charge of the export"
                raise AuditError(line_no, f"{where} {why}")
            if facts.vehicle_key != trip.vehicle_key:
                raise AuditError(line_no, f"{where} is of vehicle {facts.vehicle_key}, not {trip.vehicle_key}")
            if facts.end_at > trip.start_at:
                raise AuditError(
                    line_no,
                    f"{where} ended at {format_time(facts.end_at)}, "
                    f"after the trip started ({format_time(trip.start_at)})",
                )
            if crediting_period(facts.end_at) != credit.period:
                raise AuditError(line_no, f"{where} is of period {crediting_period(facts.end_at)}, not {credit.period}")
            if (charge.energy_in_wh, charge.grid_energy_wh) != (facts.energy_in_wh, facts.grid_energy_wh):
                raise AuditError(
                    line_no,
                    f"{where} states energy_in_wh {charge.energy_in_wh} and grid_energy_wh {charge.grid_energy_wh}, "
                    f"the signed record {facts.energy_in_wh} and {facts.grid_energy_wh}",
                )

    @staticmethod
    def _check_reduction(line_no: int, what: str, credit: CreditEntry, trip: TripFacts) -> None:
        charges: list[ChargeEnergy] = list(credit.charges)
        try:
            recomputed = compute_reduction(trip.energy, charges, credit.parameters)
        except (CarbonlinkError, ArithmeticError) as err:
            raise AuditError(line_no, f"{what}: the reduction cannot be recomputed: {err}") from err
        if recomputed == credit.reduction:
            return
        stated_fields, recomputed_fields = credit.reduction.to_json(), recomputed.to_json()
        for name, value in recomputed_fields.items():
            if stated_fields.get(name) != value:
                raise AuditError(
                    line_no, f"{what}: reduction {name} is {stated_fields.get(name)!r}, recomputed {value!r}"
                )
        raise AuditError(line_no, f"{what}: the reduction does not recompute")  # equal JSON, unequal values

    def _check_overlap(self, line_no: int, what: str, credit: CreditEntry) -> None:
        start_m, end_m = credit.odometer_start_m, credit.odometer_end_m
        intervals = self._intervals.setdefault(credit.vehicle_key, [])
        # Credited intervals never overlap, so sorted by start their ends rise too: the last one
        # starting before this one ends is the only one that can reach into it.
        before = bisect.bisect_left(intervals, end_m, key=lambda interval: interval[0])
        if before > 0:
            other_start_m, other_end_m, other_id = intervals[before - 1]
            if other_end_m > start_m:
                raise AuditError(
                    line_no,
                    f"{what}: odometer {start_m}-{end_m} m of {credit.vehicle_key} overlaps credit {other_id[:16]}… "
                    f"({other_start_m}-{other_end_m} m)",
                )
        bisect.insort(intervals, (start_m, end_m, credit.credit_id))

    # --- bindings and issues ----------------------------------------------------------------------------
    def _binding(self, line_no: int, entry: LedgerEntry, binding: BindingEntry) -> None:
        consented_at = json_time(binding.consented_at, "binding.consented_at")
        if consented_at > entry.recorded_at:
            raise AuditError(
                line_no,
                f"entry {entry.seq} (binding): consent at {binding.consented_at} is after the binding was recorded",
            )
        self._bindings[entry.seq] = _Binding(seq=entry.seq, vehicle_key=binding.vehicle_key, owner_id=binding.owner_id)
        self._current_binding[binding.vehicle_key] = entry.seq

    def _issue(self, line_no: int, seq: int, issue: IssueEntry) -> None:
        what = f"issue of credit {issue.credit_id[:16]}… (entry {seq})"
        credit = self._credits.get(issue.credit_id)
        if credit is None:
            raise AuditError(line_no, f"{what}: no credit entry before it has this credit_id")
        if credit.issued_seq is not None:
            raise AuditError(line_no, f"{what}: the credit was issued before, by entry {credit.issued_seq}")
        if issue.vehicle_key != credit.vehicle_key:
            raise AuditError(
                line_no, f"{what}: vehicle_key {issue.vehicle_key} is not the credit's {credit.vehicle_key}"
            )
        if issue.reduction_co2e_g != credit.reduction_co2e_g:
            raise AuditError(
                line_no,
                f"{what}: reduction_co2e_g {issue.reduction_co2e_g} is not the credit's {credit.reduction_co2e_g}",
            )
        binding = self._bindings.get(issue.binding_seq)
        if binding is None:
            raise AuditError(line_no, f"{what}: binding_seq {issue.binding_seq} is no binding entry before it")
        if binding.vehicle_key != issue.vehicle_key or binding.owner_id != issue.owner_id:
            raise AuditError(
                line_no,
                f"{what}: binding {binding.seq} binds {binding.vehicle_key} to {binding.owner_id}, "
                f"not {issue.vehicle_key} to {issue.owner_id}",
            )
        current = self._current_binding[issue.vehicle_key]
        if current != binding.seq:
            raise AuditError(line_no, f"{what}: binding {binding.seq} was replaced by binding {current} before it")
        credit.issued_seq = seq
        self.issued += 1
        self.issued_co2e_g += credit.reduction_co2e_g


def _parameters_of(credit: CreditEntry) -> tuple[Parameter, ...]:
    parameters = credit.parameters
    return (
        parameters.baseline_fuel_l_per_100km,
        parameters.fuel_co2_g_per_l,
        parameters.technology_improvement_per_year,
        parameters.grid_co2_g_per_kwh,
        parameters.grid_loss_fraction,
        parameters.charging_efficiency,
        parameters.leakage_co2e_g,
    )
