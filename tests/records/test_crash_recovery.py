"""Crash safety with the real server: SIGKILL at random points across 20 sessions, restart, check the records.

``ccs-sim serve`` runs in a subprocess on 127.0.0.1 (a free port) at speed 20 with its own data directory.
For each session the test picks a random moment (including right after ``/start_session`` answered),
reads ``/status`` and kills the process with SIGKILL by its PID. After the restart:

- no session that ``/start_session`` acknowledged is missing from ``/sessions`` (some are killed the
  instant after the answer arrives);
- a session that was running when the process died is ``interrupted`` (ended_phase ABORTED,
  end_reason "interrupted");
- its recorded energy is within 1 s of charging of what the meter had counted: at least the meter's count
  one simulated second before the last status read, at most the count at that read plus what could flow
  until the kill;
- the charger came back in its safe state (contactor open, no current) and serves the next session.

This is the one test in the area that runs on the wall clock: it must, to kill a real process.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from served_process import free_port, stop_process, wait_until_serving

#: Simulated seconds per wall second. The records lose at most one checkpoint interval (0.5 s simulated) plus
#: the time one write takes (README "Session records"); the write is an fsync on the wall clock, so the faster
#: the simulation, the more simulated time a slow disk costs: at 5x a 100 ms write (a loaded CI disk) is 0.5 s.
SPEED = 5.0
#: What the test holds the records to: one checkpoint interval + one write, in simulated seconds.
LOSS_BOUND_S = 1.0
SESSIONS = 20
#: Per-session wall time budget: handshake 2 s + cable check 1 s + precharge + charging, at SPEED.
START_TIMEOUT_S = 20.0

pytestmark = pytest.mark.slow


class Server:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--speed", str(SPEED), "--data-dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, env=env)
        wait_until_serving(self.process, f"{self.base_url}/health", START_TIMEOUT_S, self.log_path.read_text,
                           poll_s=0.02)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


@dataclass
class Observation:
    session_id: str
    killed: bool = False
    active_at_kill: bool = False
    energy_at_kill_Wh: float = 0.0
    energy_bound_before_Wh: float = 0.0
    max_rate_Wh_per_s: float = 0.0
    gap_s: float = 0.0  # wall time between asking for the last status read and the kill
    phase_at_kill: str = ""


def test_sigkill_at_random_points_loses_no_session_and_at_most_a_checkpoint_and_a_write_of_energy(
        tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = Server(data_dir, tmp_path / "server.log")
    observations: list[Observation] = []
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
            for index in range(SESSIONS):
                duration_s = rng.uniform(2.0, 6.0)
                started = client.post("/start_session", json={"target_voltage": rng.choice([400, 800]),
                                                               "initial_current": rng.uniform(20, 150),
                                                               "duration_s": duration_s}).json()
                assert started["status"] == "started", (seed, started)
                observation = Observation(started["session_id"])
                observations.append(observation)
                # Session ≈ 2 s handshake + 1 s cable check + ≤ 1 s precharge + duration (simulated).
                kill_point_s = 0.0 if index % 7 == 0 else rng.uniform(0.0, (4.0 + duration_s) / SPEED)
                if index % 5 == 4:
                    kill_point_s = None  # let a few run to completion undisturbed
                if kill_point_s is None:
                    _wait_until_idle(client, seed)
                    continue
                if kill_point_s == 0.0:
                    # the instant after the answer: the session must already be durable
                    server.kill()
                    observation.killed = observation.active_at_kill = True
                    observation.phase_at_kill = "HANDSHAKE"
                    server.start()
                    continue
                deadline = time.monotonic() + kill_point_s
                asked_at = time.monotonic()
                samples = [client.get("/status").json()]
                while time.monotonic() < deadline:
                    asked_at = time.monotonic()
                    samples.append(client.get("/status").json())
                server.kill()
                status = samples[-1]
                observation.killed = True
                # from the moment the last status was asked for (the server may count on while it answers)
                observation.gap_s = time.monotonic() - asked_at
                observation.active_at_kill = status["session_active"] and status["session_id"] == started[
                    "session_id"]
                observation.energy_at_kill_Wh = status["energy_Wh"]
                observation.phase_at_kill = status["phase"]
                # What the meter had counted LOSS_BOUND_S (simulated) before the read, and the fastest rate
                # at which it counted (Wh per simulated second), from the status samples.
                older = [s["energy_Wh"] for s in samples if s["clock_s"] <= status["clock_s"] - LOSS_BOUND_S]
                observation.energy_bound_before_Wh = older[-1] if older else 0.0
                # the session may change stage between the read and the kill: the charger's rated power
                # bounds how fast the meter can count whatever the samples saw
                rated_power_W = max(source["power_W"] for source in status["limits_in_force"]["sources"]
                                    if source["source"] == "rating")
                observation.max_rate_Wh_per_s = max(
                    [rated_power_W / 3600] +
                    [abs(s["voltage"] * s["current"]) / 3600 for s in samples]
                    + [(b["energy_Wh"] - a["energy_Wh"]) / (b["clock_s"] - a["clock_s"])
                       for a, b in zip(samples, samples[1:]) if b["clock_s"] > a["clock_s"]])
                server.start()
                after = client.get("/status").json()
                assert after["session_active"] is False and after["contactor_closed"] is False, (seed, after)
                assert after["current"] == 0.0 and after["phase"] == "IDLE", (seed, after)
            _wait_until_idle(client, seed)
            page = client.get("/sessions", params={"limit": 500}).json()
        records = {record["session_id"]: record for record in page["sessions"]}
    finally:
        server.stop()

    killed = [o for o in observations if o.killed]
    assert len(killed) >= 12, seed
    assert sum(o.active_at_kill for o in killed) >= 8, (seed, [o.phase_at_kill for o in killed])
    assert any(o.phase_at_kill == "CHARGING" for o in killed), seed
    for observation in observations:
        where = f"seed {seed}, session {observation.session_id}, observation {observation}"
        record = records.get(observation.session_id)
        assert record is not None, f"session disappeared from the records ({where})"
        assert record["status"] != "running", where
        if observation.active_at_kill:
            assert record["status"] == "interrupted", (where, record)
            assert (record["ended_phase"], record["end_reason"]) == ("ABORTED", "interrupted"), (where, record)
        if record["status"] == "interrupted":
            assert observation.killed, (where, record)
            # at least what the meter had one (simulated) second before the kill; at most what it could
            # count between the last status read and the kill
            after_read_Wh = observation.max_rate_Wh_per_s * (observation.gap_s * SPEED + 0.1) + 1e-6
            assert observation.energy_bound_before_Wh - 1e-6 <= record["energy_Wh"] \
                <= observation.energy_at_kill_Wh + after_read_Wh, (where, record)
        else:
            assert record["status"] == "ended" and record["end_reason"] != "interrupted", (where, record)
    assert page["total"] == len(observations), seed


def _wait_until_idle(client: httpx.Client, seed: int) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.get("/status").json()
        if not status["session_active"] and status["stage"] in ("ended", "idle"):
            return status
        time.sleep(0.01)
    raise AssertionError(f"session did not end (seed {seed})")
