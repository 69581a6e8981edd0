"""The agent's MQTT uplink over TLS, against a real Mosquitto that requires client certificates.

As in production (DESIGN.md §4), the broker's TLS listener makes a client certificate's common name
the MQTT user name, and an ACL lets a device write only under its own id. Certificates are made per
test (``tls_certificates``); the test gateway connects over TLS with its own. Everything is waited for
on a condition with a deadline.
"""

import logging
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.errors import ConfigError, UplinkError
from agent.uplink.paho_uplink import PahoUplink
from agent.uplink.settings import TlsSettings, UplinkSettings
from carbonlink.chain import record_hash

from mosquitto_broker import BrokerTls, MosquittoBroker, running_mosquitto
from test_agent_uplink import DEVICE, AckingGateway, InMemoryOutbox, seal
from tls_certificates import GATEWAY_COMMON_NAME, CertificateFiles, CertificateSet, write_certificates
from waiting import holds_within, wait_for

OTHER_DEVICE = "ev-test-0002"
DEVICE_ACL = (
    "pattern write carbonlink/v1/vehicles/%u/records\n"
    "pattern write carbonlink/v1/vehicles/%u/status\n"
    "pattern read carbonlink/v1/vehicles/%u/acks\n"
    f"user {GATEWAY_COMMON_NAME}\n"
    "topic readwrite carbonlink/#\n"
)
"""A device (user name = its certificate's CN) writes its records and status and reads its acks, nothing else."""


class TlsGateway(AckingGateway):
    """The acking test gateway, on the broker's TLS listener with its own client certificate."""

    def __init__(self, broker: MosquittoBroker, certificates: CertificateSet, *, check_hostname: bool = True) -> None:
        super().__init__(broker)
        context = ssl.create_default_context(cafile=certificates.ca_file)
        context.check_hostname = check_hostname
        context.load_cert_chain(certificates.gateway.cert_file, certificates.gateway.key_file)
        self.client.tls_set_context(context)

    def start(self) -> None:
        assert self._broker.tls_port is not None
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 300
        self.client.connect(self._broker.host, self._broker.tls_port, clean_start=False, properties=properties)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, "the gateway's subscription")


def broker_tls(certificates: CertificateSet, broker_certificate: CertificateFiles) -> BrokerTls:
    return BrokerTls(certificates.ca_file, broker_certificate.cert_file, broker_certificate.key_file)


def device_tls(certificates: CertificateSet, device: CertificateFiles | None) -> TlsSettings:
    """The uplink's TLS settings: the test CA, and ``device``'s certificate if given."""
    if device is None:
        return TlsSettings(ca_file=certificates.ca_file)
    return TlsSettings(ca_file=certificates.ca_file, cert_file=device.cert_file, key_file=device.key_file)


def log_lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.name == "agent.uplink" and r.getMessage().startswith(event + " ")]


@pytest.fixture
def certificates(tmp_path: Path) -> CertificateSet:
    return write_certificates(tmp_path / "certificates", DEVICE, OTHER_DEVICE)


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: CertificateSet) -> Iterator[MosquittoBroker]:
    """Mosquitto with a TLS listener for 127.0.0.1 that requires client certificates, and the device ACL."""
    tls = broker_tls(certificates, certificates.broker)
    with running_mosquitto(tmp_path / "mosquitto", acl=DEVICE_ACL, tls=tls) as broker:
        yield broker


@pytest.fixture
def tls_gateway(tls_broker: MosquittoBroker, certificates: CertificateSet) -> Iterator[TlsGateway]:
    gateway = TlsGateway(tls_broker, certificates)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.close()


class UplinkStarter(Protocol):
    """What ``start_uplink`` gives a test."""

    def __call__(
        self, broker: MosquittoBroker, outbox: InMemoryOutbox, tls: TlsSettings, max_tls: ssl.TLSVersion | None = None
    ) -> PahoUplink: ...


@pytest.fixture
def start_uplink(caplog: pytest.LogCaptureFixture) -> Iterator[UplinkStarter]:
    """Build and start uplinks on a broker's TLS port, their log captured from INFO; all stopped at the end.

    ``max_tls`` caps the TLS version the uplink offers (the broker's ``tls_version`` is only a minimum).
    """
    caplog.set_level(logging.INFO, logger="agent.uplink")
    started: list[PahoUplink] = []

    def start(
        broker: MosquittoBroker, outbox: InMemoryOutbox, tls: TlsSettings, max_tls: ssl.TLSVersion | None = None
    ) -> PahoUplink:
        assert broker.tls_port is not None
        settings = UplinkSettings(
            host=broker.host,
            port=broker.tls_port,
            client_id=DEVICE,
            tls=tls,
            ack_timeout_s=1.0,
            backoff_initial_s=0.2,
            backoff_max_s=1.0,
            drain_rate_per_s=1000.0,
            connect_timeout_s=2.0,
        )
        uplink = PahoUplink(settings, outbox, DEVICE, random_unit=lambda: 0.0)  # paho's shortest delay: 1 s
        if max_tls is not None:
            assert uplink._tls_context is not None
            uplink._tls_context.maximum_version = max_tls
        started.append(uplink)
        uplink.start()
        return uplink

    yield start
    for uplink in started:
        uplink.stop(timeout_s=2.0)


def test_records_are_delivered_and_acknowledged_over_tls_with_a_client_certificate(
    tls_broker: MosquittoBroker,
    tls_gateway: TlsGateway,
    certificates: CertificateSet,
    start_uplink: UplinkStarter,
) -> None:
    """With the CA and the device's certificate the uplink connects, and the broker lets it write as the device."""
    outbox = InMemoryOutbox()
    payloads = seal(outbox, 1, 2, 3)
    uplink = start_uplink(tls_broker, outbox, device_tls(certificates, certificates.device))
    wait_for(outbox.empty, "the records to be acknowledged over TLS")
    status = uplink.status()
    assert status.connected
    assert status.last_error is None
    assert status.refused_publishes == 0
    assert status.acks_received == 3
    assert tls_gateway.committed == {record_hash(p) for p in payloads}
    wait_for(lambda: tls_gateway.status_messages[-1:] == [b"online"], "the device's 'online' on its status topic")
    assert f"u'{DEVICE}'" in tls_broker.log()  # the certificate's CN became the user name


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A client certificate the broker refuses, and what the uplink must say about it."""

    untrusted: bool
    """A certificate from a CA the broker does not trust; else none at all."""
    meaning: str
    alert: str
    max_tls: ssl.TLSVersion | None = None


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            Refusal(untrusted=False, meaning="requires a client certificate", alert="CERTIFICATE_REQUIRED"),
            id="none",
        ),
        pytest.param(
            Refusal(untrusted=True, meaning="not signed by a CA the broker trusts", alert="UNKNOWN_CA"),
            id="untrusted",
        ),
        pytest.param(
            Refusal(
                untrusted=True,
                meaning="not signed by a CA the broker trusts",
                alert="UNKNOWN_CA",
                max_tls=ssl.TLSVersion.TLSv1_2,
            ),
            id="untrusted-tls-1.2",
        ),
    ],
)
def test_a_refused_client_certificate_stops_the_retries_with_a_clear_error(  # noqa: PLR0913, PLR0917 - pytest's fixtures
    tls_broker: MosquittoBroker,
    tls_gateway: TlsGateway,
    certificates: CertificateSet,
    start_uplink: UplinkStarter,
    caplog: pytest.LogCaptureFixture,
    refusal: Refusal,
) -> None:
    """The broker's refusal of the client certificate is final, like a bad password.

    One attempt, nothing delivered; ``last_error`` and one ``uplink.refused_for_good`` error line say why.
    Under TLS 1.3 the refusal comes after the client's side of the handshake (on the first read), under
    TLS 1.2 within the handshake: both are recognised.
    """
    client = certificates.untrusted_device if refusal.untrusted else None
    outbox = InMemoryOutbox()
    seal(outbox, 1)
    uplink = start_uplink(tls_broker, outbox, device_tls(certificates, client), refusal.max_tls)
    wait_for(lambda: uplink.last_error is not None, "the uplink to give up")
    error = uplink.last_error
    assert isinstance(error, UplinkError)
    assert "not retrying" in str(error)
    assert refusal.meaning in str(error)
    assert refusal.alert in str(error)
    (line,) = log_lines(caplog, "uplink.refused_for_good")
    assert line.levelno == logging.ERROR
    assert refusal.meaning in line.getMessage()
    assert not holds_within(lambda: uplink.status().connect_attempts > 1, window_s=1.5)
    assert not uplink.status().connected
    assert tls_gateway.received == []
    assert outbox.counts().pending == 1


def test_another_devices_certificate_cannot_publish_under_this_device_id(
    tls_broker: MosquittoBroker,
    tls_gateway: TlsGateway,
    certificates: CertificateSet,
    start_uplink: UplinkStarter,
) -> None:
    """The certificate is the identity: with another device's, the broker refuses the records.

    The refusals (MQTT 5 "Not authorized") are counted and retried; no record reaches the gateway.
    """
    outbox = InMemoryOutbox()
    seal(outbox, 1)
    uplink = start_uplink(tls_broker, outbox, device_tls(certificates, certificates.other_device))
    wait_for(lambda: uplink.status().refused_publishes >= 2, "refused publishes, retried")
    assert uplink.last_error is None
    assert tls_gateway.received == []
    assert outbox.counts().pending == 1


def test_a_broker_certificate_for_another_host_is_refused_unless_insecure(
    tmp_path: Path,
    certificates: CertificateSet,
    start_uplink: UplinkStarter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker certificate for another host name is refused, unless ``insecure`` skips the check.

    The certificate is from the right CA. Every attempt warns naming the mismatch, and the uplink keeps
    trying: a renewed broker certificate fixes it without touching the cars.
    """
    tls = broker_tls(certificates, certificates.wrong_host_broker)
    with running_mosquitto(tmp_path / "mosquitto", acl=DEVICE_ACL, tls=tls) as broker:
        gateway = TlsGateway(broker, certificates, check_hostname=False)
        gateway.start()
        try:
            outbox = InMemoryOutbox()
            (payload,) = seal(outbox, 1)
            checking = start_uplink(broker, outbox, device_tls(certificates, certificates.device))

            def warnings() -> list[logging.LogRecord]:
                return log_lines(caplog, "uplink.broker_certificate_invalid")

            wait_for(lambda: len(warnings()) >= 2, "two refused attempts")
            assert all(line.levelno == logging.WARNING for line in warnings())
            assert "mismatch" in warnings()[0].getMessage()
            assert checking.last_error is None
            assert not checking.status().connected
            assert gateway.received == []
            checking.stop(timeout_s=2.0)

            insecure = start_uplink(
                broker, outbox, replace(device_tls(certificates, certificates.device), insecure=True)
            )
            wait_for(outbox.empty, "the record to be acknowledged without the host name check")
            assert gateway.committed == {record_hash(payload)}
            insecure.stop(timeout_s=2.0)
        finally:
            gateway.close()


# --- settings ---------------------------------------------------------------------------------------


def _broken(certificates: CertificateSet, directory: Path, case: str) -> tuple[TlsSettings, Path]:
    """TLS settings with one unusable file, and that file."""
    device = certificates.device
    if case == "missing-ca":
        missing = directory / "missing-ca.pem"
        return TlsSettings(ca_file=missing, cert_file=device.cert_file, key_file=device.key_file), missing
    if case == "ca-not-a-certificate":
        garbage = directory / "garbage-ca.pem"
        garbage.write_text("not a certificate\n", encoding="utf-8")
        return TlsSettings(ca_file=garbage), garbage
    if case == "missing-certificate":
        missing = directory / "missing-device.pem"
        return TlsSettings(ca_file=certificates.ca_file, cert_file=missing, key_file=device.key_file), missing
    other_key = certificates.untrusted_device.key_file  # "key-of-another-certificate"
    return TlsSettings(ca_file=certificates.ca_file, cert_file=device.cert_file, key_file=other_key), other_key


@pytest.mark.parametrize(
    "case", ["missing-ca", "ca-not-a-certificate", "missing-certificate", "key-of-another-certificate"]
)
def test_an_unusable_tls_file_is_a_config_error_naming_it(
    certificates: CertificateSet, tmp_path: Path, case: str
) -> None:
    """A CA, certificate or key file that cannot be used is refused when the uplink is built, naming the file."""
    tls, culprit = _broken(certificates, tmp_path, case)
    settings = UplinkSettings(host="127.0.0.1", port=8883, client_id=DEVICE, tls=tls)
    with pytest.raises(ConfigError, match=re.escape(str(culprit))):
        PahoUplink(settings, InMemoryOutbox(), DEVICE)
