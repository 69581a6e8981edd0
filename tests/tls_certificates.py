"""Certificates for TLS tests, made in-process with ``cryptography``: CAs, a broker's and devices' certificates.

``write_certificates(directory, device_id, other_device_id)`` writes PEM files for the usual cast and
returns their paths: a CA, a broker certificate for 127.0.0.1 (an IP SAN) and one for another host
name, client certificates whose common name is a device id (what Mosquitto's
``use_identity_as_username`` makes the MQTT user name) and the test gateway's, and a device
certificate signed by a second CA the broker does not trust.
``CertificateAuthority`` makes other sets. EC P-256 keys: quick to make, accepted everywhere.
"""

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY_MARGIN = timedelta(days=1)
"""Certificates are valid from this long before ``valid_from`` to this long after it."""
GATEWAY_COMMON_NAME = "test-gateway"
"""The test gateway's certificate name: its MQTT user name behind ``use_identity_as_username``."""
WRONG_HOST = "broker.wrong.example"
"""The only name on the broker certificate made for the wrong host."""


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class CertificateSet:
    """The PEM files of a test's certificates (see the module docstring)."""

    ca_file: Path
    broker: CertificateFiles
    """For 127.0.0.1 (IP SAN) and ``localhost``, signed by the CA."""
    wrong_host_broker: CertificateFiles
    """Signed by the CA, for ``WRONG_HOST`` only."""
    device: CertificateFiles
    """Common name: the device id; signed by the CA."""
    other_device: CertificateFiles
    """Common name: another device's id; signed by the CA."""
    gateway: CertificateFiles
    """Common name: ``GATEWAY_COMMON_NAME``; signed by the CA."""
    untrusted_device: CertificateFiles
    """Common name: the device id, but signed by a second CA the broker does not know."""
    untrusted_ca_file: Path


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates into a directory."""

    def __init__(self, name: str, directory: Path, *, valid_from: datetime) -> None:
        self._directory = directory
        self._valid_from = valid_from
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public_key = self._key.public_key()
        self.certificate = (
            self._builder(self._name, public_key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = directory / f"{name}.pem"
        self.cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        file_stem: str,
        common_name: str,
        *,
        server_names: tuple[str, ...] = (),
    ) -> CertificateFiles:
        """A leaf certificate: a server's for ``server_names`` (host names, IP addresses) if given, else a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if server_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(name) for name in server_names]), critical=False
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        files = CertificateFiles(self._directory / f"{file_stem}.pem", self._directory / f"{file_stem}.key")
        files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        files.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        files.key_file.chmod(0o600)
        return files

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._valid_from - VALIDITY_MARGIN)
            .not_valid_after(self._valid_from + VALIDITY_MARGIN)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )


def write_certificates(
    directory: Path, device_id: str, other_device_id: str, *, valid_from: datetime | None = None
) -> CertificateSet:
    """Make the CAs and certificates of ``CertificateSet`` as PEM files in ``directory`` (created if missing).

    ``valid_from`` defaults to now: OpenSSL checks validity against the real clock.
    """
    directory.mkdir(parents=True, exist_ok=True)
    start = datetime.now(UTC) if valid_from is None else valid_from
    ca = CertificateAuthority("test-ca", directory, valid_from=start)
    other_ca = CertificateAuthority("untrusted-ca", directory, valid_from=start)
    return CertificateSet(
        ca_file=ca.cert_file,
        broker=ca.issue("broker", "mosquitto", server_names=("127.0.0.1", "localhost")),
        wrong_host_broker=ca.issue("wrong-host-broker", WRONG_HOST, server_names=(WRONG_HOST,)),
        device=ca.issue("device", device_id),
        other_device=ca.issue("other-device", other_device_id),
        gateway=ca.issue("gateway", GATEWAY_COMMON_NAME),
        untrusted_device=other_ca.issue("untrusted-device", device_id),
        untrusted_ca_file=other_ca.cert_file,
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
