"""Benchmark (issue 13): can load reach the supervisor? Control-tick lateness and fault → output < 5 A under load.

    .venv/bin/python bench/bench_supervision.py [--quick] [--samples N]

The server (controller + uvicorn, real clock, speed 1, simulated adapter) runs in this process, so the bench
reads ``controller.tick_lateness_s_recent`` (how late each scheduled control tick started) and the simulated
plant directly; the load runs in other processes (bench/supervision_load.py). Each scenario gets a fresh
server; every scenario is measured in the same run as the idle baseline:

(a) idle; (b) API saturation: 2 processes × 10 keep-alive clients asking ``GET /status`` as fast as they are
answered (with the HTTP rate limiter on and off, when the settings have one); (c) 50 SSE subscribers on
``GET /stream``; (d) all of them at once. Every fault sample runs during a simulated DC session (the simulated
session driver, 200 A) charging at ≥ 50 A: a fault is injected from a thread of its own (bench/supervision_probe.py)
by one of four paths in turn — the supervisor finds it (e-stop pressed; insulation fails), ``POST /fault``, or
``controller.raise_fault`` — and the time to output current < 5 A is read from the plant's own integration
(deadline 30 ms, IEC 61851-23 CC.5.4, shared/reference/standards.md). Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import RealClock
from evse_model.session import SessionParams
from supervision_probe import (
    DEADLINE_S,
    FAULT_PATHS,
    CurrentCrossingProbe,
    FaultInjector,
    TickLatenessCollector,
    percentile,
)
from supervision_report import LoadProcesses, load_summary, print_tables, rate_limiter_off_settings

STATUS_PROCESSES = 2
STATUS_CLIENTS_PER_PROCESS = 10
SSE_SUBSCRIBERS = 50
CHARGING_CURRENT_A = 50.0  # a sample's fault is injected once at least this much flows
SESSION_READY_TIMEOUT_S = 30.0
#: Shorter simulated handshake, cable check and ramp than the defaults, so a sample's session charges in about a
#: second instead of 5.6 s (the supervision and the fault shutdown are the defaults').
FAST_SESSION_SETTINGS: dict[str, Any] = {"handshake_s": 0.5, "pwm_start_delay_s": 0.1, "cable_check_s": 0.2,
                                         "current_ramp_up_A_per_s": 2000.0}
CROSSING_TIMEOUT_S = 2.0


@dataclass
class Scenario:
    name: str
    status_clients: int = 0
    sse_subscribers: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    front_process: bool = False  # the API served by a front process of its own (ccs-sim serve --front-process)


@dataclass
class ScenarioResult:
    scenario: Scenario
    lateness_s: list[float]
    reaction_s: dict[str, list[float]]
    load: dict[str, float]
    missed: int  # samples whose current never fell below 5 A within CROSSING_TIMEOUT_S


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simulated_plant(controller: Any) -> Any:
    hw: Any = controller.hw  # the sim adapter (SimHardware): its plant is what the bench watches
    return hw.simulation.plant


async def charging_session(controller: Any, attempts: int = 3) -> None:
    """Start a simulated DC session and return once it charges at ≥ CHARGING_CURRENT_A with the IMD settled
    (a session that ends before, e.g. the EV not ready after the previous emergency, is started again)."""
    plant = simulated_plant(controller)
    for _ in range(attempts):
        controller.start_session(SessionParams(target_voltage_V=400, initial_current_A=200, duration_s=600))
        deadline = time.monotonic() + SESSION_READY_TIMEOUT_S
        while time.monotonic() < deadline and controller.session_active:
            if (controller.stage.value == "charging" and plant.cable_current_A >= CHARGING_CURRENT_A
                    and plant.imd_reading_ohm() is not None):
                return
            await asyncio.sleep(0.02)
        await wait_ended(controller)
    raise RuntimeError(f"no charging session in {attempts} attempts (stage {controller.stage.value}; last session "
                       f"{controller.last_session_summary})")


async def wait_ended(controller: Any) -> None:
    deadline = time.monotonic() + SESSION_READY_TIMEOUT_S
    while controller.session_active or controller.stage.value not in ("ended", "idle"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"session did not end after {SESSION_READY_TIMEOUT_S} s ({controller.stage.value})")
        await asyncio.sleep(0.02)


async def run_scenario(scenario: Scenario, samples_per_path: int) -> ScenarioResult:
    settings = ControllerSettings(_env_file=None, **FAST_SESSION_SETTINGS, **scenario.settings)
    controller = build_controller(settings, RealClock())
    await controller.start()
    plant = simulated_plant(controller)
    probe = CurrentCrossingProbe(plant)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    front: Any = None
    if scenario.front_process:
        from ccs_sim.front.process import FrontProcess, private_socket_dir
        from ccs_sim.http.trusted_front import FrontCheckedApp

        private_dir = private_socket_dir()
        socket_path = os.path.join(private_dir, "controller.sock")
        server = uvicorn.Server(uvicorn.Config(FrontCheckedApp(create_app(controller)), uds=socket_path,
                                               log_level="error", lifespan="off"))
    else:
        server = uvicorn.Server(uvicorn.Config(create_app(controller), host="127.0.0.1", port=port,
                                               log_level="error", lifespan="off"))
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    if scenario.front_process:
        from ccs_sim.front.process import raise_event_loop_priority

        raise_event_loop_priority()  # as serve_behind_front does (lowered again at the scenario's end)
        front = FrontProcess(settings.model_copy(update={"port": port}), socket_path, private_dir)
        await front.start()
    injector = FaultInjector(controller, asyncio.get_running_loop(), url, probe)
    collector = TickLatenessCollector(controller)
    reaction_s: dict[str, list[float]] = {path: [] for path in FAULT_PATHS}
    missed = 0
    loads = LoadProcesses(url, status_processes=STATUS_PROCESSES if scenario.status_clients else 0,
                          clients_per_process=scenario.status_clients // STATUS_PROCESSES,
                          sse_subscribers=scenario.sse_subscribers)
    try:
        await asyncio.to_thread(loads.start)
        await asyncio.sleep(0.5)
        collector.start()
        for index in range(samples_per_path * len(FAULT_PATHS)):
            path = FAULT_PATHS[index % len(FAULT_PATHS)]
            await charging_session(controller)
            await asyncio.sleep(random.uniform(0.0, 0.05))  # not in step with the ticks
            injected_at_s = await asyncio.to_thread(injector.inject, path)
            if await asyncio.to_thread(probe.crossed.wait, CROSSING_TIMEOUT_S):
                assert probe.crossed_at_s is not None
                reaction_s[path].append(probe.crossed_at_s - injected_at_s)
            else:
                missed += 1
            probe.disarm()
            injector.restore()
            await wait_ended(controller)
            sequence = controller.tick_sequence
            while controller.tick_sequence < sequence + 2:  # a tick has read the released button
                await asyncio.sleep(0.005)
            collector.collect()
        collector.collect()
    finally:
        load = await asyncio.to_thread(loads.stop)
        injector.close()
        if front is not None:
            await front.stop()
            shutil.rmtree(front.settings_file.parent, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 0)
        server.should_exit = True
        await serve_task
        await controller.shutdown()
    return ScenarioResult(scenario, collector.values_s, reaction_s, load, missed)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def source_description() -> str:
    """Which ccs_sim this run imported: the commit, and whether its tree has uncommitted changes under src/."""
    import ccs_sim

    src = Path(ccs_sim.__file__).resolve().parents[1]
    log = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    if log.returncode != 0:
        return f"{src} (not a git work tree)"
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                           text=True).stdout.strip()
    return f"{log.stdout.strip()[:80]}" + (" + uncommitted changes under src/" if dirty else "")


def front_process_available() -> bool:
    import ccs_sim

    return (Path(ccs_sim.__file__).resolve().parent / "front" / "process.py").exists()


def control_loop_threaded() -> bool:
    import ccs_sim

    return (Path(ccs_sim.__file__).resolve().parent / "core" / "control_thread.py").exists()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 sample per fault path (under a minute)")
    parser.add_argument("--samples", type=int, help="samples per fault path and scenario (default 5; quick 1)")
    parser.add_argument("--source-label", help="what the code under test is (default: git log of its tree)")
    args = parser.parse_args()
    samples = args.samples or (1 if args.quick else 5)
    logging.getLogger("ccs_sim").setLevel(logging.ERROR)  # not a line per injected fault
    limiter_off = rate_limiter_off_settings()
    scenarios = [Scenario("(a) idle (baseline)")]
    clients = STATUS_PROCESSES * STATUS_CLIENTS_PER_PROCESS
    if limiter_off is None:
        scenarios.append(Scenario(f"(b) API saturation: {clients} clients on GET /status (no rate limiter on main)",
                                  status_clients=clients))
    else:
        scenarios.append(Scenario(f"(b) API saturation: {clients} clients on GET /status, rate limiter on",
                                  status_clients=clients))
        scenarios.append(Scenario(f"(b') API saturation: {clients} clients on GET /status, rate limiter off",
                                  status_clients=clients, settings=limiter_off))
    # One process's 50 streams come from one client address: beyond the limiter's per-client stream cap (16).
    scenarios.append(Scenario(f"(c) {SSE_SUBSCRIBERS} SSE subscribers on GET /stream"
                              + (", rate limiter off" if limiter_off else ""),
                              sse_subscribers=SSE_SUBSCRIBERS, settings=limiter_off or {}))
    scenarios.append(Scenario(f"(d) all at once: {clients} /status clients + {SSE_SUBSCRIBERS} SSE subscribers"
                              + (", rate limiter off" if limiter_off else ""), status_clients=clients,
                              sse_subscribers=SSE_SUBSCRIBERS, settings=limiter_off or {}))
    if front_process_available():
        scenarios.append(Scenario(f"(e) all at once, the API in a front process (ccs-sim serve's default): {clients} /status "
                                  f"clients + {SSE_SUBSCRIBERS} SSE subscribers"
                                  + (", rate limiter off" if limiter_off else ""), status_clients=clients,
                                  sse_subscribers=SSE_SUBSCRIBERS, settings=limiter_off or {}, front_process=True))
    load_before = uptime()
    wall_started = time.perf_counter()
    results = [await run_scenario(scenario, samples) for scenario in scenarios]
    print(f"## Supervision under load (issue 13) — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}\n")
    print(f"Code under test: `{args.source_label or source_description()}`; control loop on its own thread: "
          f"{'yes' if control_loop_threaded() else 'no (shares the asyncio loop)'}. "
          f"{samples} samples per fault path and scenario; {time.perf_counter() - wall_started:.0f} s wall.\n")
    print(f"Load average before: `{load_before}`; after: `{uptime()}`\n")
    print_tables(results, DEADLINE_S)
    for result in results:
        summary = load_summary(result.load)
        if summary:
            print(f"- {result.scenario.name}: {summary}")
    all_reactions = [value for result in results for values in result.reaction_s.values() for value in values]
    if all_reactions:
        print(f"\nEvery sample of the run: fault → < 5 A median {statistics.median(all_reactions) * 1e3:.1f} ms, "
              f"p99 {percentile(all_reactions, 0.99) * 1e3:.1f} ms, max {max(all_reactions) * 1e3:.1f} ms.")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
