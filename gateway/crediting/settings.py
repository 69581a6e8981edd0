"""The ``[crediting]`` and ``[forwarding]`` tables of gateway.toml, checked at load.

[crediting]
grid_region = "cn"                     # the grid factor's region (docs/methodology.md)
# parameter_file = "parameters.toml"   # default: the methodology's shipped file
# batch_max_records = 500, interval_s = 1.0
[crediting.device_regions]             # optional: devices outside grid_region
car-7 = "cn-east"

[forwarding]                           # optional: where issued credits go (docs/forwarding.md)
signing_key_file = "gateway.key"       # the gateway's own Ed25519 key (carbonlink keys new)
webhook_url = "https://registry.example/credits"
export_file = "credits.jsonl"
# webhook_timeout_s = 10, retry_initial_s = 1, retry_multiplier = 2, retry_max_s = 300, max_attempts = 100
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from carbonlink.config_tables import settings_from_table
from gateway.errors import ConfigError

_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
MAX_WEBHOOK_TIMEOUT_S = 50.0
"""Longest webhook timeout: a forwarder pass (10 deliveries) must end within the store's 600 s lease."""
WEBHOOK_SINK = "webhook"
EXPORT_FILE_SINK = "export_file"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditingSettings:
    """How accepted records become credits."""

    enabled: bool = True
    grid_region: str = "cn"
    """Region of the grid factor for every device not in ``device_regions``."""
    parameter_file: Path | None = None
    """A parameter file instead of the shipped one (docs/methodology.md says what it holds)."""
    batch_max_records: int = 500
    """Records decided in one ledger transaction (and sealed into one batch)."""
    interval_s: float = 1.0
    """How often crediting looks for records queued by another gateway, and waits after an error."""
    device_regions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        regions: dict[str, object] = {"": self.grid_region, **self.device_regions}
        for device_id, region in regions.items():
            where = f"[crediting.device_regions] {device_id}" if device_id else "[crediting] grid_region"
            if not isinstance(region, str) or _REGION.fullmatch(region) is None:
                raise ConfigError(f"{where} must be a region name like 'cn' or 'cn-east', not {region!r}")
            if device_id and _DEVICE_ID.fullmatch(device_id) is None:
                raise ConfigError(f"[crediting.device_regions] {device_id!r} is not a device id")
        if not 1 <= self.batch_max_records <= 100_000:  # noqa: PLR2004 - one transaction's worth
            raise ConfigError(f"[crediting] batch_max_records must be from 1 to 100000, not {self.batch_max_records}")
        _check_seconds("[crediting] interval_s", self.interval_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardingSettings:
    """Where issued credits are forwarded, and how hard to try."""

    signing_key_file: Path | None = None
    webhook_url: str | None = None
    webhook_timeout_s: float = 10.0
    export_file: Path | None = None
    retry_initial_s: float = 1.0
    retry_multiplier: float = 2.0
    retry_max_s: float = 300.0
    max_attempts: int = 100
    """Attempts before a delivery becomes a dead letter (visible in the API, retried by an operator).
    With the other defaults, 100 attempts span about four hours of a receiver's outage on average."""

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"[forwarding] webhook_url must be an http(s) URL, not {self.webhook_url!r}")
            if self.signing_key_file is None:
                raise ConfigError("[forwarding] webhook_url needs signing_key_file: receivers check the signature")
        for name in ("webhook_timeout_s", "retry_initial_s", "retry_max_s"):
            _check_seconds(f"[forwarding] {name}", getattr(self, name))
        if self.webhook_timeout_s > MAX_WEBHOOK_TIMEOUT_S:
            raise ConfigError(
                f"[forwarding] webhook_timeout_s must be at most {MAX_WEBHOOK_TIMEOUT_S:.0f} s (a forwarder's pass "
                f"of 10 deliveries must end within the 600 s lease on them), not {self.webhook_timeout_s}"
            )
        if not math.isfinite(self.retry_multiplier) or self.retry_multiplier < 1:
            raise ConfigError(f"[forwarding] retry_multiplier must be 1 or more, not {self.retry_multiplier}")
        if not 1 <= self.max_attempts <= 1000:  # noqa: PLR2004 - generous
            raise ConfigError(f"[forwarding] max_attempts must be from 1 to 1000, not {self.max_attempts}")

    @property
    def sinks(self) -> tuple[str, ...]:
        """The names of the configured sinks: each issued credit gets one delivery per sink."""
        return tuple(
            name
            for name, configured in ((WEBHOOK_SINK, self.webhook_url), (EXPORT_FILE_SINK, self.export_file))
            if configured is not None
        )


def _check_seconds(label: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{label} must be a number of seconds above 0, not {value!r}")


def crediting_from_table(table: object, base_dir: Path) -> CreditingSettings:
    def regions(value: object) -> Mapping[str, str]:
        if not isinstance(value, Mapping):
            raise ConfigError(f"[crediting.device_regions] must be a table of device id = region, not {value!r}")
        return {str(key): item for key, item in value.items()}

    return settings_from_table(
        CreditingSettings,
        table,
        name="crediting",
        base_dir=base_dir,
        error=ConfigError,
        nested={"device_regions": regions},
    )


def forwarding_from_table(table: object, base_dir: Path) -> ForwardingSettings:
    return settings_from_table(ForwardingSettings, table, name="forwarding", base_dir=base_dir, error=ConfigError)
