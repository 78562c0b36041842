"""The front's ASGI app: access and rate checks, readings from a copy, one upstream stream for all, the rest
forwarded to the controller (see the package's docstring)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import httpx
from starlette.responses import Response, StreamingResponse

from ccs_sim.dashboard.sse import DEFAULT_RATE_HZ, MAX_RATE_HZ, MIN_RATE_HZ
from ccs_sim.front.metrics import FrontCounts, FrontMetrics
from ccs_sim.front.proxy import SERVICE_UNAVAILABLE, forward
from ccs_sim.front.stream_fan_out import StreamFanOut
from ccs_sim.front.view_cache import CACHED_READINGS, Reading, ViewCache
from ccs_sim.http.access import (
    READ_METHODS,
    AccessControlMiddleware,
    AccessPolicy,
    ASGIApp,
    Receive,
    Scope,
    Send,
    send_error,
)
from ccs_sim.http.rate_limit import RateLimiter, RateLimitMiddleware
from ccs_sim.settings import ControllerSettings

#: The controller's Prometheus endpoint, served with the front's counters appended.
METRICS_PATH = "/metrics"
#: ``GET /stream``'s largest ``limit`` (as the controller's route takes it).
MAX_STREAM_LIMIT = 1_000_000


def stream_query(query_string: bytes) -> tuple[float, int | None] | None:
    """``rate`` and ``limit`` of a ``/stream`` query the front can serve; None for anything else (the controller
    then answers it, a 422 included)."""
    try:
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True, strict_parsing=bool(query_string))
    except ValueError:
        return None
    if set(query) - {"rate", "limit"} or any(len(values) != 1 for values in query.values()):
        return None
    try:
        rate_hz = float(query["rate"][0]) if "rate" in query else DEFAULT_RATE_HZ
        limit = int(query["limit"][0]) if "limit" in query else None
    except ValueError:
        return None
    if not (math.isfinite(rate_hz) and MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ):
        return None
    if limit is not None and not 1 <= limit <= MAX_STREAM_LIMIT:
        return None
    return rate_hz, limit


class FrontApp:
    """Readings from ``cache``, ``/stream`` from ``fan_out``, everything else forwarded through ``client``."""

    def __init__(self, client: httpx.AsyncClient, max_age_s: float,
                 monotonic: Callable[[], float] = time.monotonic, rejections: Counter[str] | None = None) -> None:
        self.client = client
        self.monotonic = monotonic
        self.cache = ViewCache(self._fetch, max_age_s, monotonic)
        self.fan_out = StreamFanOut(self._open_upstream)
        #: Requests forwarded to the controller (tests and benchmarks count them).
        self.forwarded = 0
        self.metrics = FrontMetrics(FrontCounts(
            rejections if rejections is not None else Counter(), forwarded=lambda: self.forwarded,
            fetches=lambda: sum(self.cache.fetches.values()), upstream_streams=lambda: int(self.fan_out.upstream_open)))

    async def _fetch(self, path: str) -> Reading:
        response = await self.client.get(path)
        return Reading(status_code=response.status_code,
                       content_type=response.headers.get("content-type", "application/json").encode("latin-1"),
                       body=response.content, fetched_s=self.monotonic())

    async def _open_upstream(self, rate_hz: float) -> AsyncIterator[bytes]:
        async with self.client.stream("GET", "/stream", params={"rate": repr(rate_hz)}) as response:
            if response.status_code != 200:
                raise RuntimeError(f"the controller answered /stream with {response.status_code}")
            async for chunk in response.aiter_raw():
                yield chunk

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The controller's ``/metrics`` with the front's own counters after it (``ccs_api_front_*``)."""
        self.forwarded += 1
        try:
            answer = await self.client.get(METRICS_PATH)
        except httpx.TransportError:
            await send_error(send, SERVICE_UNAVAILABLE, "the controller is not reachable from the API front; retry")
            return
        body = answer.content + self.metrics.render() if answer.status_code == 200 else answer.content
        media_type = answer.headers.get("content-type", "text/plain")
        await Response(body, status_code=answer.status_code, headers={"content-type": media_type})(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan work; no websocket routes
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in CACHED_READINGS and not scope.get("query_string"):
            reading = await self.cache.get(path)
            await Response(reading.body, status_code=reading.status_code,
                           headers={"content-type": reading.content_type.decode("latin-1")})(scope, receive, send)
            return
        if method == "GET" and path == "/stream" and not self.fan_out.closing:
            query = stream_query(scope.get("query_string", b""))
            if query is not None:
                events = self.fan_out.subscribe(*query)
                await StreamingResponse(events, media_type="text/event-stream",
                                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                        )(scope, receive, send)
                return
        if method == "GET" and path == METRICS_PATH and not scope.get("query_string"):
            await self._metrics(scope, receive, send)
            return
        self.forwarded += 1
        try:
            await forward(self.client, scope, receive, send)
        finally:
            if method.upper() not in READ_METHODS:
                self.cache.invalidate()  # the command's effect shows in the next reading


def create_front_app(settings: ControllerSettings, client: httpx.AsyncClient,
                     monotonic: Callable[[], float] = time.monotonic) -> tuple[ASGIApp, FrontApp]:
    """The front for a controller with ``settings`` reached through ``client``: (the ASGI app to serve, its core).
    Checks as the controller's own app makes them: rate first (a flood is answered 429 before anything reads
    it), then access (Host, token, body size, cross-site guard)."""
    # One control period of wall time (a scaled clock's ticks come ``speed`` times as often).
    policy = AccessPolicy(lambda: settings.api_token, allowed_hosts_provider=lambda: settings.allowed_hosts)
    front = FrontApp(client, max_age_s=settings.control_period_s / settings.speed, monotonic=monotonic,
                     rejections=policy.rejections)
    checked: ASGIApp = AccessControlMiddleware(front, policy)
    limited: ASGIApp = RateLimitMiddleware(checked, RateLimiter(lambda: settings, rejections=policy.rejections))
    return limited, front
