"""Charging profiles from the CSMS limit a real session (both versions), and the configuration / device model
answers and takes effect (1.6 Get/ChangeConfiguration, 2.0.1 Get/SetVariables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from commands_rig import Station, booted_station
from link_rig import PROTOCOL_SECOND_S, VERSIONS, gaps_s
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from evse_model.session import SessionParams


def tx_profile(version: str, limit: float, transaction_id: Any, unit: str = "A") -> Any:
    period = [{"start_period": 0, "limit": limit}]
    if version == "1.6":
        return call16.SetChargingProfile(connector_id=1, cs_charging_profiles={
            "charging_profile_id": 5, "stack_level": 1, "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Relative", "transaction_id": transaction_id,
            "charging_schedule": {"charging_rate_unit": unit, "charging_schedule_period": period}})
    return call201.SetChargingProfile(evse_id=1, charging_profile={
        "id": 5, "stack_level": 1, "charging_profile_purpose": "TxProfile", "charging_profile_kind": "Relative",
        "transaction_id": transaction_id,
        "charging_schedule": [{"id": 1, "charging_rate_unit": unit, "charging_schedule_period": period}]})


async def charging_at_150_A(station: Station) -> Any:
    station.controller.start_session(SessionParams(ev_preset="ev800", start_soc_percent=20, target_soc_percent=90,
                                                   initial_current_A=150, duration_s=600))
    await station.advance_until(lambda: station.stage() == "charging" and station.controller.latest.output_current_A
                                > 149.0, timeout_s=30)
    await station.csms.wait_for(lambda: station.client.commands.current_transaction_id() is not None)
    return station.client.commands.current_transaction_id()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_50_A_tx_profile_limits_a_150_A_session_within_1_s_and_clearing_it_restores(
        tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        tx_id = await charging_at_150_A(station)
        wire_id = int(tx_id) if version == "1.6" else tx_id
        assert (await station.call(tx_profile(version, 50.0, wire_id))).status == "Accepted"
        took_s = await station.advance_until(lambda: station.controller.latest.output_current_A <= 50.0 + 0.5,
                                             timeout_s=1.1, step_s=0.01)
        assert took_s <= 1.05  # 100 A down at the 100 A/s ramp-down rate: the DC output is never broken
        status = station.controller.status_view()
        assert status["session_active"] and status["contactor_closed"] and status["error"] is None
        limits = status["limits_in_force"]
        assert limits["current_A"] == 50.0 and limits["current_source"] == "ocpp"
        assert station.controller.evse_max_current_A == 50.0  # what the SECC glue tells an ISO 15118 EV
        assert station.client.view()["composite_limit"]["current_A"] == 50.0
        module = call16 if version == "1.6" else call201
        composite = await station.call(module.GetCompositeSchedule(
            **({"connector_id": 1} if version == "1.6" else {"evse_id": 1}), duration=60, charging_rate_unit="A"))
        schedule = composite.charging_schedule if version == "1.6" else composite.schedule
        assert composite.status == "Accepted"
        assert [(p["start_period"], float(p["limit"])) for p in schedule["charging_schedule_period"]] == [(0, 50.0)]
        clear = module.ClearChargingProfile(id=5) if version == "1.6" else module.ClearChargingProfile(
            charging_profile_id=5)
        assert (await station.call(clear)).status == "Accepted"
        assert (await station.call(clear)).status == "Unknown"
        await station.advance_until(lambda: station.controller.latest.output_current_A > 149.0, timeout_s=3)
        assert station.controller.status_view()["limits_in_force"]["current_source"] == "rating"


@pytest.mark.parametrize("version", VERSIONS)
async def test_profiles_the_station_must_refuse(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        # a TxProfile without a running transaction
        assert (await station.call(tx_profile(version, 50.0, 1 if version == "1.6" else "x"))).status == "Rejected"
        if version == "1.6":
            station_max = call16.SetChargingProfile(connector_id=0, cs_charging_profiles={
                "charging_profile_id": 1, "stack_level": 0, "charging_profile_purpose": "ChargePointMaxProfile",
                "charging_profile_kind": "Relative", "charging_schedule": {
                    "charging_rate_unit": "W", "charging_schedule_period": [{"start_period": 0, "limit": 40000.0}]}})
        else:
            station_max = call201.SetChargingProfile(evse_id=0, charging_profile={
                "id": 1, "stack_level": 0, "charging_profile_purpose": "ChargingStationMaxProfile",
                "charging_profile_kind": "Relative", "charging_schedule": [{
                    "id": 1, "charging_rate_unit": "W",
                    "charging_schedule_period": [{"start_period": 0, "limit": 40000.0}]}]})
        assert (await station.call(station_max)).status == "Accepted"
        limits = station.controller.status_view()["limits_in_force"]
        assert limits["power_W"] == 40000.0 and limits["power_source"] == "ocpp"


async def test_change_configuration_1_6(tmp_path: Path) -> None:
    async with booted_station(tmp_path, "1.6") as station:
        answer = await station.call(call16.GetConfiguration(key=["HeartbeatInterval", "NumberOfConnectors", "Nope"]))
        assert {entry["key"]: (entry["value"], entry["readonly"]) for entry in answer.configuration_key} == {
            "HeartbeatInterval": ("60", False), "NumberOfConnectors": ("1", True)}
        assert answer.unknown_key == ["Nope"]
        everything = await station.call(call16.GetConfiguration())
        keys = {entry["key"] for entry in everything.configuration_key}
        assert {"MeterValueSampleInterval", "MeterValuesSampledData", "ConnectionTimeOut",
                "AuthorizeRemoteTxRequests", "ChargeProfileMaxStackLevel"} <= keys
        change = call16.ChangeConfiguration
        assert (await station.call(change(key="NumberOfConnectors", value="2"))).status == "Rejected"
        assert (await station.call(change(key="Nope", value="1"))).status == "NotSupported"
        assert (await station.call(change(key="HeartbeatInterval", value="soon"))).status == "Rejected"
        assert (await station.call(change(key="MeterValuesSampledData", value="Voltage,Nope"))).status == "Rejected"
        assert (await station.call(change(key="MeterValuesSampledData", value="Voltage,SoC"))).status == "Accepted"
        assert (await station.call(change(key="MeterValueSampleInterval", value="15"))).status == "Accepted"
        assert station.client.commands.parts.transactions.meter_interval_s == 15.0
        # the heartbeat follows the new interval at once (3 protocol seconds)
        assert (await station.call(change(key="HeartbeatInterval", value="3"))).status == "Accepted"
        assert station.client.link.state.heartbeat_interval_s == 3
        count = len(station.csms.calls_received("Heartbeat"))
        await station.csms.wait_for(lambda: len(station.csms.calls_received("Heartbeat")) >= count + 3)
        gaps = gaps_s([f.at_s for f in station.csms.calls_received("Heartbeat")[count:]])
        assert min(gaps) >= 3 * PROTOCOL_SECOND_S - 0.002


async def test_get_and_set_variables_2_0_1(tmp_path: Path) -> None:
    async with booted_station(tmp_path, "2.0.1") as station:
        def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
            return {"component": {"name": component}, "variable": {"name": variable}, **extra}

        got = await station.call(call201.GetVariables(get_variable_data=[
            item("OCPPCommCtrlr", "HeartbeatInterval"), item("SampledDataCtrlr", "TxUpdatedInterval"),
            item("AlignedDataCtrlr", "Interval"), item("NoSuchCtrlr", "X"), item("OCPPCommCtrlr", "Nope"),
            item("OCPPCommCtrlr", "HeartbeatInterval", attribute_type="Target")]))
        assert [(r["attribute_status"], r.get("attribute_value")) for r in got.get_variable_result] == [
            ("Accepted", "60"), ("Accepted", "60"), ("Accepted", "0"), ("UnknownComponent", None),
            ("UnknownVariable", None), ("NotSupportedAttributeType", None)]
        result = await station.call(call201.SetVariables(set_variable_data=[
            item("OCPPCommCtrlr", "HeartbeatInterval", attribute_value="4"),
            item("SampledDataCtrlr", "TxUpdatedInterval", attribute_value="10"),
            item("AlignedDataCtrlr", "Interval", attribute_value="900"),
            item("SmartChargingCtrlr", "ProfileStackLevel", attribute_value="99"),
            item("SampledDataCtrlr", "TxUpdatedInterval", attribute_value="-5"),
            item("NoSuchCtrlr", "X", attribute_value="1")]))
        assert [r["attribute_status"] for r in result.set_variable_result] == [
            "Accepted", "Accepted", "Accepted", "Rejected", "Rejected", "UnknownComponent"]
        assert station.client.link.state.heartbeat_interval_s == 4
        assert station.client.commands.parts.transactions.meter_interval_s == 10.0
