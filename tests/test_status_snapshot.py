"""Readers served from a per-tick snapshot: ``/status``, ``/meter`` and the dashboard snapshot behind ``/stream``
and ``/dashboard/snapshot`` are built at most once per control tick (counted), a command between two reads
shows at once, the next tick rebuilds, and 50 ``/stream`` subscribers cost one build per tick."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ccs_sim.controller import ChargerController
from ccs_sim.dashboard.routes import SNAPSHOT_CACHE
from ccs_sim.dashboard.snapshot import SnapshotCache, build_snapshot
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock, ScaledClock
from evse_model.session import SessionParams

PERIOD_S = 0.01  # the default control period


class Rig:
    def __init__(self, controller: ChargerController, clock: ManualClock, app: Any, client: httpx.AsyncClient) -> None:
        self.controller = controller
        self.clock = clock
        self.app = app
        self.client = client

    @property
    def builds(self) -> Any:
        return self.controller._views.builds

    @property
    def encodings(self) -> dict[str, int]:
        return self.app.state.encoded_views.encodings

    async def status(self) -> dict[str, Any]:
        answer = await self.client.get("/status")
        assert answer.status_code == 200
        return answer.json()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    controller = build_controller(ControllerSettings(_env_file=None, max_streams_per_client=0), clock)  # type: ignore[call-arg]
    await controller.start()
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield Rig(controller, clock, app, client)
    await controller.shutdown()


async def test_two_reads_within_one_tick_build_and_encode_status_once(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    before = rig.builds["status"]
    first, second = await rig.status(), await rig.status()
    assert first == second
    assert rig.builds["status"] == before + 1 and rig.encodings["status"] == 1
    assert rig.controller.status_view() is rig.controller.status_view()  # one dict for every reader


async def test_a_command_between_two_reads_shows_at_once_and_the_next_tick_rebuilds(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    idle = await rig.status()
    builds = rig.builds["status"]
    ticks = rig.controller.tick_sequence
    assert (await rig.client.post("/start_session", json={"duration_s": 5})).json()["status"] == "started"
    started = await rig.status()
    assert rig.controller.tick_sequence == ticks  # no tick ran between the two reads ...
    assert idle["session_active"] is False and started["session_active"] is True  # ... yet the command shows
    assert started["session_id"] == rig.controller.session.session_id and started["session_id"] is not None
    assert rig.builds["status"] == builds + 1
    await rig.status()
    assert rig.builds["status"] == builds + 1  # nothing changed since
    await rig.clock.advance(PERIOD_S)  # the next tick
    later = await rig.status()
    assert rig.controller.tick_sequence == ticks + 1
    assert rig.builds["status"] == builds + 2 and later["clock_s"] == pytest.approx(started["clock_s"] + PERIOD_S)


async def test_an_external_limit_and_a_fault_between_ticks_show_at_once(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    assert (await rig.status())["limits_in_force"]["current_source"] == "rating"
    rig.controller.set_external_limit("ocpp", current_A=80.0)
    limited = await rig.status()
    assert limited["limits_in_force"]["current_source"] == "ocpp" and limited["limits_in_force"]["current_A"] == 80.0
    assert (await rig.client.post("/fault", json={"type": "E_STOP"})).json()["status"] == "fault_injected"
    assert (await rig.status())["active_fault"] == "E_STOP"


async def test_meter_is_built_once_per_tick(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    before = rig.builds["meter"]
    answers = [(await rig.client.get("/meter")).json() for _ in range(5)]
    assert all(answer == answers[0] for answer in answers)
    assert rig.builds["meter"] == before + 1 and rig.encodings["meter"] == 1
    await rig.clock.advance(PERIOD_S)
    await rig.client.get("/meter")
    assert rig.builds["meter"] == before + 2


async def test_the_served_body_is_what_fastapi_would_write_for_the_view(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    answer = await rig.client.get("/status")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(rig.controller.status_view()))


async def test_on_a_running_clock_an_idle_loop_still_shows_the_time_move() -> None:
    """A scaled clock whose loop does not tick (controller not started): the view is kept for up to two control
    periods, then rebuilt with the time."""
    wall = [0.0]
    clock = ScaledClock(1.0, wall_time=lambda: wall[0])
    controller = build_controller(ControllerSettings(_env_file=None), clock)  # type: ignore[call-arg]
    views = controller._views
    first = controller.status_view()
    wall[0] += PERIOD_S  # one period: the same view
    assert controller.status_view() is first and views.builds["status"] == 1
    wall[0] += 1.5 * PERIOD_S  # 2.5 periods after the build: rebuilt
    again = controller.status_view()
    assert again is not first and views.builds["status"] == 2
    assert again["clock_s"] == pytest.approx(first["clock_s"] + 2.5 * PERIOD_S, abs=1e-3)


# --- the dashboard snapshot ---------------------------------------------------------------------------------------
def snapshot_cache(rig: Rig) -> SnapshotCache:
    return getattr(rig.app.state, SNAPSHOT_CACHE)


async def test_dashboard_snapshot_is_built_once_per_tick_and_a_command_shows_at_once(rig: Rig) -> None:
    await rig.clock.advance(PERIOD_S)
    first = (await rig.client.get("/dashboard/snapshot")).json()
    second = (await rig.client.get("/dashboard/snapshot")).json()
    cache = snapshot_cache(rig)
    assert first == second and cache.builds == 1 and rig.encodings["dashboard_snapshot"] == 1
    ticks = rig.controller.tick_sequence
    assert (await rig.client.post("/sim/car", json={"preset": "ev400"})).json()["status"] == "ok"  # runs no tick
    changed = (await rig.client.get("/dashboard/snapshot")).json()
    assert rig.controller.tick_sequence == ticks
    assert changed["sim"]["car"]["preset"] == "ev400" and cache.builds == 2
    await rig.clock.advance(PERIOD_S)
    await rig.client.get("/dashboard/snapshot")
    assert cache.builds == 3


async def test_a_stream_event_is_the_snapshot_with_its_own_seq(rig: Rig) -> None:
    rig.controller.start_session(SessionParams(duration_s=5.0))
    await rig.clock.advance(3.0)
    cache = SnapshotCache(rig.controller)
    for sequence in (1, 17, 123456):
        expected = json.dumps(build_snapshot(rig.controller, sequence), separators=(",", ":"), allow_nan=False,
                              default=str)
        assert cache.event_data(sequence) == expected  # byte for byte what format_event wrote before
    assert cache.builds == 1


async def test_fifty_stream_subscribers_cost_one_build_per_tick(rig: Rig) -> None:
    subscribers = 50

    async def one_event_each() -> list[dict[str, Any]]:
        answers = await asyncio.gather(*(rig.client.get("/stream", params={"limit": 1})
                                         for _ in range(subscribers)))
        events = []
        for answer in answers:
            assert answer.status_code == 200
            data = next(line for line in answer.text.split("\n") if line.startswith("data: "))
            events.append(json.loads(data[len("data: "):]))
        return events

    await rig.clock.advance(PERIOD_S)
    events = await one_event_each()
    cache = snapshot_cache(rig)
    assert cache.builds == 1 and len(events) == subscribers
    assert all(event == events[0] for event in events)
    for tick in range(2, 5):
        await rig.clock.advance(PERIOD_S)
        events = await one_event_each()
        assert cache.builds == tick  # one build per tick for all 50
        assert events[0]["status"]["clock_s"] == pytest.approx(rig.clock.now())
