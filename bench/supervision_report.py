"""bench_supervision.py's load processes (bench/supervision_load.py, each stopped by its PID) and its tables."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ccs_sim.settings import ControllerSettings
from supervision_probe import FAULT_PATHS, percentile

LOAD_SCRIPT = Path(__file__).resolve().parent / "supervision_load.py"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
#: A tick starting more than this late misses issue 13's "done when" (no control tick more than 5 ms late).
LATE_TICK_S = 0.005


def rate_limiter_off_settings() -> dict[str, Any] | None:
    """The ``ControllerSettings`` that turn the HTTP rate limiter off, or None when the settings have none."""
    fields = ControllerSettings.model_fields
    if "rate_limit_per_s" in fields:  # a402e21: 0 = limiter off
        return {"rate_limit_per_s": 0}
    for name, info in fields.items():
        if "rate_limit" in name:
            return {name: False if info.annotation in (bool, "bool") else 0}
    return None


class LoadProcesses:
    """The scenario's load generators, each a process of its own."""

    def __init__(self, url: str, status_processes: int, clients_per_process: int, sse_subscribers: int) -> None:
        self.argvs = [[sys.executable, str(LOAD_SCRIPT), "status", url, "--clients", str(clients_per_process)]
                      for _ in range(status_processes)]
        if sse_subscribers:
            self.argvs.append([sys.executable, str(LOAD_SCRIPT), "stream", url, "--subscribers", str(sse_subscribers)])
        self.processes: list[subprocess.Popen[str]] = []
        self.started_at = 0.0

    def start(self) -> None:
        for argv in self.argvs:
            self.processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        for process in self.processes:  # each prints "ready" once all its connections were answered
            assert process.stdout is not None
            deadline = time.monotonic() + READY_TIMEOUT_S
            line = process.stdout.readline().strip()
            if line != "ready" or time.monotonic() > deadline:
                raise RuntimeError(f"load generator {process.args!r} not ready: {line!r}")
        self.started_at = time.monotonic()

    def stop(self) -> dict[str, float]:
        """SIGTERM each by its PID; their counts, summed (status: requests, ok, too_many; stream: events)."""
        totals: dict[str, float] = {}
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                out, _ = process.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            for line in out.splitlines():
                if line.startswith("{"):
                    counts = json.loads(line)
                    kind = counts.pop("kind")
                    elapsed_s = counts.pop("elapsed_s")
                    totals[f"{kind}_elapsed_s"] = max(totals.get(f"{kind}_elapsed_s", 0.0), elapsed_s)
                    for key, value in counts.items():
                        totals[f"{kind}_{key}"] = totals.get(f"{kind}_{key}", 0) + value
        return totals


def load_summary(load: dict[str, float]) -> str:
    parts = []
    if "status_requests" in load:
        requests, elapsed_s = load["status_requests"], load["status_elapsed_s"]
        parts.append(f"GET /status {requests / elapsed_s:.0f} req/s achieved ({requests:.0f} in {elapsed_s:.0f} s), "
                     f"{100.0 * load['status_too_many'] / max(1.0, requests):.1f} % answered 429, "
                     f"{load['status_other_status']:.0f} other status, {load['status_errors']:.0f} transport errors")
    if "stream_events" in load:
        parts.append(f"/stream {load['stream_events'] / load['stream_elapsed_s']:.0f} events/s received in all, "
                     f"{load['stream_errors']:.0f} errors")
    return "; ".join(parts)


def _ms(values_s: list[float], fraction: float | None) -> str:
    if not values_s:
        return "–"
    value = max(values_s) if fraction is None else percentile(values_s, fraction)
    return f"{value * 1e3:.2f}"


def print_tables(results: list[Any], deadline_s: float) -> None:
    print("### Control-tick start lateness and fault → output current < 5 A\n")
    print("| scenario | ticks | tick lateness p50 / p99 / max ms | ticks > 5 ms late | fault samples "
          "| fault → < 5 A p50 / p99 / max ms | within 30 ms |")
    print("|---|---|---|---|---|---|---|")
    for result in results:
        late = result.lateness_s
        reactions = [value for values in result.reaction_s.values() for value in values]
        within = sum(1 for value in reactions if value <= deadline_s)
        missed = f" (+{result.missed} never)" if result.missed else ""
        print(f"| {result.scenario.name} | {len(late)} | {_ms(late, 0.5)} / {_ms(late, 0.99)} / {_ms(late, None)} "
              f"| {sum(1 for value in late if value > LATE_TICK_S)} | {len(reactions)}{missed} "
              f"| {_ms(reactions, 0.5)} / {_ms(reactions, 0.99)} / {_ms(reactions, None)} "
              f"| {within}/{len(reactions) + result.missed} |")
    print("\n### Fault → < 5 A by path, p50 / max ms\n")
    print("| scenario | " + " | ".join(FAULT_PATHS) + " |")
    print("|---|" + "---|" * len(FAULT_PATHS))
    for result in results:
        cells = [f"{_ms(result.reaction_s[path], 0.5)} / {_ms(result.reaction_s[path], None)}" for path in FAULT_PATHS]
        print(f"| {result.scenario.name} | " + " | ".join(cells) + " |")
    print()
