"""The gateway's configuration: one TOML file plus environment overrides, validated into frozen values.

    [mqtt]
    host = "127.0.0.1"
    port = 1883
    client_id = "carbonlink-gateway-1"        # unique per gateway process
    share_group = "carbonlink-gateway"        # MQTT 5 shared subscription; "" subscribes plainly
    # protocol = "auto" | "5" | "3.1.1", username, password_file, keepalive_s, session_expiry_s
    # [mqtt.tls]  ca_file, cert_file, key_file, insecure

    [store]
    url = "sqlite:///gateway.db"              # or postgresql://user@host:5432/carbonlink
    max_rejections = 100000

    [intake]                                  # optional: queue and batch sizes (IntakeSettings)

    [api]
    host = "127.0.0.1"
    port = 8080
    read_token_files = ["read.token"]         # secrets are file paths, never values
    admin_token_files = ["admin.token"]

    [enrolment]                               # optional: zero-touch enrolment
    authority_public_keys = ["8a88e3dd..."]   # fleet authority keys (public: values are fine)

    [plausibility]                            # optional thresholds (docs/plausibility.md)

    [crediting]                               # optional: grid region, parameter file (gateway.crediting.settings)
    [forwarding]                              # optional: webhook, export file, retries

Environment overrides: ``CARBONLINK_GATEWAY__<SECTION>__<KEY>=value`` (for example
``CARBONLINK_GATEWAY__STORE__URL=postgresql://...``). Relative paths and ``sqlite:///`` URLs are
taken relative to the config file.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from carbonlink.config_tables import read_tables, settings_from_table
from carbonlink.errors import KeyFormatError
from carbonlink.keys import PublicKey
from gateway.crediting.settings import (
    CreditingSettings,
    ForwardingSettings,
    crediting_from_table,
    forwarding_from_table,
)
from gateway.errors import ConfigError
from gateway.plausibility import PlausibilitySettings, plausibility_from_table

ENV_PREFIX = "CARBONLINK_GATEWAY__"
_SECTIONS = ("mqtt", "store", "intake", "api", "enrolment", "plausibility", "crediting", "forwarding")
MAX_PORT = 65535
MAX_TOKEN_BYTES = 4096
MIN_TOKEN_CHARS = 16
"""Shorter tokens can be guessed; ``secrets.token_urlsafe(32)`` gives 43."""


class ProtocolChoice(StrEnum):
    """Which MQTT version to speak."""

    AUTO = "auto"
    """MQTT 5, falling back to 3.1.1 (and a plain subscription) when the broker offers nothing newer."""
    V5 = "5"
    V311 = "3.1.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """TLS towards the broker; the CA file defaults to the system's trust store."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    """Skip the host name check of the broker's certificate: for test brokers only."""

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("[mqtt.tls] cert_file and key_file must be given together")


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """The gateway's broker connection."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "carbonlink-gateway"
    share_group: str = "carbonlink-gateway"
    """Gateways in one group split the records between them; empty: a plain subscription."""
    protocol: ProtocolChoice = ProtocolChoice.AUTO
    username: str | None = None
    password_file: Path | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 3600
    """How long the broker keeps our subscription and queues records while we restart (MQTT 5)."""
    reconnect_max_s: int = 30
    tls: TlsSettings | None = None

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"[mqtt] host must be a host name or address, not {self.host!r}")
        _check_range("[mqtt] port", self.port, 1, MAX_PORT)
        _check_range("[mqtt] keepalive_s", self.keepalive_s, 1, 65535)
        _check_range("[mqtt] session_expiry_s", self.session_expiry_s, 0, 0xFFFFFFFF)
        _check_range("[mqtt] reconnect_max_s", self.reconnect_max_s, 1, 3600)
        if not self.client_id or len(self.client_id) > 128:  # noqa: PLR2004 - generous; brokers take 23+
            raise ConfigError("[mqtt] client_id must be 1 to 128 characters")
        if any(c in self.share_group for c in "/+#"):
            raise ConfigError(f"[mqtt] share_group must not contain '/', '+' or '#': {self.share_group!r}")
        if self.password_file is not None and self.username is None:
            raise ConfigError("[mqtt] password_file needs a username")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """Where accepted records, rejections and the device registry live."""

    url: str = "sqlite:///gateway.db"
    max_rejections: int = 100_000
    """Stored rejections kept for operators; the oldest go first. Each is at most ~8.5 KiB."""

    def __post_init__(self) -> None:
        _check_range("[store] max_rejections", self.max_rejections, 1, 100_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeSettings:
    """Queue and batch sizes of intake: every queue is bounded, every wait is limited."""

    queue_max_messages: int = 10_000
    """Messages waiting for verification. When full, new ones are dropped and counted: the broker has
    PUBACKed them, but the agent resends every record until the gateway's own ack comes."""
    batch_max_messages: int = 200
    """Messages verified and committed in one transaction, acknowledged together after it."""
    batch_max_wait_s: float = 0.01
    """How long a batch waits to fill once its first message is there: the added ack latency."""
    registry_refresh_s: float = 1.0
    """How long a device's registry entry is cached: a revocation takes effect within this time."""
    store_retry_s: float = 1.0
    """Wait before retrying a batch the database failed to commit."""
    shutdown_timeout_s: float = 10.0
    """On shutdown: how long to finish queued messages and wait for the broker to take the acks."""

    def __post_init__(self) -> None:
        _check_range("[intake] queue_max_messages", self.queue_max_messages, 1, 10_000_000)
        _check_range("[intake] batch_max_messages", self.batch_max_messages, 1, 10_000)
        for name in ("batch_max_wait_s", "registry_refresh_s", "store_retry_s", "shutdown_timeout_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"[intake] {name} must be a number of seconds ≥ 0, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiTable:
    """The ``[api]`` table as written: token file paths, not tokens."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    read_token_files: tuple[Path, ...] = ()
    admin_token_files: tuple[Path, ...] = ()
    dashboard: bool = True

    def __post_init__(self) -> None:
        _check_range("[api] port", self.port, 0, MAX_PORT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    """The operator API's listen address and tokens (read from their files at load)."""

    enabled: bool
    host: str
    port: int
    read_tokens: frozenset[str]
    admin_tokens: frozenset[str]
    dashboard: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolmentTable:
    """The ``[enrolment]`` table as written."""

    authority_public_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """Everything ``carbonlink gateway run`` needs, checked."""

    mqtt: MqttSettings
    store: StoreSettings
    intake: IntakeSettings
    api: ApiConfig
    authority_keys: tuple[PublicKey, ...]
    plausibility: PlausibilitySettings = field(default_factory=PlausibilitySettings)
    crediting: CreditingSettings = field(default_factory=CreditingSettings)
    forwarding: ForwardingSettings = field(default_factory=ForwardingSettings)


def _check_range(label: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{label} must be from {low} to {high}, not {value!r}")


def parse_config(text: str, base_dir: Path, environ: Mapping[str, str]) -> GatewayConfig:
    """Validate the text of gateway.toml (with environment overrides) into a GatewayConfig."""
    table = read_tables(text, environ, prefix=ENV_PREFIX, sections=_SECTIONS, error=ConfigError)

    def section(cls: type[Any], name: str, **nested: Any) -> Any:  # noqa: ANN401 - one of the settings classes
        return settings_from_table(
            cls, table.get(name, {}), name=name, base_dir=base_dir, error=ConfigError, nested=nested or None
        )

    def tls(value: object) -> TlsSettings:
        return settings_from_table(TlsSettings, value, name="mqtt.tls", base_dir=base_dir, error=ConfigError)

    store: StoreSettings = section(StoreSettings, "store")
    return GatewayConfig(
        mqtt=section(MqttSettings, "mqtt", tls=tls),
        store=StoreSettings(url=_store_url(store.url, base_dir), max_rejections=store.max_rejections),
        intake=section(IntakeSettings, "intake"),
        api=_api_config(section(ApiTable, "api")),
        authority_keys=_authority_keys(section(EnrolmentTable, "enrolment")),
        plausibility=plausibility_from_table(table.get("plausibility", {})),
        crediting=crediting_from_table(table.get("crediting", {}), base_dir),
        forwarding=forwarding_from_table(table.get("forwarding", {}), base_dir),
    )


def _store_url(url: str, base_dir: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return f"sqlite:///{(base_dir / url[len(prefix) :]).resolve()}"  # absolute: sqlite:////abs/path
    return url


def _read_tokens(paths: tuple[Path, ...], kind: str) -> frozenset[str]:
    tokens = set()
    for path in paths:
        try:
            if path.stat().st_size > MAX_TOKEN_BYTES:
                raise ConfigError(f"[api] {kind} token file {path} is over {MAX_TOKEN_BYTES} bytes")
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"[api] cannot read {kind} token file {path}: {err}") from err
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token) or not token.isprintable():
            raise ConfigError(
                f"[api] {kind} token file {path} must hold one token of at least {MIN_TOKEN_CHARS} printable "
                "characters without spaces"
            )
        tokens.add(token)
    return frozenset(tokens)


def _api_config(api: ApiTable) -> ApiConfig:
    read, admin = _read_tokens(api.read_token_files, "read"), _read_tokens(api.admin_token_files, "admin")
    if api.enabled and not admin:
        raise ConfigError("[api] admin_token_files must name at least one token file (or set enabled = false)")
    return ApiConfig(
        enabled=api.enabled, host=api.host, port=api.port, read_tokens=read, admin_tokens=admin, dashboard=api.dashboard
    )


def _authority_keys(enrolment: EnrolmentTable) -> tuple[PublicKey, ...]:
    keys = []
    for index, text in enumerate(enrolment.authority_public_keys):
        try:
            keys.append(PublicKey.from_text(text))
        except KeyFormatError as err:
            raise ConfigError(f"[enrolment] authority_public_keys[{index}]: {err}") from err
    return tuple(keys)


def load_config(path: Path, environ: Mapping[str, str]) -> GatewayConfig:
    """Read and validate gateway.toml; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read gateway config {path}: {err}") from err
    try:
        return parse_config(text, path.parent, environ)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
