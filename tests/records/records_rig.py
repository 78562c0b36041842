"""Helpers: a simulated charger on a manual clock with its session records in a temporary database."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import httpx
from evse_model.clock import ManualClock
from ccs_sim.controller import ChargerController
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import Operations, attach_operations, build_controller
from ccs_sim.settings import ControllerSettings


def make_settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


class RecordsRig:
    """Controller + records + HTTP client. ``advance`` waits for the record writes after every step, so the
    session's timing does not depend on how fast the disk is."""

    def __init__(self, controller: ChargerController, clock: ManualClock, client: httpx.AsyncClient,
                 ops: Operations) -> None:
        self.controller = controller
        self.clock = clock
        self.client = client
        self.ops = ops

    async def step(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.ops.store.flush()
        await self.clock.settle()

    async def advance(self, seconds: float, step_s: float = 0.01) -> None:
        end_s = self.clock.now() + seconds
        while self.clock.now() < end_s - 1e-9:
            await self.step(min(step_s, end_s - self.clock.now()))

    async def status(self) -> dict[str, Any]:
        return (await self.client.get("/status")).json()

    async def advance_until(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                            step_s: float = 0.01) -> dict[str, Any]:
        end_s = self.clock.now() + timeout_s
        while True:
            status = await self.status()
            if predicate(status):
                return status
            if self.clock.now() >= end_s:
                raise AssertionError(f"condition not reached within {timeout_s} s; last status: {status}")
            await self.step(step_s)

    async def run_session(self, **body: Any) -> str:
        """Start a session and run it to its end (record final); its id."""
        response = (await self.client.post("/start_session", json=body)).json()
        assert response["status"] == "started", response
        await self.advance_until(lambda s: not s["session_active"] and s["stage"] == "ended", 120.0, step_s=0.05)
        await self.ops.store.flush()
        return response["session_id"]

    async def record(self, session_id: str) -> dict[str, Any]:
        await self.ops.store.flush()
        return (await self.client.get(f"/sessions/{session_id}")).json()


async def open_rig(database_path: Path, **overrides: Any) -> tuple[RecordsRig, Callable[[], Any]]:
    clock = ManualClock()
    controller = build_controller(make_settings(data_dir=database_path.parent, **overrides), clock)
    ops = await attach_operations(controller, database_path)
    await controller.start()
    app = create_app(controller, operations=ops)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger")
    rig = RecordsRig(controller, clock, client, ops)

    async def close() -> None:
        await client.aclose()
        await controller.shutdown()
        await ops.close()

    return rig, close
