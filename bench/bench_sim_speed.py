"""Simulation speed (issue 13 item 2): simulated seconds per wall second on a manual clock, beside a baseline.

    .venv/bin/python bench/bench_sim_speed.py [--quick] [--baseline-rev REV ...]

Every figure is measured in a fresh process, for this tree and for the baseline revision's ``src/`` (extracted
with ``git archive``; default 73935b4, main before the steady ticks), in the same run: (a) the 10→80 % charge
of the 800 V car at 10 ms and 50 ms control periods, best wall time of ``--repeat`` runs (and this tree with every
tick a full step, and with the per-device sensor pass), (b) 10/60/600 simulated minutes of one long session (the
800 V car at 10 A; 600 minutes for this tree only),
(c) a batch of short sessions serial vs parallel, (d) the per-tick cost of the plant, sensors and supervisor
part by part. Prints a Markdown section for BENCHMARKS.md.

``--instructions``: only the machine instructions per control tick of steady charging for each tree (valgrind's
callgrind counts them, whatever else the machine runs: 80 s less 60 s of the 800 V car charging, per tick).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHARGE: dict[str, Any] = {"ev_preset": "ev800", "start_soc_percent": 10, "target_soc_percent": 80, "initial_current_A": 400,
          "duration_s": 3600}


def long_session(minutes: float) -> dict[str, Any]:
    """The 800 V car at 10 A from 5 %: about 7 kW, so it charges for ``minutes`` (the session's duration)."""
    return {"ev_preset": "ev800", "start_soc_percent": 5, "target_soc_percent": 95, "initial_current_A": 10,
            "duration_s": minutes * 60.0}


# --- measurements, each in a child process ---------------------------------------------------------------
def child_session(params: dict[str, Any], period_s: float, per_device_pass: bool,
                  full_steps: bool = False) -> dict[str, Any]:
    from ccs_sim.batch import simulate_session
    from ccs_sim.settings import ControllerSettings
    from evse_hal.adapters.sim import SimHardware
    from evse_model.session import SessionParams

    if per_device_pass:
        SimHardware.one_snapshot_sensor_pass = False
    if full_steps:
        from ccs_sim.core.control_loop import ControlLoop

        ControlLoop.steady_ticks = False  # every tick a full step()
    cpu_started_s = time.process_time()
    result = asyncio.run(simulate_session(SessionParams(**params),
                                          ControllerSettings(_env_file=None, control_period_s=period_s),
                                          max_simulated_s=48 * 3600.0))
    cpu_s = time.process_time() - cpu_started_s
    return {"simulated_s": result.simulated_s, "wall_s": result.wall_s, "cpu_s": cpu_s,
            "ticks": result.simulated_s / period_s, "energy_Wh": result.summary.energy_Wh,
            "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def child_parts() -> dict[str, float]:
    """CPU µs per call of each part of a tick, on the 800 V car charging at about 350 A (best of 5)."""
    from ccs_sim.core.safety import Measurements
    from ccs_sim.runtime import build_controller
    from ccs_sim.settings import ControllerSettings
    from evse_hal.interfaces import EVSEHardware
    from evse_hal.pilot import read_pilot
    from evse_model.clock import ManualClock
    from evse_model.session import SessionParams

    def per_call_us(fn: Any, calls: int = 20000) -> float:
        best_s = float("inf")
        for _ in range(5):
            started_s = time.process_time()
            for _ in range(calls):
                fn()
            best_s = min(best_s, time.process_time() - started_s)
        return best_s / calls * 1e6

    async def measure() -> dict[str, float]:
        clock = ManualClock()
        controller = build_controller(ControllerSettings(_env_file=None, control_period_s=0.01), clock)
        await clock.run_until_complete(controller.start())
        controller.start_session(SessionParams(**CHARGE))
        await clock.run_until_complete(clock.sleep(120.0))
        hw, m = controller.hw, controller.latest
        assert m is not None and m.output_current_A > 100.0
        plant = hw.simulation.plant  # type: ignore[attr-defined]  # the sim adapter's
        fields = {name: getattr(m, name) for name in m.__dataclass_fields__}
        meter = hw.meter
        parts = {
            "plant step (10 ms)": lambda: plant.advance_to(plant.time_s + 0.01),
            "read_sensors(), the plant at the present": hw.read_sensors,
            "per-device sensor pass (the interface's default)": lambda: EVSEHardware.read_sensors(hw),
            "read_pilot": lambda: read_pilot(m.cp_positive_V, m.cp_negative_V, m.duty_percent),
            "Measurements built": lambda: Measurements(**fields),
            "find_fault": lambda: controller.supervisor.find_fault(m, controller.context),
            "FeedbackWatch.judge": lambda: controller.feedback.judge(m),
            "highest_in_force_A": lambda: controller.supply_limits.highest_in_force_A(m.time_s),
            "meter: update + 4 counters": lambda: (meter.update(1.0, 1.0), meter.get_energy_Wh(),
                                                   meter.get_avg_voltage(), meter.get_avg_current(),
                                                   meter.get_session_time_s()),
        }
        return {name: per_call_us(fn) for name, fn in parts.items()}

    return asyncio.run(measure())


def child_steady(seconds: float) -> dict[str, Any]:
    """The 800 V car charging from 10 % for 60 simulated s, then ``seconds`` more (for the instruction count)."""
    from ccs_sim.runtime import build_controller
    from ccs_sim.settings import ControllerSettings
    from evse_model.clock import ManualClock
    from evse_model.session import SessionParams

    async def charge() -> float:
        clock = ManualClock()
        controller = build_controller(ControllerSettings(_env_file=None, control_period_s=0.01), clock)
        await clock.run_until_complete(controller.start())
        controller.start_session(SessionParams(**CHARGE))
        await clock.run_until_complete(clock.sleep(60.0))
        if seconds:
            await clock.run_until_complete(clock.sleep(seconds))
        return controller.meter_reading.energy_Wh

    return {"energy_Wh": asyncio.run(charge())}


def instructions_per_tick(src: Path | None, seconds: float = 20.0) -> float:
    """Machine instructions per control tick of steady charging (callgrind's count, which does not depend on the
    machine's load): the run with ``seconds`` more charging less the run without, per tick."""
    counts = []
    for length_s in (0.0, seconds):
        env = dict(os.environ, PYTHONHASHSEED="0")
        if src is not None:
            env["PYTHONPATH"] = str(src)
        job = json.dumps({"kind": "steady", "seconds": length_s})
        completed = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                                    __file__, "--child", job], env=env, check=True, capture_output=True, text=True)
        counts.append(int(completed.stderr.split("Collected : ")[1].split()[0]))
    return (counts[1] - counts[0]) / (seconds / 0.01)


def child_batch(count: int, workers: int) -> dict[str, Any]:
    from ccs_sim.batch import simulate_sessions
    from ccs_sim.settings import ControllerSettings
    from evse_model.session import SessionParams

    sessions = [SessionParams(target_voltage_V=300.0 + 5.0 * (index % 20), initial_current_A=40.0 + index % 50,
                              duration_s=5.0) for index in range(count)]
    started_s, cpu_started_s = time.perf_counter(), _cpu_with_children_s()
    runs = simulate_sessions(sessions, ControllerSettings(_env_file=None), workers=workers)
    wall_s = time.perf_counter() - started_s
    return {"wall_s": wall_s, "cpu_s": _cpu_with_children_s() - cpu_started_s,
            "simulated_s": sum(run.simulated_s for run in runs),
            "energies": [run.summary.energy_Wh for run in runs]}


def _cpu_with_children_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- the parent: runs the children, prints the tables ----------------------------------------------------
def extract_src(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_best(src: Path | None, job: dict[str, Any], repeat: int) -> Any:
    """The run with the least wall time of ``repeat`` (each in a fresh process): the figure least disturbed by
    whatever else the machine runs."""
    return min((run_child(src, job) for _ in range(repeat)), key=lambda r: r["wall_s"])


def run_child(src: Path | None, job: dict[str, Any]) -> Any:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    completed = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], env=env, check=True,
                               capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs (10→30 %%, 10/60 min, 20 sessions)")
    parser.add_argument("--baseline-rev", action="append", help="git revision measured as the baseline")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row of table (a); the fastest is shown")
    parser.add_argument("--instructions", action="store_true",
                        help="only machine instructions per tick of steady charging, per tree (valgrind's callgrind)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        kind = job.pop("kind")
        jobs: dict[str, Any] = {"session": child_session, "parts": child_parts, "batch": child_batch,
                                "steady": child_steady}
        result = jobs[kind](**job)
        print(json.dumps(result))
        return
    revs = args.baseline_rev or ["73935b4"]
    charge = dict(CHARGE, target_soc_percent=30) if args.quick else CHARGE
    minutes = (10, 60) if args.quick else (10, 60, 600)
    batch_count = 20 if args.quick else 100
    with tempfile.TemporaryDirectory() as tmp:
        trees: list[tuple[str, Path | None]] = [("this tree", None)]
        trees += [(f"baseline {rev}", extract_src(rev, Path(tmp) / rev)) for rev in revs]
        if args.instructions:
            print("| code | machine instructions per control tick (steady charging, callgrind) |\n|---|---|")
            for name, src in trees:
                print(f"| {name} | {instructions_per_tick(src):.0f} |")
            return
        report(args.quick, charge, minutes, batch_count, trees, max(1, args.repeat))


def report(quick: bool, charge: dict[str, Any], minutes: tuple[int, ...], batch_count: int,
           trees: list[tuple[str, Path | None]], repeat: int) -> None:
    print(f"## Simulation speed (issue 13 item 2) — {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}{' (quick)' if quick else ''}\n")
    print(f"Load average at the start: {', '.join(f'{load:.2f}' for load in os.getloadavg())}. Each row in a fresh "
          "process; CPU µs per tick = process CPU time / control ticks.\n")
    print(f"### (a) {charge['start_soc_percent']}→{charge['target_soc_percent']} % charge of the 800 V car, manual "
          f"clock (best wall time of {repeat} runs per row)\n")
    print("| control period | code | simulated s | wall s | **simulated s per wall s** | CPU µs per tick | energy Wh "
          "| max RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for period_s in (0.01, 0.05):
        rows = [(name, src, False, False) for name, src in trees]
        if period_s == 0.01:
            rows[1:1] = [("this tree, every tick a full step", None, False, True),
                         ("this tree, per-device sensor pass", None, True, False)]
        for name, src, per_device, full_steps in rows:
            job: dict[str, Any] = {"kind": "session", "params": charge, "period_s": period_s,
                                   "per_device_pass": per_device}
            if full_steps:
                job["full_steps"] = True
            r = run_best(src, job, repeat)
            print(f"| {period_s * 1000:.0f} ms | {name} | {r['simulated_s']:.0f} | {r['wall_s']:.2f} | "
                  f"**{r['simulated_s'] / r['wall_s']:.0f}×** | {r['cpu_s'] / r['ticks'] * 1e6:.1f} | "
                  f"{r['energy_Wh']:.6f} | {r['max_rss_MB']:.0f} |")
    print("\n### (b) One long session: the 800 V car at 10 A (10 ms period)\n")
    print("| simulated minutes | code | simulated s | wall s | **simulated s per wall s** | CPU µs per tick | "
          "energy Wh | max RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for length in minutes:
        # 600 minutes take minutes of wall time per tree: the baseline's 10 and 60 minute rows stand beside it.
        for name, src in trees if length <= 60 else trees[:1]:
            r = run_child(src, {"kind": "session", "params": long_session(length), "period_s": 0.01,
                                "per_device_pass": False})
            print(f"| {length} | {name} | {r['simulated_s']:.0f} | {r['wall_s']:.2f} | "
                  f"**{r['simulated_s'] / r['wall_s']:.0f}×** | {r['cpu_s'] / r['ticks'] * 1e6:.1f} | "
                  f"{r['energy_Wh']:.3f} | {r['max_rss_MB']:.0f} |")
    print(f"\n### (c) A batch of {batch_count} short sessions (5 s of charging each), this tree\n")
    from ccs_sim.batch import available_cores

    cores = available_cores()
    serial = run_child(None, {"kind": "batch", "count": batch_count, "workers": 1})
    parallel = run_child(None, {"kind": "batch", "count": batch_count, "workers": cores})
    print("| run | workers | wall s | CPU s (all processes) | simulated s per wall s |")
    print("|---|---|---|---|---|")
    for name, r, workers in (("serial (baseline)", serial, 1), ("parallel", parallel, cores)):
        print(f"| {name} | {workers} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['simulated_s'] / r['wall_s']:.0f}× |")
    same = serial["energies"] == parallel["energies"]
    print(f"\nParallel/serial speed-up {serial['wall_s'] / parallel['wall_s']:.2f}× on {cores} cores; every "
          f"session's energy the same serial and parallel: {'yes' if same else 'NO'}.")
    print("\n### (d) Per-tick cost of the plant, sensors and supervisor (CPU µs per call, best of 5)\n")
    parts = [(name, run_child(src, {"kind": "parts"})) for name, src in trees]
    print("| part | " + " | ".join(name for name, _ in parts) + " |")
    print("|---|" + "---|" * len(parts))
    for part in parts[0][1]:
        print(f"| {part} | " + " | ".join(f"{values.get(part, float('nan')):.2f}" for _, values in parts) + " |")
    print(f"\nLoad average at the end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}.")


if __name__ == "__main__":
    main()
    sys.exit(0)
