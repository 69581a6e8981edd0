"""The gateway end to end on a real Mosquitto and both stores: each fault gets its own rejection reason.

Every test publishes as a vehicle would, then checks all four places an operator can see the
outcome: the ack on the vehicle's ack topic, the stored rejection, the Prometheus counter and
the operator API.
"""

import copy
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cbor2
import httpx
import pytest

from carbonlink import cbor
from carbonlink.acks import Outcome
from carbonlink.enrolment import issue_certificate
from carbonlink.envelope import ALG_EDDSA, COSE_SIGN1_TAG, sig_structure
from carbonlink.keys import DeviceKey
from carbonlink.reasons import RejectionReason
from carbonlink.records import TripRecord
from carbonlink.topics import enrolment_topic, records_topic
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash
from carbonlink.wire import record_to_map
from gateway.model import Enrolment, RecordQuery, RejectionQuery
from gateway.store import open_store

from gateway_harness import GATEWAY_NOW, AckListener, ChainBuilder, RunningGateway, running_gateway
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401
from postgres_server import store_url  # noqa: F401
from waiting import wait_for

VIN = "WVWZZZE1ZNP000001"


def _key(n: int, device_id: str) -> DeviceKey:
    return DeviceKey.from_seed(bytes([n]) * 32, device_id)


@dataclass
class Scene:
    """A running gateway, a listener for acks, and a registered vehicle with its chain."""

    gw: RunningGateway
    vehicles: AckListener
    chain: ChainBuilder

    @property
    def topic(self) -> str:
        return records_topic(self.chain.key.device_id)

    def register(
        self, key: DeviceKey, vin: str | None = VIN, vehicle_class: VehicleClass = VehicleClass.COMPACT
    ) -> None:
        self.gw.gateway.store.add_device(
            key.device_id,
            key.public_key,
            vehicle_class=vehicle_class,
            vin_hash=None if vin is None else vin_hash(vin),
            enrolment=Enrolment.OPERATOR,
            at=GATEWAY_NOW - timedelta(days=60),
        )

    def send(self, payload: bytes, topic: str | None = None) -> bytes:
        return self.vehicles.publish(topic or self.topic, payload)

    def accept(self, payload: bytes) -> None:
        ack = self.vehicles.wait_ack(self.send(payload))
        assert ack.outcome is Outcome.ACCEPTED, ack

    def api(self, path: str) -> httpx.Response:
        return httpx.get(
            self.gw.api_url + path, headers={"Authorization": f"Bearer {self.gw.tokens.read}"}, timeout=10.0
        )


@pytest.fixture
def scene(mosquitto: MosquittoBroker, store_url: str, tmp_path: Path) -> Iterator[Scene]:  # noqa: F811
    vehicles = AckListener(mosquitto.host, mosquitto.port)
    try:
        with running_gateway(mosquitto.host, mosquitto.port, store_url, tmp_path) as gw:
            chain = ChainBuilder(_key(7, "ev-intake-0001"), vin_hash=vin_hash(VIN))
            result = Scene(gw, vehicles, chain)
            result.register(chain.key)
            yield result
    finally:
        vehicles.close()


def _sign_map(key: DeviceKey, payload_map: dict[str, object], content_type: str = "trip.v1") -> bytes:
    """Sign any payload map as a record would be signed: for faults that sign() itself refuses to make."""
    protected = cbor.encode({1: ALG_EDDSA, 3: f"application/vnd.carbonlink.{content_type}+cbor", 4: key.kid})
    payload = cbor.encode(payload_map)
    signature = key.sign(sig_structure(protected, payload))
    return cbor.encode(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


# --- one fault per reason: each returns (topic or None for the vehicle's own, payload) ---------------

Fault = Callable[[Scene], tuple[str | None, bytes]]


def too_large(_s: Scene) -> tuple[str | None, bytes]:
    return None, bytes(8193)


def bad_topic(s: Scene) -> tuple[str | None, bytes]:
    return "carbonlink/v1/vehicles/X/records", s.chain.trip()[0]


def malformed(_s: Scene) -> tuple[str | None, bytes]:
    return None, b"\xff not a COSE message"


def unsupported_version(s: Scene) -> tuple[str | None, bytes]:
    record = s.chain.trip()[1]
    return None, _sign_map(s.chain.key, record_to_map(record), "trip.v2")


def unknown_device(_s: Scene) -> tuple[str | None, bytes]:
    stranger = ChainBuilder(_key(9, "ev-stranger-01"))
    return records_topic("ev-stranger-01"), stranger.trip()[0]


def revoked_key(s: Scene) -> tuple[str | None, bytes]:
    s.gw.gateway.store.revoke_device(s.chain.key.device_id, at=GATEWAY_NOW)
    return None, s.chain.trip()[0]


def bad_signature(s: Scene) -> tuple[str | None, bytes]:
    signed = bytearray(s.chain.trip()[0])
    signed[-1] ^= 0x01
    return None, bytes(signed)


def schema(s: Scene) -> tuple[str | None, bytes]:
    fields = record_to_map(s.chain.trip()[1])
    del fields["energy_out_wh"]
    return None, _sign_map(s.chain.key, fields)


def device_mismatch(s: Scene) -> tuple[str | None, bytes]:
    impostor = ChainBuilder(DeviceKey(device_id="ev-other-0002", seed=s.chain.key.seed))
    return None, impostor.trip()[0]


def sequence_gap(s: Scene) -> tuple[str | None, bytes]:
    s.chain.trip()  # sequence 1, never sent
    return None, s.chain.trip()[0]


def chain_break(s: Scene) -> tuple[str | None, bytes]:
    s.accept(s.chain.trip()[0])
    return None, s.chain.trip(previous_record_hash=bytes(range(32)))[0]


def replayed(s: Scene) -> tuple[str | None, bytes]:
    first, record = s.chain.trip()
    s.accept(first)
    return None, s.chain.sign_unchained(dataclasses.replace(record, record_id="another-id-0001", energy_out_wh=1900.0))


def clock_skew(s: Scene) -> tuple[str | None, bytes]:
    start = GATEWAY_NOW + timedelta(days=2)
    return None, s.chain.trip(start_at=start, end_at=start + timedelta(minutes=31))[0]


def time_order(s: Scene) -> tuple[str | None, bytes]:
    first, record = s.chain.trip()
    s.accept(first)
    return None, s.chain.trip(start_at=record.end_at - timedelta(minutes=10))[0]


def implausible_energy(s: Scene) -> tuple[str | None, bytes]:
    return None, s.chain.trip(energy_out_wh=40_000.0, soc_start_pct=None, soc_end_pct=None)[0]


def implausible_distance(s: Scene) -> tuple[str | None, bytes]:
    return None, s.chain.trip(odometer_end_m=s.chain.odometer_m + 30_000.0)[0]


def implausible_soc(s: Scene) -> tuple[str | None, bytes]:
    return None, s.chain.trip(soc_start_pct=90.0, soc_end_pct=20.0)[0]


def implausible_speed(s: Scene) -> tuple[str | None, bytes]:
    start = s.chain.next_start_at
    return None, s.chain.trip(end_at=start + timedelta(minutes=2), soc_start_pct=None, soc_end_pct=None)[0]


def implausible_charge_efficiency(s: Scene) -> tuple[str | None, bytes]:
    return None, s.chain.charge(grid_energy_wh=3_000.0)[0]


def odometer_rollback(s: Scene) -> tuple[str | None, bytes]:
    s.accept(s.chain.trip()[0])
    s.chain.odometer_m -= 50_000.0
    return None, s.chain.trip()[0]


def overlap(s: Scene) -> tuple[str | None, bytes]:
    first, record = s.chain.trip()
    s.accept(first)
    # The same car's head unit swapped: a new device, same VIN, claims kilometres already accepted.
    swapped = ChainBuilder(
        _key(11, "ev-swapped-0001"), vin_hash=vin_hash(VIN), odometer_m=record.odometer_start_m or 0.0
    )
    s.register(swapped.key)
    swapped.next_start_at = record.end_at + timedelta(hours=3)
    return records_topic("ev-swapped-0001"), swapped.trip()[0]


FAULTS: dict[RejectionReason, Fault] = {
    RejectionReason.TOO_LARGE: too_large,
    RejectionReason.BAD_TOPIC: bad_topic,
    RejectionReason.MALFORMED: malformed,
    RejectionReason.UNSUPPORTED_VERSION: unsupported_version,
    RejectionReason.UNKNOWN_DEVICE: unknown_device,
    RejectionReason.REVOKED_KEY: revoked_key,
    RejectionReason.BAD_SIGNATURE: bad_signature,
    RejectionReason.SCHEMA: schema,
    RejectionReason.DEVICE_MISMATCH: device_mismatch,
    RejectionReason.SEQUENCE_GAP: sequence_gap,
    RejectionReason.CHAIN_BREAK: chain_break,
    RejectionReason.REPLAYED: replayed,
    RejectionReason.CLOCK_SKEW: clock_skew,
    RejectionReason.TIME_ORDER: time_order,
    RejectionReason.IMPLAUSIBLE_ENERGY: implausible_energy,
    RejectionReason.IMPLAUSIBLE_DISTANCE: implausible_distance,
    RejectionReason.IMPLAUSIBLE_SOC: implausible_soc,
    RejectionReason.IMPLAUSIBLE_SPEED: implausible_speed,
    RejectionReason.IMPLAUSIBLE_CHARGE_EFFICIENCY: implausible_charge_efficiency,
    RejectionReason.ODOMETER_ROLLBACK: odometer_rollback,
    RejectionReason.OVERLAP: overlap,
}


def test_every_rejection_reason_has_a_fault_test() -> None:
    """The fault table covers the whole fixed list of reasons, so a new reason cannot go untested."""
    assert set(FAULTS) == set(RejectionReason)


def _rejected_count(s: Scene, reason: RejectionReason) -> float:
    value = s.gw.gateway.metrics.registry.get_sample_value(
        "carbonlink_gateway_messages_total", {"outcome": "rejected", "reason": reason.value}
    )
    return value or 0.0


@pytest.mark.parametrize("reason", list(FAULTS), ids=str)
def test_each_fault_is_rejected_with_its_reason_everywhere(scene: Scene, reason: RejectionReason) -> None:
    """A message with exactly one fault is rejected for that reason: in the ack, the store, the metric and the API."""
    topic, payload = FAULTS[reason](scene)
    digest = scene.send(payload, topic)
    if reason is RejectionReason.BAD_TOPIC:
        wait_for(lambda: _rejected_count(scene, reason) == 1, "the bad_topic rejection")
        assert scene.vehicles.acks_for(digest) == []  # there is no vehicle to answer
    else:
        ack = scene.vehicles.wait_ack(digest)
        assert (ack.outcome, ack.reason) == (Outcome.REJECTED, reason), ack.detail
        assert ack.detail
        assert _rejected_count(scene, reason) == 1
    stored = scene.gw.gateway.store.rejections(RejectionQuery(reason=reason))
    assert [r.record_hash for r in stored] == [digest]
    assert stored[0].payload == payload[:8192]
    assert stored[0].payload_size == len(payload)
    listed = scene.api(f"/v1/rejections?reason={reason.value}")
    assert listed.status_code == 200, listed.text
    assert [item["record_hash"] for item in listed.json()["rejections"]] == [digest.hex()]


def test_records_are_accepted_and_a_resend_is_a_duplicate(scene: Scene) -> None:
    """A chain of trips and charges is accepted in order; resending any of them is acknowledged as duplicate."""
    signed = [scene.chain.trip()[0], scene.chain.charge()[0], scene.chain.trip()[0]]
    for payload in signed:
        scene.accept(payload)
    for payload in signed:
        digest = scene.send(payload)
        assert scene.vehicles.wait_ack(digest, count=2).outcome is Outcome.DUPLICATE
    stored = scene.gw.gateway.store.records(RecordQuery(device_id=scene.chain.key.device_id))
    assert sorted(r.signed for r in stored) == sorted(signed)
    assert scene.gw.gateway.store.rejections(RejectionQuery()) == []


def test_a_burst_is_committed_in_batches_and_every_record_acknowledged(scene: Scene) -> None:
    """Two hundred records published back to back are all accepted, in order, with fewer commits than records."""
    signed = [scene.chain.trip()[0] if n % 2 else scene.chain.charge()[0] for n in range(200)]
    digests = [scene.send(payload) for payload in signed]
    for digest in digests:
        assert scene.vehicles.wait_ack(digest).outcome is Outcome.ACCEPTED
    device = scene.gw.gateway.store.device(scene.chain.key.device_id)
    assert device is not None
    assert device.last_sequence == 200
    batches = scene.gw.gateway.metrics.registry.get_sample_value("carbonlink_gateway_batch_messages_count")
    assert batches is not None
    assert batches < 200


def test_a_gap_closes_when_the_missing_record_arrives(scene: Scene) -> None:
    """A record that came too early is rejected as sequence_gap, then accepted when resent after its predecessor."""
    first, second = scene.chain.trip()[0], scene.chain.trip()[0]
    early = scene.send(second)
    assert scene.vehicles.wait_ack(early).reason is RejectionReason.SEQUENCE_GAP
    scene.accept(first)
    scene.send(second)
    assert scene.vehicles.wait_ack(early, count=2).outcome is Outcome.ACCEPTED


def test_a_rotated_key_signs_on_and_the_old_one_only_for_earlier_records(scene: Scene) -> None:
    """After a rotation the new key signs on; the old key is still good for records that ended before it."""
    device_id = scene.chain.key.device_id
    before_rotation, _ = scene.chain.trip()
    scene.gw.gateway.store.rotate_key(device_id, _key(21, device_id).public_key, at=scene.chain.next_start_at)
    scene.accept(before_rotation)
    late_old, _ = copy.copy(scene.chain).trip()  # signed by the old key, ends after the rotation
    assert scene.vehicles.wait_ack(scene.send(late_old)).reason is RejectionReason.REVOKED_KEY
    scene.chain.key = _key(21, device_id)
    scene.accept(scene.chain.trip()[0])


def test_shutdown_commits_what_is_queued_and_confirms_every_ack(
    mosquitto: MosquittoBroker,  # noqa: F811
    store_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Stopping during a burst still commits every message intake took, and every ack has left when stop returns."""
    vehicles = AckListener(mosquitto.host, mosquitto.port)
    chain = ChainBuilder(_key(31, "ev-shutdown-001"))
    try:
        with running_gateway(mosquitto.host, mosquitto.port, store_url, tmp_path) as gw:
            Scene(gw, vehicles, chain).register(chain.key, vin=None)
            signed = [chain.trip()[0] for _ in range(300)]
            digests = [vehicles.publish(records_topic(chain.key.device_id), payload) for payload in signed]
            wait_for(lambda: gw.gateway.intake.received >= 1, "the first message to reach intake")
        taken = gw.gateway.intake.received
        assert taken >= 1
        for digest in digests[:taken]:
            assert vehicles.wait_ack(digest).outcome is Outcome.ACCEPTED
        store = open_store(store_url)
        try:
            assert len(store.records(RecordQuery(limit=1000))) == taken
        finally:
            store.close()
    finally:
        vehicles.close()


def test_records_of_unknown_class_are_judged_by_the_widest_bounds(scene: Scene) -> None:
    """A device registered without a vehicle class still has its plausible records accepted."""
    bus = ChainBuilder(_key(41, "ev-unclassed-01"))
    scene.register(bus.key, vin=None, vehicle_class=VehicleClass.UNSPECIFIED)
    digest = scene.send(bus.trip()[0], records_topic("ev-unclassed-01"))
    assert scene.vehicles.wait_ack(digest).outcome is Outcome.ACCEPTED


def test_a_trip_record_is_stored_with_its_exact_bytes_and_fields(scene: Scene) -> None:
    """The stored record keeps the exact signed bytes, the key id and the decoded fields; the API serves the bytes."""
    signed, record = scene.chain.trip()
    scene.accept(signed)
    stored = scene.gw.gateway.store.records(RecordQuery())[0]
    assert stored.signed == signed
    assert stored.kid == scene.chain.key.kid
    assert stored.fields["distance_m"] == record.distance_m
    assert isinstance(record, TripRecord)
    raw = scene.api(f"/v1/records/{stored.record_hash.hex()}/raw")
    assert raw.content == signed


def test_a_vehicle_with_an_enrolment_certificate_is_registered_on_first_contact(
    mosquitto: MosquittoBroker,  # noqa: F811
    store_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A certificate signed by the configured fleet authority registers the device; its records are then accepted."""
    authority = _key(51, "fleet-authority")
    device = _key(52, "ev-enrolled-001")
    certificate = issue_certificate(
        authority,
        device_public_key=device.public_key,
        device_id=device.device_id,
        vehicle_class=VehicleClass.VAN,
        vin_hash=vin_hash(VIN),
        issued_at=GATEWAY_NOW - timedelta(days=1),
        expires_at=GATEWAY_NOW + timedelta(days=365),
        authority="test fleet",
    )
    stranger_certificate = issue_certificate(
        _key(53, "other-authority"),
        device_public_key=_key(54, "ev-stranger-02").public_key,
        device_id="ev-stranger-02",
        vehicle_class=VehicleClass.VAN,
        vin_hash=None,
        issued_at=GATEWAY_NOW - timedelta(days=1),
        expires_at=GATEWAY_NOW + timedelta(days=365),
        authority="nobody we know",
    )
    enrolment = f'[enrolment]\nauthority_public_keys = ["{authority.public_key.raw.hex()}"]\n'
    vehicles = AckListener(mosquitto.host, mosquitto.port)
    try:
        with running_gateway(mosquitto.host, mosquitto.port, store_url, tmp_path, extra_toml=enrolment) as gw:
            vehicles.publish(enrolment_topic("ev-stranger-02"), stranger_certificate)
            vehicles.publish(enrolment_topic(device.device_id), certificate)
            digest = vehicles.publish(records_topic(device.device_id), ChainBuilder(device).trip()[0])
            assert vehicles.wait_ack(digest).outcome is Outcome.ACCEPTED
            registered = gw.gateway.store.device(device.device_id)
            assert registered is not None
            assert (registered.enrolment, registered.vehicle_class) == (Enrolment.CERTIFICATE, VehicleClass.VAN)
            assert registered.vin_hash == vin_hash(VIN)
            assert gw.gateway.store.device("ev-stranger-02") is None
            sample = gw.gateway.metrics.registry.get_sample_value
            assert sample("carbonlink_gateway_enrolments_total", {"result": "register"}) == 1
            assert sample("carbonlink_gateway_enrolments_total", {"result": "refused"}) == 1
    finally:
        vehicles.close()


def test_a_record_refused_for_its_content_does_not_stall_the_chain(scene: Scene) -> None:
    """An authentic record refused as implausible stays a chain link: the next record follows it and is accepted.

    A resend of the refused record gets the same rejection again (never ``duplicate``), and the record
    is stored as a refused link that operators can list but that is not among the accepted records.
    """
    refused, _ = scene.chain.trip(energy_out_wh=40_000.0, soc_start_pct=None, soc_end_pct=None)
    digest = scene.send(refused)
    assert scene.vehicles.wait_ack(digest).reason is RejectionReason.IMPLAUSIBLE_ENERGY
    scene.accept(scene.chain.trip()[0])
    scene.send(refused)
    again = scene.vehicles.wait_ack(digest, count=2)
    assert (again.outcome, again.reason) == (Outcome.REJECTED, RejectionReason.IMPLAUSIBLE_ENERGY)
    store = scene.gw.gateway.store
    assert [r.sequence for r in store.records(RecordQuery())] == [2]
    links = store.records(RecordQuery(include_refused=True))
    assert sorted((r.sequence, r.refused_for) for r in links) == [(1, RejectionReason.IMPLAUSIBLE_ENERGY), (2, None)]
