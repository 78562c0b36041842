"""Per-client request rate limit and cap on open event streams: HTTP 429 before any route work.

Policy (README "Security"):

- Each client address has a token bucket: ``rate_limit_burst`` requests at once, refilled at
  ``rate_limit_per_s`` per second. A request finding the bucket empty is answered 429 Too Many Requests
  (RFC 6585 §4) in the API's error shape with ``Retry-After`` (RFC 9110 §10.2.3, whole seconds) before it
  reaches a route. A long-lived ``GET /stream`` costs one request, like any other.
- At most ``max_streams_per_client`` ``GET /stream`` responses may be open per client address at once; one
  more is answered 429 (the client must close one first).
- ``POST /stop_session`` and ``POST /fault`` (``SAFETY_COMMANDS``) are never refused for rate: a stop must get
  through whatever floods from the same address.
- ``rate_limit_per_s = 0`` turns both off; ``max_streams_per_client = 0`` turns the stream cap off alone.
- A client is its address; IPv6 clients by their /64 (one host usually holds a whole /64), an IPv4-mapped IPv6
  address as the IPv4 one. Refusals are counted in ``/metrics`` as
  ``ccs_api_rejected_requests_total{reason="rate_limited"|"too_many_streams"}``.

The defaults (500/s sustained, a burst of 2000, 16 streams) sit far above what a dashboard, monitoring or a
script polling ``/status`` at 20 Hz asks, and above the test suite's busiest client (1365 requests from one
client to one app within about one second, in tests/core), yet cut a flood (``ab -c 20`` asks ~3000/s) to the
sustained rate once the burst is spent.

In-house rather than ``slowapi``: slowapi limits inside routing (each route decorated, a ``request``
argument in every signature), so a refused request has already been routed, and it keeps time with the wall
clock of its ``limits`` storage; neither has a cap on concurrent responses. A token bucket is a few lines with
an injectable monotonic clock (tests move it without sleeping).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from ccs_sim.http.access import ASGIApp, Receive, Scope, Send, send_error
from ccs_sim.http.trusted_front import checked_by_front

#: RFC 6585 §4.
TOO_MANY_REQUESTS = 429
#: Commands that only make the charger safer (end the session, shut the output down): never refused for rate, so
#: an operator's stop or fault gets through whatever floods from the same address; they still count in the bucket.
SAFETY_COMMANDS = frozenset({("POST", "/stop_session"), ("POST", "/fault")})
#: Paths whose GET responses are long-lived event streams (capped per client while open).
STREAM_PATHS = frozenset({"/stream"})
#: What a client refused for too many open streams is told to wait (s): until one of its streams ended.
STREAM_RETRY_AFTER_S = 5
#: Buckets kept before idle ones (refilled, no stream open) are forgotten; the oldest go first if none is idle.
MAX_TRACKED_CLIENTS = 4096
#: IPv6 clients are counted per network of this prefix length (RFC 4291 §2.5.4: a host's /64).
IPV6_CLIENT_PREFIX = 64


class RateLimitSettings(Protocol):
    """What the limiter reads (``ControllerSettings`` has these fields), at each request."""

    rate_limit_per_s: float
    rate_limit_burst: int
    max_streams_per_client: int


class Bucket:
    __slots__ = ("tokens", "updated_s", "open_streams")

    def __init__(self, tokens: float, updated_s: float) -> None:
        self.tokens = tokens
        self.updated_s = updated_s
        self.open_streams = 0


def client_key(scope: Scope) -> str:
    """The client a request counts against: its address (IPv6: its /64)."""
    client = scope.get("client")
    host = client[0] if client else None
    if not host:
        return "unknown"
    if ":" not in host:
        return str(host)
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return str(host)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


class RateLimiter:
    """The buckets and open-stream counts per client, on ``clock`` (monotonic seconds; tests inject one)."""

    def __init__(self, settings_provider: Callable[[], RateLimitSettings], rejections: Counter[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings_provider = settings_provider
        #: Refusals by reason (shared with the access policy's, which ``/metrics`` reports).
        self.rejections: Counter[str] = rejections if rejections is not None else Counter()
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def _bucket(self, key: str, burst: float, now_s: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_CLIENTS:
                self._forget_idle(now_s)
            bucket = self.buckets[key] = Bucket(burst, now_s)
        return bucket

    def _forget_idle(self, now_s: float) -> None:
        settings = self.settings_provider()
        rate, burst = settings.rate_limit_per_s, settings.rate_limit_burst
        idle = [key for key, bucket in self.buckets.items()
                if bucket.open_streams == 0 and bucket.tokens + (now_s - bucket.updated_s) * rate >= burst]
        if not idle:  # every client is busy: forget the longest unseen without an open stream
            idle = sorted((key for key, bucket in self.buckets.items() if bucket.open_streams == 0),
                          key=lambda key: self.buckets[key].updated_s)[:max(1, len(self.buckets) // 8)]
        for key in idle:
            del self.buckets[key]

    def take(self, key: str, rate_per_s: float, burst: int) -> float | None:
        """Spend one token of ``key``'s bucket: None if there was one, else the seconds until there is."""
        now_s = self.clock()
        bucket = self._bucket(key, burst, now_s)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now_s - bucket.updated_s) * rate_per_s)
        bucket.updated_s = now_s
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate_per_s

    def open_stream(self, key: str, cap: int) -> bool:
        """Count one more open stream of ``key`` unless it has ``cap`` open (0: no cap)."""
        bucket = self._bucket(key, self.settings_provider().rate_limit_burst, self.clock())
        if cap > 0 and bucket.open_streams >= cap:
            return False
        bucket.open_streams += 1
        return True

    def close_stream(self, key: str) -> None:
        bucket = self.buckets.get(key)
        if bucket is not None and bucket.open_streams > 0:
            bucket.open_streams -= 1

    def open_streams(self, key: str) -> int:
        bucket = self.buckets.get(key)
        return bucket.open_streams if bucket is not None else 0


class RateLimitMiddleware:
    """ASGI middleware: ``limiter``'s verdict on every HTTP request before the app sees it."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or checked_by_front(scope):  # the front process limited it already
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        settings = limiter.settings_provider()
        rate_per_s = settings.rate_limit_per_s
        if not rate_per_s > 0:
            await self.app(scope, receive, send)
            return
        key = client_key(scope)
        burst = settings.rate_limit_burst
        wait_s = limiter.take(key, rate_per_s, burst)
        if wait_s is not None and (scope["method"], scope["path"]) not in SAFETY_COMMANDS:
            limiter.rejections["rate_limited"] += 1
            retry_after_s = max(1, math.ceil(wait_s))
            await send_error(send, TOO_MANY_REQUESTS,
                             f"too many requests from {key}: at most {rate_per_s:g} per second (bursts of {burst}); "
                             f"retry after {retry_after_s} s",
                             ((b"retry-after", str(retry_after_s).encode()),))
            return
        if scope["path"] not in STREAM_PATHS or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        cap = settings.max_streams_per_client
        if not limiter.open_stream(key, cap):
            limiter.rejections["too_many_streams"] += 1
            await send_error(send, TOO_MANY_REQUESTS,
                             f"too many open event streams from {key}: at most {cap} at once; close one first",
                             ((b"retry-after", str(STREAM_RETRY_AFTER_S).encode()),))
            return
        try:
            await self.app(scope, receive, send)
        finally:
            limiter.close_stream(key)


def document_rate_limit(app: Any) -> None:
    """Add the 429 answer (with its ``Retry-After``) to every operation of the app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema: dict[str, Any] = original()
        answer = {"description": "too many requests from this client (rate limit, or open streams on /stream)",
                  "headers": {"Retry-After": {"description": "seconds to wait before asking again",
                                              "schema": {"type": "integer"}}},
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.setdefault("responses", {}).setdefault(str(TOO_MANY_REQUESTS), answer)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
