"""Errors of the gateway, each naming the setting, device, record or database at fault.

GatewayError
├── ConfigError (ValueError)        a bad gateway.toml or environment override
├── RegistryError (ValueError)      a device-registry request that cannot be done
│   ├── UnknownDeviceError (LookupError)   no such device or key
│   └── DeviceExistsError           the device id or public key is registered already
├── StoreError (OSError)            the database cannot be opened, migrated or written
│   └── ConflictError               a commit broke a uniqueness rule (another gateway won the race)
└── EnrolmentError (ValueError)     an enrolment certificate that is not valid
"""


class GatewayError(Exception):
    """Base of every error raised by the gateway."""


class ConfigError(GatewayError, ValueError):
    """The gateway's configuration is malformed or incomplete."""


class RegistryError(GatewayError, ValueError):
    """A device-registry request cannot be done as asked."""


class UnknownDeviceError(RegistryError, LookupError):
    """The device or key named is not registered."""


class DeviceExistsError(RegistryError):
    """The device id, or the public key, is registered already."""


class StoreError(GatewayError, OSError):
    """The database cannot be opened, migrated, read or written."""


class ConflictError(StoreError):
    """A commit broke a uniqueness constraint: another gateway process committed first."""


class EnrolmentError(GatewayError, ValueError):
    """An enrolment certificate is malformed, not signed by the fleet authority, or expired."""
