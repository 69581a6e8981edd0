"""The forwarding sinks ``[forwarding]`` configures, built once at start."""

from pathlib import Path

from carbonlink.errors import KeyFormatError
from carbonlink.keys import DeviceKey, key_file_permission_problem, parse_key_file
from gateway.crediting.settings import EXPORT_FILE_SINK, WEBHOOK_SINK, ForwardingSettings
from gateway.errors import ConfigError
from gateway.forwarding.export_file import ExportFileSink
from gateway.forwarding.model import CreditSink
from gateway.forwarding.retry import RetryPolicy
from gateway.forwarding.webhook import WebhookSink


def read_signing_key(path: Path) -> DeviceKey:
    """The gateway's own Ed25519 key; :class:`ConfigError` naming the file when it cannot be used."""
    try:
        problem = key_file_permission_problem(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"[forwarding] cannot read signing_key_file {path}: {err}") from err
    if problem is not None:
        raise ConfigError(f"[forwarding] signing_key_file {path}: {problem}")
    try:
        return parse_key_file(text)
    except KeyFormatError as err:
        raise ConfigError(f"[forwarding] signing_key_file {path}: {err}") from err


def build_sinks(settings: ForwardingSettings, signing_key: DeviceKey | None) -> dict[str, CreditSink]:
    sinks: dict[str, CreditSink] = {}
    if settings.webhook_url is not None:
        if signing_key is None:
            raise ConfigError("[forwarding] webhook_url needs signing_key_file")
        sinks[WEBHOOK_SINK] = WebhookSink(settings.webhook_url, signing_key, timeout_s=settings.webhook_timeout_s)
    if settings.export_file is not None:
        sinks[EXPORT_FILE_SINK] = ExportFileSink(settings.export_file)
    return sinks


def retry_policy(settings: ForwardingSettings) -> RetryPolicy:
    return RetryPolicy(
        initial_s=settings.retry_initial_s,
        multiplier=settings.retry_multiplier,
        max_s=settings.retry_max_s,
        max_attempts=settings.max_attempts,
    )
