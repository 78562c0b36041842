"""Fixtures for the browser tests: the app served by uvicorn on 127.0.0.1 (speed 10) in a background
thread, and Debian's headless Chromium driven by Playwright (no Playwright browser download).

Outside CI the browser tests skip with the reason when Chromium or Playwright is missing; under
CI=true they fail instead (``scripts/install-system-deps.sh chromium`` installs the browser).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from ccs_sim.dashboard import close_streams
from ccs_sim.fastapi_app import create_app
from ccs_sim.settings import ControllerSettings

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("CCS_SIM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SPEED = 10.0


def browser_unavailable_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (scripts/install-system-deps.sh chromium)"
    return None


def require_browser() -> None:
    reason = browser_unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the browser tests, but: {reason}")
    pytest.skip(reason)


class LiveServer:
    """uvicorn serving ``create_app(settings=...)`` on a socket bound before the thread starts (no port race)."""

    def __init__(self, data_dir: Path, ocpp_config: Any = None) -> None:
        """``ocpp_config``: an ``OcppConfig`` (the app then runs an OCPP client), None: OCPP off."""
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(settings=ControllerSettings(speed=SPEED, data_dir=data_dir, port=self.port),
                         ocpp_config=ocpp_config)
        self.app = app
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="dashboard-test-server", daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 15.0
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        close_streams(self.app)  # open /stream responses end, so uvicorn's shutdown does not wait on them
        self.server.should_exit = True
        self.thread.join(timeout=10.0)
        self.socket.close()

    @property
    def controller(self):  # type: ignore[no-untyped-def]
        return self.app.state.controller


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    with LiveServer(tmp_path_factory.mktemp("dashboard-data")) as server:
        yield server


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        try:
            yield context
        finally:
            context.close()


class ConsoleLog:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def console(self, message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def page_error(self, error) -> None:  # type: ignore[no-untyped-def]
        self.errors.append(f"page error: {error}")


@pytest.fixture
def dashboard(browser_context, live_server):  # type: ignore[no-untyped-def]
    """A fresh tab on the dashboard (stream at 10/s), with its console errors collected in ``page.console_log``."""
    page = browser_context.new_page()
    log = ConsoleLog()
    page.on("console", log.console)
    page.on("pageerror", log.page_error)
    page.console_log = log
    page.goto(f"{live_server.url}/?rate=10")
    page.wait_for_function("document.getElementById('stream-state').classList.contains('live')", timeout=10_000)
    page.wait_for_function("document.getElementById('fault-type').options.length > 0", timeout=10_000)
    try:
        yield page
    finally:
        page.close()
