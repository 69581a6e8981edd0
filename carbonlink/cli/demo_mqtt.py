"""The demo's misbehaving vehicle (``--faults``): records sent again, tampered or as they were."""

import hashlib
import queue
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from carbonlink.acks import decode_ack
from carbonlink.errors import CarbonlinkError
from carbonlink.topics import acks_topic, records_topic

if TYPE_CHECKING:
    from gateway.app import Gateway

ACK_TIMEOUT_S = 15.0


def send_and_wait_ack(host: str, port: int, device_id: str, payload: bytes) -> str:
    """Publish ``payload`` as ``device_id``'s record; the gateway's answer in words (or why there was none)."""
    digest = hashlib.sha256(payload).digest()
    answers: queue.Queue[str] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    def on_connect(client: mqtt.Client, _userdata: object, _flags: object, _code: object, _props: object) -> None:
        client.subscribe(acks_topic(device_id), qos=1)

    def on_subscribe(_client: mqtt.Client, _userdata: object, _mid: object, _codes: object, _props: object) -> None:
        subscribed.put(item=True)

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            ack = decode_ack(bytes(message.payload))
        except CarbonlinkError:
            return
        if ack.record_hash == digest:
            answers.put(ack.outcome.value if ack.reason is None else f"{ack.outcome.value} {ack.reason.value}")

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"demo-misbehaving-{secrets.token_hex(3)}", protocol=mqtt.MQTTv311
    )
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(host, port)
    client.loop_start()
    try:
        subscribed.get(timeout=ACK_TIMEOUT_S)
        client.publish(records_topic(device_id), payload, qos=1)
        return answers.get(timeout=ACK_TIMEOUT_S)
    except queue.Empty:
        return f"no ack within {ACK_TIMEOUT_S:.0f} s"
    finally:
        client.disconnect()
        client.loop_stop()


def tamper_and_replay(
    gateway: "Gateway", device_ids: Sequence[str], host: str, port: int, out: Callable[[str], None]
) -> dict[str, int]:
    """Misbehave as the first two vehicles; the duplicates the gateway acknowledged, by device.

    As the first, send its first record with a changed byte (the last of its signature); as the
    second, send its first record again as it was.
    """
    from gateway.model import RecordQuery  # noqa: PLC0415 - the gateway loads only when the demo runs

    duplicates: dict[str, int] = {}
    for index, device_id in enumerate(device_ids[:2]):
        records = gateway.store.records(RecordQuery(device_id=device_id, limit=1))
        if not records:
            continue
        signed = records[0].signed
        if index == 0:
            tampered = signed[:-1] + bytes([signed[-1] ^ 0x01])
            out(
                f"  {device_id}: sent a tampered copy of a record: {send_and_wait_ack(host, port, device_id, tampered)}"
            )
        else:
            outcome = send_and_wait_ack(host, port, device_id, signed)
            out(f"  {device_id}: replayed an old record: {outcome}")
            if outcome.startswith("duplicate"):
                duplicates[device_id] = 1
    return duplicates
