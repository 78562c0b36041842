"""Helpers for the car-after-car soak: one long-lived simulated charger on a manual clock, its session records
in one database, and a log of the cars it served (each session's car keeps its own battery, so what the car
received is known independently of the charger's meter and records)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from evse_model.clock import ManualClock
from ccs_sim.controller import ChargerController
from ccs_sim.fastapi_app import create_app
from sim_plant.ev import SimulatedEV
from ccs_sim.runtime import Operations, attach_operations, build_controller
from ccs_sim.settings import ControllerSettings

#: The meter at the EVSE output also counts the charge put into the cable's capacitance during the cable check
#: (½·0.2 mF·(918 V)² ≈ 0.023 Wh for the 800 V car) and the insulation leakage; the car's battery does not.
METER_VS_BATTERY_ABS_WH = 0.05
METER_VS_BATTERY_REL = 0.005
#: A session that never reached energy transfer may count the cable-check charge, nothing more.
NO_TRANSFER_MAX_WH = 0.05
#: Time step while a command waits on the charger (the fastest shutdown deadline is 30 ms).
COMMAND_STEP_S = 0.001
#: Simulated seconds to wait for a session (start → record final) before calling it hung.
SESSION_TIMEOUT_S = 120.0


def make_settings(data_dir: Path, **overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


@dataclass
class ServedCar:
    """One session as the test saw it: its id and the car that plugged in for it."""

    session_id: str
    body: dict[str, Any]
    car: SimulatedEV | None = None
    notes: list[str] = field(default_factory=list)


class SoakRig:
    """A controller + records + HTTP client on a manual clock; ``restart`` replaces the controller (a new
    process, in effect) on the same database and the same clock."""

    def __init__(self, database_path: Path, clock: ManualClock, settings: ControllerSettings) -> None:
        self.database_path = database_path
        self.clock = clock
        self.settings = settings
        self.controller: ChargerController
        self.ops: Operations
        self.client: httpx.AsyncClient
        #: Every car plugged in, in order, with the session it was plugged in for.
        self.cars: list[tuple[str | None, SimulatedEV]] = []
        self.restarts = 0

    @classmethod
    async def open(cls, database_path: Path, **overrides: Any) -> "SoakRig":
        rig = cls(database_path, ManualClock(), make_settings(database_path.parent, **overrides))
        await rig._build()
        return rig

    async def _build(self) -> None:
        self.controller = build_controller(self.settings, self.clock)
        self.ops = await attach_operations(self.controller, self.database_path)
        await self.controller.start()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.controller,
                                                                                     operations=self.ops)),
                                        base_url="http://charger")
        self._watch_cars()

    def _watch_cars(self) -> None:
        """Note each car the simulation plugs in, and for which session (the car's battery counts what it got)."""
        sim = self.controller.hw.simulation
        prepare = sim.prepare_car
        controller = self.controller

        def prepare_and_note(*args: Any, **kwargs: Any) -> SimulatedEV:
            car = prepare(*args, **kwargs)
            self.cars.append((controller.session.session_id if controller.session else None, car))
            return car

        sim.prepare_car = prepare_and_note  # type: ignore[method-assign]

    async def close(self) -> None:
        await self.client.aclose()
        await self.controller.shutdown()
        await self.ops.close()

    async def restart(self) -> None:
        """A new controller (a new process) on the same database."""
        await self.close()
        await self._build()
        self.restarts += 1

    # --- time -----------------------------------------------------------------------------------------
    @property
    def plant(self):  # type: ignore[no-untyped-def]
        return self.controller.hw.simulation.plant

    async def step(self, step_s: float) -> None:
        """Advance simulated time by ``step_s``, then finish the record writes queued meanwhile (the store's
        thread runs on the wall clock) and let what awaited them run: a session's end, which waits for its
        record, then takes no simulated time whatever the disk's speed."""
        await self.clock.advance(step_s)
        await self.ops.store.flush()
        await self.clock.settle()

    async def advance(self, seconds: float, step_s: float = 0.05) -> None:
        end_s = self.clock.now() + seconds
        while self.clock.now() < end_s - 1e-12:
            await self.step(min(step_s, end_s - self.clock.now()))

    async def advance_until(self, condition: Callable[[], bool], timeout_s: float, what: str,
                            step_s: float = 0.01) -> None:
        deadline_s = self.clock.now() + timeout_s
        while not condition():
            if self.clock.now() >= deadline_s:
                raise AssertionError(f"{what}: not within {timeout_s} simulated s; status "
                                     f"{self.controller.status_view()}")
            await self.step(min(step_s, deadline_s - self.clock.now()))

    async def until_stage(self, *stages: str, timeout_s: float = 30.0) -> None:
        await self.advance_until(lambda: self.controller.stage.value in stages, timeout_s,
                                 f"stage {'/'.join(stages)}")

    async def until_charging_at(self, current_A: float, timeout_s: float = 30.0) -> None:
        """Until the output carries at least ``current_A`` (energy transfer under way)."""
        def flowing() -> bool:
            m = self.controller.latest
            return m is not None and m.contactor_closed and m.output_current_A >= current_A
        await self.advance_until(flowing, timeout_s, f"output current ≥ {current_A} A")

    async def until_ended(self, timeout_s: float = SESSION_TIMEOUT_S) -> None:
        """Until no session runs and the output has wound down (the record is final)."""
        controller = self.controller
        await self.advance_until(lambda: not controller.session_active and controller.stage.value == "ended",
                                 timeout_s, "session end and wind-down", step_s=0.05)
        await self.ops.store.flush()

    # --- API -----------------------------------------------------------------------------------------------
    async def request(self, path: str, body: Any = None, timeout_s: float = 5.0) -> httpx.Response:
        """POST ``path``; a command that waits on the charger (a shutdown before the contactor opens) gets the
        simulated time it needs, in 1 ms steps, and none when it only waits for the records' disk writes."""
        pending = asyncio.ensure_future(self.client.post(path, json=body))
        deadline_s = self.clock.now() + timeout_s
        await self.clock.settle()
        while not pending.done():
            await self.ops.store.flush()
            await self.clock.settle()
            if pending.done():
                break
            if self.clock.now() >= deadline_s:
                pending.cancel()
                raise AssertionError(f"POST {path} {body}: no answer within {timeout_s} simulated s")
            await self.clock.advance(COMMAND_STEP_S)
        return pending.result()

    async def post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.request(path, body)
        assert response.status_code == 200, (path, body, response.status_code, response.text)
        return response.json()

    async def start(self, **body: Any) -> ServedCar:
        answer = await self.post("/start_session", body)
        assert answer.get("status") == "started", (body, answer, self.controller.status_view())
        return ServedCar(answer["session_id"], body)

    def car_of(self, served: ServedCar) -> SimulatedEV | None:
        """The car plugged in for ``served`` (None if its session ended before a car plugged in)."""
        for session_id, car in self.cars:
            if session_id == served.session_id:
                return car
        return None

    async def record(self, session_id: str) -> dict[str, Any]:
        await self.ops.store.flush()
        response = await self.client.get(f"/sessions/{session_id}")
        assert response.status_code == 200, (session_id, response.status_code, response.text)
        return response.json()

    async def all_records(self) -> list[dict[str, Any]]:
        await self.ops.store.flush()
        records: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = (await self.client.get("/sessions", params={"limit": 500, "offset": offset})).json()
            records.extend(page["sessions"])
            offset = page["next_offset"]
        return records
