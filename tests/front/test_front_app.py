"""The API front (``ccs_sim.front``): readings from a copy at most one control period old and dropped by every
command it forwards, forwarding with the client's address, access and rate checks at the front, one upstream
``/stream`` per pace fanned out, and the controller's app trusting only what arrived through the front's socket.

The controller here is a small fake app (it counts what reaches it) reached through ``httpx.ASGITransport``; the
front's clock is injected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ccs_sim.front.app import create_front_app, stream_query
from ccs_sim.front.stream_fan_out import StreamFanOut
from ccs_sim.http.access import AccessControlMiddleware, AccessPolicy
from ccs_sim.http.rate_limit import RateLimiter, RateLimitMiddleware
from ccs_sim.http.trusted_front import FrontCheckedApp, checked_by_front
from ccs_sim.settings import ControllerSettings

CONTROL_PERIOD_S = 0.01


class FakeController:
    """What reaches the controller's app: GET /status (its phase), POST /stop_session (sets phase COMPLETE)."""

    def __init__(self) -> None:
        self.phase = "CHARGING"
        self.requests: list[tuple[str, str, dict[str, str], bytes, Any]] = []
        self.status_gate: asyncio.Event | None = None
        self.status_code = 200

    def app(self) -> Starlette:
        async def status(request: Request) -> Response:
            self.requests.append(("GET", "/status", dict(request.headers), b"", request.client))
            if self.status_gate is not None:
                await self.status_gate.wait()
            return JSONResponse({"phase": self.phase}, status_code=self.status_code)

        async def stop_session(request: Request) -> Response:
            body = await request.body()
            self.requests.append(("POST", "/stop_session", dict(request.headers), body, request.client))
            self.phase = "COMPLETE"
            return JSONResponse({"status": "stopped"}, status_code=202)

        async def metrics(request: Request) -> Response:
            return Response(b"ccs_sessions_started_total 3.0\n", media_type="text/plain; version=0.0.4; charset=utf-8")

        return Starlette(routes=[Route("/status", status), Route("/stop_session", stop_session, methods=["POST"]),
                                 Route("/metrics", metrics)])

    def count(self, method: str, path: str) -> int:
        return sum(1 for request in self.requests if request[:2] == (method, path))


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def front_client(settings: ControllerSettings, controller: FakeController, clock: Clock,
                 client_address: str = "192.0.2.7") -> tuple[httpx.AsyncClient, Any]:
    to_controller = httpx.AsyncClient(transport=httpx.ASGITransport(app=controller.app()),
                                      base_url="http://controller")
    app, front = create_front_app(settings, to_controller, monotonic=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client_address, 40000)),
                               base_url="http://127.0.0.1:8000")
    return client, front


def settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, control_period_s=CONTROL_PERIOD_S, **overrides)


async def test_readings_come_from_a_copy_at_most_one_control_period_old() -> None:
    controller, clock = FakeController(), Clock()
    client, front = front_client(settings(), controller, clock)
    answers = [await client.get("/status") for _ in range(5)]
    assert [answer.json() for answer in answers] == [{"phase": "CHARGING"}] * 5
    assert answers[0].headers["content-type"] == "application/json"
    assert controller.count("GET", "/status") == 1  # five reads, one fetch
    clock.now_s += CONTROL_PERIOD_S * 0.9
    await client.get("/status")
    assert controller.count("GET", "/status") == 1
    clock.now_s += CONTROL_PERIOD_S * 0.2  # 1.1 periods after the fetch
    await client.get("/status")
    assert controller.count("GET", "/status") == 2
    assert front.forwarded == 0


async def test_a_forwarded_command_shows_in_the_next_reading_at_once() -> None:
    controller, clock = FakeController(), Clock()
    client, front = front_client(settings(), controller, clock)
    assert (await client.get("/status")).json() == {"phase": "CHARGING"}
    answer = await client.post("/stop_session", json={"reason": "test"})
    assert answer.status_code == 202 and answer.json() == {"status": "stopped"}
    method, path, headers, body, peer = controller.requests[-1]
    assert (method, path, json.loads(body)) == ("POST", "/stop_session", {"reason": "test"})
    assert headers["x-forwarded-for"] == "192.0.2.7"  # the client's address, for the controller's records
    assert headers["host"] == "127.0.0.1:8000"
    # Same instant (the clock did not move): the copy was dropped by the command.
    assert (await client.get("/status")).json() == {"phase": "COMPLETE"}
    assert controller.count("GET", "/status") == 2
    assert front.forwarded == 1


async def test_readers_waiting_together_share_one_fetch_and_a_fetch_begun_before_a_command_is_not_kept() -> None:
    controller, clock = FakeController(), Clock()
    client, front = front_client(settings(), controller, clock)
    controller.status_gate = asyncio.Event()
    readers = [asyncio.create_task(client.get("/status")) for _ in range(10)]
    while controller.count("GET", "/status") < 1:
        await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    assert controller.count("GET", "/status") == 1
    front.cache.invalidate()  # a command went through while the fetch was under way
    controller.status_gate.set()
    answers = [await reader for reader in readers]
    assert [answer.json() for answer in answers] == [{"phase": "CHARGING"}] * 10
    controller.status_gate = None
    await client.get("/status")
    assert controller.count("GET", "/status") == 2  # the pre-command answer was not kept


async def test_an_error_answer_is_passed_on_and_not_kept() -> None:
    controller, clock = FakeController(), Clock()
    client, _ = front_client(settings(), controller, clock)
    controller.status_code = 503
    assert (await client.get("/status")).status_code == 503
    controller.status_code = 200
    assert (await client.get("/status")).status_code == 200
    assert controller.count("GET", "/status") == 2


async def test_the_front_limits_rate_but_never_refuses_a_stop() -> None:
    controller, clock = FakeController(), Clock()
    client, _ = front_client(settings(rate_limit_per_s=1, rate_limit_burst=2), controller, clock)
    codes = [(await client.get("/status")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await client.get("/status")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert (await client.post("/stop_session", json={})).status_code == 202  # a safety command gets through
    assert controller.count("POST", "/stop_session") == 1


async def test_the_front_checks_the_token_and_the_host_before_forwarding() -> None:
    controller, clock = FakeController(), Clock()
    client, front = front_client(settings(api_token="s3cret"), controller, clock)
    assert (await client.post("/stop_session", json={})).status_code == 401
    assert controller.count("POST", "/stop_session") == 0 and front.forwarded == 0
    answer = await client.post("/stop_session", json={}, headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 202
    assert (await client.get("/status", headers={"Host": "evil.example"})).status_code == 421
    assert (await client.get("/status")).status_code == 200  # reads stay open


async def test_metrics_are_the_controllers_with_the_fronts_own_counters_after_them() -> None:
    controller, clock = FakeController(), Clock()
    client, _ = front_client(settings(api_token="s3cret"), controller, clock)
    assert (await client.post("/stop_session", json={})).status_code == 401  # refused at the front
    await client.get("/status")
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert lines[0] == "ccs_sessions_started_total 3.0"
    assert 'ccs_api_front_rejected_requests_total{reason="unauthorized"} 1.0' in lines
    assert "ccs_api_front_reading_fetches_total 1.0" in lines
    assert "ccs_api_front_forwarded_requests_total 1.0" in lines  # this scrape's own request to the controller
    assert "ccs_api_front_upstream_streams 0.0" in lines


async def test_an_unreachable_controller_is_a_503_with_the_apis_error_shape() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no socket", request=request)

    to_controller = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://controller")
    app, _ = create_front_app(settings(), to_controller, monotonic=Clock())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")
    answer = await client.post("/stop_session", json={})
    assert answer.status_code == 503 and answer.json()["status"] == "error"


@pytest.mark.parametrize(("query", "expected"), [
    (b"", (5.0, None)), (b"rate=1", (1.0, None)), (b"rate=20&limit=3", (20.0, 3)),
    (b"rate=0.1", None), (b"rate=21", None), (b"rate=nan", None), (b"limit=0", None), (b"limit=x", None),
    (b"rate=1&rate=2", None), (b"other=1", None),
])
def test_stream_queries_the_front_serves_itself(query: bytes, expected: tuple[float, int | None] | None) -> None:
    assert stream_query(query) == expected  # anything else goes to the controller, which answers 422


# --- one upstream /stream for every subscriber, each paced on its own -----------------------------------------
class FakeUpstream:
    """The controller's /stream as the front reads it: chunks put by the test; records the pace asked for."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.rates: list[float] = []
        self.open = False

    async def open_upstream(self, rate_hz: float) -> AsyncIterator[bytes]:
        self.rates.append(rate_hz)
        self.open = True
        try:
            while (chunk := await self.queue.get()) is not None:
                yield chunk
        finally:
            self.open = False

    def send(self, seq: int, phase: str, split_at: int = 0) -> None:
        event = (f"id: {seq}\nevent: snapshot\ndata: " + json.dumps({"seq": seq, "phase": phase},
                                                                    separators=(",", ":")) + "\n\n").encode()
        if split_at:
            self.queue.put_nowait(event[:split_at])
            self.queue.put_nowait(event[split_at:])
        else:
            self.queue.put_nowait(event)


class WallClock:
    """Injected monotonic time for the subscribers' pacing; ``sleep`` moves it (and lets other tasks run)."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.slept_s: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)


def parse(event: str) -> dict[str, Any]:
    fields = dict(line.split(": ", 1) for line in event.strip().split("\n"))
    return {**fields, "data": json.loads(fields["data"])}


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_subscribers_share_one_upstream_each_paced_and_numbered_on_its_own() -> None:
    upstream, clock = FakeUpstream(), WallClock()
    fan_out = StreamFanOut(upstream.open_upstream, sleep=clock.sleep, monotonic=clock)
    five_per_s = fan_out.subscribe(5.0, None)
    waiting = asyncio.create_task(anext(five_per_s))
    await settle()
    assert upstream.rates == [20.0]  # one upstream at the highest pace: the newest snapshot ≤ 50 ms old
    upstream.send(41, "PRECHARGE", split_at=17)  # an event split across chunks
    assert parse(await waiting) == {"retry": "2000", "id": "1", "event": "snapshot",
                                    "data": {"seq": 1, "phase": "PRECHARGE"}}  # the first at once
    one_per_s = fan_out.subscribe(1.0, 2)
    assert parse(await anext(one_per_s))["data"] == {"seq": 1, "phase": "PRECHARGE"}
    upstream.send(42, "CHARGING")
    await settle()
    started_s = clock.now_s
    assert parse(await anext(five_per_s)) == {"id": "2", "event": "snapshot", "data": {"seq": 2, "phase": "CHARGING"}}
    assert clock.now_s - started_s == pytest.approx(0.2)  # its own pace: 1 / 5 Hz after its first
    assert parse(await anext(one_per_s))["data"] == {"seq": 2, "phase": "CHARGING"}
    with pytest.raises(StopAsyncIteration):  # its limit of 2
        await anext(one_per_s)
    assert fan_out.opened == 1
    await five_per_s.aclose()  # the last subscriber leaves: the upstream stream is closed
    await settle()
    assert not upstream.open and not fan_out.upstream_open


async def test_a_slow_subscriber_gets_the_newest_snapshot_and_ends_with_the_upstream() -> None:
    upstream, clock = FakeUpstream(), WallClock()
    fan_out = StreamFanOut(upstream.open_upstream, sleep=clock.sleep, monotonic=clock)
    slow = fan_out.subscribe(5.0, None)
    waiting = asyncio.create_task(anext(slow))
    await settle()
    upstream.send(1, "A")
    assert parse(await waiting)["data"]["phase"] == "A"
    for seq, phase in ((2, "B"), (3, "C"), (4, "D")):
        upstream.send(seq, phase)
    await settle()
    assert parse(await anext(slow))["data"] == {"seq": 2, "phase": "D"}  # not B: no backlog
    upstream.queue.put_nowait(None)  # the controller ended its stream (shutting down)
    await settle()
    with pytest.raises(StopAsyncIteration):
        await anext(slow)


# --- the controller's side: what the front checked is trusted, nothing else ------------------------------------
async def test_the_controllers_app_trusts_only_requests_through_the_front_socket() -> None:
    seen: list[tuple[bool, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((checked_by_front(scope), scope.get("client")))
        await Response(b"ok")(scope, receive, send)

    policy = AccessPolicy(lambda: "s3cret")
    limiter = RateLimiter(lambda: settings(rate_limit_per_s=1, rate_limit_burst=1))
    app = RateLimitMiddleware(AccessControlMiddleware(inner, policy), limiter)
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
    through_front = httpx.AsyncClient(transport=httpx.ASGITransport(app=FrontCheckedApp(app)),
                                      base_url="http://127.0.0.1")
    assert (await direct.post("/stop_session")).status_code == 401  # no token, not through the front
    for _ in range(3):  # no token and above the rate: the front checked both already
        answer = await through_front.post("/stop_session", headers={"X-Forwarded-For": "198.51.100.4"})
        assert answer.status_code == 200
    assert seen == [(True, ("198.51.100.4", 0))] * 3
