"""Errors of the agent, each naming the file, signal, record or setting at fault.

AgentError
├── ProfileError (ValueError)     a vehicle profile that does not fit its DBC(s)
├── ConfigError (ValueError)      a bad agent.toml or environment override
├── SourceError (OSError)         a CAN interface or log file that cannot be read
├── OutboxError (OSError)         the outbox cannot be read or written (disk full, permissions)
│   └── OutboxFullError           the outbox holds its maximum of unacknowledged records
└── UplinkError (ConnectionError) the broker refuses us for good (bad credentials, bad TLS)
"""


class AgentError(Exception):
    """Base of every error raised by the agent."""


class ProfileError(AgentError, ValueError):
    """A vehicle profile is malformed or does not match its DBC(s)."""


class ConfigError(AgentError, ValueError):
    """The agent's configuration is malformed or incomplete."""


class SourceError(AgentError, OSError):
    """A CAN source (interface or log file) cannot be opened or read."""


class OutboxError(AgentError, OSError):
    """The durable outbox cannot be read or written."""


class OutboxFullError(OutboxError):
    """The outbox holds its maximum of unacknowledged records; nothing is evicted silently."""


class UplinkError(AgentError, ConnectionError):
    """The broker refuses the agent in a way retrying will not fix (authentication, TLS)."""
