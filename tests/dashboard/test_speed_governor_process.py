"""At the highest speed the settings allow, the served API keeps answering and SIGTERM still stops it
(issue 10, item 12: "the supervisor can never stall").

``POST /sim/speed {"speed": 10000}`` (what a schema fuzzer tries) made every control tick integrate more
simulated time than the last: one tick blocked the event loop for 23 s, the server took neither requests
nor SIGTERM, and its shutdown spun at 100 % CPU. The simulation now runs only as fast as it can compute.

A real ``ccs-sim serve`` child process on a free 127.0.0.1 port; only its PID is signalled, and every wait
is bounded. The wall clock is used because the process's responsiveness is what is under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from served_process import free_port, wait_until_serving

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 30.0
#: The highest speed the settings and the API accept.
MAX_SPEED = 10_000.0
#: How long the API is watched at that speed, and the longest any /status may take.
WATCH_WALL_S = 3.0
STATUS_WITHIN_S = 1.0
#: The issue's bound: a stop exits "within a second or two".
EXIT_WITHIN_S = 2.0


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "CCS_SIM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("CCS_SIM_API_TOKEN", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(VENV_BIN / "ccs-sim"), "serve", "--host", "127.0.0.1", "--port", str(port),
                                    "--speed", "20"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, f"{url}/health", START_TIMEOUT_S, lambda: log_path.read_text(errors="replace"))
    except AssertionError:
        process.kill()  # only the process this test started, by its PID
        process.wait(timeout=10)
        raise
    return process, url, log_path


def test_at_speed_10000_status_answers_within_a_second_and_sigterm_exits_within_two(tmp_path):
    process, url, log_path = _serve(tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=STATUS_WITHIN_S) as client:
            started = client.post("/start_session", json={"target_voltage": 400, "initial_current": 100,
                                                           "duration_s": 36_000}).json()
            assert started["status"] == "started", started
            assert client.post("/sim/speed", json={"speed": MAX_SPEED}).json() == {"status": "ok",
                                                                                  "speed": MAX_SPEED}
            slowest_s, answers = 0.0, []
            watch_until_s = time.monotonic() + WATCH_WALL_S
            for _ in range(1000):  # bounded: about 30 polls fit in the watch
                if time.monotonic() >= watch_until_s:
                    break
                asked_at_s = time.monotonic()
                try:
                    status = client.get("/status").json()
                except httpx.TimeoutException:
                    raise AssertionError(f"/status did not answer within {STATUS_WITHIN_S} s at speed "
                                         f"{MAX_SPEED:g} (after {len(answers)} answers)") from None
                slowest_s = max(slowest_s, time.monotonic() - asked_at_s)
                answers.append(status)
                time.sleep(0.1)
            assert slowest_s < STATUS_WITHIN_S and len(answers) >= 10, (slowest_s, len(answers))
            last = answers[-1]
            assert last["speed_requested"] == MAX_SPEED
            assert 1.0 <= last["speed"] <= MAX_SPEED
            # Simulated time kept moving, and never went back.
            clocks_s = [status["clock_s"] for status in answers]
            assert clocks_s == sorted(clocks_s) and clocks_s[-1] > clocks_s[0]

        signalled_at_s = time.monotonic()
        process.send_signal(signal.SIGTERM)  # the PID this test started
        try:
            process.wait(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {EXIT_WITHIN_S} s after SIGTERM") from None
        assert time.monotonic() - signalled_at_s < EXIT_WITHIN_S
        log = log_path.read_text(errors="replace")
        assert process.returncode in (0, -signal.SIGTERM), (process.returncode, log)
        assert "Traceback" not in log, log
    finally:
        if process.poll() is None:
            process.kill()  # only the process this test started, by its PID
            process.wait(timeout=10)
