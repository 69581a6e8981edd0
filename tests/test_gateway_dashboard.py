"""The dashboard page in Debian's headless Chromium, driven by playwright, against the real API and store.

Playwright's own browser download is never used (there is no internet at run time): the tests
launch ``/usr/bin/chromium``, with ``--no-sandbox`` because Chromium's sandbox refuses to run as
root, which is how CI runs. Waiting is playwright's ``expect``: a condition polled to a deadline.
"""

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from carbonlink.acks import Outcome
from carbonlink.reasons import RejectionReason
from gateway.api.app import create_app
from gateway.metrics import GatewayMetrics
from gateway.store import open_store
from gateway.store.record_store import RecordStore

from api_server import ApiServer, serving
from postgres_server import store_url  # noqa: F401
from test_gateway_api import (
    ADMIN_TOKEN,
    FLEET_A,
    FLEET_B,
    NOW,
    READ_TOKEN,
    SETTINGS,
    rejected_message,
    signed_records,
)

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 10_000
"""How long ``expect`` polls for the page to show something (a test's bound, never what it asserts)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium not found: install it: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], chromium_sandbox=False
        )
        try:
            yield launched
        finally:
            launched.close()


class Dashboard:
    """A running gateway API with a populated store, and a fresh browser tab (its own sessionStorage)."""

    def __init__(self, server: ApiServer, store: RecordStore, metrics: GatewayMetrics, page: Page) -> None:
        self.server, self.store, self.metrics, self.page = server, store, metrics, page

    def open(self) -> None:
        self.page.goto(f"{self.server.url}/?refresh_s=1")

    def connect(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.click("#connect")


def _populate(store: RecordStore, metrics: GatewayMetrics, server: ApiServer) -> None:
    for key, vehicle_class in ((FLEET_A, "compact"), (FLEET_B, "bus")):
        body = {"device_id": key.device_id, "public_key": key.public_key.raw.hex(), "vehicle_class": vehicle_class}
        added = httpx.post(f"{server.url}/v1/devices", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert added.status_code == 201, added.text
    records = signed_records(FLEET_A, 3, received_from=NOW - timedelta(hours=1))
    rejection = rejected_message(FLEET_B.device_id, RejectionReason.CHAIN_BREAK, NOW - timedelta(minutes=5))
    store.commit(records, [rejection], {FLEET_A.device_id: records[-1].received_at})
    for _ in records:
        metrics.count(Outcome.ACCEPTED, None)
    metrics.count(Outcome.REJECTED, RejectionReason.CHAIN_BREAK)


@pytest.fixture
def dashboard(store_url: str, browser: Browser) -> Iterator[Dashboard]:  # noqa: F811 - the fixture imported above
    store = open_store(store_url)
    metrics = GatewayMetrics()
    context = browser.new_context()
    try:
        with serving(create_app(SETTINGS, store=store, metrics=metrics)) as server:
            _populate(store, metrics, server)
            yield Dashboard(server, store, metrics, context.new_page())
    finally:
        context.close()
        store.close()


def test_the_page_shell_holds_no_data_and_allows_only_its_own_script(dashboard: Dashboard) -> None:
    """GET / needs no token, contains no device data, and its CSP allows no script but its own."""
    response = httpx.get(f"{dashboard.server.url}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert FLEET_A.device_id not in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "connect-src 'self'" in policy


def test_with_a_token_it_shows_devices_records_rejections_and_counts(dashboard: Dashboard) -> None:
    """After a read token is entered the page shows the store's devices, records and rejections, and the counts."""
    dashboard.open()
    page = dashboard.page
    expect(page.locator("#status")).to_have_text("Enter a token to connect", timeout=WAIT_MS)
    dashboard.connect(READ_TOKEN)
    devices = page.locator("#devices tbody tr")
    expect(devices).to_have_count(2, timeout=WAIT_MS)
    expect(devices.nth(0)).to_contain_text("ev-fleet-0101")
    expect(devices.nth(0)).to_contain_text("compact")
    expect(devices.nth(0)).to_contain_text("2026-12-01 11:02:00Z")
    expect(devices.nth(1)).to_contain_text("ev-fleet-0102")
    expect(devices.nth(1)).to_contain_text("bus")
    records = page.locator("#records tbody tr")
    expect(records).to_have_count(3)
    expect(records.nth(0)).to_contain_text("trip")
    expect(records.nth(1)).to_contain_text("charge")
    rejections = page.locator("#rejections tbody tr")
    expect(rejections).to_have_count(1)
    expect(rejections.nth(0)).to_contain_text("chain_break")
    expect(rejections.nth(0)).to_contain_text("test: chain_break")
    expect(page.locator("#summary")).to_contain_text("3accepted")
    expect(page.locator("#summary")).to_contain_text("1rejected")
    expect(page.locator("#reasons tbody")).to_contain_text("chain_break1")
    expect(page.locator("#banner")).to_be_hidden()


def test_a_wrong_token_shows_the_401_banner_and_clears_the_data(dashboard: Dashboard) -> None:
    """A refused token shows the 401 banner and leaves no row of what a valid token showed before."""
    dashboard.open()
    page = dashboard.page
    dashboard.connect(READ_TOKEN)
    expect(page.locator("#devices tbody tr")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#banner")).to_be_hidden()
    dashboard.connect("not-the-token-0123456789")
    expect(page.locator("#banner")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#banner")).to_contain_text("401")
    expect(page.locator("#devices tbody tr")).to_have_count(0)
    expect(page.locator("#records tbody tr")).to_have_count(0)


def test_it_refreshes_by_itself_and_keeps_the_token_for_the_tab(dashboard: Dashboard) -> None:
    """New rejections appear without a click; a reload of the tab shows data again without asking for the token."""
    dashboard.open()
    dashboard.connect(READ_TOKEN)
    page = dashboard.page
    expect(page.locator("#rejections tbody tr")).to_have_count(1, timeout=WAIT_MS)
    later = rejected_message("ev-fleet-0103", RejectionReason.UNKNOWN_DEVICE, NOW)
    dashboard.store.commit([], [later], {})
    expect(page.locator("#rejections tbody tr")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#rejections tbody tr").nth(0)).to_contain_text("unknown_device")
    page.reload()
    expect(page.locator("#records tbody tr")).to_have_count(3, timeout=WAIT_MS)


def test_text_from_devices_is_shown_as_text_never_run(dashboard: Dashboard) -> None:
    """Markup in a rejection's detail is displayed literally; it creates no element and runs no script."""
    hostile = rejected_message("ev-fleet-0104", RejectionReason.MALFORMED, NOW)
    markup = "<img src=x onerror=\"document.title='owned'\">"
    dashboard.store.commit([], [dataclasses.replace(hostile, detail=markup)], {})
    dashboard.open()
    dashboard.connect(READ_TOKEN)
    page = dashboard.page
    expect(page.locator("#rejections tbody tr").nth(0)).to_contain_text(markup, timeout=WAIT_MS)
    expect(page.locator("#rejections img")).to_have_count(0)
    assert page.title() == "carbonlink gateway"
