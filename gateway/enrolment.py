"""What the gateway does with an enrolment certificate: register the device, nothing, or refuse — decided, not done.

Values in, a decision out (no store, no clock, no I/O): the caller looks up the device named by the
topic, passes the time, commits a :class:`Register` and counts every outcome. The rules:

- the certificate must verify against a configured fleet authority key and be valid now
  (:func:`carbonlink.enrolment.read_certificate`), before anything in it is looked at;
- the topic's device id and the certificate's must agree, as for records;
- enrolment only ever *adds* a device. A registered device's key is never replaced through it: a
  certificate for a registered device with another key is refused (rotation is an operator's act),
  and a revoked device, or a revoked or retired key, is never brought back by one.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from carbonlink.enrolment import EnrolmentCertificate, ValidityError, read_certificate
from carbonlink.errors import CarbonlinkError, WrongKeyError
from carbonlink.keys import PublicKey
from carbonlink.vehicles import VehicleClass
from gateway.model import Device, DeviceStatus, KeyStatus


class EnrolmentRefusal(StrEnum):
    """Why a certificate was refused: a fixed list, so it can label a metric."""

    INVALID_CERTIFICATE = "invalid_certificate"
    """Oversized, malformed, another content type or version, a bad signature or bad fields."""
    UNKNOWN_AUTHORITY = "unknown_authority"
    """Signed by a key that is not a configured fleet authority key (or none is configured)."""
    NOT_VALID_NOW = "not_valid_now"
    """Expired, or not valid yet."""
    DEVICE_MISMATCH = "device_mismatch"
    """The topic's device id is not the certificate's."""
    KEY_CONFLICT = "key_conflict"
    """The device is registered with another key, or this key was retired or revoked."""
    DEVICE_REVOKED = "device_revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """A new device: register it with the certified key, class and VIN hash."""

    device_id: str
    public_key: PublicKey
    vehicle_class: VehicleClass
    vin_hash: bytes | None
    certificate: EnrolmentCertificate

    result: ClassVar[str] = "register"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyRegistered:
    """The device is registered, active, with this very key: nothing to do (agents send it on every connect)."""

    device_id: str

    result: ClassVar[str] = "already_registered"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Nothing is registered; ``detail`` says why, for the log (one line, no secret)."""

    device_id: str
    """The device id of the topic."""
    reason: EnrolmentRefusal
    detail: str

    result: ClassVar[str] = "refused"


EnrolmentDecision = Register | AlreadyRegistered | Refused
"""One of the three; ``decision.result`` names it (``register``, ``already_registered``, ``refused``)."""


def decide_enrolment(
    data: bytes,
    *,
    topic_device_id: str,
    authority_keys: Sequence[PublicKey],
    existing: Device | None,
    now: datetime,
) -> EnrolmentDecision:
    """Decide what to do with certificate bytes received on ``topic_device_id``'s enrolment topic.

    ``existing`` is the device registered under ``topic_device_id``, if any; ``now`` the gateway's
    time, against which the certificate's validity period is checked.
    """
    if existing is not None and existing.device_id != topic_device_id:
        raise ValueError(f"existing device {existing.device_id!r} is not the topic's {topic_device_id!r}")
    try:
        certificate = read_certificate(data, authority_keys, now=now)
    except WrongKeyError as err:
        return Refused(device_id=topic_device_id, reason=EnrolmentRefusal.UNKNOWN_AUTHORITY, detail=str(err))
    except ValidityError as err:
        return Refused(device_id=topic_device_id, reason=EnrolmentRefusal.NOT_VALID_NOW, detail=str(err))
    except CarbonlinkError as err:
        return Refused(device_id=topic_device_id, reason=EnrolmentRefusal.INVALID_CERTIFICATE, detail=str(err))
    if certificate.device_id != topic_device_id:
        return Refused(
            device_id=topic_device_id,
            reason=EnrolmentRefusal.DEVICE_MISMATCH,
            detail=f"certificate is for device {certificate.device_id}, received on the topic of {topic_device_id}",
        )
    if existing is None:
        return Register(
            device_id=certificate.device_id,
            public_key=certificate.public_key,
            vehicle_class=certificate.vehicle_class,
            vin_hash=certificate.vin_hash,
            certificate=certificate,
        )
    return _judge_registered(existing, certificate)


def _judge_registered(device: Device, certificate: EnrolmentCertificate) -> EnrolmentDecision:
    """A certificate for a device the gateway knows: confirms it, or is refused; never changes it."""
    if device.status is DeviceStatus.REVOKED:
        return Refused(
            device_id=device.device_id,
            reason=EnrolmentRefusal.DEVICE_REVOKED,
            detail=f"device {device.device_id} is revoked; enrolment does not bring it back",
        )
    registered = device.key(certificate.public_key.kid)
    if registered is None:
        return Refused(
            device_id=device.device_id,
            reason=EnrolmentRefusal.KEY_CONFLICT,
            detail=(
                f"device {device.device_id} is registered with another key; enrolment never replaces a key "
                f"(certified kid {certificate.public_key.kid.hex()})"
            ),
        )
    if registered.status is not KeyStatus.ACTIVE:
        return Refused(
            device_id=device.device_id,
            reason=EnrolmentRefusal.KEY_CONFLICT,
            detail=f"key {registered.kid.hex()} of device {device.device_id} is {registered.status.value}",
        )
    return AlreadyRegistered(device_id=device.device_id)
