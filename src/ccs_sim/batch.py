"""Run simulated sessions as fast as they compute (manual clock), for benchmarks, tests and ``ccs-sim simulate``.

``simulate_session`` runs one on a fresh controller in this process; ``simulate_sessions`` runs many, in parallel
on the cores available: each session in a worker process, on its own controller and manual clock (so a session's
result does not depend on the others, nor on the number of workers), results in the order given.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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


@dataclass(frozen=True)
class SessionRun:
    """What a batch returns of one session (picklable: no controller)."""

    index: int
    summary: SessionSummary
    simulated_s: float
    wall_s: float

    @property
    def speedup(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else float("inf")


class BatchSessionError(RuntimeError):
    """A session of a batch failed: which one (its index and parameters) and why (the worker's traceback)."""

    def __init__(self, index: int, count: int, params: SessionParams, detail: str) -> None:
        super().__init__(f"session {index} of {count} failed ({params}):\n{detail}")
        self.index, self.count, self.params, self.detail = index, count, params, detail

    def __reduce__(self) -> tuple[type[BatchSessionError], tuple[int, int, SessionParams, str]]:
        return BatchSessionError, (self.index, self.count, self.params, self.detail)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_one(index: int, params: SessionParams, settings: ControllerSettings | None,
             max_simulated_s: float) -> SessionRun | str:
    """One session on a fresh controller (in a worker process); a failure comes back as its traceback."""
    try:
        result = asyncio.run(simulate_session(params, settings, max_simulated_s))
    except Exception:  # noqa: BLE001 - every failure goes back to the caller, with its traceback
        return traceback.format_exc()
    return SessionRun(index=index, summary=result.summary, simulated_s=result.simulated_s, wall_s=result.wall_s)


def _worker_context() -> multiprocessing.context.BaseContext:
    """``fork`` where the platform has it and this process runs one thread (a fork copies only the calling thread:
    with others running it could copy a lock they hold), else ``spawn``."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def simulate_sessions(sessions: Sequence[SessionParams], settings: ControllerSettings | None = None,
                      workers: int | None = None, max_simulated_s: float = 6 * 3600.0) -> list[SessionRun]:
    """Run every session of ``sessions`` (each on its own controller and manual clock) and return their results
    in the same order.

    ``workers``: processes to use (default: the cores available; never more than the sessions); 1 runs them one
    after the other in this process. Workers are forked while this process has no other thread (fast, nothing to
    re-import), else spawned (a script calling this then needs the ``if __name__ == "__main__":`` guard). The
    first session found failing raises ``BatchSessionError`` (its index, parameters and traceback); the sessions
    not yet started are cancelled.
    """
    count = len(sessions)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = min(available_cores() if workers is None else workers, count)
    runs: list[SessionRun] = []
    if workers <= 1:
        for index, params in enumerate(sessions):
            outcome = _run_one(index, params, settings, max_simulated_s)
            if isinstance(outcome, str):
                raise BatchSessionError(index, count, params, outcome)
            runs.append(outcome)
        return runs
    by_index: dict[int, SessionRun] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        futures = {pool.submit(_run_one, index, params, settings, max_simulated_s): index
                   for index, params in enumerate(sessions)}
        pending: set[Future[SessionRun | str]] = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                index = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool as error:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise BatchSessionError(index, count, sessions[index],
                                            f"its worker process died ({error})") from error
                if isinstance(outcome, str):
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise BatchSessionError(index, count, sessions[index], outcome)
                by_index[index] = outcome
    return [by_index[index] for index in range(count)]
