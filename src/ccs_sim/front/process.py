"""Starting and watching the front process from the controller's process (``ccs-sim serve``, by default).

``serve_behind_front`` serves the controller's app on a private Unix socket (in a fresh directory only this user
may enter, marked as checked: ``ccs_sim.http.trusted_front``), starts the front on the public address, restarts
it if it dies (at most ``MAX_RESTARTS`` in ``RESTART_WINDOW_S``, then the server stops: something is wrong with
the front itself), and stops it, by its PID, when the controller's server ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccs_sim.settings import ControllerSettings

log = logging.getLogger(__name__)

#: What the front prints once it listens on the public address.
READY_LINE = "ccs-sim-front: ready"
#: What the controller writes to a front it spawned (``--listen-when-told``) once its own app answers.
LISTEN_COMMAND = b"listen\n"
#: How often the front checks that the controller's process still runs (s).
PARENT_CHECK_S = 1.0
#: How long the front may take to listen (s): it imports the API's modules first.
START_TIMEOUT_S = 30.0
#: How long a stopping front gets before it is killed (s).
STOP_TIMEOUT_S = 5.0
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
#: Wait before starting a front that died (s).
RESTART_DELAY_S = 1.0


#: The nice value the controller's event-loop thread asks for behind a front (SECC, session flow, records): above
#: the front and every other program, below the control loop's thread (``core/control_thread.py``). Not without a
#: front: there the event loop serves the API's clients too, and would hand them that priority.
EVENT_LOOP_NICE = -10


def raise_event_loop_priority() -> str:
    """Ask for ``EVENT_LOOP_NICE`` for the calling thread (the event loop's); say whether it was granted."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EVENT_LOOP_NICE)  # per thread on Linux
    except (AttributeError, OSError):
        return "normal"
    return "raised"


def lower_to_normal_priority() -> None:
    """In the front: back to nice 0 if it inherited the controller's raised priority (always permitted)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except (AttributeError, OSError):
        pass


class FrontFailed(RuntimeError):
    """The front did not start (its last lines of error output say why)."""


class FrontProcess:
    """One front process for the controller app on ``socket_path``."""

    def __init__(self, settings: ControllerSettings, socket_path: str, private_dir: str) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.settings_file = Path(private_dir) / "front-settings.json"
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.restarts: deque[float] = deque()
        self._relay_task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        """Start the front and wait until it listens; ``FrontFailed`` if it exits or times out first."""
        await self.spawn()
        await self.listen()

    async def spawn(self) -> None:
        """Start the front's process: it loads its modules, then waits for ``listen()`` before it binds the public
        address (the controller's own start-up runs meanwhile: the two start-ups overlap)."""
        self.settings_file.write_text(self.settings.model_dump_json(), encoding="utf-8")
        self.settings_file.chmod(0o600)  # it may hold the API token
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ccs_sim.front", "--controller-socket", self.socket_path,
            "--settings-file", str(self.settings_file), "--listen-when-told",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C (or a signal to the controller's process group) reaches the
            # controller only, which stops its front by PID after its own shutdown; never a front dying first
            # and restarted in the middle of a shutdown. It still dies with the controller (PR_SET_PDEATHSIG).
            start_new_session=True)

    async def listen(self) -> None:
        """Tell the spawned front to bind the public address (the controller's app now answers) and wait until it
        listens; ``FrontFailed`` if it exits or times out first."""
        process = self.process
        assert process is not None and process.stdin is not None
        assert process.stdout is not None and process.stderr is not None
        try:
            process.stdin.write(LISTEN_COMMAND)
            await process.stdin.drain()
            process.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it has exited: its error output says why
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.decode().strip() != READY_LINE:
            await self._end(process)
            error_output = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
            raise FrontFailed("the API front process did not start: "
                              + (" / ".join(error_output[-3:]) or f"no answer within {START_TIMEOUT_S:g} s"))
        # Its later output goes to this process's log, line by line.
        self._relay_task = asyncio.get_running_loop().create_task(self._relay(process.stderr))
        log.info("API front process %d listening on http://%s:%d/", process.pid, self.settings.host,
                 self.settings.port)

    @staticmethod
    async def _relay(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.warning("front: %s", line.decode(errors="replace").rstrip())

    async def watch(self) -> None:
        """Restart the front whenever it dies, until ``stop()``; raise ``FrontFailed`` after too many restarts."""
        while not self.stopping:
            process = self.process
            assert process is not None
            code = await process.wait()
            if self.stopping:
                return
            now_s = time.monotonic()
            while self.restarts and now_s - self.restarts[0] > RESTART_WINDOW_S:
                self.restarts.popleft()
            if len(self.restarts) >= MAX_RESTARTS:
                raise FrontFailed(f"the API front process died {MAX_RESTARTS + 1} times within "
                                  f"{RESTART_WINDOW_S:g} s (last exit code {code})")
            self.restarts.append(now_s)
            log.error("the API front process %d exited with code %s: starting it again", process.pid, code)
            await asyncio.sleep(RESTART_DELAY_S)
            await self.start()

    async def stop(self) -> None:
        self.stopping = True
        if self.process is not None:
            await self._end(self.process)

    @staticmethod
    async def _end(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


#: The private directories' names: this prefix, the controller's PID, a dash, mkdtemp's random part.
PRIVATE_DIR_PREFIX = "ccs-sim-front-"


def private_socket_dir() -> str:
    """A fresh directory only this user may enter (``mkdtemp``: mode 0700) for the controller's socket; first,
    those a killed controller left behind are removed (a SIGKILL leaves no time to clean up, and a charger may be
    restarted that way for months)."""
    remove_stale_socket_dirs()
    return tempfile.mkdtemp(prefix=f"{PRIVATE_DIR_PREFIX}{os.getpid()}-")


def remove_stale_socket_dirs() -> list[Path]:
    """Remove this user's private directories whose controller's process no longer runs; the ones removed."""
    removed = []
    for entry in Path(tempfile.gettempdir()).glob(f"{PRIVATE_DIR_PREFIX}*-*"):
        pid_text = entry.name[len(PRIVATE_DIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid_text.isdigit() or entry.lstat().st_uid != os.getuid() or _process_runs(int(pid_text)):
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


async def start_front_for(server: Any, serving: asyncio.Task[Any], settings: ControllerSettings, socket_path: str,
                          private_dir: str) -> FrontProcess | None:
    """The front spawned at once (its modules load while the controller starts); once ``server`` (a
    ``uvicorn.Server`` serving the controller's app on ``socket_path``, in the task ``serving``) listens: the socket
    made private, the event loop's priority raised, the front started and
    listening. None if the server's own start-up ended first (it said why); ``FrontFailed`` if the front did not
    start."""
    front = FrontProcess(settings, socket_path, private_dir)
    await front.spawn()  # it loads while the controller starts
    while not server.started:
        if serving.done():
            await front.stop()
            return None
        await asyncio.sleep(0.01)
    os.chmod(socket_path, 0o600)
    log.info("controller's event loop behind the front: %s priority", raise_event_loop_priority())
    await front.listen()
    return front


async def _serve_reporting_exit(server: Any) -> int:
    """``server.serve()``; the exit status uvicorn gives when the app's start-up fails (it calls ``sys.exit`` in
    the task: left alone, that would escape the event loop past our clean-up, with a traceback)."""
    try:
        await server.serve()
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else 1
    return 0


async def serve_behind_front(server: Any, settings: ControllerSettings, socket_path: str, private_dir: str,
                             on_ready: Callable[[FrontProcess], None] | None = None) -> int:
    """Run ``server`` (a ``uvicorn.Server`` already configured for ``socket_path``) with a front process on
    the public address; 0 on a normal stop, 2 if the front could not start or kept dying."""
    serving = asyncio.create_task(_serve_reporting_exit(server))
    try:
        try:
            front = await start_front_for(server, serving, settings, socket_path, private_dir)
        except FrontFailed as failure:
            print(f"ccs-sim: {failure}", file=sys.stderr, flush=True)
            server.should_exit = True
            await serving
            return 2
        if front is None:
            return await serving or 2  # the controller's own start-up was refused (it said why): its exit status
        if on_ready is not None:
            on_ready(front)
        watching = asyncio.create_task(front.watch())
        done, _ = await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if watching in done and watching.exception() is not None:
            print(f"ccs-sim: {watching.exception()}", file=sys.stderr, flush=True)
            server.should_exit = True
            code = 2
        watching.cancel()
        await front.stop()
        await serving
        return code
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)
