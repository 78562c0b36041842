"""Dashboard routes: the page, its assets (package data, no CDN) and the push stream."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ccs_sim.controller import ChargerController
from ccs_sim.dashboard.snapshot import SnapshotCache
from ccs_sim.dashboard.sse import DEFAULT_RATE_HZ, MAX_RATE_HZ, MIN_RATE_HZ, snapshot_events
from ccs_sim.http.view_bodies import json_response
from ccs_sim.ocpp.routes import ocpp_client_of
from evse_hal.simulation import simulation_controls

router = APIRouter()

#: The files the page loads, with their media types; nothing else under the package is served.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "live_view.js": "text/javascript; charset=utf-8",
    "session_charts.js": "text/javascript; charset=utf-8",
    "controls.js": "text/javascript; charset=utf-8",
    "history.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "recorder.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "format.js": "text/javascript; charset=utf-8",
    "ocpp_panel.js": "text/javascript; charset=utf-8",
    "ocpp_frames.js": "text/javascript; charset=utf-8",
}
PAGE = "index.html"
#: The simulation panel's opening tag in the page, and the same tag hidden: served so when the adapter offers
#: no simulation controls (the /sim routes it drives are absent then).
SIM_PANEL_TAG = '<section class="card controls" id="sim-controls">'
SIM_PANEL_ABSENT_TAG = '<section class="card controls hidden" id="sim-controls" data-simulation="absent">'
#: The OCPP panel's opening tag, and the same tag hidden: served so without an OCPP client (no --ocpp-url); the
#: page then never asks GET /ocpp.
OCPP_PANEL_TAG = '<section class="card ocpp-card hidden" id="ocpp-panel" data-testid="ocpp-panel">'
OCPP_PANEL_PRESENT_TAG = '<section class="card ocpp-card" id="ocpp-panel" data-testid="ocpp-panel" data-ocpp="present">'
#: ``app.state`` flag that ends every open ``/stream`` response (see ``close_streams``).
STREAMS_CLOSING = "dashboard_streams_closing"
#: ``app.state`` attribute holding the ``SnapshotCache`` every ``/stream`` and ``/dashboard/snapshot`` reads.
SNAPSHOT_CACHE = "dashboard_snapshot_cache"


def close_streams(app: FastAPI) -> None:
    """End every open ``/stream`` response within ``STOP_POLL_S``: call it when the server begins to shut
    down (e.g. from ``uvicorn.Server.handle_exit``), or uvicorn waits for the streams, which never end."""
    setattr(app.state, STREAMS_CLOSING, True)


def serving_server_exiting() -> Callable[[], bool]:
    """Whether the uvicorn server serving this process has been asked to exit, as a check for the streams.

    uvicorn waits for open connections to close before it runs the lifespan shutdown, and a stream never
    closes by itself; ``uvicorn ccs_sim.fastapi_app:app`` gives the app no hook when SIGTERM/SIGINT arrive.
    While it serves (in the main thread), uvicorn's own ``Server.handle_exit`` is the SIGTERM handler, so
    the server, and its ``should_exit`` flag, can be found there (sse-starlette finds it the same way).
    Without such a server (tests in a thread, the launcher's embedded server) ``close_streams`` does it.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if server is None or not hasattr(server, "should_exit"):
        return lambda: False
    return lambda: bool(server.should_exit)


def _read_asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("assets", name).read_bytes()


def _controller(request: Request) -> ChargerController:
    return request.app.state.controller


def snapshot_cache_of(request: Request) -> SnapshotCache:
    """The app's snapshot cache for the controller it serves (made at the first reader)."""
    controller = _controller(request)
    state = request.app.state
    cache: SnapshotCache | None = getattr(state, SNAPSHOT_CACHE, None)
    if cache is None or cache.controller is not controller:
        cache = SnapshotCache(controller)
        setattr(state, SNAPSHOT_CACHE, cache)
    return cache


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page(request: Request) -> HTMLResponse:
    """The live dashboard (open http://127.0.0.1:8000/ in a browser); its simulation panel only where the
    adapter offers simulation controls, its OCPP panel only where an OCPP client runs."""
    page = _read_asset(PAGE).decode("utf-8")
    if simulation_controls(_controller(request).hw) is None:
        page = page.replace(SIM_PANEL_TAG, SIM_PANEL_ABSENT_TAG)
    if ocpp_client_of(request) is not None:
        page = page.replace(OCPP_PANEL_TAG, OCPP_PANEL_PRESENT_TAG)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/assets/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no dashboard asset named {name!r}")
    return Response(_read_asset(name), media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/snapshot", tags=["dashboard"], response_model=dict[str, Any])
async def dashboard_snapshot(request: Request) -> Response:
    """One snapshot, the same object a ``/stream`` event carries (built at most once per control tick)."""
    return json_response(request, "dashboard_snapshot", snapshot_cache_of(request).snapshot())


@router.get("/stream", tags=["dashboard"], response_class=StreamingResponse, responses={200: {
    "content": {"text/event-stream": {}},
    "description": "Server-Sent Events, one `snapshot` event per period."}})
async def stream(request: Request,
                 rate: float = Query(DEFAULT_RATE_HZ, ge=MIN_RATE_HZ, le=MAX_RATE_HZ,
                                     description="events per wall-clock second (default 5)"),
                 limit: int | None = Query(None, ge=1, le=1_000_000,
                                           description="end the stream after this many events (default: never)"),
                 ) -> StreamingResponse:
    """Live snapshots as Server-Sent Events (``text/event-stream``), for the dashboard and any other client.

    Each event is ``event: snapshot`` with ``id:`` = a sequence number and ``data:`` = one line of JSON:
    ``{"seq", "status" (= GET /status), "meter" (= GET /meter), "bms" (= GET /vehicle/bms),
    "slac" (= GET /vehicle/slac), "iso15118" (= GET /vehicle/iso15118), "sim" (the simulated car and
    plant knobs in force, null on hardware), "session" (current/last session id and its parameters),
    "faults" (the newest fault-history entries: type, severity, source, message, time), "limits"}``.
    The first event comes at once and sets ``retry: 2000``. Pacing is in wall time: ``rate`` events
    per second (0.2–20, default 5) at any simulation speed; a slow reader gets the newest state, not a
    backlog. The stream ends when the server shuts down (EventSource clients then reconnect). Try: ``curl -N 'http://127.0.0.1:8000/stream?rate=1'``.
    """
    cache = snapshot_cache_of(request)  # one build per tick shared by every subscriber; each splices its seq
    state = request.app.state
    server_exiting = serving_server_exiting()
    events = snapshot_events(cache.event_data, rate, asyncio.sleep,
                             limit=limit,
                             should_stop=lambda: getattr(state, STREAMS_CLOSING, False) or server_exiting())
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
