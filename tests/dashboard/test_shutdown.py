"""A stop ends the streams, makes the output safe and exits promptly, however the API is served (issue 10, item 12).

uvicorn waits for every open connection to close before it runs the application's lifespan shutdown; a
``/stream`` response never closes by itself, so one open dashboard kept ``uvicorn ccs_sim.fastapi_app:app``
from stopping after SIGTERM until that client left.

The real-process tests start the server on 127.0.0.1 (a free port) as a child process, signal only that
PID, and bound every wait; they use the wall clock because the process's own shutdown is under test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccs_sim.dashboard.routes import serving_server_exiting
from ccs_sim.dashboard.sse import STOP_POLL_S, snapshot_events
from ccs_sim.fastapi_app import create_app
from ccs_sim.settings import ControllerSettings
from served_process import free_port, wait_until_serving

VENV_BIN = Path(sys.executable).parent
#: The issue's bound: a stop exits "within a second or two".
EXIT_WITHIN_S = 2.0
#: The simulation runs fast so that a session reaches CHARGING within a fraction of a second of wall time.
SPEED = 20.0
START_TIMEOUT_S = 30.0


class ServedProcess:
    """The API served by a child process: started, waited for, signalled and reaped by this test only."""

    def __init__(self, command: list[str], port: int, data_dir: Path, log_path: Path) -> None:
        env = {**os.environ, "CCS_SIM_DATA_DIR": str(data_dir), "CCS_SIM_SPEED": str(SPEED),
               "CCS_SIM_PORT": str(port), "PYTHONUNBUFFERED": "1"}
        env.pop("CCS_SIM_API_TOKEN", None)
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=data_dir)

    def wait_until_serving(self) -> None:
        wait_until_serving(self.process, f"{self.url}/health", START_TIMEOUT_S, self.log)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # only the process this test started, by its PID
            self.process.wait(timeout=10)
        self._log.close()

    def session_rows(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.data_dir / "sessions.db") as database:
            return database.execute("SELECT session_id, status FROM sessions ORDER BY seq").fetchall()


def _serve(command: list[str], tmp_path: Path) -> ServedProcess:
    port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    served = ServedProcess([part.replace("{port}", str(port)) for part in command], port, data_dir,
                           tmp_path / "server.log")
    served.wait_until_serving()
    return served


UVICORN = [str(VENV_BIN / "uvicorn"), "ccs_sim.fastapi_app:app", "--host", "127.0.0.1", "--port", "{port}"]
CCS_SIM_SERVE = [str(VENV_BIN / "ccs-sim"), "serve", "--host", "127.0.0.1", "--port", "{port}",
                 "--speed", str(SPEED)]


def _start_charging(client: httpx.Client) -> str:
    started = client.post("/start_session", json={"target_voltage": 400, "initial_current": 100,
                                                   "duration_s": 3600}).json()
    assert started["status"] == "started", started
    deadline_s = time.monotonic() + 20.0
    while time.monotonic() < deadline_s:
        status = client.get("/status").json()
        if status["phase"] == "CHARGING" and status["current"] > 10:
            return started["session_id"]
        time.sleep(0.05)
    raise AssertionError(f"the session did not reach CHARGING: {client.get('/status').json()}")


def _stop_with_a_stream_open(served: ServedProcess, client: httpx.Client) -> tuple[float, list[str]]:
    """Open ``/stream``, read its first event, SIGTERM the server; the wall time until the process exited,
    and the lines the stream delivered (it must end by itself, not by the client's read timeout)."""
    lines: list[str] = []
    with client.stream("GET", "/stream", params={"rate": 5}, timeout=httpx.Timeout(5.0)) as stream:
        assert stream.status_code == 200
        events = stream.iter_lines()
        for line in events:
            lines.append(line)
            if line.startswith("data:"):
                break
        signalled_at_s = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        for line in events:  # ends when the server closes the stream (a ReadTimeout would fail the test)
            lines.append(line)
            if time.monotonic() - signalled_at_s > EXIT_WITHIN_S:
                raise AssertionError(f"the stream still delivers events {EXIT_WITHIN_S} s after SIGTERM")
    served.process.wait(timeout=EXIT_WITHIN_S + 3.0)
    return time.monotonic() - signalled_at_s, lines


def _assert_stopped_cleanly(served: ServedProcess, exit_after_s: float) -> None:
    log = served.log()
    assert exit_after_s < EXIT_WITHIN_S, f"exited {exit_after_s:.2f} s after SIGTERM: {log}"
    # uvicorn stops gracefully, then re-raises the signal it caught (its documented behaviour since 0.29),
    # so "stopped by SIGTERM" is a clean stop; anything else (a crash, SIGKILL) is not.
    assert served.process.returncode in (0, -signal.SIGTERM), (served.process.returncode, log)
    assert "Traceback" not in log, log


@pytest.mark.parametrize("command", [UVICORN, CCS_SIM_SERVE], ids=["uvicorn-module-app", "ccs-sim-serve"])
def test_sigterm_with_an_open_stream_and_a_session_charging_exits_within_two_seconds(command, tmp_path):
    served = _serve(command, tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=5.0) as client:
            session_id = _start_charging(client)
            exit_after_s, lines = _stop_with_a_stream_open(served, client)
        _assert_stopped_cleanly(served, exit_after_s)
        if command is UVICORN:
            assert "Application shutdown complete" in served.log()
        assert any(line.startswith("data:") for line in lines)
        # The record of the session that was charging is closed (interrupted by the stop), not left running.
        assert served.session_rows() == [(session_id, "interrupted")]
    finally:
        served.stop()


def test_sigterm_after_a_client_left_its_stream_exits_within_two_seconds(tmp_path):
    served = _serve(UVICORN, tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=5.0) as client:
            for _ in range(3):  # clients that come and go (a browser reloading the dashboard)
                with client.stream("GET", "/stream", params={"rate": 20}) as stream:
                    next(line for line in stream.iter_lines() if line.startswith("data:"))
            assert client.get("/health").status_code == 200
        signalled_at_s = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=EXIT_WITHIN_S + 3.0)
        _assert_stopped_cleanly(served, time.monotonic() - signalled_at_s)
    finally:
        served.stop()


# --- in-process: the stream's end conditions and the lifespan's safe state ---------------------------------


async def _collect(generator, count: int) -> list[str]:
    events = []
    async for event in generator:
        events.append(event)
        if len(events) >= count:
            break
    return events


async def test_the_stream_ends_within_the_poll_period_once_the_server_is_exiting():
    exiting = [False]
    wall = [0.0]

    async def fake_sleep(seconds: float) -> None:
        assert seconds <= STOP_POLL_S  # never one long wait that would miss the exit
        wall[0] += seconds
        if wall[0] >= 3.0:
            exiting[0] = True
        await asyncio.sleep(0)

    events = [event async for event in snapshot_events(lambda sequence: {"seq": sequence}, 0.2, fake_sleep,
                                                       monotonic=lambda: wall[0], should_stop=lambda: exiting[0])]
    assert len(events) == 1  # the first at once; the next was due at 5 s, but the exit came at 3 s
    assert wall[0] == pytest.approx(3.0, abs=STOP_POLL_S)


def test_the_serving_uvicorn_server_is_found_through_its_signal_handler(monkeypatch):
    class FakeServer:
        should_exit = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.should_exit = True

    server = FakeServer()
    monkeypatch.setattr(signal, "getsignal", lambda signum: server.handle_exit)
    exiting = serving_server_exiting()
    assert exiting() is False
    server.handle_exit(signal.SIGTERM, None)
    assert exiting() is True
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_DFL)
    assert serving_server_exiting()() is False  # not under uvicorn: only close_streams ends the streams


async def test_the_stream_generator_is_closed_when_the_client_disconnects(tmp_path):
    """A client that leaves: the response returns and the generator is closed (no stream left producing)."""
    from evse_model.clock import ManualClock
    from ccs_sim.runtime import build_controller

    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path), ManualClock())
    app = create_app(controller)
    sent: list[dict[str, Any]] = []
    first_body = asyncio.Event()
    disconnect = asyncio.Event()

    requested = [False]

    async def receive() -> dict[str, Any]:
        if not requested[0]:
            requested[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_body.set()

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/stream", "raw_path": b"/stream",
             "query_string": b"rate=20", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
    response = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(first_body.wait(), 5.0)
    disconnect.set()
    await asyncio.wait_for(response, 5.0)  # the response (and its generator) ended with the client
    bodies = [message for message in sent if message["type"] == "http.response.body"]
    assert bodies and b"event: snapshot" in bodies[0]["body"]


async def test_lifespan_shutdown_leaves_the_output_safe_and_the_record_closed(tmp_path):
    """The server's own stop (lifespan shutdown) with a session charging: supply off, contactor open,
    PWM 100 % (X1), and the session's record closed as interrupted."""
    settings = ControllerSettings(_env_file=None, speed=SPEED, data_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(settings=settings)
    async with app.router.lifespan_context(app):
        controller = app.state.controller
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            started = (await client.post("/start_session", json={"target_voltage": 400, "initial_current": 100,
                                                                  "duration_s": 3600})).json()
            deadline_s = time.monotonic() + 20.0
            while not (controller.latest and controller.latest.output_current_A > 10):
                assert time.monotonic() < deadline_s, controller.status_view()
                await asyncio.sleep(0.02)
        hw = controller.hw
    assert hw.contactor.is_closed() is False
    assert hw.pwm.get_duty() == 100.0  # X1: the oscillator off
    assert hw.supply.get_status()[1] < 1.0  # the supply delivers nothing
    assert hw.simulation.plant.supply_enabled is False
    with sqlite3.connect(tmp_path / "sessions.db") as database:
        rows = database.execute("SELECT session_id, status FROM sessions").fetchall()
    assert rows == [(started["session_id"], "interrupted")]
