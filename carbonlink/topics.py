"""MQTT topic names of the protocol (see ``docs/protocol.md``)."""

from carbonlink.keys import check_device_id

PREFIX = "carbonlink/v1/vehicles"
RECORDS = "records"
ACKS = "acks"
STATUS = "status"
ENROLMENT = "enrolment"


def records_topic(device_id: str) -> str:
    """Agent → gateway, QoS 1: signed records."""
    return f"{PREFIX}/{check_device_id(device_id)}/{RECORDS}"


def acks_topic(device_id: str) -> str:
    """Gateway → agent, QoS 1: one ack per record, after the gateway committed it."""
    return f"{PREFIX}/{check_device_id(device_id)}/{ACKS}"


def status_topic(device_id: str) -> str:
    """Agent → anyone, retained: ``online``, or ``offline`` from the last will."""
    return f"{PREFIX}/{check_device_id(device_id)}/{STATUS}"


def enrolment_topic(device_id: str) -> str:
    """Agent → gateway, QoS 1: the device's enrolment certificate, once per connection, before any record."""
    return f"{PREFIX}/{check_device_id(device_id)}/{ENROLMENT}"


def records_subscription(share_group: str | None) -> str:
    """The gateway's subscription to every vehicle's records; shared when a group is given."""
    topic = f"{PREFIX}/+/{RECORDS}"
    return f"$share/{share_group}/{topic}" if share_group else topic


def enrolment_subscription(share_group: str | None) -> str:
    """The gateway's subscription to every vehicle's enrolment certificates; shared when a group is given."""
    topic = f"{PREFIX}/+/{ENROLMENT}"
    return f"$share/{share_group}/{topic}" if share_group else topic


def device_of_records_topic(topic: str) -> str | None:
    """The device id in a records topic, or ``None`` if the topic is not one."""
    return _device_of(topic, RECORDS)


def device_of_enrolment_topic(topic: str) -> str | None:
    """The device id in an enrolment topic, or ``None`` if the topic is not one."""
    return _device_of(topic, ENROLMENT)


def _device_of(topic: str, leaf: str) -> str | None:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != PREFIX or parts[4] != leaf:  # noqa: PLR2004 - prefix(3)+id+leaf
        return None
    device_id = parts[3]
    try:
        return check_device_id(device_id)
    except ValueError:
        return None
