"""``ccs-sim serve --front-process`` as a user runs it: the public address served by a front process, a session
started and watched through it, the front restarted when it dies, and both processes gone (with the private
socket's directory) after SIGTERM. Runs on the wall clock: the processes are real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from served_process import free_port, stop_process, wait_until_serving

START_TIMEOUT_S = 30.0
RESTART_TIMEOUT_S = 15.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def front_pid(log: Path) -> int | None:
    found = re.findall(r"API front process (\d+) (?:on|listening)", log.read_text(errors="replace"))
    return int(found[-1]) if found else None


def test_served_through_a_front_process_restarted_if_it_dies_and_stopped_with_the_server(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    env["TMPDIR"] = str(tmp_path)  # the private socket's directory is made here: the test sees it go
    with log.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "ccs_sim.cli", "serve", "--front-process", "--port",
                                   str(port), "--speed", "10", "--data-dir", str(tmp_path / "data")],
                                  stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_serving(server, f"{base_url}/health", START_TIMEOUT_S, log.read_text)
        first_front = front_pid(log)
        assert first_front is not None and first_front != server.pid and pid_alive(first_front)
        socket_dirs = list(tmp_path.glob("ccs-sim-front-*"))
        assert len(socket_dirs) == 1 and (socket_dirs[0].stat().st_mode & 0o777) == 0o700
        with httpx.Client(base_url=base_url, timeout=5.0) as client:
            assert client.get("/status").json()["phase"] == "IDLE"
            started = client.post("/start_session", json={"target_voltage": 400, "initial_current": 50,
                                                            "duration_s": 5})
            assert started.status_code == 200, started.text
            # The command shows in the very next reading (the front's copy was dropped by it).
            assert client.get("/status").json()["session_active"] is True
            deadline_s = time.monotonic() + START_TIMEOUT_S
            while client.get("/status").json()["phase"] != "CHARGING":
                assert time.monotonic() < deadline_s, log.read_text()
                time.sleep(0.05)
            with client.stream("GET", "/stream", params={"limit": 2}) as stream:
                events = [line for line in stream.iter_lines() if line.startswith("data: ")]
            assert [event[:14] for event in events] == ['data: {"seq":1', 'data: {"seq":2']
            assert client.get("/meter").json()["energy_Wh"] > 0

            os.kill(first_front, signal.SIGKILL)  # the front dies: the controller starts another
            deadline_s = time.monotonic() + RESTART_TIMEOUT_S
            while front_pid(log) == first_front:
                assert time.monotonic() < deadline_s, log.read_text()
                time.sleep(0.05)
            wait_until_serving(server, f"{base_url}/health", RESTART_TIMEOUT_S, log.read_text)
            assert client.get("/status").status_code == 200
            second_front = front_pid(log)
            assert second_front is not None and pid_alive(second_front)
    finally:
        code = stop_process(server)
    assert code == 0, log.read_text()
    assert not pid_alive(second_front)
    assert list(tmp_path.glob("ccs-sim-front-*")) == []


def test_the_front_on_the_any_address_serves_ipv4_and_ipv6_clients_and_refuses_a_taken_port(tmp_path: Path) -> None:
    """``--host ::`` through the front answers 127.0.0.1 and ::1 as the in-process launcher did (the system's
    dual-stack default; asyncio's own binding makes ``::`` IPv6-only); a port already taken is one line, exit 2."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    argv = [sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "::", "--port", str(port), "--api-token",
            "front-test-token", "--data-dir", str(tmp_path / "data")]
    with log.open("wb") as log_file:
        server = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}/health", START_TIMEOUT_S, log.read_text)
        assert httpx.get(f"http://[::1]:{port}/status", timeout=5.0).json()["phase"] == "IDLE"
        assert httpx.get(f"http://127.0.0.1:{port}/status", timeout=5.0).json()["phase"] == "IDLE"
        second = subprocess.run([*argv[:-1], str(tmp_path / "data-2")], capture_output=True, text=True, env=env,
                                timeout=START_TIMEOUT_S)
        assert second.returncode == 2, second.stderr
        assert f"cannot listen on :::{port}" in second.stderr and "Traceback" not in second.stderr, second.stderr
    finally:
        assert stop_process(server) == 0, log.read_text()
