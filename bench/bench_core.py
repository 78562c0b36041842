"""Core benchmarks (issue 2): simulation speed, fault reaction, /status latency under load.

    .venv/bin/python bench/bench_core.py [--quick]

Prints a Markdown section for BENCHMARKS.md. Each figure comes with the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ccs_sim.batch import simulate_session
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import RealClock
from evse_model.faults import E_STOP
from evse_model.session import SessionParams

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- (a) simulation speed -------------------------------------------------------------------------------
async def simulated_charge(control_period_s: float) -> tuple[float, float, float]:
    """10→80 % of the 800 V car on a manual clock; returns (simulated s, wall s, energy Wh)."""
    result = await simulate_session(
        SessionParams(ev_preset="ev800", start_soc_percent=10, target_soc_percent=80, initial_current_A=400,
                      duration_s=3600),
        ControllerSettings(_env_file=None, control_period_s=control_period_s))
    return result.simulated_s, result.wall_s, result.summary.energy_Wh


# --- (b) fault reaction at speed 1 -----------------------------------------------------------------------
async def fault_reaction(samples: int, via_http: bool) -> list[float]:
    """Wall ms from the /fault request (or the direct call) to current < 5 A and contactor open."""
    import uvicorn

    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    await controller.start()
    plant = controller.hw.simulation.plant
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(controller), host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    results = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(samples):
            controller.start_session(SessionParams(target_voltage_V=400, initial_current_A=200, duration_s=600))
            while controller.stage.value != "charging":
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)
            done = asyncio.Event()
            started = time.perf_counter()

            async def watch(done: asyncio.Event = done) -> None:
                while True:
                    plant.advance_to(controller.clock.now())
                    if plant.cable_current_A < 5.0 and not plant.evse_contactor_closed:
                        done.set()
                        return
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch())
            if via_http:
                await client.post("/fault", json={"type": "E_STOP"})
            else:
                await controller.raise_fault(E_STOP)
            await asyncio.wait_for(done.wait(), 1.0)
            results.append((time.perf_counter() - started) * 1000.0)
            await watcher
            while controller.stage.value != "ended":
                await asyncio.sleep(0.01)
    server.should_exit = True
    await serve_task
    await controller.shutdown()
    return results


# --- (c) /status under load --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def status_latency(rate_per_s: float, duration_s: float, with_session: bool) -> dict[str, float]:
    port = free_port()
    env = dict(os.environ, CCS_SIM_PORT=str(port), CCS_SIM_DATA_DIR=str(ROOT / "data" / "bench"))
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "ccs-sim"), "serve", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            for _ in range(200):
                try:
                    await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            if with_session:
                await client.post("/start_session", json={"target_voltage": 400, "initial_current": 100,
                                                          "duration_s": duration_s + 30})
                while (await client.get("/status")).json()["stage"] != "charging":
                    await asyncio.sleep(0.1)
            health_before = (await client.get("/health")).json()
            latencies: list[float] = []
            interval = 1.0 / rate_per_s
            started = time.perf_counter()

            async def one() -> None:
                t0 = time.perf_counter()
                response = await client.get("/status")
                response.raise_for_status()
                latencies.append((time.perf_counter() - t0) * 1000.0)

            tasks = []
            for index in range(int(rate_per_s * duration_s)):
                delay = started + index * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
            achieved = len(latencies) / (time.perf_counter() - started)
            health_after = (await client.get("/health")).json()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return {"p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies), "achieved_rps": achieved,
            "late_ticks": health_after["late_ticks"] - health_before["late_ticks"],
            "max_tick_lateness_ms": health_after["max_tick_lateness_s"] * 1000.0}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    samples = 10 if args.quick else 40
    load_s = 3.0 if args.quick else 10.0

    print(f"## Core (issue 2) — {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")
    print("### (a) Simulation speed: 10→80 % charge of the 800 V car (manual clock, as fast as it computes)\n")
    print("| control period | simulated s | wall s | simulated s per wall s | energy kWh |")
    print("|---|---|---|---|---|")
    for period in (0.01, 0.05):
        simulated_s, wall_s, energy = await simulated_charge(period)
        print(f"| {period * 1000:.0f} ms | {simulated_s:.0f} | {wall_s:.2f} | **{simulated_s / wall_s:.0f}×** "
              f"(target ≥ 500×; real time = 1×) | {energy / 1000:.1f} |")

    print("\n### (b) Fault reaction at speed 1 (wall clock): request → current < 5 A and contactor open\n")
    print("| path | samples | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    direct = await fault_reaction(samples, via_http=False)
    http = await fault_reaction(samples, via_http=True)
    for name, values in (("controller.raise_fault (baseline, no HTTP)", direct), ("POST /fault over HTTP", http)):
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 0.99):.1f} | "
              f"{max(values):.1f} |")
    print(f"\nTarget p99 ≤ 30 ms. HTTP adds {statistics.median(http) - statistics.median(direct):.1f} ms at the median "
          f"(ratio {statistics.median(http) / statistics.median(direct):.2f}).")

    print("\n### (c) GET /status latency (server in its own process, speed 1)\n")
    print("| load | achieved req/s | p50 ms | p99 ms | max ms | late control ticks | max tick lateness ms |")
    print("|---|---|---|---|---|---|---|")
    idle = await status_latency(10.0, load_s, with_session=False)
    loaded = await status_latency(200.0, load_s, with_session=True)
    for name, row in (("10 req/s, idle (baseline)", idle), ("200 req/s, session charging", loaded)):
        print(f"| {name} | {row['achieved_rps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
              f"{row['max_ms']:.2f} | {row['late_ticks']} | {row['max_tick_lateness_ms']:.1f} |")
    print(f"\np99 ratio loaded/idle: {loaded['p99_ms'] / idle['p99_ms']:.2f}. A tick is 'late' when it starts more "
          "than one control period (10 ms) after its schedule.")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
