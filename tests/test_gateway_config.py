"""gateway.toml is validated at load: every mistake is refused with the key that holds it."""

from pathlib import Path

import pytest

from gateway.config import ProtocolChoice, load_config, parse_config
from gateway.errors import ConfigError

TOKEN = "a-long-enough-admin-token-0001"  # noqa: S105 - a test token, written to a temporary file


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "admin.token").write_text(TOKEN + "\n", encoding="utf-8")
    return tmp_path


MINIMAL = '[api]\nadmin_token_files = ["admin.token"]\n'


def test_a_minimal_config_takes_the_documented_defaults(directory: Path) -> None:
    """With only an admin token, the gateway uses a local broker, a SQLite file beside the config and MQTT auto."""
    config = parse_config(MINIMAL, directory, {})
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.protocol) == ("127.0.0.1", 1883, ProtocolChoice.AUTO)
    assert config.store.url == f"sqlite:///{directory / 'gateway.db'}"
    assert config.api.admin_tokens == frozenset({TOKEN})
    assert config.intake.batch_max_messages == 200
    assert config.authority_keys == ()


def test_environment_variables_override_the_file(directory: Path) -> None:
    """CARBONLINK_GATEWAY__SECTION__KEY replaces a value, read as a TOML scalar where it is one."""
    environ = {
        "CARBONLINK_GATEWAY__MQTT__PORT": "1884",
        "CARBONLINK_GATEWAY__STORE__URL": "postgresql://gw@127.0.0.1:5432/carbonlink",
        "CARBONLINK_GATEWAY__MQTT__TLS__INSECURE": "true",
    }
    config = parse_config(MINIMAL, directory, environ)
    assert config.mqtt.port == 1884
    assert config.store.url == "postgresql://gw@127.0.0.1:5432/carbonlink"
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.insecure is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mqtt]\nprot = 1883\n", "[mqtt] unknown key 'prot'"),
        ('[mqtt]\nport = "1883"\n', "[mqtt] port must be an integer"),
        ("[mqtt]\nport = 70000\n", "[mqtt] port must be from 1 to 65535"),
        ('[mqtt]\nprotocol = "4"\n', "[mqtt] protocol must be one of"),
        ('[mqtt]\nshare_group = "a/b"\n', "share_group must not contain"),
        ("[mqtt.tls]\nca_flie = 'ca.pem'\n", "[mqtt.tls] unknown key 'ca_flie'"),
        ('[mqtt.tls]\ncert_file = "c.pem"\n', "cert_file and key_file must be given together"),
        ("[intake]\nbatch_max_messages = 0\n", "[intake] batch_max_messages must be from 1"),
        ("[intake]\nbatch_max_wait_s = -1\n", "[intake] batch_max_wait_s must be a number of seconds"),
        ("[store]\nmax_rejections = 0\n", "[store] max_rejections must be from 1"),
        ("[ledger]\n", "unknown section(s) ledger"),
        ('[enrolment]\nauthority_public_keys = ["zz"]\n', "[enrolment] authority_public_keys[0]"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_a_mistake_is_refused_with_the_key_that_holds_it(directory: Path, text: str, message: str) -> None:
    """Unknown keys, wrong types and values out of range stop the load with a message naming them."""
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + text, directory, {})
    assert message in str(caught.value)


def test_token_files_must_exist_and_hold_a_strong_token(directory: Path) -> None:
    """A missing or weak token file is refused, and the API needs at least one admin token."""
    with pytest.raises(ConfigError, match="cannot read admin token file"):
        parse_config('[api]\nadmin_token_files = ["missing.token"]\n', directory, {})
    (directory / "weak.token").write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="at least 16 printable characters"):
        parse_config('[api]\nadmin_token_files = ["weak.token"]\n', directory, {})
    with pytest.raises(ConfigError, match="admin_token_files must name at least one"):
        parse_config("", directory, {})
    assert parse_config("[api]\nenabled = false\n", directory, {}).api.enabled is False


def test_a_bad_environment_variable_is_named(directory: Path) -> None:
    """An override for an unknown section is refused with the variable's name."""
    with pytest.raises(ConfigError, match="CARBONLINK_GATEWAY__LEDGER__X"):
        parse_config(MINIMAL, directory, {"CARBONLINK_GATEWAY__LEDGER__X": "1"})


def test_load_config_names_the_file(directory: Path) -> None:
    """Errors from load_config start with the config file's path; an unreadable file is refused too."""
    path = directory / "gateway.toml"
    path.write_text("[mqtt]\nport = 0\n" + MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path, {})
    with pytest.raises(ConfigError, match="cannot read gateway config"):
        load_config(directory / "absent.toml", {})
