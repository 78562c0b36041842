"""Bad input at the API's edge (issue 10, item 8): unpaired UTF-16 surrogates in JSON bodies, and DNS rebinding.

- A JSON string may carry ``\\ud800`` (an escape for half a UTF-16 pair): Python decodes it to a lone surrogate,
  which no UTF-8 encoder (response, log, sqlite) accepts. Every POST route answers 422 in the API's error shape,
  and the command never reaches the controller.
- DNS rebinding: a page on ``rebind.evil.example`` whose name is re-pointed to 127.0.0.1 talks to the charger
  as "same origin" (its ``Origin`` matches its ``Host``). The ``Host`` header names the attacker's domain, so
  every request (reads too: the dashboard and ``/stream`` show the charger's state) whose ``Host`` is not a name
  of this server is refused with 421 Misdirected Request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import typing
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from evse_model.clock import ManualClock
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings

LONE_SURROGATE_JSON = json.dumps("\ud800")  # '"\\ud800"': the six-character JSON escape, not UTF-8 bytes
LOW_SURROGATE_JSON = json.dumps("\udc00")
REBIND_HOST = "rebind.evil.example"
PORT = 8000
#: What the controller does for each command; a refused request must call none of them.
COMMANDS = ("start_session", "request_stop", "set_contactor", "set_pwm_duty", "set_cp_state", "raise_fault",
            "tick_now")


def settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


class Rig:
    def __init__(self, app: Any, controller: Any, client: httpx.AsyncClient) -> None:
        self.app, self.controller, self.client = app, controller, client
        self.calls: list[str] = []
        for name in COMMANDS:
            original = getattr(controller, name)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                self.calls.append(_name)
                return _original(*args, **kwargs)

            setattr(controller, name, spy)


async def rig_for(**overrides: Any) -> AsyncIterator[Rig]:
    controller = build_controller(settings(**overrides), ManualClock())
    await controller.start()
    app = create_app(controller)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is a response here, not a raise
    async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{PORT}") as client:
        yield Rig(app, controller, client)
    await controller.shutdown()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for made in rig_for():
        yield made


def post_routes(app: Any) -> list[APIRoute]:
    return [route for route in app.routes if isinstance(route, APIRoute) and "POST" in route.methods]


def surrogate_bodies(route: APIRoute, escape: str) -> list[bytes]:
    """The surrogate in each field the route reads (where validation would echo it back) and in an extra,
    ignored field (where it would pass validation and the command would run)."""
    annotation = route.body_field.field_info.annotation if route.body_field is not None else None
    models = [arg for arg in (typing.get_args(annotation) or (annotation,))
              if isinstance(arg, type) and issubclass(arg, BaseModel)]
    fields = [name for model in models for name in model.model_fields]
    assert fields or route.body_field is None, route.path
    bodies = [f'{{"{field}": {escape}}}' for field in fields]
    bodies.append(f'{{"note": {escape}}}')
    bodies.append(f'{{{escape}: 1}}')  # in a key
    return [body.encode("ascii") for body in bodies]


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]
    return body


async def test_every_post_route_answers_422_to_a_lone_surrogate_and_runs_nothing(rig: Rig) -> None:
    routes = post_routes(rig.app)
    assert {"/start_session", "/stop_session", "/fault", "/control/pwm", "/control/contactor",
            "/control/cp_state", "/sim/car", "/sim/speed", "/sim/plant"} <= {route.path for route in routes}
    for route in routes:
        for escape in (LONE_SURROGATE_JSON, LOW_SURROGATE_JSON):
            for body in surrogate_bodies(route, escape):
                response = await rig.client.post(route.path, content=body,
                                                 headers={"content-type": "application/json"})
                error = assert_error(response, 422)
                assert "surrogate" in error["message"], (route.path, body, error)
    assert rig.calls == []
    status = (await rig.client.get("/status")).json()
    assert status["session_active"] is False


async def test_a_surrogate_sent_as_utf8_bytes_is_refused_too(rig: Rig) -> None:
    # json.loads(bytes) decodes with 'surrogatepass', so the three bytes ED A0 80 become the same lone surrogate
    for path, body in (("/control/pwm", b'{"duty": 50, "note": "\xed\xa0\x80"}'),
                       ("/fault", b'{"type": "\xed\xa0\x80"}')):
        response = await rig.client.post(path, content=body, headers={"content-type": "application/json"})
        assert_error(response, 422)
    assert rig.calls == []


async def test_a_valid_surrogate_pair_is_ordinary_text(rig: Rig) -> None:
    """Only unpaired halves are refused: a correct pair is one character (here U+1F600) and passes the guard."""
    response = await rig.client.post("/control/pwm", content=b'{"duty": 40, "note": "\\ud83d\\ude00"}',
                                     headers={"content-type": "application/json"})
    assert response.json() == {"status": "ok", "duty": 40.0}
    refused = await rig.client.post("/control/pwm", content=b'{"duty": 40, "note": "\\ude00\\ud83d"}',
                                    headers={"content-type": "application/json"})
    assert_error(refused, 422)  # reversed halves: two lone surrogates


async def test_lone_surrogates_are_counted_in_metrics(rig: Rig) -> None:
    await rig.client.post("/fault", content=f'{{"type": {LONE_SURROGATE_JSON}}}'.encode(),
                          headers={"content-type": "application/json"})
    text = (await rig.client.get("/metrics")).text
    assert 'ccs_api_rejected_requests_total{reason="invalid_text"} 1' in text


REBIND_REQUESTS = [("POST", "/stop_session"), ("POST", "/start_session"), ("POST", "/fault"),
                   ("GET", "/status"), ("GET", "/"), ("GET", "/dashboard/snapshot"), ("GET", "/stream"),
                   ("GET", "/sessions"), ("GET", "/metrics"), ("GET", "/openapi.json")]


async def test_a_rebound_host_is_refused_with_421_on_every_request(rig: Rig) -> None:
    for method, path in REBIND_REQUESTS:
        headers = {"Host": f"{REBIND_HOST}:{PORT}", "Origin": f"http://{REBIND_HOST}:{PORT}"}
        body = {"type": "E_STOP"} if path == "/fault" else None
        response = await rig.client.request(method, path, headers=headers, json=body)
        error = assert_error(response, 421)
        assert REBIND_HOST in error["message"] and "CCS_SIM_ALLOWED_HOSTS" in error["message"]
    for host in (REBIND_HOST, f"{REBIND_HOST}.", f"127.0.0.1.{REBIND_HOST}", "localhost.evil.example",
                 f"127.0.0.1:{PORT}@{REBIND_HOST}", ""):
        assert (await rig.client.post("/stop_session", headers={"Host": host})).status_code in (400, 421), host
    assert rig.calls == []
    text = (await rig.client.get("/metrics")).text
    assert 'ccs_api_rejected_requests_total{reason="misdirected"}' in text


async def test_loopback_names_and_the_bound_address_are_accepted(rig: Rig) -> None:
    for host in (f"127.0.0.1:{PORT}", "127.0.0.1", f"localhost:{PORT}", "LOCALHOST", f"[::1]:{PORT}"):
        response = await rig.client.get("/status", headers={"Host": host})
        assert response.status_code == 200, host
    same_origin = await rig.client.post("/stop_session", headers={"Host": f"localhost:{PORT}",
                                                                  "Origin": f"http://localhost:{PORT}"})
    assert same_origin.json() == {"status": "error", "message": "No session in progress"}  # reached the route
    assert (await rig.client.get("/status", headers={"Host": REBIND_HOST})).status_code == 421


async def test_names_given_by_configuration_are_accepted() -> None:
    async for configured in rig_for(allowed_hosts=["charger.example", "Bay-2.LOCAL"]):
        for host in ("charger.example", f"charger.example:{PORT}", f"bay-2.local:{PORT}"):
            response = await configured.client.get("/status", headers={"Host": host})
            assert response.status_code == 200, host
        refused = await configured.client.get("/status", headers={"Host": "sub.charger.example"})
        assert_error(refused, 421)


def test_allowed_hosts_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCS_SIM_ALLOWED_HOSTS", "charger.example, bay-2.local")
    assert settings().allowed_hosts == ["charger.example", "bay-2.local"]
    monkeypatch.setenv("CCS_SIM_ALLOWED_HOSTS", '["charger.example"]')
    assert settings().allowed_hosts == ["charger.example"]
    monkeypatch.delenv("CCS_SIM_ALLOWED_HOSTS")
    assert settings().allowed_hosts == []


class LoopbackServer:
    """uvicorn on 127.0.0.1 (a socket bound before the thread starts), so ``Host`` meets a real server."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        deadline = time.monotonic() + 10.0
        while not self.server.started:  # waiting for a thread to come up, not for simulated time
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10.0)
        self.socket.close()


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    controller = build_controller(settings(), ManualClock())  # not started: the routes used only read
    with LoopbackServer(create_app(controller)) as server:
        yield server


def test_a_real_loopback_server_refuses_a_rebound_host(loopback_server: LoopbackServer) -> None:
    url = f"http://127.0.0.1:{loopback_server.port}"
    with httpx.Client(base_url=url, timeout=5.0) as client:
        assert client.get("/faults").status_code == 200
        assert client.get("/faults", headers={"Host": f"localhost:{loopback_server.port}"}).status_code == 200
        rebound = client.post("/stop_session", headers={"Host": f"{REBIND_HOST}:{loopback_server.port}",
                                                        "Origin": f"http://{REBIND_HOST}:{loopback_server.port}"})
        assert_error(rebound, 421)
        assert_error(client.get("/faults", headers={"Host": REBIND_HOST}), 421)
