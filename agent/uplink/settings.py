"""What the uplink needs to know about the broker, validated once into a frozen value.

Secrets are file paths, never values: the password is read from ``password_file`` when the uplink
is built, and never logged. Every number carries its unit; every bound is a named constant.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from carbonlink.keys import check_device_id

MAX_PORT = 65535
MAX_KEEPALIVE_S = 65535
"""MQTT carries the keepalive as a 16-bit number of seconds."""
MIN_INFLIGHT = 20
MAX_INFLIGHT = 100
"""paho rescans its in-flight list on every PUBACK: beyond ~100 QoS 1 gets slower, not faster (DESIGN.md §4)."""
MAX_SESSION_EXPIRY_S = 0xFFFFFFFF
"""MQTT 5 session expiry is a 32-bit number of seconds (this value means "never")."""


class ProtocolChoice(StrEnum):
    """Which MQTT version to speak."""

    AUTO = "auto"
    """MQTT 5, falling back to 3.1.1 when the broker answers "unsupported protocol version"."""
    V5 = "5"
    V311 = "3.1.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """TLS towards the broker; the CA file defaults to the system's trust store."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    """Client certificate (PEM); Mosquitto maps it to the device with ``use_identity_as_username``."""
    key_file: Path | None = None
    insecure: bool = False
    """Skip the host name check of the broker's certificate: for test brokers only."""

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("tls.cert_file and tls.key_file must be given together")


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkSettings:
    """The broker connection of one device."""

    host: str
    client_id: str | None = None
    """The device id (None: take it from the device key); the broker's access control lets a
    client write only under its own id, so any other value is refused."""
    port: int = 1883
    tls: TlsSettings | None = None
    username: str | None = None
    password_file: Path | None = None
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    """How long one connection attempt (TCP, TLS, CONNACK) may take before it counts as failed."""
    session_expiry_s: int = 86_400
    """How long the broker keeps our session (and the acks sent to it) while we are offline; MQTT 5 only."""
    ack_timeout_s: float = 30.0
    """Resend a published record when the gateway's ack has not come this long after (connected time)."""
    max_inflight: int = MIN_INFLIGHT
    """Records published and awaiting the gateway's ack at once; also paho's QoS 1 in-flight window."""
    drain_rate_per_s: float = 50.0
    """Most records published per second, so a long backlog drains without flooding broker or modem."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    protocol: ProtocolChoice = ProtocolChoice.AUTO

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"host must be a host name or address, not {self.host!r}")
        if self.client_id is not None:
            try:
                check_device_id(self.client_id)
            except ValueError as err:
                raise ConfigError(f"client_id: {err}") from err
        _check_int("port", self.port, 1, MAX_PORT)
        _check_int("keepalive_s", self.keepalive_s, 1, MAX_KEEPALIVE_S)
        _check_int("session_expiry_s", self.session_expiry_s, 0, MAX_SESSION_EXPIRY_S)
        _check_int("max_inflight", self.max_inflight, MIN_INFLIGHT, MAX_INFLIGHT)
        for name in ("connect_timeout_s", "ack_timeout_s", "drain_rate_per_s", "backoff_initial_s"):
            _check_positive(name, getattr(self, name))
        _check_positive("backoff_max_s", self.backoff_max_s)
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError(f"backoff_max_s ({self.backoff_max_s}) must be at least backoff_initial_s")
        if self.username is not None and not self.username:
            raise ConfigError("username must not be empty (leave it out instead)")
        if self.password_file is not None and self.username is None:
            raise ConfigError("password_file needs a username (MQTT 3.1.1 sends no password without one)")
        try:  # a TOML loader hands over the text; keep the enum
            object.__setattr__(self, "protocol", ProtocolChoice(self.protocol))
        except ValueError as err:
            choices = ", ".join(repr(p.value) for p in ProtocolChoice)
            raise ConfigError(f"protocol must be one of {choices}, not {self.protocol!r}") from err


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, not {value!r}")


_PATH_KEYS = frozenset({"password_file"})
_TLS_PATH_KEYS = frozenset({"ca_file", "cert_file", "key_file"})


def settings_from_table(table: Mapping[str, Any], base_dir: Path) -> UplinkSettings:
    """Uplink settings from agent.toml's ``[mqtt]`` table (and its ``[mqtt.tls]``).

    Relative paths are taken relative to ``base_dir`` (the config file's folder). Unknown keys
    and values of the wrong type are refused with the key's name, never ignored: a misspelt
    ``ca_flie`` must not quietly turn TLS verification into the system default.
    """
    known = {item.name for item in fields(UplinkSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key {key!r}; known: {', '.join(sorted(known))}")
        if key == "tls":
            values[key] = _tls_from_table(value, base_dir)
        elif key in _PATH_KEYS:
            values[key] = _path(key, value, base_dir)
        else:
            values[key] = value
    if "host" not in values:
        raise ConfigError("host is required")
    for key in ("host", "client_id", "username"):
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"{key} must be text, not {values[key]!r}")
    if "protocol" in values and not isinstance(values["protocol"], str):
        raise ConfigError(f'protocol must be text such as "5" or "3.1.1", not {values["protocol"]!r}')
    return UplinkSettings(**values)


def _tls_from_table(table: object, base_dir: Path) -> TlsSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"tls must be a table ([mqtt.tls]), not {table!r}")
    known = {item.name for item in fields(TlsSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key tls.{key}; known: {', '.join(sorted(known))}")
        if key in _TLS_PATH_KEYS:
            values[key] = _path(f"tls.{key}", value, base_dir)
        elif not isinstance(value, bool):
            raise ConfigError(f"tls.{key} must be true or false, not {value!r}")
        else:
            values[key] = value
    return TlsSettings(**values)


def _path(name: str, value: object, base_dir: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a file path, not {value!r}")
    return (base_dir / value).resolve()
