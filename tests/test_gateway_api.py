"""The operator API through real HTTP: uvicorn on a loopback port, httpx, and the real store on SQLite and PostgreSQL.

Records are signed with real device keys and committed with ``store.commit`` as intake would; every
route the app has is checked for its token, so a new route cannot slip in unprotected.
"""

import base64
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from carbonlink.acks import Outcome
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import sign, verify
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.testing import sample_charge, sample_trip
from carbonlink.vin import vin_hash
from carbonlink.wire import record_to_json
from gateway.api.app import PUBLIC_PATHS, create_app
from gateway.api.auth import Access, access_of
from gateway.api.settings import ApiSettings
from gateway.errors import ConfigError
from gateway.metrics import GatewayMetrics, Queue
from gateway.model import AcceptedRecord, RejectedMessage
from gateway.store import open_store
from gateway.store.record_store import RecordStore

from api_server import serving
from postgres_server import store_url  # noqa: F401

READ_TOKEN = "read-token-0123456789abcdef"  # noqa: S105 - a test token
ADMIN_TOKEN = "admin-token-0123456789abcdef"  # noqa: S105 - a test token
SETTINGS = ApiSettings(read_tokens=frozenset({READ_TOKEN}), admin_tokens=frozenset({ADMIN_TOKEN}))
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FIRST_START_AT = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
VIN = "WVWZZZ1KZ8W000001"

JsonObject = dict[str, Any]
"""A JSON object as the API answers it."""


def device_key(device_id: str, seed_byte: int) -> DeviceKey:
    return DeviceKey(device_id=device_id, seed=bytes([seed_byte]) * 32)


def signed_records(key: DeviceKey, count: int, *, received_from: datetime) -> list[AcceptedRecord]:
    """A chain of ``count`` records of the key's device, trips and charges in turn, two hours apart."""
    accepted: list[AcceptedRecord] = []
    previous = GENESIS_PREVIOUS_HASH
    for index in range(count):
        start_at = FIRST_START_AT + timedelta(hours=2 * index)
        build = sample_trip if index % 2 == 0 else sample_charge
        record = build(
            device_id=key.device_id,
            record_id=f"{key.device_id}-{index + 1}",
            sequence=index + 1,
            previous_record_hash=previous,
            start_at=start_at,
            end_at=start_at + timedelta(minutes=31),
        )
        signed = sign(record, key)
        previous = record_hash(signed)
        accepted.append(
            AcceptedRecord(
                signed=signed,
                record_hash=previous,
                record=record,
                kid=key.kid,
                received_at=received_from + timedelta(minutes=index),
            )
        )
    return accepted


def rejected_message(
    device_id: str | None, reason: RejectionReason, received_at: datetime, payload: bytes = b"\xa0not a record"
) -> RejectedMessage:
    return RejectedMessage(
        received_at=received_at,
        topic=f"carbonlink/v1/vehicles/{device_id or 'bad+topic'}/records",
        device_id=device_id,
        record_hash=record_hash(payload),
        record_id=None,
        sequence=None,
        reason=reason,
        detail=f"test: {reason}",
        payload=payload,
        payload_size=len(payload),
    )


class Readiness:
    """What intake would report: None when ready, else the reason."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> str | None:
        return self.reason


@dataclasses.dataclass
class Gateway:
    """A running API and the parts it was built around."""

    store: RecordStore
    metrics: GatewayMetrics
    readiness: Readiness
    http: httpx.Client
    routes: list[tuple[str, str]]
    """(method, path) of every route of the app."""


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, also those of included routers (FastAPI ≥ 0.13x nests them)."""
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415 - newer FastAPI only
    except ImportError:  # older FastAPI: app.routes holds every route itself
        routes: list[object] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    found = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None) or ()
        found += [(method, path) for method in sorted(methods) if method != "HEAD" and isinstance(path, str)]
    return found


@pytest.fixture
def gateway(store_url: str) -> Iterator[Gateway]:  # noqa: F811 - the fixture imported above
    store = open_store(store_url)
    metrics = GatewayMetrics()
    readiness = Readiness()
    app = create_app(SETTINGS, store=store, metrics=metrics, readiness=readiness, clock=lambda: NOW)
    try:
        with serving(app) as server, httpx.Client(base_url=server.url, timeout=10.0) as http:
            yield Gateway(store, metrics, readiness, http, _routes(app))
    finally:
        store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def concrete(path: str) -> str:
    """A route's path with its parameters filled in with well-formed values."""
    return path.replace("{device_id}", "ev-nobody").replace("{record_hash}", "00" * 32).replace("{rejection_id}", "1")


def register(gateway: Gateway, key: DeviceKey, **extra: str) -> JsonObject:
    body = {"device_id": key.device_id, "public_key": key.public_key.raw.hex(), **extra}
    response = gateway.http.post("/v1/devices", json=body, headers=auth(ADMIN_TOKEN))
    assert response.status_code == 201, response.text
    device: JsonObject = response.json()
    return device


# --- auth --------------------------------------------------------------------------------------


def test_every_route_but_the_public_ones_refuses_a_missing_or_wrong_token(gateway: Gateway) -> None:
    """Each route of the app answers 401 with a Bearer challenge without a valid token, except the public few."""
    protected = [(method, path) for method, path in gateway.routes if path not in PUBLIC_PATHS]
    assert len(protected) >= 12  # devices (5), records (3), rejections (3), metrics, summary
    for method, path in protected:
        for headers in ({}, auth("wrong-token-0123456789abcdef"), {"Authorization": f"Basic {READ_TOKEN}"}):
            response = gateway.http.request(method, concrete(path), headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)


def test_public_routes_answer_without_a_token(gateway: Gateway) -> None:
    """Health, readiness, the dashboard shell and the OpenAPI docs need no token; they hold no data."""
    public = {path for _, path in gateway.routes if path in PUBLIC_PATHS}
    assert {"/healthz", "/readyz", "/", "/docs", "/openapi.json"} <= public
    for path in sorted(public):
        assert gateway.http.get(path).status_code == 200, path


def test_a_read_token_reads_but_may_not_change_the_registry(gateway: Gateway) -> None:
    """Every route that changes something answers 403 to a read token; every read route answers it."""
    writes = [(method, path) for method, path in gateway.routes if method != "GET"]
    assert {path for _, path in writes} == {
        "/v1/devices",
        "/v1/devices/{device_id}/revoke",
        "/v1/devices/{device_id}/rotate-key",
        "/v1/owners",
        "/v1/vehicles/{vehicle_key}/binding",
        "/v1/forwarding/{delivery_id}/retry",
        "/v1/records/{record_hash}/exclusion",
    }
    for method, path in writes:
        response = gateway.http.request(method, concrete(path), headers=auth(READ_TOKEN), json={})
        assert response.status_code == 403, (method, path, response.text)
    for path in ("/v1/devices", "/v1/records", "/v1/rejections", "/v1/summary", "/metrics"):
        assert gateway.http.get(path, headers=auth(READ_TOKEN)).status_code == 200, path


def test_an_admin_token_also_reads() -> None:
    """Admin tokens include reading; a token in neither set has no access."""
    assert access_of(SETTINGS, ADMIN_TOKEN) is Access.ADMIN
    assert access_of(SETTINGS, READ_TOKEN) is Access.READ
    assert access_of(SETTINGS, READ_TOKEN + "x") is None
    assert access_of(SETTINGS, "") is None


@pytest.mark.parametrize("token", ["short-token", " padded-token-0123456789 ", "token-with\nnewline-0123456789"])
def test_settings_refuse_a_weak_token_without_echoing_it(token: str) -> None:
    """A guessable or mangled token is a configuration error whose message does not contain the token."""
    with pytest.raises(ConfigError, match="at least 16 printable characters") as caught:
        ApiSettings(admin_tokens=frozenset({token}))
    assert token.strip() not in str(caught.value)


def test_settings_refuse_an_impossible_port() -> None:
    """A port beyond 65535 is refused when the settings are built."""
    with pytest.raises(ConfigError, match=r"api\.port"):
        ApiSettings(port=70000)


# --- devices -----------------------------------------------------------------------------------


def test_a_device_is_registered_listed_rotated_and_revoked(gateway: Gateway) -> None:
    """An admin registers a device; rotation retires the old key, revoking a key or the device shows at once."""
    first, second = device_key("ev-fleet-0001", 1), device_key("ev-fleet-0001", 2)
    added = register(gateway, first, vin=VIN.lower(), vehicle_class="VAN")
    assert added["device_id"] == "ev-fleet-0001"
    assert added["vehicle_class"] == "van"
    assert added["status"] == "active"
    assert added["enrolment"] == "operator"
    assert added["vin_hash"] == vin_hash(VIN).hex()
    assert added["registered_at"] == "2026-12-01T12:00:00.000000Z"
    assert added["keys"] == [
        {
            "kid": first.kid.hex(),
            "public_key": first.public_key.raw.hex(),
            "status": "active",
            "added_at": "2026-12-01T12:00:00.000000Z",
            "retired_at": None,
            "revoked_at": None,
        }
    ]
    assert added["last_seen_at"] is None
    assert added["last_sequence"] is None
    admin, read = auth(ADMIN_TOKEN), auth(READ_TOKEN)
    assert gateway.http.get("/v1/devices/ev-fleet-0001", headers=read).json() == added
    assert gateway.http.get("/v1/devices", headers=read).json() == {"devices": [added]}

    rotated = gateway.http.post(
        "/v1/devices/ev-fleet-0001/rotate-key", json={"public_key": second.public_key.raw.hex()}, headers=admin
    )
    assert rotated.status_code == 200, rotated.text
    keys = rotated.json()["keys"]
    assert [(k["kid"], k["status"]) for k in keys] == [(first.kid.hex(), "retired"), (second.kid.hex(), "active")]

    one_key = gateway.http.post("/v1/devices/ev-fleet-0001/revoke", json={"kid": first.kid.hex()}, headers=admin)
    assert one_key.status_code == 200, one_key.text
    assert one_key.json()["status"] == "active"
    assert [k["status"] for k in one_key.json()["keys"]] == ["revoked", "active"]

    whole = gateway.http.post("/v1/devices/ev-fleet-0001/revoke", headers=admin)
    assert whole.status_code == 200, whole.text
    assert whole.json()["status"] == "revoked"
    assert {k["status"] for k in whole.json()["keys"]} == {"revoked"}
    assert gateway.http.get("/v1/devices/ev-fleet-0001", headers=read).json()["status"] == "revoked"


def test_a_base64_key_and_no_class_register_as_unspecified(gateway: Gateway) -> None:
    """A public key may be given in base64; a device without a class is 'unspecified' and has no VIN hash."""
    key = device_key("ev-fleet-0002", 3)
    added = register(gateway, key, public_key=base64.b64encode(key.public_key.raw).decode("ascii"))
    assert added["keys"][0]["kid"] == key.kid.hex()
    assert added["vehicle_class"] == "unspecified"
    assert added["vin_hash"] is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"device_id": "EV 1"}, 400, "device id 'EV 1' must be 3-64 characters"),
        ({"public_key": "not a key!"}, 400, "public key: a public key must be 64 hex digits or base64 of 32 bytes"),
        ({"public_key": "00" * 31}, 400, "public key: expected 64 hex digits or base64 of 32 bytes, got 62 hex digits"),
        ({"public_key": "AAA/"}, 400, "public key: an Ed25519 public key is 32 bytes, got 3"),
        ({"vin": "WVWZZZ1KZ8W00000I"}, 400, "VIN: 'WVWZZZ1KZ8W00000I' is not a VIN"),
        ({"vin": "SHORT"}, 400, "VIN: a VIN has 17 characters"),
        ({"vehicle_class": "tractor"}, 400, "unknown vehicle class 'tractor'; known classes: compact, suv, van, bus"),
        ({"public_key": None}, 422, "body field 'public_key'"),
        ({"colour": "red"}, 422, "body field 'colour': Extra inputs are not permitted"),
    ],
)
def test_registration_refuses_bad_input_with_a_precise_message(
    gateway: Gateway, body: dict[str, object], status: int, message: str
) -> None:
    """Each kind of bad registration is a 4xx whose detail names what is wrong."""
    valid = {"device_id": "ev-fleet-0003", "public_key": device_key("ev-fleet-0003", 4).public_key.raw.hex()}
    request = {k: v for k, v in (valid | body).items() if v is not None}
    response = gateway.http.post("/v1/devices", json=request, headers=auth(ADMIN_TOKEN))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert gateway.http.get("/v1/devices", headers=auth(READ_TOKEN)).json() == {"devices": []}


def test_registering_a_taken_device_id_or_key_is_a_conflict(gateway: Gateway) -> None:
    """A second device with the same id, or with a key registered to another device, is 409."""
    key = device_key("ev-fleet-0004", 5)
    register(gateway, key)
    other_key = device_key("ev-fleet-0004", 6).public_key.raw.hex()
    same_id = gateway.http.post(
        "/v1/devices", json={"device_id": "ev-fleet-0004", "public_key": other_key}, headers=auth(ADMIN_TOKEN)
    )
    assert same_id.status_code == 409, same_id.text
    assert "ev-fleet-0004" in same_id.json()["detail"]
    same_key = gateway.http.post(
        "/v1/devices",
        json={"device_id": "ev-fleet-0005", "public_key": key.public_key.raw.hex()},
        headers=auth(ADMIN_TOKEN),
    )
    assert same_key.status_code == 409, same_key.text
    rotate_to_taken = gateway.http.post(
        "/v1/devices/ev-fleet-0004/rotate-key", json={"public_key": key.public_key.raw.hex()}, headers=auth(ADMIN_TOKEN)
    )
    assert rotate_to_taken.status_code == 409, rotate_to_taken.text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v1/devices/ev-nobody", None, 404, "device 'ev-nobody' is not registered"),
        ("GET", "/v1/devices/EV!", None, 400, "device id 'EV!' must be 3-64 characters"),
        ("POST", "/v1/devices/ev-nobody/revoke", None, 404, "device 'ev-nobody' is not registered"),
        ("POST", "/v1/devices/ev-fleet-0006/revoke", {"kid": "xyz"}, 400, "kid must be 64 hex digits"),
        ("POST", "/v1/devices/ev-fleet-0006/revoke", {"kid": "ab" * 32}, 404, f"has no key {'ab' * 32}"),
        ("POST", "/v1/devices/ev-fleet-0006/revoke", {"kid": 7}, 422, "body field 'kid'"),
        ("POST", "/v1/devices/ev-nobody/rotate-key", {"public_key": "11" * 32}, 404, "is not registered"),
        ("POST", "/v1/devices/ev-fleet-0006/rotate-key", {"public_key": "zz"}, 400, "public key: "),
        ("POST", "/v1/devices/ev-fleet-0006/rotate-key", {}, 422, "body field 'public_key': Field required"),
    ],
)
def test_device_requests_refuse_bad_input_with_a_precise_message(  # noqa: PLR0913, PLR0917 - one argument per case column
    gateway: Gateway, method: str, path: str, body: dict[str, object] | None, status: int, message: str
) -> None:
    """Unknown devices and keys are 404, malformed ids and keys 400, wrongly typed bodies 422."""
    register(gateway, device_key("ev-fleet-0006", 7))
    response = gateway.http.request(method, path, json=body, headers=auth(ADMIN_TOKEN))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_revoked_device_cannot_get_a_new_key(gateway: Gateway) -> None:
    """Rotating the key of a revoked device is refused: the vehicle is registered anew instead."""
    register(gateway, device_key("ev-fleet-0007", 8))
    admin = auth(ADMIN_TOKEN)
    assert gateway.http.post("/v1/devices/ev-fleet-0007/revoke", headers=admin).status_code == 200
    response = gateway.http.post(
        "/v1/devices/ev-fleet-0007/rotate-key",
        json={"public_key": device_key("ev-fleet-0007", 9).public_key.raw.hex()},
        headers=admin,
    )
    assert response.status_code == 400, response.text
    assert "is revoked" in response.json()["detail"]


# --- records -----------------------------------------------------------------------------------

FLEET_A, FLEET_B = device_key("ev-fleet-0101", 11), device_key("ev-fleet-0102", 12)


@dataclasses.dataclass
class Stored:
    """What ``populated`` committed: records newest first, rejections newest first."""

    records: list[AcceptedRecord]
    rejections: list[RejectedMessage]


@pytest.fixture
def populated(gateway: Gateway) -> Stored:
    """Two devices with 5 and 3 records (B's received last) and 5 rejections, committed as intake would."""
    register(gateway, FLEET_A, vehicle_class="compact")
    register(gateway, FLEET_B)
    a = signed_records(FLEET_A, 5, received_from=NOW - timedelta(hours=2))
    b = signed_records(FLEET_B, 3, received_from=NOW - timedelta(hours=1))
    reasons = [
        (FLEET_A.device_id, RejectionReason.BAD_SIGNATURE),
        (None, RejectionReason.BAD_TOPIC),
        (FLEET_B.device_id, RejectionReason.SEQUENCE_GAP),
        ("ev-unregistered", RejectionReason.UNKNOWN_DEVICE),
        (FLEET_A.device_id, RejectionReason.SEQUENCE_GAP),
    ]
    rejections = [
        rejected_message(device, reason, NOW - timedelta(minutes=30 - index), payload=bytes([index]) * (index + 1))
        for index, (device, reason) in enumerate(reasons)
    ]
    gateway.store.commit(a, [], {FLEET_A.device_id: a[-1].received_at})
    gateway.store.commit(b, rejections, {FLEET_B.device_id: b[-1].received_at})
    return Stored(records=(a + b)[::-1], rejections=rejections[::-1])


def listed(gateway: Gateway, path: str, **params: str | int) -> JsonObject:
    response = gateway.http.get(path, params=params, headers=auth(READ_TOKEN))
    assert response.status_code == 200, response.text
    page: JsonObject = response.json()
    return page


def hashes(page: JsonObject) -> list[str]:
    return [item["record_hash"] for item in page["records"]]


def expected(records: list[AcceptedRecord]) -> list[str]:
    return [accepted.record_hash.hex() for accepted in records]


def test_records_are_listed_newest_first_with_their_summary(gateway: Gateway, populated: Stored) -> None:
    """The list holds every record, newest received first, with hashes and kids in lowercase hex."""
    page = listed(gateway, "/v1/records")
    assert hashes(page) == expected(populated.records)
    assert page["next"] is None
    newest = populated.records[0]
    assert page["records"][0] == {
        "record_hash": newest.record_hash.hex(),
        "device_id": "ev-fleet-0102",
        "type": "trip",
        "sequence": 3,
        "record_id": "ev-fleet-0102-3",
        "start_at": "2026-11-24T11:30:00.000000Z",
        "end_at": "2026-11-24T12:01:00.000000Z",
        "received_at": "2026-12-01T11:02:00.000000Z",
        "kid": FLEET_B.kid.hex(),
        "refused_for": None,
    }


def test_records_are_filtered_by_device_type_and_time(gateway: Gateway, populated: Stored) -> None:
    """device_id, type, from (ended at or after) and until (started before) each narrow the list."""
    records = populated.records
    of_a = [r for r in records if r.record.device_id == FLEET_A.device_id]
    assert hashes(listed(gateway, "/v1/records", device_id=FLEET_A.device_id)) == expected(of_a)
    trips = [r for r in records if r.record.RECORD_TYPE == "trip"]
    assert hashes(listed(gateway, "/v1/records", type="trip")) == expected(trips)
    cut = (FIRST_START_AT + timedelta(hours=3)).isoformat()
    assert hashes(listed(gateway, "/v1/records", **{"from": cut})) == expected(
        [r for r in records if r.record.sequence >= 3]
    )
    assert hashes(listed(gateway, "/v1/records", until=cut)) == expected([r for r in records if r.record.sequence <= 2])
    both = listed(gateway, "/v1/records", device_id=FLEET_B.device_id, type="charge", until=cut)
    assert hashes(both) == expected([r for r in records if r.record.device_id == FLEET_B.device_id][1:2])


@pytest.mark.parametrize("limit", [1, 3, 4, 8, 1000])
def test_record_pages_follow_next_to_the_end_without_gaps_or_repeats(
    gateway: Gateway, populated: Stored, limit: int
) -> None:
    """Following next page by page yields each record once, in order; the last page's next is null."""
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": limit}
    for _ in range(20):
        page = listed(gateway, "/v1/records", **params)
        assert len(page["records"]) <= limit
        seen += hashes(page)
        if page["next"] is None:
            break
        params["before"] = str(page["next"])
    assert seen == expected(populated.records)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_records_received_in_the_same_microsecond_are_never_split_across_pages(gateway: Gateway, limit: int) -> None:
    """Records sharing a receive time all land on one page (which may exceed limit), so none is skipped."""
    register(gateway, FLEET_A)
    register(gateway, FLEET_B)
    a = signed_records(FLEET_A, 3, received_from=NOW - timedelta(hours=1))
    b = signed_records(FLEET_B, 2, received_from=NOW - timedelta(hours=1))
    # a[0] and b[0] share a receive time; so do a[1] and b[1] (two gateway processes, one microsecond).
    gateway.store.commit(a + b, [], {})
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": limit}
    for _ in range(10):
        page = listed(gateway, "/v1/records", **params)
        seen += hashes(page)
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert sorted(seen) == sorted(expected(a + b))
    assert len(seen) == len(set(seen))


def test_chain_links_refused_for_their_content_are_listed_only_when_asked(gateway: Gateway) -> None:
    """A stored link refused for plausibility is left out by default, listed with include_refused, and says why."""
    register(gateway, FLEET_A)
    good, refused = signed_records(FLEET_A, 2, received_from=NOW - timedelta(hours=1))
    refused = dataclasses.replace(refused, refused_for=RejectionReason.IMPLAUSIBLE_ENERGY)
    gateway.store.commit([good, refused], [], {})
    assert hashes(listed(gateway, "/v1/records")) == expected([good])
    everything = listed(gateway, "/v1/records", include_refused="true")
    assert hashes(everything) == expected([refused, good])
    assert [item["refused_for"] for item in everything["records"]] == ["implausible_energy", None]
    detail = gateway.http.get(f"/v1/records/{refused.record_hash.hex()}", headers=auth(READ_TOKEN)).json()
    assert detail["refused_for"] == "implausible_energy"
    assert detail["verification"]["verify_again"]["verified"] is True


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"limit": 0}, 422, "query parameter 'limit': Input should be greater than or equal to 1"),
        ({"limit": 1001}, 422, "query parameter 'limit': Input should be less than or equal to 1000"),
        ({"limit": "many"}, 422, "query parameter 'limit'"),
        ({"type": "bus"}, 422, "query parameter 'type': Input should be 'trip' or 'charge'"),
        ({"from": "yesterday"}, 422, "query parameter 'from'"),
        ({"until": "2026-11-24T07:30:00"}, 422, "query parameter 'until': Input should have timezone info"),
        ({"before": "2026-13-01T00:00:00Z"}, 422, "query parameter 'before'"),
        ({"device_id": "ev-nobody"}, 404, "device 'ev-nobody' is not registered"),
        ({"device_id": "EV?"}, 400, "device id 'EV?' must be"),
    ],
)
def test_record_listing_refuses_bad_parameters_naming_them(
    gateway: Gateway, params: dict[str, str | int], status: int, message: str
) -> None:
    """Out-of-range limits, unknown types, unreadable times and unknown devices are 4xx naming the parameter."""
    response = gateway.http.get("/v1/records", params=params, headers=auth(READ_TOKEN))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_record_shows_its_fields_and_verifies_again(gateway: Gateway, populated: Stored) -> None:
    """The detail holds the record's JSON fields and its verification; re-verifying the stored bytes succeeds."""
    accepted = populated.records[-1]  # A's first record
    response = gateway.http.get(f"/v1/records/{accepted.record_hash.hex().upper()}", headers=auth(READ_TOKEN))
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["fields"] == record_to_json(accepted.record)
    assert detail["verification"] == {
        "device_id": FLEET_A.device_id,
        "kid": FLEET_A.kid.hex(),
        "key_status": "active",
        "record_hash": accepted.record_hash.hex(),
        "received_at": "2026-12-01T10:00:00.000000Z",
        "sequence": 1,
        "previous_record_hash": GENESIS_PREVIOUS_HASH.hex(),
        "signature_verified_on_intake": True,
        "verify_again": {
            "verified": True,
            "detail": f"the signature verifies with key {FLEET_A.kid.hex()} (active)",
            "checked_at": "2026-12-01T12:00:00.000000Z",
        },
    }
    assert detail["record_hash"] == accepted.record_hash.hex()


def test_a_record_shows_the_current_status_of_its_key(gateway: Gateway, populated: Stored) -> None:
    """After the device's key is rotated and then revoked, its records say so; the signature still verifies."""
    path = f"/v1/records/{populated.records[-1].record_hash.hex()}"
    admin, read = auth(ADMIN_TOKEN), auth(READ_TOKEN)
    new_key = device_key(FLEET_A.device_id, 13).public_key.raw.hex()
    gateway.http.post(f"/v1/devices/{FLEET_A.device_id}/rotate-key", json={"public_key": new_key}, headers=admin)
    assert gateway.http.get(path, headers=read).json()["verification"]["key_status"] == "retired"
    gateway.http.post(f"/v1/devices/{FLEET_A.device_id}/revoke", json={"kid": FLEET_A.kid.hex()}, headers=admin)
    verification = gateway.http.get(path, headers=read).json()["verification"]
    assert verification["key_status"] == "revoked"
    assert verification["verify_again"]["verified"] is True
    assert "(revoked)" in verification["verify_again"]["detail"]


def test_stored_bytes_that_no_longer_verify_are_reported(gateway: Gateway) -> None:
    """A record whose stored signature was altered, or whose key is unknown, fails verify_again and says why."""
    register(gateway, FLEET_A)
    good, unregistered = signed_records(FLEET_A, 2, received_from=NOW - timedelta(hours=1))
    tampered_bytes = good.signed[:-1] + bytes([good.signed[-1] ^ 1])  # the signature's last byte
    tampered = dataclasses.replace(good, signed=tampered_bytes, record_hash=record_hash(tampered_bytes))
    stranger = device_key(FLEET_A.device_id, 14)
    foreign_signed = sign(unregistered.record, stranger)
    foreign = dataclasses.replace(
        unregistered, signed=foreign_signed, record_hash=record_hash(foreign_signed), kid=stranger.kid
    )
    gateway.store.commit([tampered, foreign], [], {})
    again = gateway.http.get(f"/v1/records/{tampered.record_hash.hex()}", headers=auth(READ_TOKEN)).json()
    assert again["verification"]["verify_again"]["verified"] is False
    assert "does not verify" in again["verification"]["verify_again"]["detail"]
    again = gateway.http.get(f"/v1/records/{foreign.record_hash.hex()}", headers=auth(READ_TOKEN)).json()
    assert again["verification"]["key_status"] is None
    assert again["verification"]["verify_again"] == {
        "verified": False,
        "detail": f"no key {stranger.kid.hex()} is registered for device 'ev-fleet-0101'",
        "checked_at": "2026-12-01T12:00:00.000000Z",
    }


def test_raw_download_is_the_exact_signed_bytes(gateway: Gateway, populated: Stored) -> None:
    """/raw returns the signed bytes as a COSE_Sign1 attachment named after the record hash."""
    for accepted in populated.records[:2]:
        name = accepted.record_hash.hex()
        response = gateway.http.get(f"/v1/records/{name}/raw", headers=auth(READ_TOKEN))
        assert response.status_code == 200, response.text
        assert response.content == accepted.signed
        assert response.headers["content-type"] == 'application/cose; cose-type="cose-sign1"'
        assert response.headers["content-disposition"] == f'attachment; filename="{name}.cose"'
        key = FLEET_B if accepted.record.device_id == FLEET_B.device_id else FLEET_A
        assert verify(response.content, key.public_key) == accepted.record


@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_unknown_or_malformed_record_hashes_are_refused(gateway: Gateway, populated: Stored, suffix: str) -> None:
    """A hash that is not 64 hex digits is 400; a well-formed hash of no stored record is 404."""
    assert populated.records
    read = auth(READ_TOKEN)
    malformed = gateway.http.get(f"/v1/records/not-hex{suffix}", headers=read)
    assert malformed.status_code == 400, malformed.text
    assert malformed.json()["detail"] == "record_hash: must be 64 hex digits (a SHA-256 value), got 'not-hex'"
    unknown = gateway.http.get(f"/v1/records/{'ab' * 32}{suffix}", headers=read)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["detail"] == f"no accepted record has hash {'ab' * 32}"


# --- rejections --------------------------------------------------------------------------------


def rejection_ids(page: JsonObject) -> list[tuple[str | None, str]]:
    return [(item["device_id"], item["reason"]) for item in page["rejections"]]


def as_pairs(rejections: list[RejectedMessage]) -> list[tuple[str | None, str]]:
    return [(r.device_id, r.reason.value) for r in rejections]


def test_rejections_are_listed_newest_first_and_filtered(gateway: Gateway, populated: Stored) -> None:
    """Rejections list newest first; device_id (registered or not), reason and since narrow the list."""
    stored = populated.rejections
    page = listed(gateway, "/v1/rejections")
    assert rejection_ids(page) == as_pairs(stored)
    assert page["next"] is None
    first = page["rejections"][0]
    assert first["topic"] == "carbonlink/v1/vehicles/ev-fleet-0101/records"
    assert first["record_hash"] == stored[0].record_hash.hex()
    assert first["detail"] == "test: sequence_gap"
    assert first["payload_size"] == first["stored_bytes"] == 5
    assert first["received_at"] == "2026-12-01T11:34:00.000000Z"
    ids = [item["rejection_id"] for item in page["rejections"]]
    assert ids == sorted(ids, reverse=True)

    by_device = listed(gateway, "/v1/rejections", device_id=FLEET_A.device_id)
    assert rejection_ids(by_device) == [p for p in as_pairs(stored) if p[0] == FLEET_A.device_id]
    unregistered = listed(gateway, "/v1/rejections", device_id="ev-unregistered")
    assert rejection_ids(unregistered) == [("ev-unregistered", "unknown_device")]
    by_reason = listed(gateway, "/v1/rejections", reason="sequence_gap")
    assert rejection_ids(by_reason) == [p for p in as_pairs(stored) if p[1] == "sequence_gap"]
    since = listed(gateway, "/v1/rejections", since=(NOW - timedelta(minutes=28)).isoformat())
    assert rejection_ids(since) == as_pairs(stored[:3])


def test_rejection_pages_follow_next_to_the_end(gateway: Gateway, populated: Stored) -> None:
    """Pages of two follow next until it is null, each rejection once, newest first."""
    seen: list[tuple[str | None, str]] = []
    params: dict[str, str | int] = {"limit": 2}
    for _ in range(10):
        page = listed(gateway, "/v1/rejections", **params)
        seen += rejection_ids(page)
        if page["next"] is None:
            break
        params["before"] = int(page["next"])
    assert seen == as_pairs(populated.rejections)


def test_a_rejection_and_its_raw_payload_are_read_by_id(gateway: Gateway, populated: Stored) -> None:
    """One rejection by id, and its payload as kept, with the size received in a header."""
    newest = listed(gateway, "/v1/rejections", limit=1)["rejections"][0]
    rejection_id = newest["rejection_id"]
    one = gateway.http.get(f"/v1/rejections/{rejection_id}", headers=auth(READ_TOKEN))
    assert one.status_code == 200, one.text
    assert one.json() == newest
    raw = gateway.http.get(f"/v1/rejections/{rejection_id}/raw", headers=auth(READ_TOKEN))
    assert raw.status_code == 200, raw.text
    assert raw.content == populated.rejections[0].payload
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"] == f'attachment; filename="rejection-{rejection_id}.bin"'
    assert raw.headers["x-payload-size"] == "5"


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/v1/rejections", {"reason": "cosmic_rays"}, 422, "query parameter 'reason': Input should be 'too_large'"),
        ("/v1/rejections", {"limit": 1001}, 422, "query parameter 'limit'"),
        ("/v1/rejections", {"before": 0}, 422, "query parameter 'before'"),
        ("/v1/rejections", {"since": "2026-11-24"}, 422, "query parameter 'since'"),
        ("/v1/rejections", {"device_id": "no way"}, 400, "device id 'no way' must be"),
        ("/v1/rejections/987654", {}, 404, "no stored rejection has id 987654"),
        ("/v1/rejections/987654/raw", {}, 404, "no stored rejection has id 987654"),
        ("/v1/rejections/x", {}, 422, "path parameter 'rejection_id'"),
        ("/v1/rejections/0", {}, 422, "path parameter 'rejection_id'"),
    ],
)
def test_rejection_requests_refuse_bad_parameters_naming_them(
    gateway: Gateway, path: str, params: dict[str, str | int], status: int, message: str
) -> None:
    """Unknown reasons (listing the valid ones), bad limits, times and ids are 4xx naming the parameter."""
    response = gateway.http.get(path, params=params, headers=auth(READ_TOKEN))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    if "reason" in params:
        assert all(reason.value in response.json()["detail"] for reason in RejectionReason)


# --- health, readiness, metrics, summary, errors -------------------------------------------------


def test_readyz_reports_what_intake_says_and_healthz_is_always_alive(gateway: Gateway) -> None:
    """The readiness probe is 200 while the store answers and intake is ready, 503 with intake's reason otherwise."""
    assert gateway.http.get("/readyz").json() == {"status": "ready", "reason": None}
    gateway.readiness.reason = "mqtt not connected"
    not_ready = gateway.http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "not ready", "reason": "mqtt not connected"}
    healthz = gateway.http.get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {"status": "alive", "reason": None}


def test_a_database_failure_is_503_with_a_message_not_a_traceback(gateway: Gateway) -> None:
    """With the store closed, readyz and every read answer 503 naming the database; healthz stays 200."""
    gateway.store.close()
    not_ready = gateway.http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["reason"].startswith("store: ")
    failed = gateway.http.get("/v1/devices", headers=auth(READ_TOKEN))
    assert failed.status_code == 503, failed.text
    assert failed.json()["detail"].startswith("database unavailable: ")
    assert "Traceback" not in failed.text
    assert failed.headers["retry-after"] == "5"
    assert gateway.http.get("/healthz").status_code == 200


@pytest.mark.usefixtures("populated")
def test_metrics_are_prometheus_text_with_intake_names_and_no_device_label(gateway: Gateway) -> None:
    """/metrics is text format 0.0.4 with the intake metrics; no label and no value names a device."""
    gateway.metrics.count(Outcome.ACCEPTED, None)
    gateway.metrics.count(Outcome.REJECTED, RejectionReason.BAD_SIGNATURE)
    response = gateway.http.get("/metrics", headers=auth(READ_TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {
        "carbonlink_gateway_messages",
        "carbonlink_gateway_stage_seconds",
        "carbonlink_gateway_queue_depth",
        "carbonlink_gateway_queue_overflows",
        "carbonlink_gateway_mqtt_connected",
        "carbonlink_gateway_batch_messages",
    } <= set(families)
    label_names = {name for family in families.values() for sample in family.samples for name in sample.labels}
    assert label_names <= {"outcome", "reason", "stage", "queue", "le", "result"}
    assert not any("device" in name for name in label_names)
    for device in (FLEET_A.device_id, FLEET_B.device_id, "ev-unregistered"):
        assert device not in response.text
    rejected = [
        s
        for s in families["carbonlink_gateway_messages"].samples
        if s.name.endswith("_total") and s.labels == {"outcome": "rejected", "reason": "bad_signature"}
    ]
    assert [s.value for s in rejected] == [1.0]


def test_the_summary_counts_outcomes_reasons_queues_and_devices(gateway: Gateway, populated: Stored) -> None:
    """/v1/summary adds up the metrics by outcome and reason, and counts devices by status."""
    assert populated.records
    for _ in range(3):
        gateway.metrics.count(Outcome.ACCEPTED, None)
    gateway.metrics.count(Outcome.DUPLICATE, None)
    gateway.metrics.count(Outcome.REJECTED, RejectionReason.SEQUENCE_GAP)
    gateway.metrics.count(Outcome.REJECTED, RejectionReason.SEQUENCE_GAP)
    gateway.metrics.count(Outcome.REJECTED, RejectionReason.OVERLAP)
    gateway.metrics.queue_depth.labels(queue=Queue.INTAKE.value).set(17)
    gateway.metrics.queue_overflows.labels(queue=Queue.ACKS.value).inc(2)
    gateway.metrics.mqtt_connected.set(1)
    gateway.http.post(f"/v1/devices/{FLEET_B.device_id}/revoke", headers=auth(ADMIN_TOKEN))
    summary = listed(gateway, "/v1/summary")
    assert summary["generated_at"] == "2026-12-01T12:00:00.000000Z"
    assert summary["messages"] == {"accepted": 3, "duplicate": 1, "rejected": 3}
    rejections = summary["rejections"]
    assert rejections == {reason.value: 0 for reason in RejectionReason} | {"sequence_gap": 2, "overlap": 1}
    assert summary["queue_depth"] == {"intake": 17, "acks": 0}
    assert summary["queue_overflows"] == {"intake": 0, "acks": 2}
    assert summary["mqtt_connected"] is True
    assert summary["devices"] == {"total": 2, "active": 1, "revoked": 1}


def test_openapi_describes_every_route_and_the_bearer_scheme(gateway: Gateway) -> None:
    """The public OpenAPI schema names every API route and marks each protected one with the bearer scheme."""
    schema = gateway.http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "A read or admin token: the content of a file named by [api] read_token_files or admin_token_files "
            "in gateway.toml."
        ),
    }
    documented = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    api_routes = {
        (m, p) for m, p in gateway.routes if p not in {"/", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
    }
    assert documented == api_routes
    for method, path in api_routes - {("GET", "/healthz"), ("GET", "/readyz")}:
        assert schema["paths"][path][method.lower()]["security"] == [{"HTTPBearer": []}], (method, path)


def test_the_api_page_lists_every_route(tmp_path: Path) -> None:
    """docs/gateway-api.md names every route of the app as `METHOD /path`, so the page stays true to the code."""
    store = open_store(f"sqlite:///{tmp_path}/routes.db")
    try:
        app = create_app(SETTINGS, store=store, metrics=GatewayMetrics())
    finally:
        store.close()
    page = (Path(__file__).resolve().parent.parent / "docs" / "gateway-api.md").read_text(encoding="utf-8")
    described_in_text = {"/docs", "/docs/oauth2-redirect", "/openapi.json"}
    missing = [f"{m} {p}" for m, p in _routes(app) if p not in described_in_text and f"`{m} {p}`" not in page]
    assert missing == []
