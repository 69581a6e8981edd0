"""Crediting on a real store (SQLite and PostgreSQL): decisions, double-count rules, binding, batches.

Records are committed the way intake commits them (``RecordStore.commit``), then crediting runs
its transactions; every expected figure is computed by the methodology's own function from the
resolved parameters, and the ledger is checked with the pure ledger functions an auditor uses.
"""

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from carbonlink.chain import record_hash
from carbonlink.credit_entries import CreditEntry, IssueEntry
from carbonlink.envelope import sign
from carbonlink.keys import DeviceKey
from carbonlink.ledger import EntryKind, check_entry
from carbonlink.merkle import merkle_root
from carbonlink.methodology import ChargeEnergy, TripEnergy, compute_reduction, resolve_parameters
from carbonlink.records import Record, TripRecord
from carbonlink.vehicles import VehicleClass
from gateway.adapters.parameter_file import load_parameters
from gateway.crediting.model import CreditQuery, CreditState, DeliveryState, Outcome, TotalsBy
from gateway.crediting.service import Crediting
from gateway.errors import RegistryError
from gateway.model import AcceptedRecord, Enrolment
from gateway.store import SqlRecordStore, open_store

from gateway_harness import GATEWAY_NOW, ChainBuilder
from postgres_server import store_url  # noqa: F401 - a fixture

VIN_HASH = hashlib.sha256(b"WVWZZZE1ZNP000001").digest()
PARAMETERS = load_parameters(None)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlRecordStore]:  # noqa: F811 - the fixture imported above
    opened = open_store(store_url)
    assert isinstance(opened, SqlRecordStore)
    yield opened
    opened.close()


def crediting(store: SqlRecordStore, **overrides: Any) -> Crediting:  # noqa: ANN401 - any constructor argument
    arguments: dict[str, Any] = {
        "grid_region": "cn",
        "device_regions": {},
        "sinks": ("webhook",),
        "clock": lambda: GATEWAY_NOW,
        "parameters": PARAMETERS,
    } | overrides
    parameters = arguments.pop("parameters")
    return Crediting(store.ledger, parameters, **arguments)


def register(
    store: SqlRecordStore, key: DeviceKey, *, vin_hash: bytes | None = VIN_HASH, vehicle_class: str = "compact"
) -> None:
    store.add_device(
        key.device_id,
        key.public_key,
        vehicle_class=VehicleClass(vehicle_class),
        vin_hash=vin_hash,
        enrolment=Enrolment.OPERATOR,
        at=GATEWAY_NOW - timedelta(days=60),
    )


def commit(store: SqlRecordStore, key: DeviceKey, *records: tuple[bytes, Record]) -> list[bytes]:
    accepted = [
        AcceptedRecord(
            signed=signed, record_hash=record_hash(signed), record=record, kid=key.kid, received_at=GATEWAY_NOW
        )
        for signed, record in records
    ]
    store.commit(accepted, [], {})
    return [a.record_hash for a in accepted]


def expected_reduction(trip: TripRecord, charges: list[ChargeEnergy], vehicle_class: str = "compact") -> float:
    parameters = resolve_parameters(
        PARAMETERS, vehicle_class=VehicleClass(vehicle_class), grid_region="cn", year=trip.end_at.year
    )
    energy = TripEnergy(
        distance_m=trip.distance_m, energy_out_wh=trip.energy_out_wh, energy_regen_wh=trip.energy_regen_wh
    )
    return compute_reduction(energy, charges, parameters).reduction_co2e_g


def key(seed: int, device_id: str) -> DeviceKey:
    return DeviceKey.from_seed(bytes([seed]) * 32, device_id)


def test_an_accepted_trip_becomes_one_credit_with_the_methodologys_figures(store: SqlRecordStore) -> None:
    """A trip is credited once, with exactly the methodology's reduction and the parameters it used."""
    car = key(1, "car-0001")
    register(store, car)
    signed, trip = ChainBuilder(car, vin_hash=VIN_HASH).trip()
    (digest,) = commit(store, car, (signed, trip))
    report = crediting(store).run_once()
    assert report.decided == {Outcome.CREDITED: 1}
    (credit,) = store.ledger.credits(CreditQuery())
    assert credit.credit_id == digest.hex()
    assert credit.vehicle_key == f"vin:{VIN_HASH.hex()}"
    assert credit.reduction_co2e_g == expected_reduction(trip, [])
    assert credit.reduction_co2e_g > 0
    assert credit.state is CreditState.ACCRUED
    body = CreditEntry.from_body(credit.entry.body)
    assert body.parameters.grid_region == "cn"
    assert body.parameters.vehicle_class == "compact"
    assert crediting(store).run_once().decided == {}  # nothing is decided twice


def test_a_metered_charge_before_the_trip_gives_the_grid_energy(store: SqlRecordStore) -> None:
    """A charge of the same vehicle and month, with the charger's grid energy, meters the trip's grid energy."""
    car = key(2, "car-0002")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    charge = builder.charge(energy_in_wh=20_000.0, grid_energy_wh=22_000.0)
    trip = builder.trip()
    charge_hash, _ = commit(store, car, charge, trip)
    report = crediting(store).run_once()
    assert report.decided == {Outcome.CHARGE: 1, Outcome.CREDITED: 1}
    (credit,) = store.ledger.credits(CreditQuery())
    body = CreditEntry.from_body(credit.entry.body)
    inputs = [ChargeEnergy(record_hash=charge_hash, energy_in_wh=20_000.0, grid_energy_wh=22_000.0, excluded=False)]
    assert list(body.charges) == inputs
    assert body.reduction.grid_energy_method == "metered_charge"
    assert credit.reduction_co2e_g == expected_reduction(trip[1], inputs)


def test_a_charge_marked_as_credited_elsewhere_reduces_the_later_credits(store: SqlRecordStore) -> None:
    """An excluded charge's share of the energy is not credited again."""
    car = key(3, "car-0003")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    first = builder.charge(energy_in_wh=10_000.0, grid_energy_wh=11_000.0)
    second = builder.charge(energy_in_wh=10_000.0, grid_energy_wh=11_000.0)
    _, second_hash = commit(store, car, first, second)
    crediting(store).run_once()
    store.ledger.exclude_charge(second_hash, "credited to the charge point operator", at=GATEWAY_NOW)
    trip = builder.trip()
    commit(store, car, trip)
    crediting(store).run_once()
    (credit,) = store.ledger.credits(CreditQuery())
    body = CreditEntry.from_body(credit.entry.body)
    assert [c.excluded for c in body.charges] == [False, True]
    assert body.reduction.credited_share == pytest.approx(0.5)
    full = expected_reduction(trip[1], [])
    assert 0 < credit.reduction_co2e_g < full


def test_excluding_anything_but_an_accepted_charge_is_refused(store: SqlRecordStore) -> None:
    car = key(4, "car-0004")
    register(store, car)
    (trip_hash,) = commit(store, car, ChainBuilder(car).trip())
    with pytest.raises(RegistryError, match="not an accepted charge"):
        store.ledger.exclude_charge(trip_hash, "nope", at=GATEWAY_NOW)
    with pytest.raises(RegistryError, match="not an accepted charge"):
        store.ledger.exclude_charge(bytes(32), "nope", at=GATEWAY_NOW)


def test_a_swapped_device_cannot_credit_the_same_kilometres_again(store: SqlRecordStore) -> None:
    """The ledger keys on the VIN hash: a new device (and key) in the same car is refused the same interval."""
    old, new = key(5, "car-0005-old"), key(6, "car-0005-new")
    register(store, old)
    register(store, new)
    old_trip = ChainBuilder(old, vin_hash=VIN_HASH).trip()
    commit(store, old, old_trip)
    builder = ChainBuilder(new, vin_hash=VIN_HASH)
    replayed = builder.trip()  # the same odometer interval again, from the new device
    after = builder.trip()  # carries on where the first one ended: touching is no overlap
    commit(store, new, replayed, after)
    assert crediting(store).run_until_idle() == 3
    assert store.ledger.decisions() == {"credited": 2, "overlap": 1}
    credited = {c.device_id: c for c in store.ledger.credits(CreditQuery())}
    assert set(credited) == {"car-0005-old", "car-0005-new"}
    assert credited["car-0005-new"].odometer_start_m == old_trip[1].odometer_end_m


def test_a_vehicle_without_vin_is_keyed_on_its_device_across_a_key_rotation(store: SqlRecordStore) -> None:
    """Without a VIN hash the device keys the ledger: a rotated key does not open the same interval again."""
    car = key(7, "car-0007")
    register(store, car, vin_hash=None)
    builder = ChainBuilder(car)
    first = builder.trip()
    commit(store, car, first)
    store.rotate_key(car.device_id, key(8, "car-0007").public_key, at=GATEWAY_NOW - timedelta(days=1))
    rotated = key(8, "car-0007")
    again = builder.trip(odometer_start_m=first[1].odometer_start_m, odometer_end_m=first[1].odometer_end_m)
    resigned = sign(again[1], rotated)
    commit(store, rotated, (resigned, again[1]))
    crediting(store).run_until_idle()
    assert store.ledger.decisions() == {"credited": 1, "overlap": 1}
    (credit,) = store.ledger.credits(CreditQuery())
    assert credit.vehicle_key == "device:car-0007"


def test_a_trip_without_odometer_readings_is_not_credited(store: SqlRecordStore) -> None:
    car = key(9, "car-0009")
    register(store, car)
    commit(store, car, ChainBuilder(car).trip(odometer_start_m=None, odometer_end_m=None))
    assert crediting(store).run_once().decided == {Outcome.NO_ODOMETER: 1}
    assert store.ledger.credits(CreditQuery()) == []


def test_a_region_without_parameters_is_not_credited_and_says_why(store: SqlRecordStore) -> None:
    car = key(10, "car-0010")
    register(store, car)
    commit(store, car, ChainBuilder(car).trip())
    report = crediting(store, device_regions={"car-0010": "atlantis"}).run_once()
    assert report.decided == {Outcome.NOT_CREDITABLE: 1}
    assert store.ledger.credits(CreditQuery()) == []


def test_a_refused_chain_link_is_never_credited(store: SqlRecordStore) -> None:
    from carbonlink.reasons import RejectionReason  # noqa: PLC0415 - only this test needs it

    car = key(11, "car-0011")
    register(store, car)
    signed, trip = ChainBuilder(car).trip()
    store.commit(
        [
            AcceptedRecord(
                signed=signed,
                record_hash=record_hash(signed),
                record=trip,
                kid=car.kid,
                received_at=GATEWAY_NOW,
                refused_for=RejectionReason.IMPLAUSIBLE_ENERGY,
            )
        ],
        [],
        {},
    )
    assert crediting(store).run_once().decided == {}
    assert store.ledger.queued() == 0


def test_credits_accrue_until_the_owner_consents_then_are_issued_and_queued_for_each_sink(
    store: SqlRecordStore,
) -> None:
    """Unbound credits accrue; binding issues them; credits after the binding are issued at once."""
    car = key(12, "car-0012")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    commit(store, car, builder.trip(), builder.trip())
    service = crediting(store, sinks=("webhook", "export_file"))
    service.run_once()
    assert {c.state for c in store.ledger.credits(CreditQuery())} == {CreditState.ACCRUED}
    assert store.ledger.deliveries() == []
    with pytest.raises(RegistryError, match="no owner"):
        service.bind(f"vin:{VIN_HASH.hex()}", "alice", consented_at=GATEWAY_NOW, consent_method="app")
    store.ledger.add_owner("alice", "Alice Example", at=GATEWAY_NOW)
    binding, issued = service.bind(
        f"vin:{VIN_HASH.hex()}", "alice", consented_at=GATEWAY_NOW - timedelta(hours=1), consent_method="app"
    )
    assert issued == 2
    commit(store, car, builder.trip())
    assert service.run_once().issued == 1
    issued_credits = store.ledger.credits(CreditQuery(owner_id="alice"))
    assert len(issued_credits) == 3
    assert all(c.state is CreditState.ISSUED for c in issued_credits)
    deliveries = store.ledger.deliveries()
    assert len(deliveries) == 6
    assert {d.sink for d in deliveries} == {"webhook", "export_file"}
    assert {d.state for d in deliveries} == {DeliveryState.PENDING}
    issues = [e for e in store.ledger.entries() if e.kind is EntryKind.ISSUE]
    assert [IssueEntry.from_body(e.body).binding_seq for e in issues] == [binding.binding_seq] * 3
    (total,) = store.ledger.totals(TotalsBy.OWNER)
    assert total.key == "alice"
    assert total.issued == 3
    assert total.issued_co2e_g == pytest.approx(sum(c.reduction_co2e_g for c in issued_credits))


def test_consent_must_name_a_vehicle_key_and_a_method_and_not_lie_in_the_future(store: SqlRecordStore) -> None:
    store.ledger.add_owner("bob", "Bob", at=GATEWAY_NOW)
    service = crediting(store)
    with pytest.raises(RegistryError, match="vehicle key"):
        service.bind("WVW123", "bob", consented_at=GATEWAY_NOW, consent_method="app")
    with pytest.raises(RegistryError, match="consent method"):
        service.bind("device:car-1", "bob", consented_at=GATEWAY_NOW, consent_method="")
    with pytest.raises(RegistryError, match="future"):
        service.bind("device:car-1", "bob", consented_at=GATEWAY_NOW + timedelta(days=1), consent_method="app")
    with pytest.raises(RegistryError, match="exists already"):
        store.ledger.add_owner("bob", "Bob again", at=GATEWAY_NOW)


def test_every_entry_is_chained_and_sealed_and_every_receipt_proves_its_entry(store: SqlRecordStore) -> None:
    """Each crediting transaction seals one batch; roots, the batch chain and receipts all check out."""
    car = key(13, "car-0013")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    service = crediting(store, batch_max_records=2)
    for _ in range(5):
        commit(store, car, builder.trip())
    assert service.run_until_idle() == 5
    entries = store.ledger.entries()
    batches = store.ledger.batches()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [(b.first_seq, b.last_seq) for b in batches] == [(1, 2), (3, 4), (5, 5)]
    previous = None
    for entry in entries:
        check_entry(previous, entry)
        previous = entry
    for batch in batches:
        leaves = [e.entry_hash for e in entries if batch.first_seq <= e.seq <= batch.last_seq]
        assert batch.merkle_root == merkle_root(leaves)
    assert [b.previous_root for b in batches[1:]] == [b.merkle_root for b in batches[:-1]]
    for entry in entries:
        receipt = store.ledger.receipt(entry.seq)
        assert receipt is not None
        receipt.check()
    assert store.ledger.head() == (5, 3)


def test_changing_the_parameter_file_never_changes_an_existing_credit(store: SqlRecordStore) -> None:
    """A credit keeps the parameters it was computed with; later credits use the new file."""
    car = key(14, "car-0014")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    commit(store, car, builder.trip())
    crediting(store).run_once()
    (before,) = store.ledger.credits(CreditQuery())
    changed = {
        name: parameter if not name.startswith("grid.cn.") else _doubled(parameter)
        for name, parameter in PARAMETERS.parameters.items()
    }
    newer = type(PARAMETERS)(
        methodology_version=PARAMETERS.methodology_version,
        parameters_version=PARAMETERS.parameters_version + "-test",
        parameters=changed,
    )
    commit(store, car, builder.trip())
    crediting(store, parameters=newer).run_once()
    first, *_ = sorted(store.ledger.credits(CreditQuery()), key=lambda c: c.entry.seq)
    assert first == before
    latest = max(store.ledger.credits(CreditQuery()), key=lambda c: c.entry.seq)
    assert CreditEntry.from_body(latest.entry.body).parameters.parameters_version.endswith("-test")


def _doubled(parameter: Any) -> Any:  # noqa: ANN401 - a methodology Parameter
    return type(parameter)(
        name=parameter.name,
        value=parameter.value * 2,
        unit=parameter.unit,
        source=parameter.source,
        vintage=parameter.vintage,
        note=parameter.note,
    )


def test_records_accepted_before_crediting_existed_are_credited_after_the_upgrade(store_url: str) -> None:  # noqa: F811
    """Opening a version-1 database queues its accepted records, oldest first."""
    from gateway.store.dialects import dialect_for  # noqa: PLC0415 - only this test builds an old schema
    from gateway.store.migrations import MIGRATIONS, migrate  # noqa: PLC0415

    old = SqlRecordStore(dialect_for(store_url), max_rejections=10)
    migrate(old.connection(), dialect_for(store_url), at=GATEWAY_NOW, migrations=MIGRATIONS[:1])
    car = key(15, "car-0015")
    register(old, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    accepted = [
        AcceptedRecord(signed=s, record_hash=record_hash(s), record=r, kid=car.kid, received_at=GATEWAY_NOW)
        for s, r in (builder.trip(), builder.trip())
    ]
    with old.transaction("writing version-1 rows", write=True) as connection:
        from gateway.store import rows as convert  # noqa: PLC0415

        for a in accepted:
            connection.execute(
                "INSERT INTO records (record_hash, device_id, record_type, sequence, record_id, kid, vin_hash, "
                "start_at, end_at, received_at, odometer_start_m, odometer_end_m, signed, fields, refused_for) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                convert.record_row(a),
            )
    old.close()
    upgraded = open_store(store_url)
    try:
        assert upgraded.ledger.queued() == 2
        assert crediting(upgraded).run_until_idle() == 2  # type: ignore[arg-type]
        assert len(upgraded.ledger.credits(CreditQuery())) == 2
    finally:
        upgraded.close()


def test_the_trip_record_type_is_what_the_ledger_credits(store: SqlRecordStore) -> None:
    """A charge is an input only: it never becomes a credit of its own."""
    car = key(16, "car-0016")
    register(store, car)
    commit(store, car, ChainBuilder(car, vin_hash=VIN_HASH).charge())
    assert crediting(store).run_once().decided == {Outcome.CHARGE: 1}
    assert store.ledger.credits(CreditQuery()) == []
    assert store.ledger.entries() == []


def test_a_trip_whose_odometer_ran_backwards_is_refused_without_stalling_the_queue(store: SqlRecordStore) -> None:
    """Plausibility lets a small backwards step through; crediting decides it and goes on to the next record."""
    car = key(17, "car-0017")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    backwards = builder.trip(odometer_start_m=48_210_500.0, odometer_end_m=48_210_000.0, distance_m=0.0)
    commit(store, car, backwards, builder.trip())
    assert crediting(store).run_once().decided == {Outcome.NOT_CREDITABLE: 1, Outcome.CREDITED: 1}
    assert store.ledger.queued() == 0


def test_a_frozen_odometer_credits_no_distance_however_far_the_trip_says_it_went(store: SqlRecordStore) -> None:
    """The credited distance never exceeds the odometer interval the credit holds in the ledger."""
    car = key(18, "car-0018")
    register(store, car)
    signed, trip = ChainBuilder(car, vin_hash=VIN_HASH).trip(
        odometer_start_m=48_210_000.0, odometer_end_m=48_210_000.0, distance_m=900.0
    )
    commit(store, car, (signed, trip))
    crediting(store).run_once()
    (credit,) = store.ledger.credits(CreditQuery())
    body = CreditEntry.from_body(credit.entry.body)
    assert body.reduction.baseline_co2e_g == 0.0
    assert credit.reduction_co2e_g == 0.0


def test_credits_issued_without_a_sink_get_their_deliveries_from_the_forwarder(store: SqlRecordStore) -> None:
    """A binding made by a process without sinks (the CLI with --store) is forwarded by one that has them."""
    car = key(19, "car-0019")
    register(store, car)
    builder = ChainBuilder(car, vin_hash=VIN_HASH)
    commit(store, car, builder.trip(), builder.trip())
    without_sinks = crediting(store, sinks=())
    without_sinks.run_once()
    store.ledger.add_owner("carol", "Carol", at=GATEWAY_NOW)
    without_sinks.bind(f"VIN:{VIN_HASH.hex().upper()}", "carol", consented_at=GATEWAY_NOW, consent_method="app")
    assert store.ledger.deliveries() == []
    queue = store.ledger.forwarding_queue({"webhook"})
    due = queue.due(GATEWAY_NOW, 10)
    assert len(due) == 2
    assert {json.loads(d.payload)["owner_id"] for d in due} == {"carol"}
    assert store.ledger.add_missing_deliveries({"webhook"}, at=GATEWAY_NOW) == 0
    assert store.ledger.forwarding_queue({"export_file"}).due(GATEWAY_NOW, 10) != []
    store.ledger.mark_delivered(due[0].delivery_id, at=GATEWAY_NOW)
    store.ledger.mark_failed(due[0].delivery_id, error="late", at=GATEWAY_NOW, retry_at=None)
    delivered = [d for d in store.ledger.deliveries() if d.delivery_id == due[0].delivery_id]
    assert [d.state for d in delivered] == [DeliveryState.DELIVERED]


def test_a_malformed_vehicle_key_is_refused_naming_the_form(store: SqlRecordStore) -> None:
    store.ledger.add_owner("dave", "Dave", at=GATEWAY_NOW)
    with pytest.raises(RegistryError, match="64 hex digits"):
        crediting(store).bind("vin:zz", "dave", consented_at=GATEWAY_NOW, consent_method="app")
