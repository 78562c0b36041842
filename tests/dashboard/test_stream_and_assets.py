"""The dashboard's server side without a browser: the SSE wire format and pacing, the snapshot, the routes
and that every asset the page loads ships in the package (no CDN, no internet)."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import AsyncIterator

import httpx
import pytest

from evse_model.clock import ManualClock
from ccs_sim.controller import ChargerController
from ccs_sim.dashboard.routes import ASSETS, PAGE
from ccs_sim.dashboard.snapshot import build_snapshot
from ccs_sim.dashboard import close_streams
from ccs_sim.dashboard.sse import DEFAULT_RATE_HZ, STOP_POLL_S, format_event, snapshot_events
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from evse_model.session import SessionParams
from ccs_sim.settings import ControllerSettings


def parse_events(text: str) -> list[dict[str, str]]:
    """Split an event-stream body into events (field name -> value)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields[name] = value
        events.append(fields)
    return events


# --- wire format and pacing ---------------------------------------------------------------------------------
def test_event_is_one_json_line_with_id_and_type() -> None:
    text = format_event({"a": "line\nbreak", "b": 1.5}, event_id=7, retry_ms=2000)
    assert text.endswith("\n\n")
    assert text.split("\n") == ["retry: 2000", "id: 7", "event: snapshot",
                                 'data: {"a":"line\\nbreak","b":1.5}', "", ""]


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now_s += seconds


async def collect(events: AsyncIterator[str]) -> list[str]:
    return [event async for event in events]


async def test_first_event_at_once_then_one_per_period() -> None:
    time = FakeTime()
    events = await collect(snapshot_events(lambda seq: {"seq": seq}, 5.0, time.sleep, time.monotonic, limit=4))
    assert [json.loads(parse_events(e)[0]["data"])["seq"] for e in events] == [1, 2, 3, 4]
    assert time.sleeps == [0.2, 0.2, 0.2]  # no sleep before the first event nor after the last
    assert "retry" in parse_events(events[0])[0] and "retry" not in parse_events(events[1])[0]


async def test_pacing_does_not_drift_and_does_not_burst_after_a_stall() -> None:
    time = FakeTime()
    snapshot_costs = {2: 0.05, 3: 1.0}  # building/sending event 2 takes 50 ms; event 3 stalls for 1 s

    def snapshot(seq: int) -> dict[str, int]:
        time.now_s += snapshot_costs.get(seq, 0.0)
        return {"seq": seq}

    await collect(snapshot_events(snapshot, 5.0, time.sleep, time.monotonic, limit=5))
    # after a 50 ms cost the next wait shrinks to keep the 5/s schedule; after a stall, a full period (no burst)
    assert time.sleeps == [0.2, 0.15, 0.2, 0.2]


def test_default_rate_is_at_least_four_per_second() -> None:
    assert DEFAULT_RATE_HZ >= 4


# --- the app --------------------------------------------------------------------------------------------------
@pytest.fixture
async def rig() -> AsyncIterator[tuple[ChargerController, ManualClock, httpx.AsyncClient]]:
    clock = ManualClock()
    controller = build_controller(ControllerSettings(), clock)
    await controller.start()
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield controller, clock, client
    await controller.shutdown()


async def test_snapshot_carries_status_meter_and_vehicle_views(rig) -> None:
    controller, clock, client = rig
    controller.start_session(SessionParams(duration_s=5.0))
    await clock.advance(6.0)
    snapshot = build_snapshot(controller, 3)
    assert snapshot["seq"] == 3
    assert snapshot["status"] == controller.status_view()
    assert snapshot["meter"] == controller.meter_view()
    assert snapshot["bms"] == controller.bms_view()
    assert snapshot["slac"] == controller.slac_view and snapshot["iso15118"] == controller.iso15118_view
    assert snapshot["session"]["params"]["duration_s"] == 5.0
    assert snapshot["sim"]["plant"]["estop_pressed"] is False
    assert snapshot["status"]["phase"] == "CHARGING"
    json.dumps(snapshot, allow_nan=False)  # what the stream sends must be strict JSON


async def test_recent_faults_name_the_cause(rig) -> None:
    controller, clock, client = rig
    answer = await client.post("/fault", json={"type": "E_STOP"})
    assert answer.json()["status"] == "fault_injected"
    snapshot = (await client.get("/dashboard/snapshot")).json()
    assert snapshot["status"]["active_fault"] == "E_STOP"
    assert snapshot["faults"][-1]["type"] == "E_STOP" and snapshot["faults"][-1]["severity"] == "emergency"


async def test_stream_route_sends_snapshots_as_server_sent_events(rig) -> None:
    controller, clock, client = rig
    answer = await client.get("/stream", params={"limit": 1})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    [event] = parse_events(answer.text)
    assert event["event"] == "snapshot" and event["id"] == "1"
    data = json.loads(event["data"])
    assert set(data) >= {"status", "meter", "bms", "slac", "iso15118", "sim", "session", "faults"}


@pytest.mark.parametrize("query", [{"rate": 100}, {"rate": 0}, {"rate": "fast"}, {"limit": 0}])
async def test_stream_refuses_bad_parameters_with_a_message(rig, query) -> None:
    controller, clock, client = rig
    answer = await client.get("/stream", params=query)
    assert answer.status_code == 422
    assert answer.json()["status"] == "error" and answer.json()["message"]


async def test_page_and_every_asset_it_loads_are_served_from_the_package(rig) -> None:
    controller, clock, client = rig
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    referenced = set(re.findall(r'/dashboard/assets/([\w.]+)', page.text))
    modules = set()
    for name in ASSETS:
        if name.endswith(".js"):
            text = (await client.get(f"/dashboard/assets/{name}")).text
            modules |= set(re.findall(r'from "\./([\w.]+)"', text))
    assert referenced and modules
    for name in referenced | modules:
        answer = await client.get(f"/dashboard/assets/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == ASSETS[name]
    assert (await client.get("/dashboard/assets/../routes.py")).status_code == 404
    assert (await client.get("/dashboard/assets/__init__.py")).status_code == 404


def test_assets_load_nothing_from_the_internet() -> None:
    folder = resources.files("ccs_sim.dashboard").joinpath("assets")
    for name in [PAGE, *ASSETS]:
        text = folder.joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r'(src|href)=["\']?(https?:)?//', text), name
        assert not re.search(r'import[^;]*["\']https?://', text), name
        assert "fetch(\"http" not in text and "fetch('http" not in text, name


async def test_stream_ends_soon_after_should_stop_even_at_a_slow_rate() -> None:
    time = FakeTime()
    stop_at_s = time.now_s + 0.6

    events = await collect(snapshot_events(lambda seq: {"seq": seq}, 0.2, time.sleep, time.monotonic,
                                           should_stop=lambda: time.now_s >= stop_at_s))
    assert len(events) == 1  # the next event was 5 s away
    assert time.now_s - stop_at_s <= STOP_POLL_S


async def test_close_streams_ends_open_streams(rig) -> None:
    controller, clock, client = rig
    app = client._transport.app  # type: ignore[attr-defined]
    close_streams(app)
    answer = await client.get("/stream")  # would never end without the flag
    assert answer.status_code == 200 and answer.text == ""
