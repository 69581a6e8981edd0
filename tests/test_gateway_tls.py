"""The gateway over TLS, against a real Mosquitto that requires client certificates (DESIGN.md §4).

The broker maps each certificate's common name to the MQTT user name; its ACL lets a device write
only its own records and read only its own acks, and lets the gateway (its own certificate) read
and write everything under ``carbonlink/``. The gateway subscribes, verifies and acknowledges over
that TLS connection.
"""

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonlink.acks import Outcome
from carbonlink.keys import DeviceKey
from carbonlink.topics import acks_topic, records_topic
from carbonlink.vehicles import VehicleClass
from gateway.model import Enrolment

from gateway_harness import GATEWAY_NOW, AckListener, ChainBuilder, running_gateway
from mosquitto_broker import BrokerTls, MosquittoBroker, running_mosquitto
from tls_certificates import GATEWAY_COMMON_NAME, CertificateSet, write_certificates

DEVICE = "ev-tls-gw-0001"
ACL = (
    "pattern write carbonlink/v1/vehicles/%u/records\n"
    "pattern read carbonlink/v1/vehicles/%u/acks\n"
    f"user {GATEWAY_COMMON_NAME}\n"
    "topic readwrite carbonlink/#\n"
)


@pytest.fixture
def certificates(tmp_path: Path) -> CertificateSet:
    return write_certificates(tmp_path / "certificates", DEVICE, "ev-tls-gw-0002")


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: CertificateSet) -> Iterator[MosquittoBroker]:
    tls = BrokerTls(certificates.ca_file, certificates.broker.cert_file, certificates.broker.key_file)
    with running_mosquitto(tmp_path / "mosquitto", acl=ACL, tls=tls) as broker:
        yield broker


def test_the_gateway_verifies_and_acknowledges_over_tls_with_client_certificates(
    tmp_path: Path, tls_broker: MosquittoBroker, certificates: CertificateSet
) -> None:
    """A device's record published over TLS is accepted and its ack reaches the device over TLS."""
    assert tls_broker.tls_port is not None
    gateway_tls = (
        f'[mqtt.tls]\nca_file = "{certificates.ca_file}"\n'
        f'cert_file = "{certificates.gateway.cert_file}"\nkey_file = "{certificates.gateway.key_file}"\n'
    )
    device_context = ssl.create_default_context(cafile=certificates.ca_file)
    device = certificates.device
    device_context.load_cert_chain(device.cert_file, device.key_file)
    store_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    with running_gateway(tls_broker.host, tls_broker.tls_port, store_url, tmp_path, extra_toml=gateway_tls) as gw:
        key = DeviceKey.from_seed(bytes([3]) * 32, DEVICE)
        gw.gateway.store.add_device(
            DEVICE, key.public_key, vehicle_class=VehicleClass.COMPACT, vin_hash=None,
            enrolment=Enrolment.OPERATOR, at=GATEWAY_NOW,
        )  # fmt: skip
        vehicle = AckListener(tls_broker.host, tls_broker.tls_port, tls=device_context, acks=acks_topic(DEVICE))
        try:
            digest = vehicle.publish(records_topic(DEVICE), ChainBuilder(key).trip()[0])
            assert vehicle.wait_ack(digest).outcome is Outcome.ACCEPTED
        finally:
            vehicle.close()
