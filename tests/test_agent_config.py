"""agent.toml: validated at load with precise errors, environment overrides applied."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import load_config, parse_config, read_enrolment_file
from agent.errors import ConfigError
from agent.uplink.settings import ProtocolChoice, TlsSettings
from carbonlink.enrolment import issue_certificate
from carbonlink.keys import DeviceKey, render_key_file
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash

BASE = """
[device]
key_file = "car.key"
profile = "reference_ev"
clock_synced = true

[source]
log_file = "day.blf"

[outbox]
path = "outbox.json"
"""


def test_minimal_config_resolves_paths_against_its_directory(tmp_path: Path) -> None:
    """Relative paths are taken relative to the config file; defaults fill the rest."""
    config = parse_config(BASE, tmp_path, {})
    assert config.key_file == (tmp_path / "car.key").resolve()
    assert config.source.log_file == (tmp_path / "day.blf").resolve()
    assert config.max_unacknowledged == 5000
    assert config.mqtt is None
    assert config.clock_synced is True


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """CARBONLINK_AGENT__SECTION__KEY replaces or adds a setting, typed as TOML."""
    environ = {
        "CARBONLINK_AGENT__OUTBOX__MAX_UNACKNOWLEDGED": "20",
        "CARBONLINK_AGENT__MQTT__HOST": "broker.local",
        "CARBONLINK_AGENT__MQTT__PORT": "1884",
        "UNRELATED": "x",
    }
    config = parse_config(BASE, tmp_path, environ)
    assert config.max_unacknowledged == 20
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.port) == ("broker.local", 1884)


def test_environment_reaches_nested_tables(tmp_path: Path) -> None:
    """SECTION__TABLE__KEY sets a key of a nested table such as [mqtt.tls], keeping its other keys."""
    text = BASE + '[mqtt]\nhost = "b"\n[mqtt.tls]\ninsecure = true\n'
    config = parse_config(text, tmp_path, {"CARBONLINK_AGENT__MQTT__TLS__CA_FILE": "ca.pem"})
    assert config.mqtt is not None
    assert config.mqtt.tls == TlsSettings(ca_file=(tmp_path / "ca.pem").resolve(), insecure=True)


def test_mqtt_section_becomes_uplink_settings(tmp_path: Path) -> None:
    """[mqtt] is validated at load into the uplink's settings, its paths resolved like the others."""
    text = (
        BASE
        + '[mqtt]\nhost = "broker.example"\nport = 8883\nusername = "ev-1"\npassword_file = "secret"\n'
        + 'protocol = "3.1.1"\nack_timeout_s = 5\n'
        + '[mqtt.tls]\nca_file = "ca.pem"\ncert_file = "c.pem"\nkey_file = "k.pem"\n'
    )
    mqtt = parse_config(text, tmp_path, {}).mqtt
    assert mqtt is not None
    assert mqtt.client_id is None  # filled in from the device key by the uplink
    assert mqtt.password_file == (tmp_path / "secret").resolve()
    assert mqtt.protocol is ProtocolChoice.V311
    assert mqtt.ack_timeout_s == 5
    assert mqtt.tls is not None
    assert mqtt.tls.key_file == (tmp_path / "k.pem").resolve()


def test_battery_capacity_is_read_in_kwh_and_kept_in_wh(tmp_path: Path) -> None:
    """[device] battery_capacity_kwh feeds the SOC cross-check; absent, there is none."""
    assert parse_config(BASE, tmp_path, {}).battery_capacity_wh is None
    text = BASE.replace('profile = "reference_ev"', 'profile = "reference_ev"\nbattery_capacity_kwh = 58')
    assert parse_config(text, tmp_path, {}).battery_capacity_wh == 58_000.0


def test_vin_is_kept_only_as_its_hash(tmp_path: Path) -> None:
    """[device] vin becomes the records' vin_hash, whatever its case and surrounding blanks."""
    assert parse_config(BASE, tmp_path, {}).vin_hash is None
    text = BASE.replace('profile = "reference_ev"', 'profile = "reference_ev"\nvin = " wvwzzz1kz8w000001 "')
    assert parse_config(text, tmp_path, {}).vin_hash == vin_hash("WVWZZZ1KZ8W000001")


def test_segmentation_thresholds_are_read(tmp_path: Path) -> None:
    """[segmentation] sets the segmenter's thresholds, integers read as seconds."""
    config = parse_config(BASE + "[segmentation]\nready_off_hysteresis_s = 90\n", tmp_path, {})
    assert config.segmentation.ready_off_hysteresis_s == 90.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        (BASE + "[radio]\nx = 1\n", r"unknown section\(s\) radio"),
        (BASE.replace('key_file = "car.key"\n', ""), r"\[device\] key_file is required"),
        (BASE.replace('log_file = "day.blf"', 'interface = "virtual"'), r"\[source\] channel is required"),
        (BASE.replace('log_file = "day.blf"', 'log_file = "x.blf"\ninterface = "virtual"'), "not both"),
        (BASE.replace("clock_synced = true", 'clock_synced = "yes"'), "clock_synced must be bool"),
        (BASE + "max_unacknowledged = 0\n", "at least 1"),
        (BASE + "[segmentation]\nhysteresis = 1\n", "unknown key"),
        (BASE + "[segmentation]\nmax_gap_s = -1\n", "max_gap_s"),
        (BASE.replace('profile = "reference_ev"', 'profile = "r"\nvin = "WVWZZZ1KZ8W00000I"'), r"\[device\] vin"),
        (BASE + "[mqtt]\nport = 1883\n", r"\[mqtt\] host is required"),
        (BASE + '[mqtt]\nhost = "b"\nca_flie = "x"\n', r"\[mqtt\] unknown key 'ca_flie'"),
        (BASE + '[mqtt]\nhost = "b"\nport = "1883"\n', r"\[mqtt\] port must be an integer"),
        (BASE + '[mqtt]\nhost = "b"\n[mqtt.tls]\ninsecure = "no"\n', r"\[mqtt\] tls.insecure must be true or false"),
        (BASE + '[mqtt]\nhost = "b"\n[mqtt.tls]\ncert_file = "c.pem"\n', r"cert_file and tls.key_file"),
        (BASE + '[mqtt]\nhost = "b"\nprotocol = 5\n', r"\[mqtt\] protocol must be text"),
    ],
)
def test_bad_configs_are_refused_precisely(tmp_path: Path, text: str, message: str) -> None:
    """Every mistake names its section and key."""
    with pytest.raises(ConfigError, match=message):
        parse_config(text, tmp_path, {})


def test_malformed_environment_variable_is_refused(tmp_path: Path) -> None:
    """An override for an unknown section is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="CARBONLINK_AGENT__RADIO__X"):
        parse_config(BASE, tmp_path, {"CARBONLINK_AGENT__RADIO__X": "1"})


# --- [device] enrolment_file ----------------------------------------------------------------------------

AUTHORITY = DeviceKey.from_seed(bytes([0x03]) * 32, "fleet-authority")
CAR = DeviceKey.from_seed(bytes([0x01]) * 32, "ev-car-0001")
ISSUED_AT = datetime(2026, 3, 1, tzinfo=UTC)


def _enrolment(key: DeviceKey, device_id: str | None = None) -> bytes:
    return issue_certificate(
        AUTHORITY,
        device_public_key=key.public_key,
        device_id=device_id or key.device_id,
        vehicle_class=VehicleClass.COMPACT,
        vin_hash=None,
        issued_at=ISSUED_AT,
        expires_at=ISSUED_AT + timedelta(days=365),
        authority="Example Fleet Authority",
    )


def _enrolled_config(tmp_path: Path, certificate: bytes | None) -> Path:
    """agent.toml beside the car's key file and, unless None, the certificate file car.enrol."""
    (tmp_path / "car.key").write_text(render_key_file(CAR), encoding="utf-8")
    if certificate is not None:
        (tmp_path / "car.enrol").write_bytes(certificate)
    path = tmp_path / "agent.toml"
    text = BASE.replace('profile = "reference_ev"', 'profile = "reference_ev"\nenrolment_file = "car.enrol"')
    path.write_text(text, encoding="utf-8")
    return path


def test_an_enrolment_file_for_this_device_is_accepted(tmp_path: Path) -> None:
    """[device] enrolment_file is resolved against the config's folder and checked against the key file."""
    config = load_config(_enrolled_config(tmp_path, _enrolment(CAR)), {})
    assert config.enrolment_file == (tmp_path / "car.enrol").resolve()
    assert parse_config(BASE, tmp_path, {}).enrolment_file is None
    signed, certificate = read_enrolment_file((tmp_path / "car.enrol"), CAR.device_id, CAR.public_key)
    assert signed == _enrolment(CAR)
    assert certificate.authority_kid == AUTHORITY.kid


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        (_enrolment(DeviceKey.from_seed(bytes([0x07]) * 32, "ev-other-0002")), "certifies device 'ev-other-0002'"),
        (_enrolment(DeviceKey.from_seed(bytes([0x07]) * 32, "ev-car-0001")), "certifies key .* not this device's key"),
        (_enrolment(CAR, device_id="ev-other-0002"), "not this device 'ev-car-0001'"),
        (b"\xa0", "not an enrolment certificate"),
        (b"x" * 5000, "not an enrolment certificate: .*over the cap"),
        (None, "enrolment_file .*car.enrol: cannot read it"),
    ],
    ids=["another-device", "another-key", "another-id", "garbage", "oversized", "missing"],
)
def test_an_enrolment_file_not_for_this_device_is_refused(
    tmp_path: Path, certificate: bytes | None, message: str
) -> None:
    """A certificate of another device or key, garbage or no file at all: a ConfigError naming file and fault."""
    path = _enrolled_config(tmp_path, certificate)
    with pytest.raises(ConfigError, match=rf"agent.toml: \[device\] .*{message}"):
        load_config(path, {})


def test_an_unreadable_key_file_is_named_when_checking_the_enrolment_file(tmp_path: Path) -> None:
    """The certificate is checked against key_file, so a missing key file is named at load."""
    path = _enrolled_config(tmp_path, _enrolment(CAR))
    (tmp_path / "car.key").unlink()
    with pytest.raises(ConfigError, match=r"\[device\] key_file .*car.key: cannot read it to check enrolment_file"):
        load_config(path, {})
