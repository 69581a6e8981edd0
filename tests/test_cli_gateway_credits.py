"""``carbonlink gateway owners|bind|exclude-charge|credits|export`` and ``carbonlink audit``, on both stores.

Records are committed and credited on the store first (as a running gateway would); the commands
then do what an operator does: add an owner, bind the vehicle with consent, list the issued credits,
mark a charge, export the ledger and audit the export.
"""

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from carbonlink.chain import record_hash
from carbonlink.keys import DeviceKey
from carbonlink.records import Record
from carbonlink.vehicles import VehicleClass
from gateway.adapters.parameter_file import load_parameters
from gateway.crediting.service import Crediting
from gateway.model import AcceptedRecord, Enrolment
from gateway.store import open_store

from cli_runner import run_cli
from gateway_harness import GATEWAY_NOW, ChainBuilder
from postgres_server import store_url  # noqa: F401 - a fixture

KEY = DeviceKey.from_seed(bytes([71]) * 32, "ev-cli-credit-1")
VIN_HASH = hashlib.sha256(b"WVWZZZE1ZNP000071").digest()
VEHICLE = f"vin:{VIN_HASH.hex()}"


def _credited_store(url: str) -> bytes:
    """Two trips and a charge of one vehicle, committed and credited; the charge's hash."""
    store = open_store(url)
    try:
        store.add_device(
            KEY.device_id,
            KEY.public_key,
            vehicle_class=VehicleClass.COMPACT,
            vin_hash=VIN_HASH,
            enrolment=Enrolment.OPERATOR,
            at=GATEWAY_NOW - timedelta(days=60),
        )
        builder = ChainBuilder(KEY, vin_hash=VIN_HASH)
        signed: list[tuple[bytes, Record]] = [builder.trip(), builder.charge(), builder.trip()]
        store.commit(
            [
                AcceptedRecord(signed=s, record_hash=record_hash(s), record=r, kid=KEY.kid, received_at=GATEWAY_NOW)
                for s, r in signed
            ],
            [],
            {},
        )
        crediting = Crediting(
            store.ledger,
            load_parameters(None),
            grid_region="cn",
            device_regions={},
            sinks=(),
            clock=lambda: GATEWAY_NOW,
        )
        crediting.run_until_idle()
        return record_hash(signed[1][0])
    finally:
        store.close()


def test_an_operator_binds_lists_exports_and_audits(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    store_url: str,  # noqa: F811
) -> None:
    """Owners, consent, credits and an export that the audit passes, each with one command."""
    charge_hash = _credited_store(store_url)
    where = ("--store", store_url)
    added = run_cli(capsys, "gateway", "owners", *where, "add", "--owner-id", "alice", "--name", "Alice Example")
    assert added.code == 0, added.err
    owners = run_cli(capsys, "gateway", "owners", *where, "list", "--json")
    assert [owner["owner_id"] for owner in json.loads(owners.out)] == ["alice"]
    accrued = run_cli(capsys, "gateway", "credits", *where, "--json")
    assert [credit["state"] for credit in json.loads(accrued.out)] == ["accrued", "accrued"]
    bound = run_cli(
        capsys, "gateway", "bind", *where, "--vehicle", VEHICLE, "--owner", "alice",
        "--consent-method", "paper", "--consented-at", "2026-11-01T09:00:00Z", "--reference", "form 12",
    )  # fmt: skip
    assert bound.code == 0, bound.err
    assert "issued 2 accrued credit(s)" in bound.out
    issued = json.loads(run_cli(capsys, "gateway", "credits", *where, "--owner", "alice", "--json").out)
    assert [credit["state"] for credit in issued] == ["issued", "issued"]
    table = run_cli(capsys, "gateway", "credits", *where)
    assert "alice" in table.out
    assert "issued" in table.out
    marked = run_cli(
        capsys,
        "gateway",
        "exclude-charge",
        *where,
        "--record-hash",
        charge_hash.hex(),
        "--reason",
        "credited to the CPO",
    )
    assert marked.code == 0, marked.err
    out = tmp_path / "export" / "ledger.jsonl"
    exported = run_cli(capsys, "gateway", "export", *where, "--out", str(out))
    assert exported.code == 0, exported.err
    assert "3 record(s)" in exported.out
    audited = run_cli(capsys, "audit", str(out), "--json")
    assert audited.code == 0, audited.out + audited.err
    summary = json.loads(audited.out)["summary"]
    assert (summary["credits"], summary["bindings"], summary["issued"]) == (2, 1, 2)
    assert summary["issued_co2e_g"] == pytest.approx(sum(credit["reduction_co2e_g"] for credit in issued))


def test_crediting_commands_refuse_bad_input_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown owner, a bad vehicle key, a time without zone, a trip as 'charge' each fail saying why."""
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    _credited_store(url)
    where = ("--store", url)
    unknown = run_cli(
        capsys, "gateway", "bind", *where, "--vehicle", VEHICLE, "--owner", "nobody", "--consent-method", "app"
    )
    assert unknown.code == 1
    assert "no owner 'nobody'" in unknown.err
    bad_key = run_cli(
        capsys, "gateway", "bind", *where, "--vehicle", "WVW1", "--owner", "nobody", "--consent-method", "app"
    )
    assert bad_key.code == 1
    assert "vehicle key" in bad_key.err
    naive = run_cli(
        capsys, "gateway", "bind", *where, "--vehicle", VEHICLE, "--owner", "x", "--consent-method", "app",
        "--consented-at", "2026-11-01T09:00:00",
    )  # fmt: skip
    assert naive.code == 2
    assert "time zone" in naive.err
    not_hex = run_cli(capsys, "gateway", "exclude-charge", *where, "--record-hash", "zz", "--reason", "x")
    assert not_hex.code == 2
    assert "hex" in not_hex.err
    twice = run_cli(capsys, "gateway", "owners", *where, "add", "--owner-id", "bob", "--name", "Bob")
    assert twice.code == 0
    again = run_cli(capsys, "gateway", "owners", *where, "add", "--owner-id", "bob", "--name", "Bob")
    assert again.code == 1
    assert "exists already" in again.err
    unwritable = run_cli(capsys, "gateway", "export", *where, "--out", "/proc/ledger.jsonl")
    assert unwritable.code == 2
    assert "/proc/ledger.jsonl" in unwritable.err
