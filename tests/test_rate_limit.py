"""The per-client rate limit and the cap on open event streams: HTTP 429 in the API's error shape, with
``Retry-After``, before any route work; tokens refill on an injected clock (no sleeping); other clients are
unaffected; ``rate_limit_per_s = 0`` turns it off; refusals are counted in ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ccs_sim.cli import build_parser, serve_settings
from ccs_sim.controller import ChargerController
from ccs_sim.fastapi_app import create_app
from ccs_sim.http.rate_limit import MAX_TRACKED_CLIENTS, RateLimiter, RateLimitMiddleware, client_key
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


class Rig:
    def __init__(self, controller: ChargerController, app: Any, time: FakeMonotonic) -> None:
        self.controller = controller
        self.app = app
        self.time = time
        self.clients: list[httpx.AsyncClient] = []

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
                                   base_url="http://testserver")
        self.clients.append(client)
        return client


async def make_rig(**overrides: Any) -> Rig:
    clock = ManualClock()
    controller = build_controller(settings(**overrides), clock)
    await controller.start()
    app = create_app(controller)
    time = FakeMonotonic()
    app.state.rate_limiter.clock = time
    return Rig(controller, app, time)


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    overrides = getattr(request, "param", {"rate_limit_per_s": 10.0, "rate_limit_burst": 5})
    made = await make_rig(**overrides)
    yield made
    for client in made.clients:
        await client.aclose()
    await made.controller.shutdown()


async def test_the_burst_passes_and_the_next_request_gets_429_with_retry_after(rig: Rig) -> None:
    client = rig.client()
    answers = [await client.get("/status") for _ in range(5)]  # burst 5
    assert [answer.status_code for answer in answers] == [200] * 5
    refused = await client.get("/status")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"  # one token at 10/s: 0.1 s, in whole seconds (at least 1)
    body = refused.json()
    assert body["status"] == "error" and "too many requests" in body["message"] and "10 per second" in body["message"]


async def test_tokens_refill_at_the_rate_on_the_injected_clock(rig: Rig) -> None:
    client = rig.client()
    for _ in range(5):
        assert (await client.get("/meter")).status_code == 200
    assert (await client.get("/meter")).status_code == 429
    rig.time.now_s += 0.1  # one token at 10/s
    assert (await client.get("/meter")).status_code == 200
    assert (await client.get("/meter")).status_code == 429
    rig.time.now_s += 0.35  # three and a half tokens
    assert [(await client.get("/meter")).status_code for _ in range(4)] == [200, 200, 200, 429]
    rig.time.now_s += 60.0  # refills up to the burst, not beyond
    assert [(await client.get("/meter")).status_code for _ in range(6)] == [200] * 5 + [429]


@pytest.mark.parametrize("rig", [{"rate_limit_per_s": 0.5, "rate_limit_burst": 1}], indirect=True)
async def test_retry_after_says_when_the_next_token_comes(rig: Rig) -> None:
    client = rig.client()
    assert (await client.get("/status")).status_code == 200
    refused = await client.get("/status")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"  # 1 token at 0.5/s
    rig.time.now_s += 1.5
    refused = await client.get("/status")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"  # 0.75 token: 0.5 s more, ceil
    rig.time.now_s += 0.5
    assert (await client.get("/status")).status_code == 200


async def test_a_refused_request_does_no_route_work(rig: Rig) -> None:
    client = rig.client()
    for _ in range(5):
        await client.get("/health")
    refused = await client.post("/start_session", json={"duration_s": 5})
    assert refused.status_code == 429
    assert rig.controller.session is None and not rig.controller.session_active


async def test_another_client_is_unaffected(rig: Rig) -> None:
    first, second = rig.client("127.0.0.1"), rig.client("127.0.0.2")
    for _ in range(5):
        await first.get("/status")
    assert (await first.get("/status")).status_code == 429
    assert [(await second.get("/status")).status_code for _ in range(5)] == [200] * 5
    assert (await second.get("/status")).status_code == 429


async def test_refusals_are_counted_in_metrics(rig: Rig) -> None:
    client = rig.client()
    statuses = [(await client.get("/status")).status_code for _ in range(8)]
    assert statuses.count(429) == 3
    metrics = (await rig.client("127.0.0.9").get("/metrics")).text
    assert 'ccs_api_rejected_requests_total{reason="rate_limited"} 3.0' in metrics


@pytest.mark.parametrize("rig", [{"rate_limit_per_s": 0.0, "rate_limit_burst": 1, "max_streams_per_client": 1}],
                         indirect=True)
async def test_zero_turns_the_limit_off(rig: Rig) -> None:
    client = rig.client()
    assert {(await client.get("/status")).status_code for _ in range(50)} == {200}
    assert not rig.app.state.rate_limiter.buckets  # not even counted


async def test_the_default_passes_the_test_suites_busiest_client() -> None:
    """tests/core's busiest app saw 1365 requests from one client in about one second (measured)."""
    made = await make_rig()
    try:
        defaults = made.controller.settings
        assert defaults.rate_limit_per_s == 500.0 and defaults.rate_limit_burst == 2000
        assert defaults.max_streams_per_client == 16
        client = made.client()
        statuses = [(await client.get("/health")).status_code for _ in range(1365)]  # all at one instant
        assert set(statuses) == {200}
        bucket = made.app.state.rate_limiter.buckets["127.0.0.1"]
        assert bucket.tokens == pytest.approx(2000 - 1365)
    finally:
        for client in made.clients:
            await client.aclose()
        await made.controller.shutdown()


# --- the cap on open event streams ----------------------------------------------------------------------------
async def test_open_streams_beyond_the_cap_get_429_and_a_closed_one_frees_a_place() -> None:
    """Through the middleware with streams held open by a stand-in app (no wall-clock pacing)."""
    time = FakeMonotonic()
    limiter = RateLimiter(lambda: settings(rate_limit_per_s=100.0, rate_limit_burst=100, max_streams_per_client=2),
                          clock=time)
    release = {index: asyncio.Event() for index in range(4)}
    opened: list[int] = []

    async def streaming_app(scope: Any, receive: Any, send: Any) -> None:
        index = int(scope["query_string"])
        opened.append(index)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release[index].wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    middleware = RateLimitMiddleware(streaming_app, limiter)

    def call(index: int, address: str = "127.0.0.1") -> tuple[asyncio.Task[None], list[dict[str, Any]]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "path": "/stream", "query_string": str(index).encode(),
                 "headers": [], "client": (address, 5000 + index)}
        return asyncio.ensure_future(middleware(scope, receive, send)), sent

    first, second = call(0), call(1)
    await asyncio.sleep(0)
    assert opened == [0, 1] and limiter.open_streams("127.0.0.1") == 2
    third_task, third_sent = call(2)
    await third_task  # answered at once
    assert third_sent[0]["status"] == 429 and (b"retry-after", b"5") in third_sent[0]["headers"]
    assert b"too many open event streams" in third_sent[1]["body"] and opened == [0, 1]
    assert limiter.rejections["too_many_streams"] == 1
    other_task, _ = call(3, address="127.0.0.2")  # another client has its own places
    await asyncio.sleep(0)
    assert opened == [0, 1, 3]
    release[0].set()
    await first[0]
    assert limiter.open_streams("127.0.0.1") == 1
    fourth_task, _ = call(2)
    await asyncio.sleep(0)
    assert opened == [0, 1, 3, 2]
    for event in release.values():
        event.set()
    await asyncio.gather(second[0], other_task, fourth_task)
    assert limiter.open_streams("127.0.0.1") == 0 and limiter.open_streams("127.0.0.2") == 0


@pytest.mark.parametrize("rig", [{"max_streams_per_client": 2}], indirect=True)
async def test_the_app_answers_a_stream_beyond_the_cap_with_429_in_the_api_shape(rig: Rig) -> None:
    limiter = rig.app.state.rate_limiter
    assert limiter.open_stream("127.0.0.1", 2) and limiter.open_stream("127.0.0.1", 2)  # two streams open
    refused = await rig.client().get("/stream", params={"limit": 1})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert refused.json()["status"] == "error" and "at most 2 at once" in refused.json()["message"]
    answered = await rig.client("127.0.0.3").get("/stream", params={"limit": 1})
    assert answered.status_code == 200 and "event: snapshot" in answered.text
    assert limiter.open_streams("127.0.0.3") == 0  # the stream ended: its place is free again
    metrics = (await rig.client("127.0.0.9").get("/metrics")).text
    assert 'ccs_api_rejected_requests_total{reason="too_many_streams"} 1.0' in metrics


# --- who a client is, and what is kept ------------------------------------------------------------------------
def test_a_client_is_its_address_and_ipv6_clients_their_64() -> None:
    def key(host: str | None) -> str:
        return client_key({"client": (host, 1) if host else None})

    assert key("10.1.2.3") == "10.1.2.3"
    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:10.1.2.3") == "10.1.2.3"
    assert key(None) == "unknown"


def test_idle_clients_are_forgotten_so_the_table_stays_bounded() -> None:
    time = FakeMonotonic()
    limiter = RateLimiter(lambda: settings(rate_limit_per_s=10.0, rate_limit_burst=5), clock=time)
    for index in range(MAX_TRACKED_CLIENTS + 500):
        assert limiter.take(f"10.{index // 65536}.{index // 256 % 256}.{index % 256}", 10.0, 5) is None
        time.now_s += 0.001
    assert len(limiter.buckets) <= MAX_TRACKED_CLIENTS


# --- configuration ----------------------------------------------------------------------------------------------
def test_the_serve_flags_and_the_environment_set_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", "--rate-limit", "0", "--rate-limit-burst", "50",
                                      "--max-streams-per-client", "3"])
    chosen = serve_settings(args)
    assert (chosen.rate_limit_per_s, chosen.rate_limit_burst, chosen.max_streams_per_client) == (0.0, 50, 3)
    monkeypatch.setenv("CCS_SIM_RATE_LIMIT_PER_S", "25")
    monkeypatch.setenv("CCS_SIM_RATE_LIMIT_BURST", "40")
    monkeypatch.setenv("CCS_SIM_MAX_STREAMS_PER_CLIENT", "0")
    from_environment = settings()
    assert (from_environment.rate_limit_per_s, from_environment.rate_limit_burst,
            from_environment.max_streams_per_client) == (25.0, 40, 0)


async def test_429_is_documented_on_every_operation(rig: Rig) -> None:
    schema = (await rig.client("127.0.0.9").get("/openapi.json")).json()
    operations = [operation for item in schema["paths"].values() for operation in item.values()]
    assert operations and all("429" in operation["responses"] for operation in operations)
    assert "Retry-After" in schema["paths"]["/status"]["get"]["responses"]["429"]["headers"]


async def test_a_stop_and_a_fault_get_through_a_client_over_its_rate(rig: Rig) -> None:
    client = rig.client()
    assert [(await client.get("/status")).status_code for _ in range(6)] == [200] * 5 + [429]  # burst 5 spent
    stop = await client.post("/stop_session")
    assert stop.status_code != 429 and "too many requests" not in stop.text
    fault = await client.post("/fault", json={"type": "E_STOP"})
    assert fault.status_code != 429 and rig.controller.active_fault is not None
    assert (await client.get("/status")).status_code == 429  # everything else still waits
