"""``ccs-sim serve --ocpp-url ... --ocpp-station-id CS1``: a real served process boots against the test CSMS on
loopback; without ``--ocpp-url`` nothing connects, GET /ocpp says disabled and nothing OCPP is imported."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from csms import TestCsms

from served_process import free_port, stop_process, wait_until_serving

START_TIMEOUT_S = 30.0


async def serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1", "--port",
                                    str(port), "--data-dir", str(tmp_path / "data"), *extra],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    base_url = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_until_serving, process, f"{base_url}/health", START_TIMEOUT_S, log_path.read_text)
    return process, base_url


async def poll_ocpp(http: httpx.AsyncClient, until, timeout_s: float = 10.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        view = (await http.get("/ocpp")).json()
        if until(view) or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(0.05)


async def test_serve_with_ocpp_url_boots_against_the_csms(tmp_path: Path) -> None:
    async with TestCsms("1.6", boot_responses=[("Accepted", 300)]) as csms:
        process, base_url = await serve(tmp_path, "--ocpp-url", csms.url, "--ocpp-station-id", "CS1")
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
                view = await poll_ocpp(http, lambda v: v.get("connection") == "booted")
                assert view["enabled"] is True and view["boot_status"] == "Accepted", view
                assert view["version"] == "1.6" and view["url"] == csms.url + "/CS1"
                await csms.wait_for(lambda: csms.calls_received("StatusNotification"))
                assert [f.action for f in csms.calls_received()][:2] == ["BootNotification", "StatusNotification"]
                metrics = (await http.get("/metrics")).text
                assert 'ccs_ocpp_frames_sent_total{action="BootNotification",type="CALL"} 1' in metrics
            assert csms.violations == []
        finally:
            await asyncio.to_thread(stop_process, process)
        assert (tmp_path / "data" / "ocpp" / "no-session.jsonl").exists()


async def test_serve_without_ocpp_url_connects_nowhere(tmp_path: Path) -> None:
    async with TestCsms("1.6") as csms:
        process, base_url = await serve(tmp_path)
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
                assert (await http.get("/ocpp")).json() == {"enabled": False}
                await asyncio.sleep(0.3)
            assert csms.frames == [] and csms.connections == []
        finally:
            await asyncio.to_thread(stop_process, process)


def test_an_app_without_ocpp_imports_neither_ocpp_nor_websockets() -> None:
    probe = ("import sys; from ccs_sim.fastapi_app import create_app; create_app(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ocpp', 'websockets') "
             "or m.startswith('ccs_sim.ocpp.') and m not in ('ccs_sim.ocpp.routes',)))")
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60,
                            check=True).stdout
    assert output.strip() == "[]"


def test_a_wrong_ocpp_setting_refuses_to_serve_in_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    result = subprocess.run([sys.executable, "-m", "ccs_sim.cli", "serve", "--port", str(free_port()),
                             "--ocpp-url", "http://127.0.0.1:1/ocpp", "--ocpp-station-id", "CS1"],
                            capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ccs-sim: OCPP url 'http://127.0.0.1:1/ocpp': expected ws://host[:port]/path or wss://..."]
