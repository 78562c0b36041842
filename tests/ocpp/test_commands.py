"""The CSMS's commands against an in-process station (simulated adapter, manual clock), both versions:
remote start / stop of real sessions, Reset, ChangeAvailability, TriggerMessage, UnlockConnector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from commands_rig import Station, booted_station
from link_rig import VERSIONS
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ccs_sim.fastapi_app import create_app


def transaction_id(station: Station) -> Any:
    if station.client.config.version == "1.6":
        return 1  # the test CSMS's first transactionId
    return station.csms.calls_received("TransactionEvent")[0].payload["transactionInfo"]["transactionId"]


async def remote_start(station: Station) -> Any:
    if station.client.config.version == "1.6":
        return await station.call(call16.RemoteStartTransaction(id_tag="CARD-1", connector_id=1))
    return await station.call(call201.RequestStartTransaction(
        id_token={"id_token": "CARD-1", "type": "ISO14443"}, remote_start_id=42, evse_id=1))


async def remote_stop(station: Station, tx_id: Any) -> Any:
    if station.client.config.version == "1.6":
        return await station.call(call16.RemoteStopTransaction(transaction_id=tx_id))
    return await station.call(call201.RequestStopTransaction(transaction_id=tx_id))


def stop_reason(station: Station) -> str:
    if station.client.config.version == "1.6":
        return str(station.csms.calls_received("StopTransaction")[-1].payload["reason"])
    ended = [f.payload for f in station.csms.calls_received("TransactionEvent") if f.payload["eventType"] == "Ended"]
    return str(ended[-1]["transactionInfo"]["stoppedReason"])


def transaction_ended(station: Station) -> bool:
    if station.client.config.version == "1.6":
        return bool(station.csms.calls_received("StopTransaction"))
    return any(f.payload["eventType"] == "Ended" for f in station.csms.calls_received("TransactionEvent"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_runs_a_real_session_to_charging_and_remote_stop_ends_it(
        tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        assert (await remote_start(station)).status == "Accepted"
        await station.advance_until(lambda: station.stage() == "charging", timeout_s=30)
        await station.csms.wait_for(lambda: station.client.commands.current_transaction_id() is not None)
        assert (await remote_start(station)).status == "Rejected"  # busy
        assert (await remote_stop(station, "nope" if version == "2.0.1" else 99)).status == "Rejected"
        assert (await remote_stop(station, transaction_id(station))).status == "Accepted"
        await station.advance_until(lambda: not station.controller.session_active and
                                    not station.controller.shutting_down, timeout_s=20)
        summary = station.controller.last_session_summary
        assert summary is not None and summary.fault is None and summary.energy_Wh > 0
        await station.csms.wait_for(lambda: transaction_ended(station))
        assert stop_reason(station) == "Remote"
        if version == "1.6":
            assert station.csms.calls_received("StartTransaction")[0].payload["idTag"] == "CARD-1"
        else:
            started = station.csms.calls_received("TransactionEvent")[0].payload
            assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 42
            assert started["idToken"]["idToken"] == "CARD-1"


@pytest.mark.parametrize("version", VERSIONS)
async def test_reset_stops_the_session_safely_then_reconnects_and_boots_again(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        await remote_start(station)
        await station.advance_until(lambda: station.stage() == "charging", timeout_s=30)
        request = call16.Reset(type="Soft") if version == "1.6" else call201.Reset(type="Immediate")
        assert (await station.call(request)).status == "Accepted"
        await station.advance_until(lambda: not station.controller.session_active
                                    and not station.controller.shutting_down, timeout_s=20)
        summary = station.controller.last_session_summary
        assert summary is not None and summary.fault is None  # the controller's stop path: no emergency
        await station.csms.wait_for(lambda: len(station.csms.calls_received("BootNotification")) == 2
                                    and station.client.link.booted.is_set() and transaction_ended(station))
        assert station.client.commands.resets == 1
        assert stop_reason(station) == ("SoftReset" if version == "1.6" else "ImmediateReset")
        if version == "2.0.1":
            assert station.csms.calls_received("BootNotification")[1].payload["reason"] == "RemoteReset"
        # the station's status is told again after the new boot (the link sends it once the boot is accepted)
        await station.csms.wait_for(lambda: status_told_after_boot(station, 2))


def status_told_after_boot(station: Any, boot_number: int) -> bool:
    frames = station.csms.calls_received()
    boots = [i for i, f in enumerate(frames) if f.action == "BootNotification"]
    return len(boots) >= boot_number and any(f.action == "StatusNotification" for f in frames[boots[boot_number - 1]:])


async def test_on_idle_reset_waits_for_the_transaction(tmp_path: Path) -> None:
    async with booted_station(tmp_path, "2.0.1") as station:
        await remote_start(station)
        await station.advance_until(lambda: station.stage() == "charging", timeout_s=30)
        assert (await station.call(call201.Reset(type="OnIdle"))).status == "Scheduled"
        await station.advance_until(lambda: station.controller.clock.now() > 40)
        assert station.controller.session_active and len(station.csms.calls_received("BootNotification")) == 1
        station.controller.request_stop()
        await station.advance_until(lambda: not station.controller.session_active
                                    and not station.controller.shutting_down, timeout_s=20)
        await station.csms.wait_for(lambda: len(station.csms.calls_received("BootNotification")) == 2)
        await station.csms.wait_for(lambda: transaction_ended(station))
        assert stop_reason(station) == "Local"  # it ended by itself, not by the reset


def availability_request(version: str, operative: bool) -> Any:
    if version == "1.6":
        return call16.ChangeAvailability(connector_id=0, type="Operative" if operative else "Inoperative")
    return call201.ChangeAvailability(operational_status="Operative" if operative else "Inoperative")


@pytest.mark.parametrize("version", VERSIONS)
async def test_change_availability_makes_the_connector_unavailable_and_refuses_sessions(
        tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        assert (await station.call(availability_request(version, False))).status == "Accepted"
        await station.advance_until(lambda: True)
        await station.controller.clock.advance(0.02)
        await station.csms.wait_for(lambda: station.statuses()[-1] == "Unavailable")
        app = create_app(station.controller)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as http:
            body = (await http.post("/start_session", json={})).json()
            assert body["status"] == "error" and "Unavailable" in body["message"]
            assert (await http.get("/status")).json()["limits_in_force"]["available"] is False
        assert (await remote_start(station)).status == "Rejected"
        assert (await station.call(availability_request(version, True))).status == "Accepted"
        await station.controller.clock.advance(0.02)
        await station.csms.wait_for(lambda: station.statuses()[-1] == "Available")
        # during a transaction: Scheduled, in force once it ends
        await remote_start(station)
        await station.advance_until(lambda: station.stage() == "charging", timeout_s=30)
        assert (await station.call(availability_request(version, False))).status == "Scheduled"
        assert station.controller.session_active
        station.controller.request_stop()
        await station.advance_until(lambda: not station.controller.session_active
                                    and not station.controller.shutting_down, timeout_s=20)
        await station.controller.clock.advance(0.02)
        await station.csms.wait_for(lambda: station.statuses()[-1] == "Unavailable")
        assert station.client.commands.operative is False


@pytest.mark.parametrize("version", VERSIONS)
async def test_trigger_message_sends_what_the_csms_asks(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        module = call16 if version == "1.6" else call201
        for message in ("Heartbeat", "StatusNotification", "MeterValues"):
            before = len(station.csms.calls_received(message))
            assert (await station.call(module.TriggerMessage(requested_message=message))).status == "Accepted"
            await station.csms.wait_for(lambda m=message, n=before: len(station.csms.calls_received(m)) == n + 1)
        boot = await station.call(module.TriggerMessage(requested_message="BootNotification"))
        if version == "1.6":
            assert boot.status == "Accepted"
            await station.csms.wait_for(lambda: len(station.csms.calls_received("BootNotification")) == 2)
        else:
            assert boot.status == "Rejected"  # F06.FR.17: already accepted
        other = "DiagnosticsStatusNotification" if version == "1.6" else "LogStatusNotification"
        assert (await station.call(module.TriggerMessage(requested_message=other))).status == "NotImplemented"


@pytest.mark.parametrize("version", VERSIONS)
async def test_unlock_connector_on_a_fixed_dc_cable(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        if version == "1.6":
            assert (await station.call(call16.UnlockConnector(connector_id=1))).status == "NotSupported"
            return
        assert (await station.call(call201.UnlockConnector(evse_id=1, connector_id=1))).status == "UnlockFailed"
        assert (await station.call(call201.UnlockConnector(evse_id=2, connector_id=1))).status == "UnknownConnector"
        await remote_start(station)
        await station.advance_until(lambda: station.stage() == "charging", timeout_s=30)
        answer = await station.call(call201.UnlockConnector(evse_id=1, connector_id=1))
        assert answer.status == "OngoingAuthorizedTransaction"
