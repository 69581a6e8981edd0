"""``carbonlink gateway devices`` and ``gateway run`` from the command line, on both stores."""

import json
from pathlib import Path

import pytest

from carbonlink.keys import DeviceKey

from cli_runner import run_cli
from postgres_server import store_url  # noqa: F401

KEY = DeviceKey.from_seed(bytes([61]) * 32, "ev-cli-0001")
NEW_KEY = DeviceKey.from_seed(bytes([62]) * 32, "ev-cli-0001")


def test_devices_add_list_rotate_and_revoke(capsys: pytest.CaptureFixture[str], store_url: str) -> None:  # noqa: F811
    """A device is registered, listed with its key, given a new key and revoked, each with one command."""
    devices = ("gateway", "devices", "--store", store_url)
    added = run_cli(
        capsys, *devices, "add", "--device-id", KEY.device_id, "--public-key", KEY.public_key.raw.hex(),
        "--vin", "WVWZZZE1ZNP000001", "--vehicle-class", "van",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert f"registered ev-cli-0001 (van) with key {KEY.kid.hex()}" in added.out
    table = run_cli(capsys, *devices, "list")
    assert table.code == 0
    assert "ev-cli-0001" in table.out
    assert "van" in table.out
    rotated = run_cli(
        capsys, *devices, "rotate-key", "--device-id", KEY.device_id, "--public-key", NEW_KEY.public_key.raw.hex()
    )
    assert rotated.code == 0, rotated.err
    revoked = run_cli(capsys, *devices, "revoke", "--device-id", KEY.device_id)
    assert revoked.code == 0, revoked.err
    listed = run_cli(capsys, *devices, "list", "--json")
    [device] = json.loads(listed.out)
    assert device["status"] == "revoked"
    assert [key["kid"] for key in device["keys"]] == [KEY.kid.hex(), NEW_KEY.kid.hex()]
    assert all(key["status"] == "revoked" for key in device["keys"])
    assert device["vin_hash"] is not None


def test_devices_refuse_bad_input_with_a_precise_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A bad key or VIN exits 2, an unknown device exits 1, a duplicate registration exits 2 — each saying why."""
    devices = ("gateway", "devices", "--store", f"sqlite:///{tmp_path / 'gw.db'}")
    bad_key = run_cli(capsys, *devices, "add", "--device-id", "ev-cli-0002", "--public-key", "abc")
    assert (bad_key.code, "public key" in bad_key.err) == (2, True), bad_key.err
    bad_vin = run_cli(
        capsys, *devices, "add", "--device-id", "ev-cli-0002", "--public-key", KEY.public_key.raw.hex(), "--vin", "I0"
    )
    assert bad_vin.code == 2
    assert "VIN" in bad_vin.err
    unknown = run_cli(capsys, *devices, "revoke", "--device-id", "ev-nobody-01")
    assert unknown.code == 1
    assert "ev-nobody-01" in unknown.err
    assert (
        run_cli(capsys, *devices, "add", "--device-id", "ev-cli-0002", "--public-key", KEY.public_key.raw.hex()).code
        == 0
    )
    again = run_cli(capsys, *devices, "add", "--device-id", "ev-cli-0002", "--public-key", KEY.public_key.raw.hex())
    assert again.code == 2
    assert "ev-cli-0002" in again.err


def test_a_bad_store_url_or_config_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unusable store URL or a bad gateway.toml stops the command with a message naming the problem."""
    bad_url = run_cli(capsys, "gateway", "devices", "--store", "mysql://x", "list")
    assert bad_url.code == 2
    assert "mysql" in bad_url.err
    config = tmp_path / "gateway.toml"
    config.write_text("[mqtt]\nport = 0\n", encoding="utf-8")
    for argv in (("gateway", "devices", "--config", str(config), "list"), ("gateway", "run", "--config", str(config))):
        outcome = run_cli(capsys, *argv)
        assert outcome.code == 2
        assert "[mqtt] port" in outcome.err
