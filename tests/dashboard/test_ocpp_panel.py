"""The dashboard's OCPP panel against the in-repository test CSMS (tests/ocpp/csms.py, OCPP 2.0.1, in its own
thread's event loop on 127.0.0.1): hidden and silent without OCPP; with it, the link connected and booted with
its version, the queue, a remote start's transaction, a charging profile's composite limit in numbers, the
last frames with their payloads, and a CSMS-sent ``<img onerror>`` id token rendered as text, not run. A test
without the browser holds GET /ocpp to every field the panel's script reads."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from conftest import LiveServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ocpp"))
from csms import TestCsms  # noqa: E402 - tests/ocpp is no package: its directory goes on the path first

from ccs_sim.dashboard.routes import OCPP_PANEL_PRESENT_TAG  # noqa: E402
from ccs_sim.ocpp.config import OcppConfig  # noqa: E402

STATION_ID = "CS-DASH"
#: The CSMS's heartbeat interval (BootNotification's answer), s: the panel shows a heartbeat within a few s.
HEARTBEAT_S = 2
#: 2.0.1 IdTokenType.idToken allows 36 characters: this one fits, and runs its handler if parsed as HTML.
XSS_TOKEN = '<img src=x onerror="window.xss=1">'
PANEL_SCRIPT = Path(__file__).resolve().parents[2] / "src" / "ccs_sim" / "dashboard" / "assets" / "ocpp_panel.js"
#: The panel asks GET /ocpp every 2 s: an update shows within one period plus the request.
PANEL_UPDATE_MS = 6_000


def expect():  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


class CsmsThread:
    """The test CSMS served by an event loop in a background thread (the browser tests are synchronous)."""

    def __init__(self, version: str) -> None:
        self.csms = TestCsms(version, boot_responses=[("Accepted", HEARTBEAT_S)])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-csms", daemon=True)

    def run(self, coroutine: Any, timeout_s: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def call(self, request: Any) -> Any:
        """A CSMS-initiated CALL to the station (its CALLRESULT)."""
        return self.run(self.csms.call(STATION_ID, request))

    def __enter__(self) -> CsmsThread:
        self.thread.start()
        self.run(self.csms.start())
        return self

    def __exit__(self, *_: object) -> None:
        self.run(self.csms.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10.0)
        self.loop.close()


@pytest.fixture(scope="module")
def csms() -> Iterator[CsmsThread]:
    with CsmsThread("2.0.1") as running:
        yield running


@pytest.fixture(scope="module")
def ocpp_server(tmp_path_factory: pytest.TempPathFactory, csms: CsmsThread) -> Iterator[LiveServer]:
    # a long meter interval: few TransactionEvents, so the frames a test looks for stay among the newest
    config = OcppConfig(url=csms.csms.url, station_id=STATION_ID, version="2.0.1", meter_interval_s=600,
                        call_timeout_s=5)
    with LiveServer(tmp_path_factory.mktemp("ocpp-dashboard-data"), ocpp_config=config) as server:
        ocpp_view(server, until=lambda view: view.get("connection") == "booted")
        yield server


def ocpp_view(server: LiveServer, until: Any = lambda _view: True, timeout_s: float = 15.0) -> dict[str, Any]:
    """GET /ocpp until ``until(view)`` (real time, bounded); AssertionError with the last view after that."""
    end_s = time.monotonic() + timeout_s
    while True:
        view = httpx.get(f"{server.url}/ocpp", timeout=5.0).json()
        if until(view):
            return view
        if time.monotonic() > end_s:
            raise AssertionError(f"GET /ocpp not as expected within {timeout_s} s: {view}")
        time.sleep(0.05)


def ensure_transaction(csms: CsmsThread, server: LiveServer) -> dict[str, Any]:
    """The CSMS's remote start (id token ``XSS_TOKEN``) unless its transaction runs: GET /ocpp's transaction."""
    from ocpp.v201 import call as call201

    view = ocpp_view(server)
    if view["transaction"] is None:
        answer = csms.call(call201.RequestStartTransaction(
            id_token={"id_token": XSS_TOKEN, "type": "ISO14443"}, remote_start_id=7, evse_id=1))
        assert answer.status == "Accepted"
    view = ocpp_view(server, until=lambda v: v["transaction"] is not None and v["transaction"]["energy_Wh"])
    return view["transaction"]


def set_profiles(csms: CsmsThread) -> None:
    """The station's maximum 32 A (profile 11) and the transactions' default 11 kW (profile 12)."""
    from ocpp.v201 import call as call201

    def profile(profile_id: int, purpose: str, stack_level: int, unit: str, limit: float) -> Any:
        return call201.SetChargingProfile(evse_id=0, charging_profile={
            "id": profile_id, "stack_level": stack_level, "charging_profile_purpose": purpose,
            "charging_profile_kind": "Relative", "charging_schedule": [{
                "id": profile_id, "charging_rate_unit": unit,
                "charging_schedule_period": [{"start_period": 0, "limit": limit}]}]})

    assert csms.call(profile(11, "ChargingStationMaxProfile", 0, "A", 32.0)).status == "Accepted"
    assert csms.call(profile(12, "TxDefaultProfile", 1, "W", 11000.0)).status == "Accepted"


@pytest.fixture
def ocpp_page(browser_context, ocpp_server):  # type: ignore[no-untyped-def]
    """A fresh tab on the OCPP-enabled dashboard, the panel scrolled on screen; page errors collected."""
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.page_errors = errors
    page.goto(f"{ocpp_server.url}/?rate=10")
    page.wait_for_function("document.getElementById('stream-state').classList.contains('live')", timeout=10_000)
    page.locator("#ocpp-panel").scroll_into_view_if_needed()
    try:
        yield page
    finally:
        page.close()


@pytest.mark.browser
def test_panel_is_hidden_and_asks_nothing_without_ocpp(dashboard, live_server) -> None:
    page = dashboard
    assert httpx.get(f"{live_server.url}/ocpp").json() == {"enabled": False}
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if urlparse(request.url).path == "/ocpp" else None)
    page.reload()
    page.wait_for_function("document.getElementById('stream-state').classList.contains('live')", timeout=10_000)
    page.wait_for_timeout(500)
    assert not page.locator("#ocpp-panel").is_visible()
    assert page.locator("#ocpp-panel").get_attribute("data-ocpp") is None
    assert asked == []
    assert page.console_log.errors == []


@pytest.mark.browser
def test_panel_shows_the_link_booted_its_version_queue_heartbeat_and_frames(ocpp_page, ocpp_server, csms) -> None:
    page = ocpp_page
    expect()(page.locator("#ocpp-panel")).to_be_visible()
    expect()(page.locator("#ocpp-state")).to_have_text("connected · booted", timeout=PANEL_UPDATE_MS)
    expect()(page.locator("#ocpp-version")).to_have_text("OCPP 2.0.1")
    expect()(page.locator("#ocpp-station-id")).to_have_text(STATION_ID)
    expect()(page.locator("#ocpp-url")).to_have_text(f"{csms.csms.url}/{STATION_ID}")
    expect()(page.locator("#ocpp-security")).to_have_text("0 · none (plain)")
    expect()(page.locator("#ocpp-boot")).to_have_text(f"Accepted · heartbeat every {HEARTBEAT_S} s")
    # a heartbeat answered: its time of day (hh:mm:ss.mmm), within two intervals and a poll
    expect()(page.locator("#ocpp-heartbeat")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"),
                                                            timeout=2 * HEARTBEAT_S * 1000 + PANEL_UPDATE_MS)
    view = ocpp_view(ocpp_server)
    depth = page.locator("#ocpp-queue-depth").inner_text()
    assert re.fullmatch(r"(\d+)( of max \d+)? · (\d+) delivered", depth), depth
    assert int(depth.split(" ")[0]) == view["queue_depth"] == 0
    # the view has queue_dropped (and queue_dropped_full where the queue has a cap): shown
    expect()(page.locator("#ocpp-dropped")).to_have_text(re.compile(r"^0 given up( · 0 past the cap)?$"))
    # the newest frames first, at most 10; the BootNotification was sent and answered
    rows = page.locator("#ocpp-frames tr")
    expect()(rows.first).to_be_visible()
    assert 1 <= rows.count() <= 10
    sent = [frame for frame in view["last_frames"] if frame["direction"] == "sent" and frame["type"] == "CALL"]
    assert {"BootNotification", "StatusNotification", "Heartbeat"} <= {frame["action"] for frame in sent}
    rows.first.click()
    payload = page.locator("#ocpp-payload")
    expect()(payload).to_be_visible()
    header, _, body = payload.inner_text().partition("\n")
    assert re.fullmatch(r"(CALL|CALLRESULT|CALLERROR) [A-Za-z]+ · (→ to CSMS|← from CSMS) · "
                        r"\d\d:\d\d:\d\d\.\d{3} · id \S+", header), header
    assert isinstance(json.loads(body), dict)  # the payload, as JSON
    assert page.locator("#ocpp-frames tr.selected").count() <= 1
    assert page.page_errors == []


@pytest.mark.browser
def test_a_remote_start_shows_the_transaction_and_the_csms_token_as_text(ocpp_page, ocpp_server, csms) -> None:
    page = ocpp_page
    transaction = ensure_transaction(csms, ocpp_server)
    expect()(page.locator("#ocpp-tx-id")).to_have_text(str(transaction["csms_transaction_id"]), timeout=PANEL_UPDATE_MS)
    expect()(page.locator("#ocpp-id-token")).to_have_text(XSS_TOKEN)
    expect()(page.locator("#ocpp-tx-energy")).to_have_text(re.compile(r"^\d+\.\d\d? k?Wh \(meter start \d+ Wh\)$"))
    expect()(page.locator("#ocpp-connector")).to_contain_text("Occupied")
    # a second remote start (refused: the connector is busy) is the newest CSMS CALL: its payload shown as text
    from ocpp.v201 import call as call201

    assert csms.call(call201.RequestStartTransaction(
        id_token={"id_token": XSS_TOKEN, "type": "ISO14443"}, remote_start_id=8, evse_id=1)).status == "Rejected"
    request_row = page.locator("#ocpp-frames tr:has(td:text-is('CALL')):has(td:text-is('RequestStartTransaction'))")
    expect()(request_row.first).to_be_visible(timeout=PANEL_UPDATE_MS)
    request_row.first.click()
    expect()(page.locator("#ocpp-payload")).to_contain_text('"idToken": "<img src=x onerror=\\"window.xss=1\\">"')
    assert page.locator("#ocpp-panel img").count() == 0
    assert page.evaluate("window.xss") is None
    assert page.page_errors == []
    # the control: the same text parsed as HTML does run (so the test above could fail)
    page.evaluate("text => { const probe = document.createElement('div'); probe.innerHTML = text; "
                  "document.body.append(probe); }", XSS_TOKEN)
    page.wait_for_function("window.xss === 1", timeout=5_000)


@pytest.mark.browser
def test_the_csms_charging_profiles_show_as_the_composite_limit_in_numbers(ocpp_page, ocpp_server, csms) -> None:
    page = ocpp_page
    ensure_transaction(csms, ocpp_server)
    set_profiles(csms)
    expect()(page.locator("#ocpp-limit-current")).to_have_text("32.0 A", timeout=PANEL_UPDATE_MS)
    expect()(page.locator("#ocpp-limit-power")).to_have_text("11000 W (11.0 kW)")
    expect()(page.locator("#ocpp-limit-profiles")).to_have_text(
        "#11 ChargingStationMaxProfile (stack 0, A, sets current); #12 TxDefaultProfile (stack 1, W, sets power)")
    # the controller applies it within 1 s: the limit in force names the CSMS's profiles ("ocpp") as its source
    expect()(page.locator("#ocpp-limit-in-force")).to_have_text("32.0 A (ocpp) · 11000 W (11.0 kW) (ocpp)",
                                                                timeout=PANEL_UPDATE_MS)
    expect()(page.locator("#limit-in-force")).to_have_text("32 A · 11 kW (ocpp)")
    assert page.page_errors == []


@pytest.mark.browser
def panel_polling(page) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """The panel's refresh state and the requests it has started, read at one instant of the page."""
    state, polls = page.evaluate("() => { const p = document.getElementById('ocpp-panel');"
                                 " return [p.dataset.polling || '', Number(p.dataset.polls || 0)]; }")
    return state, polls


def wait_for_panel(page, condition, timeout_ms: int = 15_000):  # type: ignore[no-untyped-def]
    """Poll the page (bounded) until ``condition(panel_polling(page))``; the state it reached."""
    for _ in range(timeout_ms // 100):
        state = panel_polling(page)
        if condition(state):
            return state
        page.wait_for_timeout(100)
    raise AssertionError(f"the panel did not reach the expected refresh state: {panel_polling(page)}")


def test_the_panel_asks_get_ocpp_only_while_on_screen(ocpp_page) -> None:
    page = ocpp_page
    expect()(page.locator("#ocpp-state")).to_have_text("connected · booted", timeout=PANEL_UPDATE_MS)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if urlparse(request.url).path == "/ocpp" else None)
    # on screen: it asks again and again (every 2 s after the last answer), on the network
    _, polls_on = wait_for_panel(page, lambda state: state[0] == "on")
    wait_for_panel(page, lambda state: state[1] >= polls_on + 2)
    assert len(asked) >= 1, "the panel's requests reach the network"
    # off screen: once the observer told the panel, it starts no request (one under way may finish)
    page.set_viewport_size({"width": 1500, "height": 300})
    page.evaluate("window.scrollTo(0, 0)")
    _, polls_off = wait_for_panel(page, lambda state: state[0] == "off")
    page.wait_for_timeout(4_500)  # more than two refresh periods
    assert panel_polling(page) == ("off", polls_off)
    # back on screen: it asks at once
    page.locator("#ocpp-panel").scroll_into_view_if_needed()
    wait_for_panel(page, lambda state: state[0] == "on" and state[1] > polls_off)


def test_get_ocpp_answers_every_field_the_panel_reads(ocpp_server, csms) -> None:
    page_html = httpx.get(f"{ocpp_server.url}/").text
    assert OCPP_PANEL_PRESENT_TAG in page_html
    transaction = ensure_transaction(csms, ocpp_server)
    set_profiles(csms)
    view = ocpp_view(ocpp_server, until=lambda v: v["composite_limit"] is not None and v["last_heartbeat_at"])
    script = PANEL_SCRIPT.read_text(encoding="utf-8")
    read = {name: set(re.findall(rf"\b{name}\.([a-z_A-Z]+)\b", script)) for name in ("view", "tx", "limit", "error",
                                                                                     "connector", "p")}
    optional = {"dropped", "queue_dropped_full", "queue_max_messages"}  # shown only where the view has them
    assert read["view"] - optional <= set(view), read["view"] - set(view)
    assert read["tx"] <= set(view["transaction"]), read["tx"] - set(view["transaction"])
    assert read["limit"] <= set(view["composite_limit"])
    assert read["connector"] <= set(view["connector_status"])
    assert read["p"] <= set(view["composite_limit"]["profiles"][0])
    for frame in view["last_frames"]:
        assert {"at", "direction", "type", "id", "action", "payload"} <= set(frame)
    # the values
    assert view["enabled"] is True and view["version"] == "2.0.1" and view["station_id"] == STATION_ID
    assert view["connection"] == "booted" and view["boot_status"] == "Accepted"
    assert view["heartbeat_interval_s"] == HEARTBEAT_S and view["security_profile"] == 0
    assert datetime.fromisoformat(view["last_heartbeat_at"]).tzinfo is not None
    assert view["queue_depth"] == 0 and view["queue_dropped"] == 0
    assert transaction["id_tag"] == XSS_TOKEN and transaction["meter_start_Wh"] >= 0
    assert transaction["csms_transaction_id"] == transaction["local_ref"]  # 2.0.1: the station's own id
    started = [f.payload for f in csms.csms.calls_received("TransactionEvent") if f.payload["eventType"] == "Started"]
    assert started[-1]["transactionInfo"]["transactionId"] == transaction["csms_transaction_id"]
    assert view["composite_limit"]["current_A"] == 32.0 and view["composite_limit"]["power_W"] == 11000.0
    assert view["composite_limit"]["profile_ids"] == {"current_A": 11, "power_W": 12}
    later = ocpp_view(ocpp_server, until=lambda v: v["transaction"]["energy_Wh"] > transaction["energy_Wh"])
    assert later["transaction"]["energy_Wh"] > transaction["energy_Wh"] > 0
    assert csms.csms.violations == []
