"""Car after car (issue 10): 500 simulated sessions in one process; resident memory and open files as they go.

    .venv/bin/python bench/bench_soak.py [--sessions 500] [--every 50] [--seed 10]

One charger (sim adapter, 300 A), its session records in a temporary SQLite database and its HTTP API (in-process
ASGI client), on a manual clock driven as fast as it computes. Cars and endings vary (seeded): the ev400, ev800,
ev_small presets and the spec's default car; complete, /stop_session, /fault in the cable check, the precharge or
at full current, fault → start → fault within a few ms, /control/contactor open at full current. Every ``--every``
sessions it samples VmRSS and the open file descriptors (/proc/self), the live asyncio tasks and the Python objects
tracked by the garbage collector. Baseline: the sample after the first ``--every`` sessions of the same run (the
first sessions fill caches and import lazily loaded modules). Prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock

FAULTS = ("E_STOP", "OVERCURRENT", "ISOLATION_FAULT", "CP_LOSS", "SUPPLY_FAULT", "OVER_TEMPERATURE")
ENDINGS = ("complete", "complete", "stop", "fault_cable_check", "fault_precharge", "fault_charging",
           "fault_start_fault", "contactor_open")
SESSION_LIMIT_S = 120.0


def rss_kB() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def car_body(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("ev400", "ev800", "ev_small", "default"))
    duration_s = rng.choice((2.0, 3.0, 4.0))
    if kind == "default":
        return {"target_voltage": rng.choice((300.0, 400.0, 450.0)), "initial_current": rng.choice((50.0, 100.0)),
                "duration_s": duration_s}
    return {"ev_preset": kind, "initial_current": 125.0 if kind == "ev_small" else 300.0, "duration_s": duration_s}


class Bench:
    def __init__(self, database_path: Path) -> None:
        self.clock = ManualClock()
        settings = ControllerSettings(_env_file=None, data_dir=database_path.parent,  # type: ignore[call-arg]
                                      evse_max_current_A=300.0)
        self.controller = build_controller(settings, self.clock)
        self.database_path = database_path
        self.outcomes: Counter[str] = Counter()
        self.hung = 0

    async def open(self) -> None:
        self.ops = await attach_operations(self.controller, self.database_path)
        await self.controller.start()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_app(self.controller, operations=self.ops)), base_url="http://charger")

    async def close(self) -> None:
        await self.client.aclose()
        await self.controller.shutdown()
        await self.ops.close()

    async def post(self, path: str, body: Any = None) -> dict[str, Any]:
        """A command; one that waits on the charger gets simulated time in 1 ms steps."""
        pending = asyncio.ensure_future(self.client.post(path, json=body))
        await self.clock.settle()
        while not pending.done():
            await self.ops.store.flush()
            await self.clock.settle()
            if not pending.done():
                await self.clock.advance(0.001)
        return pending.result().json()

    async def until(self, condition, timeout_s: float, step_s: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
        return await self.clock.advance_until(condition, timeout_s, step_s)

    def charging_at(self, current_A: float) -> bool:
        m = self.controller.latest
        return m is not None and m.contactor_closed and m.output_current_A >= current_A

    async def session(self, rng: random.Random) -> int:
        """One car with a random ending (two for fault → start → fault); returns how many sessions started."""
        controller = self.controller
        body = car_body(rng)
        ending = rng.choice(ENDINGS)
        answer = await self.post("/start_session", body)
        if answer.get("status") != "started":
            self.outcomes["refused"] += 1
            return 0
        started = 1
        if ending == "stop" or ending == "fault_charging" or ending == "contactor_open" \
                or ending == "fault_start_fault":
            if await self.until(lambda: self.charging_at(0.5 * body["initial_current"]), 30.0, 0.01):
                if ending == "stop":
                    await self.post("/stop_session")
                elif ending == "fault_charging":
                    await self.post("/fault", {"type": rng.choice(FAULTS)})
                elif ending == "contactor_open":
                    await self.post("/control/contactor", {"closed": False})
                    await self.until(lambda: False, 0.5)
                    if controller.session_active:
                        await self.post("/stop_session")
                else:
                    await self.post("/fault", {"type": rng.choice(FAULTS)})
                    if (await self.post("/start_session", car_body(rng))).get("status") == "started":
                        started += 1
                    await self.clock.advance(rng.choice((0.0, 0.005, 0.02)))
                    await self.post("/fault", {"type": rng.choice(FAULTS)})
        elif ending in ("fault_cable_check", "fault_precharge"):
            stage = ending.removeprefix("fault_")
            if await self.until(lambda: controller.stage.value == stage, 30.0, 0.01):
                await self.post("/fault", {"type": rng.choice(FAULTS)})
        ended = await self.until(lambda: not controller.session_active and controller.stage.value == "ended",
                                 SESSION_LIMIT_S)
        if not ended:
            self.hung += 1
            if controller.session_active:
                await self.post("/stop_session")
            await self.until(lambda: not controller.session_active and controller.stage.value == "ended",
                             SESSION_LIMIT_S)
        summary = controller.last_session_summary
        self.outcomes[(summary.error or summary.ended_phase) if summary else "none"] += 1
        return started

    async def record_counts(self) -> dict[str, int]:
        await self.ops.store.flush()
        return await self.ops.store.call("count_by_status")


def sample(sessions: int, simulated_s: float, wall_s: float) -> dict[str, Any]:
    gc.collect()
    return {"sessions": sessions, "rss_kB": rss_kB(), "fds": open_fds(), "tasks": len(asyncio.all_tasks()),
            "gc_objects": len(gc.get_objects()), "simulated_s": simulated_s, "wall_s": wall_s}


async def run(sessions: int, every: int, seed: int) -> tuple[list[dict[str, Any]], Bench, dict[str, int]]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as directory:
        bench = Bench(Path(directory) / "sessions.db")
        await bench.open()
        samples: list[dict[str, Any]] = []
        started_wall_s = time.perf_counter()
        done = 0
        next_sample = every
        while done < sessions:
            done += await bench.session(rng)
            if done >= next_sample:
                samples.append(sample(done, bench.clock.now(), time.perf_counter() - started_wall_s))
                next_sample += every
        counts = await bench.record_counts()
        await bench.close()
    return samples, bench, counts


def report(samples: list[dict[str, Any]], bench: Bench, counts: dict[str, int], args: argparse.Namespace) -> str:
    base, end = samples[0], samples[-1]
    lines = [
        f"Command: `.venv/bin/python bench/bench_soak.py --sessions {args.sessions} --every {args.every} "
        f"--seed {args.seed}`; {platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| sessions | RSS MiB | open fds | asyncio tasks | gc objects | simulated s | wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in samples:
        lines.append(f"| {s['sessions']} | {s['rss_kB'] / 1024:.1f} | {s['fds']} | {s['tasks']} | {s['gc_objects']} "
                     f"| {s['simulated_s']:.0f} | {s['wall_s']:.1f} |")
    lines += [
        "",
        f"Ratio end/baseline (baseline = after the first {samples[0]['sessions']} sessions): RSS "
        f"**{end['rss_kB'] / base['rss_kB']:.3f}** ({(end['rss_kB'] - base['rss_kB']) / 1024:+.1f} MiB), open fds "
        f"**{end['fds'] / base['fds']:.3f}** ({end['fds'] - base['fds']:+d}), gc objects "
        f"{end['gc_objects'] / base['gc_objects']:.3f}.",
        f"Records: {dict(counts)}; sessions that did not end within {SESSION_LIMIT_S:.0f} simulated s: {bench.hung}.",
        "Endings: " + ", ".join(f"{name} {count}" for name, count in sorted(bench.outcomes.items())) + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the faults this bench injects are logged as warnings, thousands of them
    samples, bench, counts = asyncio.run(run(args.sessions, args.every, args.seed))
    print(report(samples, bench, counts, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
