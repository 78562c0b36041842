"""Clock semantics, the adapter registry, and nothing touching hardware at import time."""

from __future__ import annotations

import asyncio
import importlib
import sys

import pytest

from evse_hal import registry
from evse_hal.adapters.sim import SimHardware
from evse_hal.interfaces import EVSEHardware
from evse_model.clock import ManualClock, ScaledClock


async def test_manual_clock_wakes_sleepers_in_deadline_order():
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(name, seconds)) for name, seconds in (("b", 2.0), ("a", 1.0), ("c", 3.0))]
    await clock.advance(2.5)
    assert woke == [("a", 1.0), ("b", 2.0)]
    await clock.advance(1.0)
    assert woke[-1] == ("c", 3.0) and clock.now() == 3.5
    await asyncio.gather(*tasks)


async def test_manual_clock_runs_a_long_simulation_as_fast_as_it_computes():
    clock = ManualClock()

    async def twenty_minutes() -> int:
        ticks = 0
        while clock.now() < 1200.0:
            await clock.sleep(0.5)
            ticks += 1
        return ticks

    assert await clock.run_until_complete(twenty_minutes()) == 2400
    assert clock.now() == pytest.approx(1200.0)


def test_scaled_clock_rejects_a_non_positive_speed():
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_unknown_adapter_error_lists_the_known_ones():
    with pytest.raises(registry.UnknownAdapterError) as error:
        registry.resolve_adapter("acme-can")
    assert "acme-can" in str(error.value) and "sim" in str(error.value)


def test_adapters_registered_in_process_and_lazily_imported():
    created = []

    def factory(clock, **options):  # type: ignore[no-untyped-def]
        created.append(options)
        return SimHardware(clock)

    registry.register_adapter("bench-rig", factory)
    try:
        hardware = registry.create_hardware("bench-rig", ManualClock(), note="x")
        assert isinstance(hardware, EVSEHardware) and created == [{"note": "x"}]
        assert "bench-rig" in registry.known_adapters()
    finally:
        registry._registered.pop("bench-rig", None)


def test_adapter_factory_returning_something_else_is_rejected():
    registry.register_adapter("broken", lambda clock: object())
    try:
        with pytest.raises(TypeError, match="not an EVSEHardware"):
            registry.create_hardware("broken", ManualClock())
    finally:
        registry._registered.pop("broken", None)


def test_importing_the_api_module_touches_no_hardware(monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "create_hardware", lambda *a, **k: calls.append(a))
    sys.modules.pop("ccs_sim.fastapi_app", None)
    module = importlib.import_module("ccs_sim.fastapi_app")
    assert module.app is not None and calls == []


async def test_uvicorn_module_app_builds_its_controller_at_startup(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCS_SIM_SPEED", "50")
    monkeypatch.setenv("CCS_SIM_DATA_DIR", str(tmp_path / "data"))
    from ccs_sim.fastapi_app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        controller = app.state.controller
        assert controller.hw.name == "sim" and controller.clock.speed == 50.0
        assert controller.latest is None or controller.latest.contactor_closed is False


async def test_a_blocking_adapter_is_read_and_commanded_off_the_event_loop():
    import threading

    from ccs_sim.controller import ChargerController

    threads: set[str] = set()

    class RecordingBlockingSim(SimHardware):
        blocking = True

    hardware = RecordingBlockingSim(ManualClock())
    original = hardware.cp.read_voltage

    def read_voltage() -> float:
        threads.add(threading.current_thread().name)
        return original()

    hardware.cp.read_voltage = read_voltage  # type: ignore[method-assign]
    controller = ChargerController(hardware, hardware.clock)
    measurements = await controller.measure()
    await controller.set_pwm_duty(5.0)
    assert measurements.pilot.state == "A"
    assert threads and threading.main_thread().name not in threads


def test_scaled_clock_speed_changes_keep_time_continuous(monkeypatch):
    import evse_model.clock as clock_module

    wall = [100.0]
    monkeypatch.setattr(clock_module.time, "monotonic", lambda: wall[0])
    clock = ScaledClock(10.0)
    wall[0] += 2.0
    assert clock.now() == pytest.approx(20.0)
    clock.set_speed(100.0)
    assert clock.now() == pytest.approx(20.0) and clock.speed == 100.0
    wall[0] += 0.5
    assert clock.now() == pytest.approx(70.0)
    with pytest.raises(ValueError):
        clock.set_speed(0.0)


async def test_speed_endpoint_changes_a_scaled_simulation_and_refuses_otherwise(monkeypatch, tmp_path):
    import httpx

    from ccs_sim.fastapi_app import create_app
    from ccs_sim.runtime import build_controller
    from ccs_sim.settings import ControllerSettings

    controller = build_controller(ControllerSettings(_env_file=None, speed=5.0))
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
        response = (await client.post("/sim/speed", json={"speed": 20})).json()
        assert response == {"status": "ok", "speed": 20.0} and controller.clock.speed == 20.0
        assert (await client.post("/sim/speed", json={"speed": 0})).status_code == 422
    manual = build_controller(ControllerSettings(_env_file=None), ManualClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(manual)),
                                 base_url="http://charger") as client:
        refused = (await client.post("/sim/speed", json={"speed": 2})).json()
        assert refused["status"] == "error" and "scaled clock" in refused["message"]
