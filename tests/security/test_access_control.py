"""API token on state-changing endpoints, open reads, request-size limit, cross-origin guard; the bind rule."""

from __future__ import annotations

from typing import Any, AsyncIterator

import httpx
import pytest

from ccs_sim import cli
from ccs_sim.http.access import AccessPolicy, cross_site, is_loopback_host
from evse_model.clock import ManualClock
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings

TOKEN = "s3cret-token"
STATE_CHANGING = [("/start_session", {}), ("/stop_session", None), ("/control/contactor", {"closed": False}),
                  ("/control/pwm", {"duty": 100}), ("/control/cp_state", {"state": "A"}),
                  ("/fault", {"type": "E_STOP"}), ("/sim/car", {}), ("/sim/plant", {})]
READS = ["/status", "/meter", "/vehicle/bms", "/vehicle/slac", "/vehicle/iso15118", "/faults", "/health",
         "/metrics", "/openapi.json"]


def settings(**overrides: Any) -> ControllerSettings:
    return ControllerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


async def client_for(token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    controller = build_controller(settings(api_token=token), ManualClock())
    await controller.start()
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c
    await controller.shutdown()


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(TOKEN):
        yield client


@pytest.fixture
async def open_api() -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(None):
        yield client


@pytest.mark.parametrize("path,body", STATE_CHANGING)
async def test_state_changing_endpoints_need_the_token(guarded: httpx.AsyncClient, path: str, body: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Token": "wrong"}, {"Authorization": TOKEN},
                    {"Authorization": "Basic " + TOKEN}):
        response = await guarded.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.json()["status"] == "error" and "token" in response.json()["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"authorization": f"bearer {TOKEN}"},
                    {"X-API-Token": TOKEN}):
        response = await guarded.post(path, json=body, headers=headers)
        assert response.status_code in (200, 422), (path, headers, response.text)  # reached the route


async def test_a_rejected_command_changes_nothing(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.post("/start_session", json={})).status_code == 401
    assert (await guarded.get("/status")).json()["session_active"] is False
    started = await guarded.post("/start_session", json={}, headers={"X-API-Token": TOKEN})
    assert started.json()["status"] == "started"


@pytest.mark.parametrize("path", READS)
async def test_reads_stay_open(guarded: httpx.AsyncClient, path: str) -> None:
    assert (await guarded.get(path)).status_code == 200


async def test_without_a_token_commands_are_open(open_api: httpx.AsyncClient) -> None:
    assert (await open_api.post("/control/pwm", json={"duty": 100})).json()["status"] == "ok"


async def test_rejections_are_counted_in_metrics(guarded: httpx.AsyncClient) -> None:
    await guarded.post("/fault", json={"type": "E_STOP"})
    await guarded.post("/fault", content=b"x" * 70_000, headers={"X-API-Token": TOKEN})
    text = (await guarded.get("/metrics")).text
    assert 'ccs_api_rejected_requests_total{reason="unauthorized"} 1' in text
    assert 'ccs_api_rejected_requests_total{reason="too_large"} 1' in text


async def test_oversized_bodies_are_refused_with_413(open_api: httpx.AsyncClient) -> None:
    big = b'{"duty": 50, "pad": "' + b"x" * 70_000 + b'"}'
    response = await open_api.post("/control/pwm", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["status"] == "error"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(40):
            yield b" " * 4096

    response = await open_api.post("/control/pwm", content=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    small = await open_api.post("/control/pwm", json={"duty": 50, "pad": "x" * 1000})
    assert small.json()["status"] == "ok"

    async def small_chunks() -> AsyncIterator[bytes]:
        yield b'{"duty": '
        yield b"42}"

    replayed = await open_api.post("/control/pwm", content=small_chunks(), headers={"content-type": "application/json"})
    assert replayed.json() == {"status": "ok", "duty": 42.0}
    bad = await open_api.post("/control/pwm", content=b"{}", headers={"content-length": "x"})
    assert bad.status_code == 400


async def test_cross_origin_browser_requests_cannot_change_state(open_api: httpx.AsyncClient) -> None:
    forged = await open_api.post("/stop_session", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert (await open_api.post("/stop_session", headers={"Sec-Fetch-Site": "cross-site"})).status_code == 403
    same = await open_api.post("/stop_session", headers={"Origin": "http://127.0.0.1:8000"})
    assert same.status_code == 200
    assert (await open_api.get("/status", headers={"Origin": "http://evil.example"})).status_code == 200


def test_token_comparison_and_helpers() -> None:
    policy = AccessPolicy(lambda: "tok")
    assert policy.authorised({"authorization": "Bearer tok"})
    assert not policy.authorised({"authorization": "Bearer tok2"})
    assert not policy.authorised({"x-api-token": "tök"})
    assert AccessPolicy(lambda: "").authorised({})  # an empty token setting means none
    assert is_loopback_host("127.0.0.5") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("192.168.1.2") and not is_loopback_host("host")
    assert cross_site({"origin": "null", "host": "a"})
    assert not cross_site({"host": "a"})


def test_the_api_binds_to_loopback_by_default() -> None:
    assert settings().host == "127.0.0.1"


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], uvicorn.Server):  # Server.run(self)
            calls.append({"host": args[0].config.host, "port": args[0].config.port})
        else:  # uvicorn.run(app, host=..., port=...)
            calls.append(kwargs)

    def record_front(server_class: Any, app: Any, settings: Any) -> int:  # the default: the front binds the address
        calls.append({"host": settings.host, "port": settings.port, "front_process": True})
        return 0

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.setattr(uvicorn.Server, "run", record)
    monkeypatch.setattr(cli, "serve_with_front_process", record_front)
    for key in ("CCS_SIM_API_TOKEN", "CCS_SIM_HOST", "CCS_SIM_ALLOW_INSECURE_BIND"):
        monkeypatch.delenv(key, raising=False)
    return calls


def test_serve_refuses_a_public_address_without_a_token(fake_uvicorn: list[dict[str, Any]],
                                                         capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    assert cli.main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "without an API token" in capsys.readouterr().err
    assert fake_uvicorn == []


@pytest.mark.parametrize("extra", [["--allow-insecure"], ["--api-token", TOKEN]])
def test_serve_binds_a_public_address_with_a_token_or_the_override(fake_uvicorn: list[dict[str, Any]],
                                                                    extra: list[str], tmp_path: Any) -> None:
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "8123", "--data-dir", str(tmp_path), *extra]) == 0
    assert fake_uvicorn[0]["host"] == "0.0.0.0" and fake_uvicorn[0]["port"] == 8123


def test_serve_defaults_to_loopback(fake_uvicorn: list[dict[str, Any]], tmp_path: Any) -> None:
    assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 0
    assert fake_uvicorn[0]["host"] == "127.0.0.1"


def test_serve_puts_the_api_in_a_front_process_by_default(fake_uvicorn: list[dict[str, Any]], tmp_path: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCS_SIM_API_FRONT_PROCESS", raising=False)
    assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 0
    assert cli.main(["serve", "--data-dir", str(tmp_path), "--no-front-process"]) == 0
    monkeypatch.setenv("CCS_SIM_API_FRONT_PROCESS", "false")
    assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 0
    assert cli.main(["serve", "--data-dir", str(tmp_path), "--front-process"]) == 0
    assert [call.get("front_process", False) for call in fake_uvicorn] == [True, False, False, True]
