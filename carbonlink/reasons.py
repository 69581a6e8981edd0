"""The one fixed list of reasons for which a record is refused.

Acks, the gateway's database, its metrics and its API all use these values, so an operator
sees the same word for the same failure everywhere. The list is part of the wire protocol
(see ``docs/protocol.md``): adding a reason is a compatible change, renaming one is not.
"""

from enum import StrEnum


class RejectionReason(StrEnum):
    """Why a record was refused, cheapest check first."""

    TOO_LARGE = "too_large"
    BAD_TOPIC = "bad_topic"
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_DEVICE = "unknown_device"
    REVOKED_KEY = "revoked_key"
    BAD_SIGNATURE = "bad_signature"
    SCHEMA = "schema"
    DEVICE_MISMATCH = "device_mismatch"
    SEQUENCE_GAP = "sequence_gap"
    CHAIN_BREAK = "chain_break"
    REPLAYED = "replayed"
    CLOCK_SKEW = "clock_skew"
    TIME_ORDER = "time_order"
    IMPLAUSIBLE_ENERGY = "implausible_energy"
    IMPLAUSIBLE_DISTANCE = "implausible_distance"
    IMPLAUSIBLE_SOC = "implausible_soc"
    IMPLAUSIBLE_SPEED = "implausible_speed"
    IMPLAUSIBLE_CHARGE_EFFICIENCY = "implausible_charge_efficiency"
    ODOMETER_ROLLBACK = "odometer_rollback"
    OVERLAP = "overlap"


RETRYABLE_REASONS = frozenset({RejectionReason.SEQUENCE_GAP})
"""Rejections whose cause may pass: the record is not wrong, it came too early.

With a shared subscription, or after a reconnect, a record can reach the gateway before its
predecessor. The agent keeps a record rejected for one of these reasons and resends it later
(with its usual backoff); every other rejection is final and the record goes to quarantine.
"""
