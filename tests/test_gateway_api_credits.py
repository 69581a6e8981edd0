"""The crediting API through real HTTP: credits, receipts, owners and consent, the ledger, forwarding, exclusions.

Each test runs on SQLite and PostgreSQL. Records are signed with real device keys and committed as
intake commits them; the real crediting service decides them into the ledger; uvicorn serves the
app on a loopback port and httpx asks it. Every figure the API shows is compared with what the
store holds or what the pure ledger functions recompute from the answer alone.
"""

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from carbonlink.chain import record_hash
from carbonlink.credit_entries import CreditEntry, IssueEntry
from carbonlink.keys import DeviceKey
from carbonlink.ledger import EntryKind, LedgerEntry, LedgerError, Receipt, check_entry, entry_hash
from carbonlink.merkle import merkle_root
from carbonlink.records import Record
from carbonlink.testing import sample_chain
from carbonlink.vehicles import VehicleClass
from carbonlink.wire import parse_time
from gateway.adapters.parameter_file import load_parameters
from gateway.api.app import create_app
from gateway.api.settings import ApiSettings
from gateway.crediting.model import CreditQuery, DeliveryState, Outcome
from gateway.crediting.service import Crediting
from gateway.metrics import GatewayMetrics
from gateway.model import AcceptedRecord, Enrolment
from gateway.store import SqlRecordStore, open_store

from api_server import serving
from gateway_harness import GATEWAY_NOW, ChainBuilder
from postgres_server import store_url  # noqa: F401 - a fixture

READ_TOKEN = "read-token-0123456789abcdef"  # noqa: S105 - a test token
ADMIN_TOKEN = "admin-token-0123456789abcdef"  # noqa: S105 - a test token
SETTINGS = ApiSettings(read_tokens=frozenset({READ_TOKEN}), admin_tokens=frozenset({ADMIN_TOKEN}))
PARAMETERS = load_parameters(None)
VIN_HASH = hashlib.sha256(b"WVWZZZE1ZNP000002").digest()
CAR_A_KEY = f"vin:{VIN_HASH.hex()}"
CAR_B_KEY = "device:car-b"
DECEMBER_START_AT = GATEWAY_NOW - timedelta(days=2)
"""When car A's last trip starts: in the crediting period after the others (all in November)."""
CONSENTED_AT = GATEWAY_NOW - timedelta(hours=1)

JsonObject = dict[str, Any]


@dataclasses.dataclass
class Fleet:
    """A served API over a store with two vehicles' credits in it."""

    store: SqlRecordStore
    crediting: Crediting
    http: httpx.Client
    builder_a: ChainBuilder
    """Car A's chain builder, at the end of what was committed."""
    charge_a: bytes
    """Car A's metered charge."""
    credits_a: list[bytes]
    """Car A's credited trips, oldest first: two in November, one in December."""
    credits_b: list[bytes]
    """Car B's (no VIN: keyed on its device) six credited trips, oldest first."""


def _key(seed: int, device_id: str) -> DeviceKey:
    return DeviceKey.from_seed(bytes([seed]) * 32, device_id)


def _commit(store: SqlRecordStore, key: DeviceKey, records: list[tuple[bytes, Record]]) -> list[bytes]:
    accepted = [
        AcceptedRecord(
            signed=signed, record_hash=record_hash(signed), record=record, kid=key.kid, received_at=GATEWAY_NOW
        )
        for signed, record in records
    ]
    store.commit(accepted, [], {})
    return [a.record_hash for a in accepted]


def _register(store: SqlRecordStore, key: DeviceKey, vin_hash: bytes | None) -> None:
    store.add_device(
        key.device_id,
        key.public_key,
        vehicle_class=VehicleClass.COMPACT,
        vin_hash=vin_hash,
        enrolment=Enrolment.OPERATOR,
        at=GATEWAY_NOW - timedelta(days=60),
    )


@pytest.fixture
def fleet(store_url: str) -> Iterator[Fleet]:  # noqa: F811 - the fixture imported above
    store = open_store(store_url)
    assert isinstance(store, SqlRecordStore)
    car_a, car_b = _key(31, "car-a"), _key(32, "car-b")
    _register(store, car_a, VIN_HASH)
    _register(store, car_b, None)
    builder = ChainBuilder(car_a, vin_hash=VIN_HASH)
    charge = builder.charge(energy_in_wh=20_000.0, grid_energy_wh=22_000.0)
    trips = [builder.trip(), builder.trip()]
    builder.next_start_at = DECEMBER_START_AT
    trips.append(builder.trip())
    charge_a, *credits_a = _commit(store, car_a, [charge, *trips])
    chain_b = _commit(store, car_b, list(sample_chain(car_b, 8)))
    credits_b = [digest for index, digest in enumerate(chain_b) if index % 4 != 3]  # every fourth is a charge
    crediting = Crediting(
        store.ledger, PARAMETERS, grid_region="cn", device_regions={}, sinks=("webhook",), clock=lambda: GATEWAY_NOW
    )
    assert crediting.run_until_idle() == 12
    app = create_app(SETTINGS, store=store, metrics=GatewayMetrics(), clock=lambda: GATEWAY_NOW, crediting=crediting)
    try:
        with serving(app) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
            yield Fleet(store, crediting, http, builder, charge_a, credits_a, credits_b)
    finally:
        store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(fleet: Fleet, path: str, **params: str | int) -> JsonObject:
    response = fleet.http.get(path, params=params, headers=auth(READ_TOKEN))
    assert response.status_code == 200, response.text
    answer: JsonObject = response.json()
    return answer


def post(fleet: Fleet, path: str, body: JsonObject | None = None, *, token: str = ADMIN_TOKEN) -> httpx.Response:
    return fleet.http.post(path, json=body, headers=auth(token))


def ids(page: JsonObject) -> list[str]:
    return [credit["credit_id"] for credit in page["credits"]]


def newest_first(*groups: list[bytes]) -> list[str]:
    """Credit ids in ledger order reversed; the fixture credits car A's records before car B's."""
    return [digest.hex() for group in groups for digest in group][::-1]


def add_owner(fleet: Fleet, owner_id: str = "alice") -> None:
    response = post(fleet, "/v1/owners", {"owner_id": owner_id, "name": "Alice Example"})
    assert response.status_code == 201, response.text


def bind(fleet: Fleet, vehicle_key: str, owner_id: str = "alice", **extra: str) -> httpx.Response:
    body = {"owner_id": owner_id, "consented_at": CONSENTED_AT.isoformat(), "consent_method": "app"} | extra
    return post(fleet, f"/v1/vehicles/{vehicle_key}/binding", body)


# --- credits -----------------------------------------------------------------------------------


def test_credits_are_listed_newest_first_with_the_stores_figures(fleet: Fleet) -> None:
    """Every credit is listed once, newest ledger entry first, with the reduction and interval the store holds."""
    page = get(fleet, "/v1/credits")
    assert ids(page) == newest_first(fleet.credits_a, fleet.credits_b)
    assert page["next"] is None
    stored = {credit.credit_id: credit for credit in fleet.store.ledger.credits(CreditQuery())}
    for listed in page["credits"]:
        credit = stored[listed["credit_id"]]
        assert listed["reduction_co2e_g"] == credit.reduction_co2e_g > 0
        assert listed["odometer_start_m"] == credit.odometer_start_m
        assert listed["entry_seq"] == credit.entry.seq
        assert listed["state"] == "accrued"
        assert listed["owner_id"] is None
    newest_a = next(c for c in page["credits"] if c["device_id"] == "car-a")
    assert newest_a["vehicle_key"] == CAR_A_KEY
    assert newest_a["period"] == "2026-12"
    assert newest_a["record_hash"] == newest_a["credit_id"] == fleet.credits_a[-1].hex()


def test_credits_are_filtered_by_device_vehicle_period_owner_and_state(fleet: Fleet) -> None:
    """Each filter narrows the list; filters combine; an owner's list is empty until a vehicle is bound to them."""
    a, b = fleet.credits_a, fleet.credits_b
    assert ids(get(fleet, "/v1/credits", device_id="car-a")) == newest_first(a)
    assert ids(get(fleet, "/v1/credits", vehicle_key=CAR_B_KEY)) == newest_first(b)
    assert ids(get(fleet, "/v1/credits", period="2026-12")) == newest_first(a[2:])
    assert ids(get(fleet, "/v1/credits", period="2026-11", vehicle_key=CAR_A_KEY)) == newest_first(a[:2])
    assert ids(get(fleet, "/v1/credits", owner_id="alice")) == []
    add_owner(fleet)
    assert bind(fleet, CAR_A_KEY).status_code == 201
    assert ids(get(fleet, "/v1/credits", owner_id="alice")) == newest_first(a)
    assert ids(get(fleet, "/v1/credits", state="issued")) == newest_first(a)
    assert ids(get(fleet, "/v1/credits", state="accrued")) == newest_first(b)
    assert ids(get(fleet, "/v1/credits", state="accrued", device_id="car-a")) == []


@pytest.mark.parametrize("limit", [1, 4, 9, 10])
def test_credit_pages_follow_next_to_the_end_without_gaps_or_repeats(fleet: Fleet, limit: int) -> None:
    """Following next (a ledger seq) page by page yields each credit once, in order."""
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": limit}
    for _ in range(20):
        page = get(fleet, "/v1/credits", **params)
        assert len(page["credits"]) <= limit
        seen += ids(page)
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert seen == newest_first(fleet.credits_a, fleet.credits_b)


def test_a_credit_shows_its_ledger_entry_which_recomputes_to_its_hash(fleet: Fleet) -> None:
    """The detail's entry is the chained entry itself: its hash follows from the answer alone."""
    credit_id = fleet.credits_a[0].hex()
    detail = get(fleet, f"/v1/credits/{credit_id.upper()}")
    entry = detail["entry"]
    assert entry["kind"] == "credit"
    assert entry["seq"] == detail["entry_seq"]
    body = CreditEntry.from_body(entry["body"])
    assert body.credit_id == credit_id
    assert body.reduction.reduction_co2e_g == detail["reduction_co2e_g"]
    assert [charge.record_hash for charge in body.charges] == [fleet.charge_a]
    assert body.reduction.grid_energy_method == "metered_charge"
    recomputed = entry_hash(
        seq=entry["seq"],
        kind=EntryKind(entry["kind"]),
        recorded_at=parse_time(entry["recorded_at"]),
        body=entry["body"],
        previous_hash=bytes.fromhex(entry["previous_hash"]),
    )
    assert recomputed.hex() == entry["entry_hash"]


def test_every_credit_has_a_receipt_that_proves_it_is_in_its_batch(fleet: Fleet) -> None:
    """A receipt's Merkle proof leads from the credit's entry to the root of the batch the ledger lists."""
    batches = {batch["batch_no"]: batch for batch in get(fleet, "/v1/ledger/batches")["batches"]}
    for digest in fleet.credits_a + fleet.credits_b:
        answer = get(fleet, f"/v1/credits/{digest.hex()}/receipt")
        assert answer["entry"]["body"]["credit_id"] == digest.hex()
        assert answer["batch"] == batches[answer["batch"]["batch_no"]]
        assert answer["proof"]  # nine credit entries in one batch: every entry has a sibling
        Receipt.from_json(answer).check()


def test_a_receipt_with_one_changed_byte_does_not_check(fleet: Fleet) -> None:
    """Another entry in place of the credit's, or one changed byte of the proof, breaks the path to the root."""
    receipt = Receipt.from_json(get(fleet, f"/v1/credits/{fleet.credits_b[2].hex()}/receipt"))
    receipt.check()
    first = bytearray(receipt.proof[0])
    first[0] ^= 1
    with pytest.raises(LedgerError):
        dataclasses.replace(receipt, proof=(bytes(first), *receipt.proof[1:])).check()
    other = Receipt.from_json(get(fleet, f"/v1/credits/{fleet.credits_b[3].hex()}/receipt"))
    with pytest.raises(LedgerError):
        dataclasses.replace(receipt, entry=other.entry).check()


def test_totals_sum_the_credits_by_device_owner_period_and_vehicle(fleet: Fleet) -> None:
    """Totals match the listed credits for each grouping; by owner, unissued credits sit under a null key."""
    all_credits = get(fleet, "/v1/credits")["credits"]
    add_owner(fleet)
    assert bind(fleet, CAR_B_KEY).status_code == 201
    fields = {"device": "device_id", "period": "period", "vehicle": "vehicle_key"}
    for by, field in fields.items():
        answer = get(fleet, "/v1/credits/totals", by=by)
        assert answer["by"] == by
        expected = sorted({credit[field] for credit in all_credits})
        assert [total["key"] for total in answer["totals"]] == expected
        for total in answer["totals"]:
            mine = [credit for credit in all_credits if credit[field] == total["key"]]
            assert total["credits"] == len(mine)
            assert total["reduction_co2e_g"] == pytest.approx(sum(credit["reduction_co2e_g"] for credit in mine))
    by_owner = {total["key"]: total for total in get(fleet, "/v1/credits/totals", by="owner")["totals"]}
    assert set(by_owner) == {None, "alice"}
    assert by_owner["alice"]["credits"] == by_owner["alice"]["issued"] == len(fleet.credits_b)
    assert by_owner[None]["issued"] == 0
    assert by_owner[None]["issued_co2e_g"] == 0
    issued_b = sum(credit["reduction_co2e_g"] for credit in all_credits if credit["vehicle_key"] == CAR_B_KEY)
    assert by_owner["alice"]["issued_co2e_g"] == pytest.approx(issued_b)


@pytest.mark.parametrize(
    ("path", "status", "names"),
    [
        ("/v1/credits/" + "ab" * 32, 404, "no credit"),
        ("/v1/credits/" + "ab" * 32 + "/receipt", 404, "no credit"),
        ("/v1/credits?device_id=Car%20A", 400, "device id"),
        ("/v1/credits?period=2026-13", 422, "query parameter 'period'"),
        ("/v1/credits?state=spent", 422, "query parameter 'state'"),
        ("/v1/credits?before=0", 422, "query parameter 'before'"),
        ("/v1/credits/totals", 422, "query parameter 'by'"),
        ("/v1/credits/totals?by=colour", 422, "query parameter 'by'"),
        ("/v1/ledger/entries?limit=1001", 422, "query parameter 'limit'"),
        ("/v1/forwarding?state=lost", 422, "query parameter 'state'"),
        ("/v1/owners/Alice", 400, "owner id"),
        ("/v1/owners/nobody", 404, "no owner"),
    ],
)
def test_bad_or_unknown_parameters_are_refused_naming_them(fleet: Fleet, path: str, status: int, names: str) -> None:
    response = fleet.http.get(path, headers=auth(READ_TOKEN))
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]


# --- owners and consent --------------------------------------------------------------------------


def test_owners_are_added_by_an_admin_listed_and_read(fleet: Fleet) -> None:
    """An admin opens accounts; a read token reads them; a taken id is a conflict."""
    add_owner(fleet, "bob")
    add_owner(fleet, "alice")
    expected = {"owner_id": "alice", "name": "Alice Example", "created_at": "2026-12-24T07:30:00.123456Z"}
    assert get(fleet, "/v1/owners/alice") == expected
    assert [owner["owner_id"] for owner in get(fleet, "/v1/owners")["owners"]] == ["alice", "bob"]
    again = post(fleet, "/v1/owners", {"owner_id": "alice", "name": "Another"})
    assert again.status_code == 409
    assert "exists already" in again.json()["detail"]
    assert post(fleet, "/v1/owners", {"owner_id": "carol", "name": "Carol"}, token=READ_TOKEN).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"owner_id": "Alice!", "name": "Alice"}, 400, "owner id"),
        ({"owner_id": "alice", "name": "   "}, 400, "name"),
        ({"owner_id": "alice", "name": ""}, 422, "body field 'name'"),
        ({"owner_id": "alice", "name": "Alice", "email": "a@example.org"}, 422, "body field 'email'"),
    ],
)
def test_bad_owner_accounts_are_refused_naming_the_field(
    fleet: Fleet, body: JsonObject, status: int, names: str
) -> None:
    response = post(fleet, "/v1/owners", body)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]
    assert get(fleet, "/v1/owners")["owners"] == []


def test_binding_with_consent_issues_the_accrued_credits_and_queues_their_delivery(fleet: Fleet) -> None:
    """The binding is a ledger entry; each accrued credit gets an issue entry under it and a pending delivery."""
    add_owner(fleet)
    response = bind(fleet, CAR_A_KEY, consent_method="paper", consent_reference="form 2026-117")
    assert response.status_code == 201, response.text
    binding = response.json()
    assert binding["issued"] == len(fleet.credits_a)
    assert binding["consented_at"] == "2026-12-24T06:30:00.123456Z"
    assert (binding["consent_method"], binding["consent_reference"]) == ("paper", "form 2026-117")
    entries = get(fleet, "/v1/ledger/entries", after=binding["binding_seq"] - 1)["entries"]
    assert entries[0]["kind"] == "binding"
    assert entries[0]["body"]["owner_id"] == "alice"
    issues = [IssueEntry.from_body(entry["body"]) for entry in entries[1:]]
    assert {issue.credit_id for issue in issues} == {digest.hex() for digest in fleet.credits_a}
    assert {issue.binding_seq for issue in issues} == {binding["binding_seq"]}
    detail = get(fleet, f"/v1/credits/{fleet.credits_a[0].hex()}")
    assert (detail["state"], detail["owner_id"]) == ("issued", "alice")
    assert detail["issue_seq"] in {entry["seq"] for entry in entries[1:]}
    deliveries = get(fleet, "/v1/forwarding")["deliveries"]
    assert sorted(d["credit_id"] for d in deliveries) == sorted(digest.hex() for digest in fleet.credits_a)
    assert {(d["sink"], d["state"], d["attempts"]) for d in deliveries} == {("webhook", "pending", 0)}


@pytest.mark.parametrize(
    ("vehicle_key", "extra", "status", "names"),
    [
        (CAR_A_KEY, {"owner_id": "nobody"}, 404, "no owner"),
        (CAR_A_KEY, {"owner_id": "Alice"}, 400, "owner id"),
        ("WVWZZZE1ZNP000002", {}, 400, "vehicle key"),
        (CAR_A_KEY, {"consented_at": (GATEWAY_NOW + timedelta(days=1)).isoformat()}, 400, "future"),
        (CAR_A_KEY, {"consented_at": "2026-12-01T10:00:00"}, 422, "body field 'consented_at'"),
        (CAR_A_KEY, {"consent_method": ""}, 422, "body field 'consent_method'"),
        (CAR_A_KEY, {"consent_method": "\t"}, 400, "consent method"),
        (CAR_A_KEY, {"signature": "x"}, 422, "body field 'signature'"),
    ],
)
def test_a_binding_without_a_valid_consent_issues_nothing(
    fleet: Fleet, vehicle_key: str, extra: dict[str, str], status: int, names: str
) -> None:
    add_owner(fleet)
    response = bind(fleet, vehicle_key, **extra)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]
    assert get(fleet, "/v1/credits", state="issued")["credits"] == []
    assert [entry["kind"] for entry in get(fleet, "/v1/ledger/entries")["entries"]] == ["credit"] * 9


def test_binding_is_refused_on_a_gateway_without_crediting(fleet: Fleet) -> None:
    """Without the crediting service nothing can be issued: 409, and the ledger is unchanged."""
    add_owner(fleet)
    app = create_app(SETTINGS, store=fleet.store, metrics=GatewayMetrics(), clock=lambda: GATEWAY_NOW)
    with serving(app) as server:
        body = {"owner_id": "alice", "consented_at": CONSENTED_AT.isoformat(), "consent_method": "app"}
        response = httpx.post(f"{server.url}/v1/vehicles/{CAR_A_KEY}/binding", json=body, headers=auth(ADMIN_TOKEN))
        summary = httpx.get(f"{server.url}/v1/ledger/summary", headers=auth(READ_TOKEN)).json()
    assert response.status_code == 409
    assert "crediting is off" in response.json()["detail"]
    assert summary["crediting_enabled"] is False
    assert summary["head"]["last_seq"] == 9


# --- the ledger --------------------------------------------------------------------------------


def test_ledger_entries_and_batches_page_in_order_and_check_as_an_auditor_would(fleet: Fleet) -> None:
    """Entries chain one to the next, and each batch's root is the Merkle root of its entries' hashes."""
    add_owner(fleet)
    assert bind(fleet, CAR_B_KEY).status_code == 201
    entries: list[JsonObject] = []
    after = 0
    for _ in range(20):
        page = get(fleet, "/v1/ledger/entries", after=after, limit=4)
        entries += page["entries"]
        if page["next"] is None:
            break
        after = page["next"]
    credits_binding_issues = 9 + 1 + 6
    assert [entry["seq"] for entry in entries] == list(range(1, credits_binding_issues + 1))
    previous = None
    for entry in map(LedgerEntry.from_json, entries):
        check_entry(previous, entry)
        previous = entry
    first, second = get(fleet, "/v1/ledger/batches", limit=1), get(fleet, "/v1/ledger/batches", after=1)
    batches = first["batches"] + second["batches"]
    assert first["next"] == 1
    assert second["next"] is None
    assert [(b["batch_no"], b["first_seq"], b["last_seq"]) for b in batches] == [(1, 1, 9), (2, 10, 16)]
    assert batches[1]["previous_root"] == batches[0]["merkle_root"]
    for batch in batches:
        leaves = [
            bytes.fromhex(e["entry_hash"]) for e in entries if batch["first_seq"] <= e["seq"] <= batch["last_seq"]
        ]
        assert batch["merkle_root"] == merkle_root(leaves).hex()


def test_the_summary_counts_decisions_credits_and_deliveries(fleet: Fleet) -> None:
    """Decisions by outcome, the queue, the head, credit sums and deliveries by state, in one answer."""
    add_owner(fleet)
    assert bind(fleet, CAR_A_KEY).status_code == 201
    all_credits = get(fleet, "/v1/credits")["credits"]
    summary = get(fleet, "/v1/ledger/summary")
    assert summary["generated_at"] == "2026-12-24T07:30:00.123456Z"
    assert summary["crediting_enabled"] is True
    assert summary["decisions"] == {
        "credited": 9,
        "charge": 3,
        "overlap": 0,
        "no_odometer": 0,
        "not_creditable": 0,
    }
    assert summary["queued"] == 0
    assert summary["head"] == {"last_seq": 9 + 1 + 3, "last_batch_no": 2}
    issued = [credit for credit in all_credits if credit["state"] == "issued"]
    assert summary["credits"]["credits"] == 9
    assert summary["credits"]["issued"] == 3
    assert summary["credits"]["reduction_co2e_g"] == pytest.approx(sum(c["reduction_co2e_g"] for c in all_credits))
    assert summary["credits"]["issued_co2e_g"] == pytest.approx(sum(c["reduction_co2e_g"] for c in issued))
    assert summary["deliveries"] == {"pending": 3, "delivered": 0, "dead": 0}


# --- forwarding --------------------------------------------------------------------------------


def test_a_dead_letter_is_listed_and_put_back_in_line_by_an_admin(fleet: Fleet) -> None:
    """A delivery the forwarder gave up on shows as dead with its error; a retry makes it due now, once."""
    add_owner(fleet)
    assert bind(fleet, CAR_A_KEY).status_code == 201
    delivery_ids = [d["delivery_id"] for d in get(fleet, "/v1/forwarding")["deliveries"]]
    dead_id = delivery_ids[1]
    failed_at = GATEWAY_NOW - timedelta(minutes=5)
    fleet.store.ledger.mark_failed(dead_id, error="HTTP 410 from the receiver", at=failed_at, retry_at=None)
    (dead,) = get(fleet, "/v1/forwarding", state="dead")["deliveries"]
    assert (dead["delivery_id"], dead["attempts"], dead["last_error"]) == (dead_id, 1, "HTTP 410 from the receiver")
    assert dead["next_attempt_at"] is None
    assert post(fleet, f"/v1/forwarding/{dead_id}/retry", token=READ_TOKEN).status_code == 403
    response = post(fleet, f"/v1/forwarding/{dead_id}/retry")
    assert response.status_code == 200, response.text
    retried = response.json()
    assert (retried["state"], retried["attempts"]) == ("pending", 0)
    assert retried["next_attempt_at"] == "2026-12-24T07:30:00.123456Z"
    assert dead_id in [d.delivery_id for d in fleet.store.ledger.due(GATEWAY_NOW, 10, {"webhook"})]
    again = post(fleet, f"/v1/forwarding/{dead_id}/retry")
    assert again.status_code == 409
    assert "not dead" in again.json()["detail"]
    assert post(fleet, f"/v1/forwarding/{max(delivery_ids) + 1}/retry").status_code == 404
    assert get(fleet, "/v1/forwarding", state="dead")["deliveries"] == []


def test_delivery_pages_follow_next_to_the_end(fleet: Fleet) -> None:
    add_owner(fleet)
    assert bind(fleet, CAR_B_KEY).status_code == 201
    expected = [d.delivery_id for d in fleet.store.ledger.deliveries(state=DeliveryState.PENDING)]
    seen: list[int] = []
    params: dict[str, str | int] = {"limit": 4, "state": "pending"}
    for _ in range(10):
        page = get(fleet, "/v1/forwarding", **params)
        seen += [d["delivery_id"] for d in page["deliveries"]]
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert seen == expected
    assert len(seen) == len(fleet.credits_b)


# --- exclusions --------------------------------------------------------------------------------


def test_a_charge_marked_as_credited_elsewhere_is_left_out_of_later_credits(fleet: Fleet) -> None:
    """After the mark, a new trip's credit counts the charge as excluded; credits already made stay as they were."""
    before = get(fleet, f"/v1/credits/{fleet.credits_a[0].hex()}")
    path = f"/v1/records/{fleet.charge_a.hex()}/exclusion"
    assert post(fleet, path, {"reason": "nope"}, token=READ_TOKEN).status_code == 403
    response = post(fleet, path, {"reason": "credited by the charge point operator"})
    assert response.status_code == 200, response.text
    assert response.json() == {"record_hash": fleet.charge_a.hex(), "reason": "credited by the charge point operator"}
    again = post(fleet, path, {"reason": "another reason"})
    assert again.json()["reason"] == "credited by the charge point operator"
    # A trip sent late (its device was offline): November, after the charge, so the charge is one of its inputs.
    fleet.builder_a.next_start_at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    (late,) = _commit(fleet.store, fleet.builder_a.key, [fleet.builder_a.trip()])
    assert fleet.crediting.run_once().decided == {Outcome.CREDITED: 1}
    body = CreditEntry.from_body(get(fleet, f"/v1/credits/{late.hex()}")["entry"]["body"])
    assert [(c.record_hash, c.excluded) for c in body.charges] == [(fleet.charge_a, True)]
    assert body.reduction.credited_share == 0
    assert get(fleet, f"/v1/credits/{fleet.credits_a[0].hex()}") == before


@pytest.mark.parametrize(
    ("target", "body", "status", "names"),
    [
        ("trip", {"reason": "x"}, 400, "not an accepted charge"),
        ("unknown", {"reason": "x"}, 404, "no record"),
        ("not-hex", {"reason": "x"}, 400, "record_hash"),
        ("charge", {"reason": " "}, 400, "reason"),
        ("charge", {}, 422, "body field 'reason'"),
    ],
)
def test_only_an_accepted_charge_can_be_excluded_with_a_reason(
    fleet: Fleet, target: str, body: JsonObject, status: int, names: str
) -> None:
    digest = {"trip": fleet.credits_a[0].hex(), "charge": fleet.charge_a.hex(), "unknown": "cd" * 32}.get(
        target, target
    )
    response = post(fleet, f"/v1/records/{digest}/exclusion", body)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]
    assert fleet.store.ledger.excluded_charges() == {}
