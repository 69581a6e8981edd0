"""The gateway's intake throughput against the naive loop, both on a real Mosquitto, measured in one run.

    .venv/bin/python bench/gateway_intake.py                          # 20,000 records from 50 devices
    .venv/bin/python bench/gateway_intake.py --quick                  # 600 records from 10 devices
    .venv/bin/python bench/gateway_intake.py --rounds 3               # alternate three times; medians
    .venv/bin/python bench/gateway_intake.py --batch-max-messages 50  # the gateway's [intake] batch size
    CARBONLINK_TEST_POSTGRES_URL=postgresql://... .venv/bin/python bench/gateway_intake.py --store postgresql

Before anything is timed, the parent signs every record (``carbonlink.testing.sample_chain``: each
device's commutes and charges, chained from sequence 1) and starts a private Mosquitto on a free
127.0.0.1 port. Its ``max_queued_messages`` is raised above the number of records (default 1000
per client) so the broker keeps the whole flood for a slow subscriber instead of dropping it, and
``max_inflight_messages`` to 100 (default 20), the window the publisher uses. For the same reason
the gateway's ``[intake] queue_max_messages`` is raised above the number of records (default
10,000: a larger flood overflows it, and the dropped records' successors are then rejected
``sequence_gap``); ``--queue-max-messages`` sets it.

Then the same records go, once each, through two consumers, each a child process of its own whose
CPU time (user + system, all threads, from ``/proc/<pid>/stat``) is read before and after:

- **naive**: the obvious consumer. Everything happens in paho's ``on_message``: ``verify`` with the
  device's key from a dict, a chain check against the device's head in memory (sequence and
  previous-record hash), one INSERT and one commit per record (SQLite in WAL mode with the gateway
  store's ``synchronous=FULL``, or PostgreSQL), then the ack (QoS 1).
- **ours**: ``gateway.app.Gateway`` with every check on (registry, signature, schema, replay,
  plausibility, overlap), its store on the same database, its operator API and crediting off
  (this measures intake, the part the naive loop does too; intake still queues every accepted
  record for crediting in its commit), its clock fixed after the last record.

A publisher child publishes every record at QoS 1 (devices interleaved, each device's records in
order) as fast as a window of 100 unacknowledged messages allows; the parent counts the acks.
Every ack must say ``accepted``: anything else is a bug, printed, and the exit status is 1.
Throughput = records / (first publish → last ack); CPU µs per record = the consumer's CPU time
over that span / records. Each consumer first accepts one warm-up record of a device of its own,
which also proves its subscription is live. Exit status 1 when ours is slower than the naive loop.
"""

import argparse
import contextlib
import getpass
import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from carbonlink.acks import Ack, Outcome, decode_ack, encode_ack
from carbonlink.chain import GENESIS_PREVIOUS_HASH, record_hash
from carbonlink.envelope import verify
from carbonlink.errors import CarbonlinkError
from carbonlink.keys import DeviceKey, PublicKey
from carbonlink.reasons import RejectionReason
from carbonlink.testing import SAMPLE_START_AT, sample_chain
from carbonlink.topics import ACKS, PREFIX, acks_topic, device_of_records_topic, records_subscription, records_topic
from carbonlink.vehicles import VehicleClass
from carbonlink.vin import vin_hash
from gateway.app import Gateway
from gateway.config import parse_config
from gateway.model import Enrolment

HOST = "127.0.0.1"
POSTGRES_ENV = "CARBONLINK_TEST_POSTGRES_URL"
SHARE_GROUP = "bench"
"""Both consumers take the records through the same shared subscription, so the broker does the same work."""
INFLIGHT_MESSAGES = 100
"""QoS 1 window of every client here and of the broker (paho gets slower beyond ~100, DESIGN.md §4)."""
BROKER_QUEUE_SPARE = 1000
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
WARMUP_RESEND_S = 1.0
VEHICLE_CLASS = VehicleClass.COMPACT
GATEWAY_CLOCK_AFTER_LAST_RECORD = timedelta(minutes=5)
STAGES = ("envelope", "key_lookup", "signature", "schema", "replay", "plausibility", "commit")
"""The gateway's own stage histograms, reported per record (commit: per batch, divided by its records)."""


class BenchError(RuntimeError):
    """The benchmark could not measure: a process failed, an ack was not ``accepted``, time ran out."""


# --- what the parent hands to its children ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """A registered device: what the consumers need to know of it."""

    device_id: str
    public_key_hex: str
    vin: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a child needs, written as JSON next to the signed records."""

    port: int
    store_url: str
    records_file: str
    devices: tuple[DevicePlan, ...]
    registered_at: str
    gateway_now: str
    intake: dict[str, int]
    """The gateway's ``[intake]`` settings that differ from their defaults."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Plan":
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(**(raw | {"devices": tuple(DevicePlan(**d) for d in raw["devices"])}))


def _write_records(path: Path, messages: Sequence[tuple[str, bytes]]) -> None:
    with path.open("wb") as out:
        for topic, payload in messages:
            encoded = topic.encode("utf-8")
            out.write(struct.pack(">HI", len(encoded), len(payload)) + encoded + payload)


def _read_records(path: Path) -> list[tuple[str, bytes]]:
    data, messages, at = path.read_bytes(), [], 0
    while at < len(data):
        topic_len, payload_len = struct.unpack_from(">HI", data, at)
        at += 6
        topic = data[at : at + topic_len].decode("utf-8")
        at += topic_len
        messages.append((topic, data[at : at + payload_len]))
        at += payload_len
    return messages


def _emit(event: str, **values: object) -> None:
    """One JSON line to the parent."""
    print(json.dumps({"event": event, **values}), flush=True)


def _client(name: str) -> mqtt.Client:
    """A paho MQTT 5 client as the gateway makes its own: window of 100, unbounded local queue, no Nagle."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{secrets.token_hex(4)}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(INFLIGHT_MESSAGES)
    client.max_queued_messages_set(0)

    def no_delay(_c: mqtt.Client, _u: object, sock: object) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = no_delay
    return client


def _stop_on_sigterm(stop: Callable[[], object]) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)


# --- child: the naive loop -----------------------------------------------------------------------


class RowStore(Protocol):
    """Where the naive loop puts each record."""

    def insert(self, digest: bytes, device_id: str, sequence: int, record_id: str, signed: bytes) -> None: ...


class SqliteRows:
    """One INSERT and one commit per record, in WAL mode with the gateway store's durability.

    ``synchronous=FULL`` as in ``gateway.store``: an acknowledged record must survive a power cut,
    so every commit waits for the disk (NORMAL would not, in WAL mode).
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE records (record_hash BLOB PRIMARY KEY, device_id TEXT NOT NULL, sequence INTEGER NOT NULL,"
            " record_id TEXT NOT NULL, signed BLOB NOT NULL, received_at REAL NOT NULL, UNIQUE (device_id, sequence))"
        )
        self._db.commit()

    def insert(self, digest: bytes, device_id: str, sequence: int, record_id: str, signed: bytes) -> None:
        self._db.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
            (digest, device_id, sequence, record_id, signed, time.time()),
        )
        self._db.commit()


class PostgresRows:
    """The same on PostgreSQL: one INSERT and one commit per record."""

    def __init__(self, url: str) -> None:
        self._db = psycopg.connect(url)
        self._db.execute(
            "CREATE TABLE naive_records (record_hash BYTEA PRIMARY KEY, device_id TEXT NOT NULL,"
            " sequence BIGINT NOT NULL, record_id TEXT NOT NULL, signed BYTEA NOT NULL,"
            " received_at DOUBLE PRECISION NOT NULL, UNIQUE (device_id, sequence))"
        )
        self._db.commit()

    def insert(self, digest: bytes, device_id: str, sequence: int, record_id: str, signed: bytes) -> None:
        self._db.execute(
            "INSERT INTO naive_records VALUES (%s, %s, %s, %s, %s, %s)",
            (digest, device_id, sequence, record_id, signed, time.time()),
        )
        self._db.commit()


class NaiveLoop:
    """parse, verify, chain check, commit, ack — per message, in paho's ``on_message``."""

    def __init__(self, keys: dict[str, PublicKey], rows: RowStore) -> None:
        self._keys, self._rows = keys, rows
        self._heads: dict[str, tuple[int, bytes]] = {}
        self.outcomes: dict[str, int] = {}

    def on_message(self, client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        device_id = device_of_records_topic(message.topic)
        if device_id is None:
            return
        payload = bytes(message.payload)
        digest = record_hash(payload)
        ack = self._judge(device_id, payload, digest)
        self.outcomes[ack.outcome.value] = self.outcomes.get(ack.outcome.value, 0) + 1
        client.publish(acks_topic(device_id), encode_ack(ack), qos=1)

    def _judge(self, device_id: str, payload: bytes, digest: bytes) -> Ack:
        def rejected(reason: RejectionReason) -> Ack:
            return Ack(record_hash=digest, record_id=None, sequence=None, outcome=Outcome.REJECTED, reason=reason)

        key = self._keys.get(device_id)
        if key is None:
            return rejected(RejectionReason.UNKNOWN_DEVICE)
        try:
            record = verify(payload, key)
        except CarbonlinkError as err:
            return rejected(err.reason)
        sequence, previous = self._heads.get(device_id, (0, GENESIS_PREVIOUS_HASH))
        if digest == previous:
            return Ack(
                record_hash=digest, record_id=record.record_id, sequence=record.sequence, outcome=Outcome.DUPLICATE
            )
        if record.device_id != device_id:
            return rejected(RejectionReason.DEVICE_MISMATCH)
        if record.sequence != sequence + 1:
            return rejected(RejectionReason.SEQUENCE_GAP)
        if record.previous_record_hash != previous:
            return rejected(RejectionReason.CHAIN_BREAK)
        self._rows.insert(digest, device_id, record.sequence, record.record_id, payload)
        self._heads[device_id] = (record.sequence, digest)
        return Ack(record_hash=digest, record_id=record.record_id, sequence=record.sequence, outcome=Outcome.ACCEPTED)


def run_naive(plan: Plan, work: Path) -> int:
    rows: RowStore = (
        SqliteRows(work / "naive.db") if plan.store_url.startswith("sqlite:") else PostgresRows(plan.store_url)
    )
    keys = {d.device_id: PublicKey(bytes.fromhex(d.public_key_hex)) for d in plan.devices}
    loop = NaiveLoop(keys, rows)
    client = _client("naive")

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if rc.is_failure:
            _emit("refused", reason=str(rc))
            c.disconnect()
        else:
            c.subscribe(records_subscription(SHARE_GROUP), qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: _emit("ready")
    client.on_message = loop.on_message
    _stop_on_sigterm(client.disconnect)
    client.connect(HOST, plan.port)
    client.loop_forever()
    _emit("stopped", outcomes=loop.outcomes)
    return 0


# --- child: the gateway ---------------------------------------------------------------------------


def run_gateway(plan: Plan, work: Path) -> int:
    intake = "\n".join(f"{key} = {value}" for key, value in plan.intake.items())
    config = parse_config(
        f"""
[mqtt]
host = "{HOST}"
port = {plan.port}
client_id = "bench-gateway-{secrets.token_hex(4)}"
share_group = "{SHARE_GROUP}"
[store]
url = "{plan.store_url}"
[intake]
{intake}
[api]
enabled = false
[crediting]
enabled = false
""",
        work,
        {},
    )
    now = datetime.fromisoformat(plan.gateway_now)
    gateway = Gateway(config, clock=lambda: now)
    registered_at = datetime.fromisoformat(plan.registered_at)
    for device in plan.devices:
        gateway.store.add_device(
            device.device_id,
            PublicKey(bytes.fromhex(device.public_key_hex)),
            vehicle_class=VEHICLE_CLASS,
            vin_hash=vin_hash(device.vin),
            enrolment=Enrolment.OPERATOR,
            at=registered_at,
        )
    stop = threading.Event()
    _stop_on_sigterm(stop.set)
    gateway.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not gateway.mqtt.connected:
        if time.monotonic() > deadline:
            _emit("refused", reason="the gateway did not connect to the broker")
            gateway.stop()
            return 1
        time.sleep(0.01)  # polling a condition with a deadline
    _emit("ready")
    stop.wait()
    shutdown = gateway.stop()
    sample = gateway.metrics.registry.get_sample_value
    batches = sample("carbonlink_gateway_batch_messages_count") or 0.0
    stage_s = {stage: sample("carbonlink_gateway_stage_seconds_sum", {"stage": stage}) or 0.0 for stage in STAGES}
    _emit(
        "stopped",
        received=gateway.intake.received,
        dropped=gateway.intake.dropped,
        batches=batches,
        batched_messages=sample("carbonlink_gateway_batch_messages_sum") or 0.0,
        stage_s=stage_s,
        drained=shutdown.intake_drained,
    )
    return 0


# --- child: the vehicles' side -----------------------------------------------------------------------


def run_publisher(plan: Plan) -> int:
    """Publish every record at QoS 1 once the parent says go; report when the broker took them all."""
    messages = _read_records(Path(plan.records_file))
    client = _client("vehicles")
    connected, published = threading.Event(), threading.Event()
    confirmed = [0, 0.0]  # count, monotonic time of the last PUBACK

    def on_publish(_c: mqtt.Client, _u: object, _mid: int, _rc: ReasonCode, _p: object) -> None:
        confirmed[0] += 1
        if confirmed[0] == len(messages):
            confirmed[1] = time.monotonic()
            published.set()

    client.on_connect = lambda *_: connected.set()
    client.on_publish = on_publish
    client.connect(HOST, plan.port)
    client.loop_start()
    try:
        if not connected.wait(START_TIMEOUT_S):
            raise BenchError("the publisher did not connect")
        _emit("ready")
        sys.stdin.readline()  # "go"
        first_at = time.monotonic()
        for topic, payload in messages:
            client.publish(topic, payload, qos=1)
        if not published.wait(max(60.0, len(messages) / 200)):
            raise BenchError(f"the broker confirmed only {confirmed[0]} of {len(messages)} publishes")
        _emit("published", first_at=first_at, last_puback_at=confirmed[1])
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


# --- the parent: broker, children, acks ------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def private_mosquitto(directory: Path, records: int) -> Iterator[tuple[int, int]]:
    """A Mosquitto of our own on a free port, sized for the flood; yields (port, pid); stopped by PID."""
    program = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if program is None:
        raise BenchError("mosquitto not found: install it (apt-get install -y mosquitto)")
    port = _free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    config.write_text(
        "\n".join(
            (
                f"listener {port} {HOST}",
                "allow_anonymous true",
                "persistence false",
                "set_tcp_nodelay true",
                f"max_queued_messages {records + BROKER_QUEUE_SPARE}",  # default 1000: the flood would be dropped
                f"max_inflight_messages {INFLIGHT_MESSAGES}",  # default 20
                f"log_dest file {directory / 'mosquitto.log'}",
                "log_type error",
                "log_type warning",
                f"user {getpass.getuser()}",  # as root Mosquitto would switch to 'mosquitto'
            )
        )
        + "\n",
        encoding="utf-8",
    )
    process = subprocess.Popen([program, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - the broker, our config
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(f"mosquitto exited at start; see {directory / 'mosquitto.log'}")
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"mosquitto did not listen on {port}") from None
                time.sleep(0.01)  # polling the port with a deadline
        yield port, process.pid
    finally:
        _stop_process(process)


def _stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


class Child:
    """This script in another role, in a fresh interpreter; its JSON lines read by a thread."""

    def __init__(self, role: str, plan_path: Path, log_path: Path) -> None:
        self.role, self.log_path = role, log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our script
            [sys.executable, str(Path(__file__).resolve()), "--role", role, "--plan", str(plan_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"{self.role}: no '{event}' within {timeout_s:.0f} s; {self._tail()}") from None
            if line is None:
                raise BenchError(f"{self.role} exited (status {self.process.wait()}) before '{event}'; {self._tail()}")
            if line["event"] == event:
                return line
            if line["event"] == "refused":
                raise BenchError(f"{self.role}: {line['reason']}")

    def send(self, text: str) -> None:
        if self.process.stdin is not None:
            self.process.stdin.write(text + "\n")
            self.process.stdin.flush()

    def stop(self) -> dict[str, Any] | None:
        """SIGTERM, then its last report (``stopped``) if it gave one."""
        _stop_process(self.process)
        report = None
        with contextlib.suppress(BenchError):
            report = self.expect("stopped", 1.0)
        self._log.close()
        return report

    def _tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return "stderr: " + (" | ".join(text[-8:]) if text else "(empty)")


class AckCounter:
    """The vehicles' side of the acks: counts ``accepted`` acks of the timed records, stops at any other."""

    def __init__(self, port: int, expected: int, warmup_device: str) -> None:
        self.expected, self.warmup_device = expected, warmup_device
        self.accepted = 0
        self.last_at = 0.0
        self.failures: list[str] = []
        self.done, self.warm = threading.Event(), threading.Event()
        subscribed = threading.Event()
        self.client = _client("acks")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{PREFIX}/+/{ACKS}", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, port)
        self.client.loop_start()
        if not subscribed.wait(START_TIMEOUT_S):
            raise BenchError("the ack listener did not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        ack = decode_ack(bytes(message.payload))
        if message.topic == acks_topic(self.warmup_device):
            self.warm.set()
            return
        if ack.outcome is Outcome.ACCEPTED:
            self.accepted += 1
            if self.accepted == self.expected:
                self.last_at = time.monotonic()
                self.done.set()
            return
        self.failures.append(f"{message.topic.split('/')[3]} #{ack.sequence} {ack.reason} ({ack.detail})")
        self.done.set()

    def warm_up(self, topic: str, payload: bytes) -> None:
        """Publish the warm-up record until its ack comes: the consumer is subscribed and has run once."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.warm.is_set():
            if time.monotonic() > deadline:
                raise BenchError("the warm-up record got no ack")
            self.client.publish(topic, payload, qos=1)
            self.warm.wait(WARMUP_RESEND_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the parent: one measured run per consumer, the report ------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one consumer did with the records."""

    name: str
    records: int
    seconds: float
    """First publish → last ack."""
    cpu_s: float
    """The consumer process's CPU time over that span."""
    broker_cpu_s: float
    publish_s: float
    """First publish → the broker's last PUBACK to the publisher."""
    report: dict[str, Any]

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.records * 1e6


@dataclass(frozen=True, slots=True)
class Workload:
    """The signed records and who signed them, made once for every run."""

    messages: list[tuple[str, bytes]]
    devices: tuple[DevicePlan, ...]
    warmup: tuple[str, bytes]
    warmup_device: DevicePlan
    registered_at: datetime
    gateway_now: datetime


def _device(index: int, name: str) -> tuple[DeviceKey, DevicePlan]:
    key = DeviceKey.from_seed(hashlib.sha256(f"bench-gateway-intake-{name}".encode()).digest(), f"ev-bench-{name}")
    vin = f"BENCH{index:012d}"  # 17 characters of ISO 3779's alphabet
    return key, DevicePlan(key.device_id, key.public_key.raw.hex(), vin)


def make_workload(records: int, devices: int) -> Workload:
    """Sign each device's chain and interleave the devices, as a fleet sends them (devices in turn)."""
    per_device = [records // devices + (1 if i < records % devices else 0) for i in range(devices)]
    chains: list[list[tuple[str, bytes]]] = []
    plans, last_end = [], SAMPLE_START_AT
    for index, count in enumerate(per_device):
        key, plan = _device(index, f"{index:05d}")
        topic, chain = records_topic(key.device_id), []
        for signed, record in sample_chain(key, count, vin_hash=vin_hash(plan.vin)):
            chain.append((topic, signed))
            last_end = max(last_end, record.end_at)
        chains.append(chain)
        plans.append(plan)
    messages = [chain[i] for i in range(max(per_device)) for chain in chains if i < len(chain)]
    warm_key, warm_plan = _device(devices, "warmup")
    [(warm_signed, _)] = list(sample_chain(warm_key, 1, vin_hash=vin_hash(warm_plan.vin)))
    return Workload(
        messages=messages,
        devices=tuple(plans),
        warmup=(records_topic(warm_key.device_id), warm_signed),
        warmup_device=warm_plan,
        registered_at=SAMPLE_START_AT - timedelta(days=1),
        gateway_now=last_end + GATEWAY_CLOCK_AFTER_LAST_RECORD,  # fixed: no record ends in the gateway's future
    )


def measure(role: str, workload: Workload, work: Path, *, store_url: str, intake: dict[str, int]) -> RunResult:
    """One consumer on a fresh broker and a fresh store; every process stopped by PID at the end."""
    name = "ours" if role == "gateway" else role
    work.mkdir(parents=True, exist_ok=True)
    records_file = work.parent / "records.bin"
    if not records_file.exists():
        _write_records(records_file, workload.messages)
    count = len(workload.messages)
    with contextlib.ExitStack() as stack:
        port, broker_pid = stack.enter_context(private_mosquitto(work / "mosquitto", count))
        plan = Plan(
            port=port,
            store_url=store_url,
            records_file=str(records_file),
            devices=(*workload.devices, workload.warmup_device),
            registered_at=workload.registered_at.isoformat(),
            gateway_now=workload.gateway_now.isoformat(),
            intake=intake,
        )
        plan_path = work / "plan.json"
        plan.save(plan_path)
        consumer = Child(role, plan_path, work / f"{role}.log")
        stopped: list[dict[str, Any] | None] = []
        stack.callback(lambda: stopped.append(consumer.stop()))
        consumer.expect("ready", START_TIMEOUT_S * 2)
        acks = AckCounter(port, count, workload.warmup_device.device_id)
        stack.callback(acks.close)
        acks.warm_up(*workload.warmup)
        publisher = Child("publish", plan_path, work / "publish.log")
        stack.callback(publisher.stop)
        publisher.expect("ready", START_TIMEOUT_S * 2)
        cpu_before, broker_before = _cpu_s(consumer.process.pid), _cpu_s(broker_pid)
        publisher.send("go")
        timeout_s = max(60.0, count / 100)
        if not acks.done.wait(timeout_s):
            raise BenchError(f"{name}: {acks.accepted} of {count} records accepted after {timeout_s:.0f} s")
        cpu_after, broker_after = _cpu_s(consumer.process.pid), _cpu_s(broker_pid)
        if not acks.failures:
            published = publisher.expect("published", timeout_s)
    report = stopped[0] or {}
    if acks.failures:
        dropped = report.get("dropped")
        raise BenchError(
            f"{name}: an ack other than 'accepted' (a bug): {'; '.join(acks.failures[:3])}"
            + (f"; the gateway dropped {dropped} messages from its full intake queue" if dropped else "")
        )
    first_at = float(published["first_at"])
    return RunResult(
        name=name,
        records=count,
        seconds=acks.last_at - first_at,
        cpu_s=cpu_after - cpu_before,
        broker_cpu_s=broker_after - broker_before,
        publish_s=float(published["last_puback_at"]) - first_at,
        report=report,
    )


@contextlib.contextmanager
def fresh_store(kind: str, work: Path) -> Iterator[str]:
    """A store URL nobody used yet: a new SQLite file, or a new schema in the PostgreSQL database (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{work.resolve() / 'gateway.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        raise BenchError(
            f"--store postgresql needs {POSTGRES_ENV}=postgresql://user@host:port/database: a database in which "
            "this benchmark may create and drop schemas (it starts no server)"
        )
    schema = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _stage_line(report: dict[str, Any], records: int) -> str:
    stage_s: dict[str, float] = report.get("stage_s", {})
    parts = [f"{stage} {stage_s.get(stage, 0.0) / records * 1e6:.1f}" for stage in STAGES]
    return "ours, by stage (wall µs per record in its intake thread, from its own histograms): " + ", ".join(parts)


def _median(runs: Sequence[RunResult]) -> RunResult:
    """Each figure's median over the rounds; the gateway's own report of its median-throughput round."""
    middle = sorted(runs, key=lambda run: run.seconds)[(len(runs) - 1) // 2]
    return RunResult(
        name=middle.name,
        records=middle.records,
        seconds=middle.seconds,
        cpu_s=statistics.median_low(run.cpu_s for run in runs),
        broker_cpu_s=statistics.median_low(run.broker_cpu_s for run in runs),
        publish_s=statistics.median_low(run.publish_s for run in runs),
        report=middle.report,
    )


def print_report(naive: RunResult, ours: RunResult) -> bool:
    """The table and the ratio lines; True when ours is at least as fast as the naive loop."""
    print(f"{'run':<6} {'records/s':>10} {'CPU µs/record':>14} {'seconds':>8} {'broker CPU µs/record':>21}")
    for run in (naive, ours):
        broker_us = run.broker_cpu_s / run.records * 1e6
        print(f"{run.name:<6} {run.records_per_s:>10,.0f} {run.cpu_us:>14.1f} {run.seconds:>8.2f} {broker_us:>21.1f}")
    report = ours.report
    batches = float(report.get("batches", 0.0))
    if batches:
        mean = float(report["batched_messages"]) / batches
        print(f"ours: {batches:,.0f} batches of {mean:.1f} messages on average; dropped {report.get('dropped', '?')}")
        print(_stage_line(report, ours.records))
    for run in (naive, ours):
        print(f"{run.name}: the broker took every publish in {run.publish_s:.2f} s; last ack {run.seconds:.2f} s")
    ratio = ours.records_per_s / naive.records_per_s
    print(f"ratio {ratio:.3f} (records/s ours / naive)")
    print(f"cpu_ratio {ours.cpu_us / naive.cpu_us:.3f} (CPU µs per record ours / naive)")
    passed = ratio >= 1.0
    print(f"target: ours at least as fast as the naive loop: {'PASS' if passed else 'FAIL'}")
    return passed


def _child_main(role: str, plan_path: Path) -> int:
    plan = Plan.load(plan_path)
    if role == "naive":
        return run_naive(plan, plan_path.parent)
    if role == "gateway":
        return run_gateway(plan, plan_path.parent)
    return run_publisher(plan)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records to send (default 20,000)")
    parser.add_argument("--devices", type=int, default=50, help="devices they come from (default 50)")
    parser.add_argument("--batch-max-messages", type=int, help="the gateway's [intake] batch_max_messages")
    parser.add_argument(
        "--queue-max-messages",
        type=int,
        help="the gateway's [intake] queue_max_messages (default: more than --records, so the flood is not dropped)",
    )
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite", help="default sqlite")
    parser.add_argument("--quick", action="store_true", help="600 records from 10 devices: a smoke run")
    parser.add_argument("--rounds", type=int, default=1, help="run both this many times, alternating; report medians")
    parser.add_argument("--role", choices=("naive", "gateway", "publish"), help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role is not None:
        return _child_main(args.role, args.plan)
    records, devices = (600, 10) if args.quick else (args.records, args.devices)
    if not 1 <= devices <= records:
        parser.error("--devices must be from 1 to --records")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    started = time.perf_counter()
    workload = make_workload(records, devices)
    signed_s = time.perf_counter() - started
    intake = {
        "queue_max_messages": args.queue_max_messages or records + BROKER_QUEUE_SPARE,
        **({} if args.batch_max_messages is None else {"batch_max_messages": args.batch_max_messages}),
    }
    settings = ", ".join(f"{key} {value}" for key, value in intake.items())
    print(
        f"gateway intake benchmark: {records:,} records from {devices} devices (signed in {signed_s:.1f} s), "
        f"store {args.store}, gateway [intake] {settings}, {os.cpu_count()} CPUs"
    )
    runs: dict[str, list[RunResult]] = {"naive": [], "gateway": []}
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-intake-") as scratch:
            for round_number in range(1, args.rounds + 1):
                for role, settings_ in (("naive", {}), ("gateway", intake)):
                    work = Path(scratch) / f"{role}-{round_number}"
                    with fresh_store(args.store, work) as url:
                        runs[role].append(measure(role, workload, work, store_url=url, intake=settings_))
                if args.rounds > 1:
                    naive, ours = runs["naive"][-1], runs["gateway"][-1]
                    print(
                        f"  round {round_number}: naive {naive.records_per_s:,.0f} records/s {naive.cpu_us:.0f} µs, "
                        f"ours {ours.records_per_s:,.0f} records/s {ours.cpu_us:.0f} µs"
                    )
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0 if print_report(_median(runs["naive"]), _median(runs["gateway"])) else 1


if __name__ == "__main__":
    sys.exit(main())
