"""``--broker mqtt://HOST:PORT`` / ``--publish mqtt://HOST:PORT``: an MQTT broker's address from a URL."""

from urllib.parse import urlsplit

from carbonlink.cli.errors import EXIT_USAGE, CliError

MQTT_PORT = 1883


def broker_address(url: str, option: str) -> tuple[str, int]:
    """Host and port of ``mqtt://HOST[:PORT]`` (``tcp://`` or a bare ``HOST[:PORT]`` too); errors name ``option``."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    try:
        port = parts.port or MQTT_PORT
    except ValueError as err:
        raise CliError(f"{option} must be mqtt://HOST:PORT, not {url!r}: {err}", EXIT_USAGE) from err
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise CliError(f"{option} must be mqtt://HOST:PORT, not {url!r}", EXIT_USAGE)
    return parts.hostname, port
