"""agent.toml: validated at load with precise errors, environment overrides applied."""

from pathlib import Path

import pytest

from agent.config import parse_config
from agent.errors import ConfigError

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
    assert config.mqtt == {"host": "broker.local", "port": 1884}


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
