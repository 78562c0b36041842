"""Run one simulated session as fast as it computes (manual clock), for benchmarks, tests and ``ccs-sim simulate``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ccs_sim.controller import ChargerController
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.session import SessionParams, SessionSummary


@dataclass
class BatchResult:
    summary: SessionSummary
    controller: ChargerController
    simulated_s: float
    wall_s: float

    @property
    def speedup(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else float("inf")


async def simulate_session(params: SessionParams, settings: ControllerSettings | None = None,
                           max_simulated_s: float = 6 * 3600.0) -> BatchResult:
    """Start ``params`` on a fresh simulated charger and return once its output has wound down."""
    clock = ManualClock()
    controller = build_controller(settings or ControllerSettings(_env_file=None), clock)
    await clock.run_until_complete(controller.start())
    started_wall_s = time.perf_counter()
    controller.start_session(params)

    async def until_wound_down() -> None:
        while controller.session_active or controller.stage.value != "ended":
            await clock.sleep(1.0)

    await clock.run_until_complete(until_wound_down(), max_sim_s=max_simulated_s)
    wall_s = time.perf_counter() - started_wall_s
    summary = controller.last_session_summary
    assert summary is not None
    result = BatchResult(summary=summary, controller=controller, simulated_s=clock.now(), wall_s=wall_s)
    await clock.run_until_complete(controller.shutdown())
    return result
