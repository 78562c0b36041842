"""OcppClient for a controller: StatusNotification once booted, GET /ocpp, the frame log beside the V2G log,
the Prometheus counters; and GET /ocpp when OCPP is off."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from csms import TestCsms
from fastapi import FastAPI
from link_rig import VERSIONS, controller_for, make_config, wait_booted

from ccs_sim.observability.metrics import ControllerMetrics
from ccs_sim.ocpp.client import OcppClient
from ccs_sim.ocpp.routes import router


def app_with(operations: object) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.operations = operations
    return app


async def get_json(app: FastAPI, path: str) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get(path)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("version", VERSIONS)
async def test_booted_client_sends_the_connector_status_and_shows_itself(tmp_path: Path, version: str) -> None:
    async with TestCsms(version, boot_responses=[("Accepted", 1000)]) as csms:
        controller = controller_for(tmp_path)
        client = OcppClient(controller, make_config(csms, version), protocol_second_s=0.01)
        metrics = ControllerMetrics(controller)
        metrics.extra_families.append(client.write_metrics)
        await client.start()
        try:
            await wait_booted(client.link)
            status = (await csms.wait_for(lambda: csms.calls_received("StatusNotification")))[0]
            if version == "1.6":
                assert status.payload["connectorId"] == 1 and status.payload["status"] == "Available"
                assert status.payload["errorCode"] == "NoError"
            else:
                assert (status.payload["evseId"], status.payload["connectorId"]) == (1, 1)
                assert status.payload["connectorStatus"] == "Available"
            assert [frame.action for frame in csms.calls_received()][:2] == ["BootNotification", "StatusNotification"]
            await csms.wait_for(lambda: any(frame["action"] == "StatusNotification" and frame["direction"] == "received"
                                            for frame in client.frame_log.recent))

            view = await get_json(app_with(SimpleNamespace(ocpp=client)), "/ocpp")
            assert view["enabled"] is True and view["version"] == version
            assert view["url"] == csms.url + "/CS1" and view["station_id"] == "CS1"
            assert view["connection"] == "booted" and view["boot_status"] == "Accepted"
            assert view["heartbeat_interval_s"] == 1000
            assert view["queue_depth"] == 0 and view["composite_limit"] is None
            actions = [(frame["direction"], frame["type"], frame["action"]) for frame in view["last_frames"]]
            assert actions[:4] == [("sent", "CALL", "BootNotification"), ("received", "CALLRESULT", "BootNotification"),
                                   ("sent", "CALL", "StatusNotification"),
                                   ("received", "CALLRESULT", "StatusNotification")]
            assert "password" not in json.dumps(view)

            lines = [json.loads(line) for line in (tmp_path / "ocpp" / "no-session.jsonl").read_text().splitlines()]
            assert [line["action"] for line in lines][:2] == ["BootNotification", "BootNotification"]
            assert lines[0]["direction"] == "sent" and lines[0]["payload"] == csms.calls_received()[0].payload

            text = metrics.render()
            assert 'ccs_ocpp_frames_sent_total{action="BootNotification",type="CALL"} 1' in text
            assert 'ccs_ocpp_frames_received_total{action="StatusNotification",type="CALLRESULT"} 1' in text
            assert "# TYPE ccs_ocpp_errors_total counter" in text
            assert csms.violations == []
        finally:
            await client.stop()
        assert client.link.state.connection == "stopped"


def test_frames_of_a_session_go_to_the_session_file(tmp_path: Path) -> None:
    from ccs_sim.ocpp.frame_log import FrameLog

    session = {"id": None}
    log = FrameLog(tmp_path / "ocpp", lambda: session["id"])
    log.record("sent", 2, "1", "Heartbeat", {})
    session["id"] = "abc123"
    log.record("sent", 2, "2", "StatusNotification", {"connectorId": 1})
    log.record("received", 4, "2", "StatusNotification", {"code": "InternalError", "description": "", "details": {}})
    log.close()
    assert len((tmp_path / "ocpp" / "no-session.jsonl").read_text().splitlines()) == 1
    in_session = [json.loads(line) for line in (tmp_path / "ocpp" / "abc123.jsonl").read_text().splitlines()]
    assert [(line["type"], line["action"]) for line in in_session] == [("CALL", "StatusNotification"),
                                                                      ("CALLERROR", "StatusNotification")]
    assert log.errors["callerror_received"] == 1


async def test_get_ocpp_says_disabled_without_a_client() -> None:
    assert await get_json(app_with(SimpleNamespace(ocpp=None)), "/ocpp") == {"enabled": False}
    assert await get_json(app_with(None), "/ocpp") == {"enabled": False}


async def test_the_links_times_are_on_the_controllers_clock(tmp_path: Path) -> None:
    """GET /ocpp's last heartbeat is a time of the controller's clock (the manual clock starts on 2026-01-01), like
    the frames': in a sped-up simulation the two agree."""
    async with TestCsms("2.0.1", boot_responses=[("Accepted", 1)]) as csms:
        controller = controller_for(tmp_path)
        client = OcppClient(controller, make_config(csms, "2.0.1"), protocol_second_s=0.01)
        await client.start()
        try:
            await wait_booted(client.link)
            await csms.wait_for(lambda: csms.calls_received("Heartbeat"))
            await csms.wait_for(lambda: client.link.state.last_heartbeat_at is not None)
            view = await get_json(app_with(SimpleNamespace(ocpp=client)), "/ocpp")
            heartbeat_at = datetime.fromisoformat(view["last_heartbeat_at"])
            assert heartbeat_at == controller.clock.utcnow()  # the manual clock has not moved
            assert heartbeat_at.date() == datetime.fromisoformat(view["last_frames"][-1]["at"]).date()
        finally:
            await client.stop()
