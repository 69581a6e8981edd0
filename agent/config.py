"""The agent's configuration: one TOML file plus environment overrides, validated into frozen values.

    [device]
    key_file = "/etc/carbonlink/car.key"      # secrets are file paths, never values
    profile = "reference_ev"                   # a shipped profile id, or a path to a profile .toml
    clock_synced = true                        # the computer's clock is GNSS/NTP-synchronised
    vin = "WVWZZZ1KZ8W000001"                  # optional: hashed into every record (credit ledger key)
    battery_capacity_kwh = 58.0                # optional: usable pack energy, for the SOC cross-check
    enrolment_file = "car.enrol"               # optional: the fleet authority's enrolment certificate

    [source]                                   # either a bus ...
    interface = "socketcan"
    channel = "can0"
    bitrate = 500000                           # optional
    fd = false
    # log_file = "day.blf"                     # ... or a recorded log (replayed, then the agent stops)

    [outbox]
    path = "/var/lib/carbonlink/outbox.json"
    max_unacknowledged = 5000

    [mqtt]                                     # optional: without it records wait in the outbox
    host = "broker.example"
    port = 8883
    # username, password_file, ack_timeout_s, drain_rate_per_s, ... (agent.uplink.settings)
    # [mqtt.tls]  ca_file, cert_file, key_file, insecure

    [segmentation]                             # optional thresholds (agent.segmentation.SegmenterSettings)

Environment overrides: ``CARBONLINK_AGENT__<SECTION>__<KEY>=value`` (for example
``CARBONLINK_AGENT__MQTT__HOST=10.0.0.5``); values are read as TOML scalars, else as text.
Relative paths are taken relative to the config file. ``load_config`` also reads the enrolment
certificate, if one is named, and checks that it certifies this device's id and key (its signature
it cannot check: only the gateway holds the fleet authority's key).
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.segmentation import SegmenterSettings
from agent.uplink.settings import UplinkSettings, settings_from_table
from carbonlink.config_tables import read_tables
from carbonlink.enrolment import MAX_CERTIFICATE_BYTES, EnrolmentCertificate, read_certificate_unverified
from carbonlink.errors import CarbonlinkError
from carbonlink.keys import PublicKey, parse_key_file
from carbonlink.vin import vin_hash

ENV_PREFIX = "CARBONLINK_AGENT__"
_SECTIONS = ("device", "source", "outbox", "mqtt", "segmentation")
MAX_BATTERY_CAPACITY_KWH = 2000.0
"""Above the largest vehicle packs (electric trucks carry up to about 1 MWh)."""
DEFAULT_MAX_UNACKNOWLEDGED = 5000
"""About a year of records for a car with no connection at all (≈ 10 trips and charges a day)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    """A live bus, or a log file to replay."""

    interface: str | None = None
    channel: str | None = None
    bitrate: int | None = None
    fd: bool = False
    log_file: Path | None = None

    def check(self) -> None:
        """Refuse a source that is neither one bus nor one log."""
        if (self.log_file is None) == (self.interface is None):
            raise ConfigError("[source] needs either interface (with channel) or log_file, not both")
        if self.interface is not None and self.channel is None:
            raise ConfigError("[source] channel is required with interface")
        if self.bitrate is not None and self.bitrate <= 0:
            raise ConfigError(f"[source] bitrate must be positive, got {self.bitrate}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Everything ``carbonlink agent run`` needs, checked."""

    key_file: Path
    profile: str
    clock_synced: bool
    vin_hash: bytes | None
    battery_capacity_wh: float | None
    source: SourceConfig
    outbox_path: Path
    max_unacknowledged: int
    mqtt: UplinkSettings | None
    """None: no [mqtt] section, records wait in the outbox."""
    segmentation: SegmenterSettings
    enrolment_file: Path | None = None
    """An enrolment certificate to publish on every connect (zero-touch registration); None: none."""


def _get(table: Mapping[str, Any], section: str, key: str, kind: type, *, required: bool = True) -> Any:  # noqa: ANN401 - a value of a TOML table, checked against ``kind`` at run time
    value = table.get(section, {}).get(key)
    if value is None:
        if required:
            raise ConfigError(f"[{section}] {key} is required")
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"[{section}] {key} must be {kind.__name__}, got {value!r}")
    return value


def parse_config(text: str, base_dir: Path, environ: Mapping[str, str]) -> AgentConfig:
    """Validate the text of agent.toml (with environment overrides) into an AgentConfig."""
    table = read_tables(text, environ, prefix=ENV_PREFIX, sections=_SECTIONS, error=ConfigError)

    def path(section: str, key: str, *, required: bool = True) -> Path | None:
        value = _get(table, section, key, str, required=required)
        return None if value is None else (base_dir / value).resolve()

    source = SourceConfig(
        interface=_get(table, "source", "interface", str, required=False),
        channel=_get(table, "source", "channel", str, required=False),
        bitrate=_get(table, "source", "bitrate", int, required=False),
        fd=bool(_get(table, "source", "fd", bool, required=False)),
        log_file=path("source", "log_file", required=False),
    )
    source.check()
    max_unacknowledged = _get(table, "outbox", "max_unacknowledged", int, required=False)
    if max_unacknowledged is None:
        max_unacknowledged = DEFAULT_MAX_UNACKNOWLEDGED
    if max_unacknowledged < 1:
        raise ConfigError(f"[outbox] max_unacknowledged must be at least 1, got {max_unacknowledged}")
    key_file, outbox_path = path("device", "key_file"), path("outbox", "path")
    if key_file is None or outbox_path is None:  # required=True raised already; this narrows the types
        raise ConfigError("[device] key_file and [outbox] path are required")
    return AgentConfig(
        key_file=key_file,
        profile=_profile(table, base_dir),
        clock_synced=bool(_get(table, "device", "clock_synced", bool, required=False) or False),
        vin_hash=_vin_hash(table),
        battery_capacity_wh=_battery_capacity_wh(table),
        source=source,
        outbox_path=outbox_path,
        max_unacknowledged=max_unacknowledged,
        mqtt=_uplink_settings(table, base_dir),
        segmentation=_segmenter_settings(table),
        enrolment_file=path("device", "enrolment_file", required=False),
    )


def _profile(table: Mapping[str, Any], base_dir: Path) -> str:
    """A shipped profile's id as written; a profile file's path made absolute like the other paths."""
    profile: str = _get(table, "device", "profile", str)
    if profile.endswith(".toml") or "/" in profile:
        return str((base_dir / profile).resolve())
    return profile


def _battery_capacity_wh(table: Mapping[str, Any]) -> float | None:
    capacity_kwh = _get(table, "device", "battery_capacity_kwh", float, required=False)
    if capacity_kwh is None:
        return None
    if not 0 < capacity_kwh < MAX_BATTERY_CAPACITY_KWH:
        raise ConfigError(
            f"[device] battery_capacity_kwh must be above 0 and below {MAX_BATTERY_CAPACITY_KWH}, got {capacity_kwh}"
        )
    return float(capacity_kwh) * 1000.0


def _vin_hash(table: Mapping[str, Any]) -> bytes | None:
    vin = _get(table, "device", "vin", str, required=False)
    try:
        return None if vin is None else vin_hash(vin)
    except ValueError as err:
        raise ConfigError(f"[device] vin: {err}") from err


def _uplink_settings(table: Mapping[str, Any], base_dir: Path) -> UplinkSettings | None:
    mqtt_table = table.get("mqtt")
    try:
        return None if mqtt_table is None else settings_from_table(mqtt_table, base_dir)
    except ConfigError as err:
        raise ConfigError(f"[mqtt] {err}") from err


def _segmenter_settings(table: Mapping[str, Any]) -> SegmenterSettings:
    segmentation_table = table.get("segmentation", {})
    known = {item.name for item in fields(SegmenterSettings)}
    unknown_keys = sorted(set(segmentation_table) - known)
    if unknown_keys:
        raise ConfigError(f"[segmentation] unknown key(s) {', '.join(unknown_keys)}; known: {', '.join(sorted(known))}")
    try:
        return SegmenterSettings(**{key: float(_get(table, "segmentation", key, float)) for key in segmentation_table})
    except ValueError as err:
        raise ConfigError(f"[segmentation] {err}") from err


def load_config(path: Path, environ: Mapping[str, str]) -> AgentConfig:
    """Read and validate agent.toml; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read agent config {path}: {err}") from err
    try:
        config = parse_config(text, path.parent, environ)
        if config.enrolment_file is not None:
            device_id, public_key = _key_identity(config.key_file)
            read_enrolment_file(config.enrolment_file, device_id, public_key)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return config


def _key_identity(key_file: Path) -> tuple[str, PublicKey]:
    """The device id and public key of the key file, to check the enrolment certificate against."""
    try:
        key = parse_key_file(key_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"[device] key_file {key_file}: cannot read it to check enrolment_file: {err}") from err
    except CarbonlinkError as err:
        raise ConfigError(f"[device] key_file {key_file}: {err}") from err
    return key.device_id, key.public_key


def read_enrolment_file(path: Path, device_id: str, public_key: PublicKey) -> tuple[bytes, EnrolmentCertificate]:
    """The certificate's bytes and fields, checked to certify ``device_id`` with ``public_key``.

    Only the form and the device's fields are checked: the signature is the gateway's to verify, and
    the validity period too (the car's clock may be wrong; an expired certificate only means the
    gateway will not register the device through it).
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CERTIFICATE_BYTES + 1)  # one byte more than allowed shows it is too long
    except OSError as err:
        raise ConfigError(f"[device] enrolment_file {path}: cannot read it: {err.strerror or err}") from err
    try:
        certificate = read_certificate_unverified(data)
    except CarbonlinkError as err:
        raise ConfigError(f"[device] enrolment_file {path}: not an enrolment certificate: {err}") from err
    if certificate.device_id != device_id:
        raise ConfigError(
            f"[device] enrolment_file {path} certifies device {certificate.device_id!r}, not this device {device_id!r}"
        )
    if certificate.public_key != public_key:
        raise ConfigError(
            f"[device] enrolment_file {path} certifies key {certificate.public_key.kid.hex()}, not this device's "
            f"key {public_key.kid.hex()} (key_file)"
        )
    return data, certificate
