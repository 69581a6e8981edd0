"""The ``[crediting]`` and ``[forwarding]`` tables and the files they name are checked when the gateway starts."""

from pathlib import Path

import pytest

from carbonlink.keys import DeviceKey, render_key_file
from gateway.adapters.parameter_file import load_parameters
from gateway.app import Gateway
from gateway.config import parse_config
from gateway.crediting.settings import EXPORT_FILE_SINK, WEBHOOK_SINK
from gateway.errors import ConfigError

TOKEN = "a-long-enough-admin-token-0001"  # noqa: S105 - a test token, written to a temporary file
MINIMAL = '[api]\nadmin_token_files = ["admin.token"]\n[store]\nurl = "sqlite:///gw.db"\n'


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "admin.token").write_text(TOKEN + "\n", encoding="utf-8")
    key = tmp_path / "gateway.key"
    key.write_text(render_key_file(DeviceKey.from_seed(bytes([90]) * 32, "gateway-one")), encoding="utf-8")
    key.chmod(0o600)
    return tmp_path


def test_crediting_is_on_with_the_documented_defaults_and_no_sinks(directory: Path) -> None:
    config = parse_config(MINIMAL, directory, {})
    assert config.crediting.enabled is True
    assert config.crediting.grid_region == "cn"
    assert config.forwarding.sinks == ()
    assert config.forwarding.max_attempts == 100


def test_every_configured_sink_gets_deliveries(directory: Path) -> None:
    text = (
        MINIMAL + '[crediting]\ngrid_region = "eu-27"\n[crediting.device_regions]\nev-0001 = "cn-east"\n'
        '[forwarding]\nsigning_key_file = "gateway.key"\nwebhook_url = "https://registry.example/credits"\n'
        'export_file = "out/credits.jsonl"\n'
    )
    config = parse_config(text, directory, {})
    assert config.forwarding.sinks == (WEBHOOK_SINK, EXPORT_FILE_SINK)
    assert config.forwarding.export_file == directory / "out" / "credits.jsonl"
    assert dict(config.crediting.device_regions) == {"ev-0001": "cn-east"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[crediting]\ngrid_region = "CN East"\n', "[crediting] grid_region must be a region name"),
        ("[crediting.device_regions]\nev-0001 = 5\n", "[crediting.device_regions] ev-0001 must be a region name"),
        ('[crediting.device_regions]\n"EV 1" = "cn"\n', "'EV 1' is not a device id"),
        ("[crediting]\nbatch_max_records = 0\n", "[crediting] batch_max_records must be from 1"),
        ("[crediting]\ninterval_s = 0\n", "[crediting] interval_s must be a number of seconds above 0"),
        ('[forwarding]\nwebhook_url = "ftp://x/y"\n', "[forwarding] webhook_url must be an http(s) URL"),
        ('[forwarding]\nwebhook_url = "https://x/y"\n', "webhook_url needs signing_key_file"),
        ("[forwarding]\nretry_multiplier = 0.5\n", "[forwarding] retry_multiplier must be 1 or more"),
        ("[forwarding]\nmax_attempts = 0\n", "[forwarding] max_attempts must be from 1 to 1000"),
        ("[forwarding]\nwebhok_url = 1\n", "[forwarding] unknown key 'webhok_url'"),
    ],
)
def test_a_mistake_is_refused_with_the_key_that_holds_it(directory: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + text, directory, {})
    assert message in str(caught.value)


def test_an_unusable_parameter_or_key_file_stops_the_gateway_naming_it(directory: Path) -> None:
    """A parameter file with a bad value and a key file others can read are refused at start."""
    shipped = (Path(__file__).parents[1] / "carbonlink" / "methodology" / "parameters.toml").read_text()
    (directory / "bad.toml").write_text(shipped.replace("value = 0.99", "value = -0.99", 1), encoding="utf-8")
    config = parse_config(MINIMAL + '[crediting]\nparameter_file = "bad.toml"\n', directory, {})
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        Gateway(config)
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_parameters(directory / "missing.toml")
    (directory / "gateway.key").chmod(0o644)
    webhook = '[forwarding]\nsigning_key_file = "gateway.key"\nwebhook_url = "http://127.0.0.1:9/x"\n'
    with pytest.raises(ConfigError, match="readable by other users"):
        Gateway(parse_config(MINIMAL + webhook, directory, {}))


def test_a_grid_region_without_parameters_stops_the_gateway_naming_it(directory: Path) -> None:
    """A misspelt region would make every trip not creditable for good: it is refused at start."""
    config = parse_config(MINIMAL + '[crediting.device_regions]\nev-0001 = "cn-esat"\n', directory, {})
    with pytest.raises(ConfigError, match="'cn-esat'"):
        Gateway(config)
    assert not (directory / "gw.db").exists()
