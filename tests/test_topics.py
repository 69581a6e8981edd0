"""Topic names of the protocol, and reading a device id back out of one."""

import pytest

from carbonlink.errors import KeyFormatError
from carbonlink.topics import (
    acks_topic,
    device_of_records_topic,
    records_subscription,
    records_topic,
    status_topic,
)


def test_per_vehicle_topics() -> None:
    """Each vehicle has its records, acks and status topics under carbonlink/v1/vehicles/<id>."""
    assert records_topic("ev-1a") == "carbonlink/v1/vehicles/ev-1a/records"
    assert acks_topic("ev-1a") == "carbonlink/v1/vehicles/ev-1a/acks"
    assert status_topic("ev-1a") == "carbonlink/v1/vehicles/ev-1a/status"


def test_gateway_subscription_is_shared_when_grouped() -> None:
    """Several gateways split the load through an MQTT 5 shared subscription."""
    assert records_subscription("gateways") == "$share/gateways/carbonlink/v1/vehicles/+/records"
    assert records_subscription(None) == "carbonlink/v1/vehicles/+/records"


@pytest.mark.parametrize("device_id", ["ev/../x", "+", "#", "ev 1", ""])
def test_topic_unsafe_device_ids_are_refused(device_id: str) -> None:
    """A device id that would change the topic's meaning is refused."""
    with pytest.raises(KeyFormatError):
        records_topic(device_id)


@pytest.mark.parametrize(
    ("topic", "device_id"),
    [
        ("carbonlink/v1/vehicles/ev-1a/records", "ev-1a"),
        ("carbonlink/v1/vehicles/ev-1a/acks", None),
        ("carbonlink/v2/vehicles/ev-1a/records", None),
        ("carbonlink/v1/vehicles/EV/records", None),
        ("carbonlink/v1/vehicles/ev-1a/records/extra", None),
        ("", None),
    ],
)
def test_device_of_records_topic(topic: str, device_id: str | None) -> None:
    """Only a well-formed records topic yields its device id."""
    assert device_of_records_topic(topic) == device_id
