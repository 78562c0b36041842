"""A simulated charger on a manual clock, driven through the real HTTP API (no wall-clock sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ccs_sim.controller import ChargerController
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock


class Rig:
    """The controller, its clock and an HTTP client on the app, with helpers to move time."""

    def __init__(self, controller: ChargerController, clock: ManualClock, client: httpx.AsyncClient) -> None:
        self.controller = controller
        self.clock = clock
        self.client = client
        self.samples: list[dict[str, Any]] = []

    @property
    def plant(self):  # type: ignore[no-untyped-def]
        return self.controller.hw.simulation.plant

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body)

    async def command(self, path: str, body: Any = None, timeout_s: float = 1.0,
                      step_s: float = 0.001) -> httpx.Response:
        """POST a command that may wait on simulated time (an open under load shuts the output down
        first): the clock moves in ``step_s`` steps until the answer arrives."""
        import asyncio

        pending = asyncio.ensure_future(self.post(path, body))
        end_s = self.clock.now() + timeout_s
        await self.clock.settle()
        while not pending.done():
            if self.clock.now() >= end_s:
                pending.cancel()
                raise AssertionError(f"POST {path} {body}: no answer within {timeout_s} simulated s")
            await self.clock.advance(step_s)
        return pending.result()

    async def status(self) -> dict[str, Any]:
        return (await self.client.get("/status")).json()

    async def advance(self, seconds: float, step_s: float = 0.01, record: bool = False) -> None:
        """Move simulated time in steps, optionally recording the status after each step."""
        end_s = self.clock.now() + seconds
        while self.clock.now() < end_s - 1e-9:
            await self.clock.advance(min(step_s, end_s - self.clock.now()))
            if record:
                self.samples.append({"t": self.clock.now(), **(await self.status())})

    async def advance_until(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                            step_s: float = 0.01, record: bool = False) -> dict[str, Any]:
        end_s = self.clock.now() + timeout_s
        while True:
            status = await self.status()
            if record:
                self.samples.append({"t": self.clock.now(), **status})
            if predicate(status):
                return status
            if self.clock.now() >= end_s:
                raise AssertionError(f"condition not reached within {timeout_s} s; last status: {status}")
            await self.clock.advance(step_s)

    async def until_phase(self, phase: str, timeout_s: float = 30.0, record: bool = False) -> dict[str, Any]:
        return await self.advance_until(lambda s: s["phase"] == phase, timeout_s, record=record)


def make_settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for value in _rig(make_settings()):
        yield value


async def _rig(settings: ControllerSettings) -> AsyncIterator[Rig]:
    clock = ManualClock()
    controller = build_controller(settings, clock)
    await controller.start()
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
        yield Rig(controller, clock, client)
    await controller.shutdown()


@pytest.fixture
def rig_factory():  # type: ignore[no-untyped-def]
    """Build a rig with custom settings: ``async with rig_factory(handshake_s=1) as rig``."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Rig]:
        generator = _rig(make_settings(**overrides))
        rig_ = await generator.__anext__()
        try:
            yield rig_
        finally:
            await generator.aclose()

    return factory
