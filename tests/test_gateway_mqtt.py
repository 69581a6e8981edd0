"""The gateway's MQTT versions: MQTT 5 with a shared subscription, and 3.1.1 where a broker has nothing newer."""

from pathlib import Path

from paho.mqtt.enums import MQTTProtocolVersion

from carbonlink.acks import Outcome
from carbonlink.keys import DeviceKey
from carbonlink.topics import records_topic
from carbonlink.vehicles import VehicleClass
from gateway.model import Enrolment

from gateway_harness import GATEWAY_NOW, AckListener, ChainBuilder, running_gateway
from mosquitto_broker import MosquittoBroker, mosquitto  # noqa: F401
from test_agent_uplink import Mqtt311OnlyFront


def test_a_broker_without_mqtt_5_gets_3_1_1_and_a_plain_subscription(
    mosquitto: MosquittoBroker,  # noqa: F811
    tmp_path: Path,
) -> None:
    """With protocol "auto", "unacceptable protocol version" makes the gateway connect in 3.1.1 and take records."""
    front = Mqtt311OnlyFront(mosquitto)
    vehicles = AckListener(mosquitto.host, mosquitto.port)
    try:
        with running_gateway(mosquitto.host, front.port, f"sqlite:///{tmp_path / 'gw.db'}", tmp_path) as gw:
            assert gw.gateway.mqtt.protocol == MQTTProtocolVersion.MQTTv311
            assert front.refused_v5 == 1
            key = DeviceKey.from_seed(bytes([71]) * 32, "ev-mqtt311-001")
            gw.gateway.store.add_device(
                key.device_id, key.public_key, vehicle_class=VehicleClass.COMPACT, vin_hash=None,
                enrolment=Enrolment.OPERATOR, at=GATEWAY_NOW,
            )  # fmt: skip
            digest = vehicles.publish(records_topic(key.device_id), ChainBuilder(key).trip()[0])
            assert vehicles.wait_ack(digest).outcome is Outcome.ACCEPTED
    finally:
        vehicles.close()
        front.close()
