"""A speed change reaches every sleep already under way (issue 10, item 3).

A sleep on the scaled clock waits for a *simulated* deadline: when ``set_speed`` changes the rate, the
wall time left is recomputed, so a sleep begun at speed 0.001 does not keep its 10 000 s of wall time once
the speed is back up (which froze the control loop and the safety supervisor), and a sleep begun fast is
not cut short when the simulation slows down.

These tests wait on the wall clock because the scaled clock's mapping to wall time is the thing under
test; every wait is bounded (``asyncio.wait_for``) with a margin of 10x or more over what is expected.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ScaledClock

#: Upper bound on the wall time a test waits for something expected within ~10 ms (a loaded 2-core machine).
GENEROUS_WALL_S = 2.0


async def test_a_slow_sleep_ends_soon_after_the_speed_is_raised():
    clock = ScaledClock(0.001)
    sleep_s = 10.0  # simulated: 10 000 s of wall time at speed 0.001
    started_sim_s = clock.now()
    sleeper = asyncio.create_task(clock.sleep(sleep_s))
    await asyncio.sleep(0)  # the sleep is under way at the old speed
    assert not sleeper.done()

    raised_at_wall_s = time.monotonic()
    clock.set_speed(1000.0)  # 10 s simulated left -> 10 ms of wall time
    await asyncio.wait_for(sleeper, GENEROUS_WALL_S)
    woke_after_wall_s = time.monotonic() - raised_at_wall_s

    assert woke_after_wall_s < 0.5, f"the sleep took {woke_after_wall_s:.3f} s of wall time after the speed-up"
    assert clock.now() - started_sim_s >= sleep_s  # the simulated deadline is kept, not cut short


async def test_a_fast_sleep_keeps_its_simulated_deadline_when_the_speed_is_lowered():
    clock = ScaledClock(1000.0)
    sleep_s = 10.0  # 10 ms of wall time at speed 1000
    started_sim_s = clock.now()
    sleeper = asyncio.create_task(clock.sleep(sleep_s))
    await asyncio.sleep(0)
    clock.set_speed(1.0)  # about 10 s of wall time left now

    done, _ = await asyncio.wait({sleeper}, timeout=0.1)  # 10x the old wall length
    assert not done, "the sleep ended at the old speed's wall time, before its simulated deadline"
    assert clock.now() - started_sim_s < sleep_s

    clock.set_speed(1000.0)
    await asyncio.wait_for(sleeper, GENEROUS_WALL_S)
    assert clock.now() - started_sim_s >= sleep_s


async def test_every_sleeper_wakes_on_a_speed_change_and_a_cancelled_one_leaves_nothing_behind():
    clock = ScaledClock(0.001)
    sleepers = [asyncio.create_task(clock.sleep(seconds)) for seconds in (1.0, 2.0, 3.0)]
    cancelled = asyncio.create_task(clock.sleep(5.0))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    clock.set_speed(10_000.0)  # 3 s simulated -> 0.3 ms of wall time
    await asyncio.wait_for(asyncio.gather(*sleepers), GENEROUS_WALL_S)
    assert clock.now() >= 3.0
    assert not clock._speed_change_waiters  # no waiter left registered after the sleeps ended


async def test_a_speed_change_from_another_thread_wakes_the_sleeper():
    clock = ScaledClock(0.001)
    sleeper = asyncio.create_task(clock.sleep(1.0))
    await asyncio.sleep(0)
    changer = threading.Thread(target=clock.set_speed, args=(10_000.0,))
    changer.start()
    await asyncio.wait_for(sleeper, GENEROUS_WALL_S)
    changer.join()
    assert clock.now() >= 1.0


async def test_a_non_positive_sleep_only_yields():
    clock = ScaledClock(0.001)
    await asyncio.wait_for(clock.sleep(0.0), GENEROUS_WALL_S)
    await asyncio.wait_for(clock.sleep(-1.0), GENEROUS_WALL_S)


async def _status(client: httpx.AsyncClient) -> dict:
    return (await client.get("/status")).json()


async def _wait_for_status(client: httpx.AsyncClient, predicate, timeout_wall_s: float) -> dict:
    deadline_s = time.monotonic() + timeout_wall_s
    while True:
        status = await _status(client)
        if predicate(status):
            return status
        if time.monotonic() > deadline_s:
            raise AssertionError(f"not reached within {timeout_wall_s} s of wall time; last status: {status}")
        await asyncio.sleep(0.01)


async def test_api_speed_set_tiny_and_back_keeps_the_control_loop_and_supervisor_ticking(tmp_path: Path):
    """The issue's reproduction: a session charging, ``POST /sim/speed`` 0.001 then back: the control loop
    (which runs the safety supervisor) resumes at once, /status moves on and the session reaches its end."""
    speed = 50.0
    settings = ControllerSettings(_env_file=None, speed=speed, data_dir=tmp_path)  # type: ignore[call-arg]
    controller = build_controller(settings)
    await controller.start()
    try:
        app = create_app(controller)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
            started = (await client.post("/start_session", json={"target_voltage": 400, "initial_current": 80,
                                                                 "duration_s": 30})).json()
            assert started["status"] == "started"
            await _wait_for_status(client, lambda s: s["phase"] == "CHARGING" and s["current"] > 10, 10.0)

            assert (await client.post("/sim/speed", json={"speed": 0.001})).json()["speed"] == 0.001
            await asyncio.sleep(0.05)  # the control loop is now inside a sleep of 10 ms simulated = 10 s of wall
            before = await _status(client)
            assert (await client.post("/sim/speed", json={"speed": speed})).json()["speed"] == speed

            # At speed 50 a 10 ms control period is 0.2 ms of wall time: the loop (which meters, ramps and runs
            # the supervisor) must tick again at once, so the metered energy moves on.
            await _wait_for_status(client, lambda s: s["energy_Wh"] > before["energy_Wh"], GENEROUS_WALL_S)
            # ... and the session still runs to its end (30 s simulated at speed 50: well under 5 s of wall).
            ended = await _wait_for_status(client, lambda s: s["last_session_summary"] is not None
                                           and s["stage"] == "ended", 10.0)
            assert ended["last_session_summary"]["session_id"] == started["session_id"]
            assert ended["last_session_summary"]["ended_phase"] == "COMPLETE"
            assert ended["contactor_closed"] is False
    finally:
        await controller.shutdown()
