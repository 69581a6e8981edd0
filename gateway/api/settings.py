"""What the operator API needs to know: its tokens, where it listens, whether it serves the dashboard.

The tokens are the *values* read from the token files that ``gateway.toml`` names (secrets are file
paths there, never values); the config loader reads them and hands them over here, and nothing in the
API ever logs them.
"""

from dataclasses import dataclass

from gateway.errors import ConfigError

MAX_PORT = 65535
MIN_TOKEN_CHARS = 16
"""A token shorter than this is guessable; ``openssl rand -hex 32`` makes a good one (64 characters)."""


def _check_tokens(tokens: frozenset[str], name: str) -> None:
    for token in tokens:
        if len(token) < MIN_TOKEN_CHARS or token != token.strip() or not token.isprintable():
            # Never echo the token itself: it may be a real secret with a typo.
            raise ConfigError(
                f"api.{name}: every token must be at least {MIN_TOKEN_CHARS} printable characters "
                "without surrounding blanks (make one with: openssl rand -hex 32)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """The operator API's settings, checked when built.

    ``admin_tokens`` may also read. With no token at all every protected endpoint answers 401:
    the API is then only good for ``/healthz``, ``/readyz`` and the dashboard's empty shell.
    """

    read_tokens: frozenset[str] = frozenset()
    admin_tokens: frozenset[str] = frozenset()
    host: str = "127.0.0.1"
    """Loopback by default: exposing the API is a decision (behind TLS termination), not an accident."""
    port: int = 8080
    dashboard: bool = True
    """Serve the dashboard page at ``/``."""

    def __post_init__(self) -> None:
        _check_tokens(self.read_tokens, "read_tokens")
        _check_tokens(self.admin_tokens, "admin_tokens")
        if not 0 <= self.port <= MAX_PORT:
            raise ConfigError(f"api.port must be 0-{MAX_PORT} (0: any free port), got {self.port}")
        if not self.host.strip():
            raise ConfigError("api.host must not be empty")
