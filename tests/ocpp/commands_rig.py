"""A station (in-process controller on a manual clock, simulated adapter, records) booted against the test CSMS,
for the command tests: the CSMS sends its CALLs while the test moves simulated time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from csms import TestCsms
from link_rig import PROTOCOL_SECOND_S, STATION_ID, make_config

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock


class Station:
    def __init__(self, controller: Any, client: OcppClient, csms: TestCsms, operations: Any) -> None:
        self.controller = controller
        self.client = client
        self.csms = csms
        self.operations = operations

    async def call(self, request: Any) -> Any:
        """A CSMS CALL to the station, answered while simulated time stands still."""
        return await asyncio.wait_for(self.csms.call(STATION_ID, request), 5.0)

    async def advance_until(self, condition: Callable[[], Any], timeout_s: float = 60.0, step_s: float = 0.01) -> float:
        """Move simulated time until ``condition()``; the simulated seconds it took. After each step the
        database writes queued meanwhile (records, OCPP queue: their threads run on the wall clock) are finished
        and what awaited them runs, so a session's record writes take no simulated time whatever the disk's
        speed (a slow fsync once let 20 simulated s pass while a stopped session's record was written)."""
        clock = self.controller.clock
        start_s = clock.now()
        while not condition():
            assert clock.now() - start_s < timeout_s, f"not within {timeout_s} simulated s"
            await clock.advance(step_s)
            await self.operations.store.flush()
            await self.client.commands.parts.queue.database.call(lambda _connection: None)
            await clock.settle()
        return clock.now() - start_s

    def stage(self) -> str:
        return str(self.controller.stage.value)

    def statuses(self) -> list[str]:
        return [frame.payload.get("status") or frame.payload.get("connectorStatus")
                for frame in self.csms.calls_received("StatusNotification")]


@asynccontextmanager
async def booted_station(tmp_path: Path, version: str, **config: Any) -> AsyncIterator[Station]:
    async with TestCsms(version) as csms:
        controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
                                      clock=ManualClock())
        operations = await attach_operations(controller)
        await controller.start()
        client = OcppClient(controller, make_config(csms, version, **config), protocol_second_s=PROTOCOL_SECOND_S)
        await client.start()
        try:
            await asyncio.wait_for(client.link.booted.wait(), 5.0)
            await csms.wait_for(lambda: csms.calls_received("StatusNotification"))
            yield Station(controller, client, csms, operations)
            assert csms.violations == []
        finally:
            await client.stop()
            await controller.shutdown()
            await operations.close()
