"""A server process a test starts: a free loopback port for it, waiting until it serves, and ending it by its PID.

Importable as ``served_process`` from every test folder: tests/conftest.py sits in tests/, and pytest's default
``prepend`` import mode puts the directory of each conftest it loads (tests/ included) on ``sys.path``.

These run on the wall clock: the process is real.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Callable

import httpx

#: One /health request while the server starts: a refused or slow answer is retried until the start-up timeout.
HEALTH_REQUEST_TIMEOUT_S = 1.0
#: How long a stopped process gets after SIGTERM / after SIGKILL.
STOP_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, timeout_s: float, describe_log: Callable[[], str],
                       poll_s: float = 0.05) -> None:
    """Until ``GET url`` answers 200. Fails (with ``describe_log()``) if ``process`` exits first or the answer
    does not come within ``timeout_s``."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before serving {url}:\n{describe_log()}")
        try:
            if httpx.get(url, timeout=HEALTH_REQUEST_TIMEOUT_S).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise AssertionError(f"the server did not serve {url} within {timeout_s} s:\n{describe_log()}")


def stop_process(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S,
                 kill_timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM ``process`` (by its PID) if it still runs, SIGKILL if it has not exited within ``timeout_s``;
    its exit status."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=kill_timeout_s)
