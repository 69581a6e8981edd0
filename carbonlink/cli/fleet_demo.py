"""``carbonlink demo``: the whole chain on this machine — simulator → agents → MQTT → gateway → credits.

    EmbeddedBroker (or --broker) ◄── agent × N ◄── virtual bus ◄── simulator × N   (one process per vehicle)
          │
          └──► Gateway (SQLite in the run's data directory, API + dashboard, crediting, export file)

Every vehicle has its own device key, registered with the gateway, and is bound to a demo owner
with consent, so its credits are issued at once. With ``--faults`` some vehicles' buses lose and
corrupt frames, and once they are done one record is sent again with a byte changed (tampered:
rejected ``bad_signature``) and one is sent again as it was (a replay: acknowledged ``duplicate``,
never credited twice). The exit status is 0 only when every trip of every vehicle's ground truth was
credited exactly once.
"""

import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from carbonlink.cli.broker_url import broker_address
from carbonlink.cli.demo_mqtt import tamper_and_replay
from carbonlink.cli.demo_progress import FleetProgress, LineProgress, LiveProgress, ProgressView, VehicleProgress
from carbonlink.cli.demo_report import render_table, vehicle_result
from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.keys import DeviceKey, render_key_file

if TYPE_CHECKING:
    from carbonlink.cli.embedded_broker import EmbeddedBroker
    from gateway.app import Gateway
    from simulator.fleet import VehicleOutcome, VehiclePlan

CLASSES = ("compact", "suv", "van", "bus")
OWNER_ID = "demo-owner"
CREDITING_TIMEOUT_S = 60.0
_PROGRESS_EVERY_S = 2.0
_FAULT_LOSS_PCT, _FAULT_BURSTS_PER_HOUR, _FAULT_CORRUPT_PCT, _FAULT_SNA_PCT = 0.5, 4.0, 0.2, 0.2
"""What a faulty vehicle's bus does (simulator.faults.FaultConfig): lost, burst-lost, corrupted, 'n/a' frames."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What ``carbonlink demo`` was asked for."""

    vehicles: int = 5
    days: int = 1
    speed: float = 0.0
    faults: bool = False
    broker: str | None = None
    keep_running: bool = False
    data_dir: Path = Path("demo-data")
    live: bool = False
    """Progress as a table redrawn in place (a terminal), rather than one line every few seconds."""


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """Where the gateway and the agents connect, and the MQTT version they must ask for."""

    host: str
    port: int
    protocol: str = "auto"
    """``[mqtt] protocol`` of the gateway and the agents: "auto" (MQTT 5, else 3.1.1) or "3.1.1"."""

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def run_demo(options: DemoOptions, *, out: Callable[[str], None] = print) -> int:
    """Run the demo (see the module docstring); the exit status."""
    external = None if options.broker is None else _broker_address(options.broker)
    run_dir = _run_directory(options.data_dir)
    broker, endpoint = _start_broker(external)
    try:
        gateway = _start_gateway(run_dir, endpoint)
        try:
            return _drive_fleet(options, run_dir, gateway, endpoint, out=out)
        finally:
            gateway.stop()
    finally:
        if broker is not None:
            broker.stop()


def _run_directory(data_dir: Path) -> Path:
    run_dir = data_dir / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as err:
        raise CliError(f"cannot create data directory {run_dir}: {err}", EXIT_USAGE) from err
    return run_dir.resolve()


def _broker_address(url: str) -> BrokerEndpoint:
    return BrokerEndpoint(*broker_address(url, "--broker"))


def _start_broker(external: BrokerEndpoint | None) -> "tuple[EmbeddedBroker | None, BrokerEndpoint]":
    if external is not None:
        return None, external
    from carbonlink.cli.embedded_broker import PROTOCOL, BrokerError, EmbeddedBroker  # noqa: PLC0415 - lazy

    # amqtt logs every client it drops and some harmless protocol oddities as warnings; the demo's
    # own lines say what matters, so only its errors are shown.
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    broker = EmbeddedBroker()
    try:
        broker.start()
    except BrokerError as err:
        raise CliError(f"{err}; --broker mqtt://HOST:PORT uses another broker instead", EXIT_INVALID) from err
    return broker, BrokerEndpoint(broker.host, broker.port, PROTOCOL)


def _start_gateway(run_dir: Path, endpoint: BrokerEndpoint) -> "Gateway":
    from gateway.app import Gateway  # noqa: PLC0415 - lazy by design
    from gateway.config import parse_config  # noqa: PLC0415

    admin = secrets.token_urlsafe(24)
    (run_dir / "admin.token").write_text(admin + "\n", encoding="utf-8")
    (run_dir / "admin.token").chmod(0o600)
    key = run_dir / "gateway.key"
    key.write_text(render_key_file(DeviceKey.from_seed(secrets.token_bytes(32), "demo-gateway")), encoding="utf-8")
    key.chmod(0o600)
    text = (
        f'[mqtt]\nhost = "{endpoint.host}"\nport = {endpoint.port}\nprotocol = "{endpoint.protocol}"\n'
        f'client_id = "demo-gateway-{secrets.token_hex(3)}"\n'
        '[store]\nurl = "sqlite:///gateway.db"\n'
        "[intake]\nregistry_refresh_s = 0.0\n"
        '[api]\nhost = "127.0.0.1"\nport = 0\nadmin_token_files = ["admin.token"]\nread_token_files = ["admin.token"]\n'
        '[crediting]\ngrid_region = "cn"\ninterval_s = 0.5\n'
        '[forwarding]\nsigning_key_file = "gateway.key"\nexport_file = "credits.jsonl"\n'
    )
    (run_dir / "gateway.toml").write_text(text, encoding="utf-8")
    gateway = Gateway(parse_config(text, run_dir, {}))
    gateway.start()
    return gateway


def _plans(options: DemoOptions, run_dir: Path, endpoint: BrokerEndpoint) -> "list[VehiclePlan]":
    from simulator.faults import FaultConfig  # noqa: PLC0415 - lazy by design
    from simulator.fleet import VehiclePlan  # noqa: PLC0415

    start_at = (datetime.now(UTC) - timedelta(days=options.days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    # Pinning pays only while there are idle cores, which the kernel would otherwise use to run a
    # vehicle's two threads apart (VehiclePlan.cpu); with more vehicles the kernel balances better.
    pinned = options.vehicles < len(cpus)
    plans = []
    for index in range(options.vehicles):
        vehicle_class = CLASSES[index % len(CLASSES)]
        device_id = f"demo-{index + 1:02d}-{vehicle_class}"
        faulty = options.faults and index % 2 == 1
        plans.append(
            VehiclePlan(
                device_id=device_id,
                preset=vehicle_class,
                seed=100 + index,
                key_seed=hashlib.sha256(f"{run_dir.name}/{device_id}".encode()).digest(),
                vin=_demo_vin(index),
                directory=run_dir / device_id,
                broker_host=endpoint.host,
                broker_port=endpoint.port,
                broker_protocol=endpoint.protocol,
                start_at=start_at,
                days=options.days,
                speed=options.speed,
                cpu=cpus[index] if pinned else None,
                faults=(
                    FaultConfig(
                        loss_pct=_FAULT_LOSS_PCT,
                        bursts_per_hour=_FAULT_BURSTS_PER_HOUR,
                        corrupt_pct=_FAULT_CORRUPT_PCT,
                        sna_pct=_FAULT_SNA_PCT,
                        seed=index,
                    )
                    if faulty
                    else FaultConfig()
                ),
            )
        )
    return plans


def _demo_vin(index: int) -> str:
    return f"DEMXCARBXNLNK{index + 1:04d}"  # 17 characters of ISO 3779 (no I, O or Q)


def _register(gateway: "Gateway", plans: "list[VehiclePlan]") -> None:
    from carbonlink.vehicles import VehicleClass  # noqa: PLC0415 - lazy by design
    from carbonlink.vin import vin_hash  # noqa: PLC0415
    from gateway.model import Enrolment  # noqa: PLC0415
    from simulator.fleet import vehicle_key  # noqa: PLC0415

    now = datetime.now(UTC)
    gateway.store.ledger.add_owner(OWNER_ID, "The demo's owner", at=now)
    for plan in plans:
        gateway.store.add_device(
            plan.device_id,
            vehicle_key(plan).public_key,
            vehicle_class=VehicleClass(plan.preset),
            vin_hash=vin_hash(plan.vin),
            enrolment=Enrolment.OPERATOR,
            at=plan.start_at - timedelta(days=1),
        )
        if gateway.crediting is not None:
            gateway.crediting.bind(f"vin:{vin_hash(plan.vin).hex()}", OWNER_ID, consented_at=now, consent_method="demo")


def _drive_fleet(
    options: DemoOptions, run_dir: Path, gateway: "Gateway", endpoint: BrokerEndpoint, *, out: Callable[[str], None]
) -> int:
    from simulator.fleet import run_vehicle  # noqa: PLC0415 - lazy by design

    plans = _plans(options, run_dir, endpoint)
    _register(gateway, plans)
    out(f"carbonlink demo: {len(plans)} vehicle(s), {options.days} day(s), broker {endpoint.url}")
    out(f"  dashboard and API: http://127.0.0.1:{gateway.api_port}/  (token in {run_dir / 'admin.token'})")
    out(f"  data directory:    {run_dir}")
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    outcomes: dict[str, VehicleOutcome] = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=len(plans), mp_context=context) as pool:
        futures = {pool.submit(run_vehicle, plan): plan for plan in plans}
        with LiveProgress() if options.live else LineProgress(out) as view:
            _show_progress(futures, gateway, started, view)
        for future, plan in futures.items():
            try:
                outcomes[plan.device_id] = future.result()
            except Exception as err:  # noqa: BLE001 - a vehicle's failure is a row of the table, not a traceback
                out(f"  {plan.device_id}: the vehicle failed: {err}")
    duplicates = (
        tamper_and_replay(gateway, [plan.device_id for plan in plans], endpoint.host, endpoint.port, out)
        if options.faults
        else {}
    )
    _wait_credited(gateway)
    results = [
        vehicle_result(
            gateway.store,
            device_id=plan.device_id,
            vehicle_class=plan.preset,
            truth=outcomes[plan.device_id].truth if plan.device_id in outcomes else [],
            delivered=plan.device_id in outcomes and outcomes[plan.device_id].delivered,
            duplicates=duplicates.get(plan.device_id, 0),
        )
        for plan in plans
    ]
    for line in render_table(results):
        out(line)
    audit_passed, audited = _export_and_audit(gateway, run_dir)
    out(f"ledger: {audited}")
    out(f"done in {time.monotonic() - started:.0f} s; data in {run_dir}")
    out("  (gateway.db: the gateway's store; credits.jsonl: the forwarded credits; one folder per vehicle)")
    if options.keep_running:
        _serve_until_stopped(gateway, out)
    return EXIT_OK if audit_passed and all(result.passed for result in results) else EXIT_INVALID


def _show_progress(
    futures: "dict[concurrent.futures.Future[VehicleOutcome], VehiclePlan]",
    gateway: "Gateway",
    started: float,
    view: ProgressView,
) -> None:
    from gateway.crediting.model import TotalsBy  # noqa: PLC0415 - lazy by design

    while True:
        done, _ = concurrent.futures.wait(futures, timeout=_PROGRESS_EVERY_S)
        accepted = {device.device_id: device.last_sequence or 0 for device in gateway.store.devices()}
        totals = {total.key: total for total in gateway.store.ledger.totals(TotalsBy.DEVICE)}
        view.show(
            FleetProgress(
                elapsed_s=time.monotonic() - started,
                vehicles=tuple(
                    VehicleProgress(
                        device_id=plan.device_id,
                        vehicle_class=plan.preset,
                        done=future in done,
                        accepted=accepted.get(plan.device_id, 0),
                        credits=totals[plan.device_id].credits if plan.device_id in totals else 0,
                        co2e_g=totals[plan.device_id].reduction_co2e_g if plan.device_id in totals else 0.0,
                    )
                    for future, plan in futures.items()
                ),
            )
        )
        if len(done) == len(futures):
            return


def _wait_credited(gateway: "Gateway") -> None:
    deadline = time.monotonic() + CREDITING_TIMEOUT_S
    while gateway.store.ledger.has_queued() and time.monotonic() < deadline:
        time.sleep(0.1)


def _export_and_audit(gateway: "Gateway", run_dir: Path) -> tuple[bool, str]:
    """Export the ledger into the run's directory and audit it as an auditor would: passed, and what it said."""
    from carbonlink.audit import AuditError, audit_lines  # noqa: PLC0415 - lazy by design
    from gateway.adapters.ledger_file import write_ledger_export  # noqa: PLC0415

    export = run_dir / "ledger.jsonl"
    write_ledger_export(gateway.store, export, exported_at=datetime.now(UTC), gateway_key=None)
    try:
        with export.open("rb") as lines:
            summary = audit_lines(lines)
    except AuditError as err:
        return False, f"{export} FAILED the audit: {err}"
    return True, (
        f"{export} passes 'carbonlink audit': {summary.credits} credits, {summary.issued} issued, "
        f"{summary.credited_co2e_g / 1000:.3f} kg CO2e"
    )


def _serve_until_stopped(gateway: "Gateway", out: Callable[[str], None]) -> None:
    from carbonlink.cli.signals import on_stop_signal  # noqa: PLC0415 - lazy by design

    stop = threading.Event()
    on_stop_signal(lambda _name: stop.set())
    out(f"the gateway keeps running at http://127.0.0.1:{gateway.api_port}/ — Ctrl-C stops it")
    stop.wait()
