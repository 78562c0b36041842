"""What the CSMS set survives a restart (both versions): ChangeAvailability Inoperative, the station maximum
profile and the configuration it wrote are in force in a new controller + client on the same data directory
before its BootNotification is accepted; an expired profile and a TxProfile are not kept."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from commands_rig import booted_station
from csms import TestCsms
from link_rig import PROTOCOL_SECOND_S, VERSIONS, make_config
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.ocpp.persisted_settings import PersistedSettings
from ccs_sim.ocpp.smart_charging import ChargingProfile, ChargingSchedule, Kind, Purpose, SchedulePeriod
from ccs_sim.ocpp.station_commands import UNAVAILABLE_REASON
from ccs_sim.ocpp.store import OcppDatabase
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.session import SessionParams
from evse_model.session_errors import CommandRefused

#: The restarted controller's clock starts this much later than the first one's (simulated s).
RESTART_AFTER_S = 3600.0
STATION_MAX_W = 40000.0
TX_DEFAULT_A = 30.0


def relative_profile(version: str, profile_id: int, purpose: str, limit: float, unit: str,
                     valid_to: str | None = None) -> Any:
    """A SetChargingProfile of one Relative period (the station's connector / EVSE 0 for a station maximum)."""
    period = [{"start_period": 0, "limit": limit}]
    on_station = purpose == "StationMax"
    if version == "1.6":
        return call16.SetChargingProfile(connector_id=0 if on_station else 1, cs_charging_profiles={
            "charging_profile_id": profile_id, "stack_level": 0,
            "charging_profile_purpose": "ChargePointMaxProfile" if on_station else purpose,
            "charging_profile_kind": "Relative", "valid_to": valid_to,
            "charging_schedule": {"charging_rate_unit": unit, "charging_schedule_period": period}})
    return call201.SetChargingProfile(evse_id=0 if on_station else 1, charging_profile={
        "id": profile_id, "stack_level": 0,
        "charging_profile_purpose": "ChargingStationMaxProfile" if on_station else purpose,
        "charging_profile_kind": "Relative", "valid_to": valid_to,
        "charging_schedule": [{"id": 1, "charging_rate_unit": unit, "charging_schedule_period": period}]})


async def configure(station: Any, version: str, key_16: str, component: str, variable: str, value: str) -> str:
    if version == "1.6":
        return str((await station.call(call16.ChangeConfiguration(key=key_16, value=value))).status)
    result = await station.call(call201.SetVariables(set_variable_data=[{
        "component": {"name": component}, "variable": {"name": variable}, "attribute_value": value}]))
    return str(result.set_variable_result[0]["attribute_status"])


@asynccontextmanager
async def restarted_station(tmp_path: Path, version: str) -> AsyncIterator[tuple[Any, OcppClient, TestCsms]]:
    """A new controller + client on ``tmp_path``, one hour later, against a CSMS that answers the boot Pending:
    what it shows is in force before any BootNotification was accepted."""
    async with TestCsms(version, boot_responses=[("Pending", 1)]) as csms:
        controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
                                      clock=ManualClock(start_s=RESTART_AFTER_S))
        operations = await attach_operations(controller)
        await controller.start()
        client = OcppClient(controller, make_config(csms, version), protocol_second_s=PROTOCOL_SECOND_S)
        await client.start()
        try:
            yield controller, client, csms
        finally:
            await client.stop()
            await controller.shutdown()
            await operations.close()


def stored_profile_ids(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "sessions.db") as db:
        return [row[0] for row in db.execute("SELECT profile_id FROM ocpp_charging_profiles ORDER BY profile_id")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_availability_profiles_and_configuration_survive_a_restart(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        change = call16.ChangeAvailability(connector_id=0, type="Inoperative") if version == "1.6" else \
            call201.ChangeAvailability(operational_status="Inoperative")
        assert (await station.call(change)).status == "Accepted"
        in_a_minute = (station.controller.clock.utcnow() + timedelta(seconds=60)).isoformat()
        assert (await station.call(relative_profile(version, 1, "StationMax", STATION_MAX_W, "W"))).status == \
            "Accepted"
        assert (await station.call(relative_profile(version, 2, "TxDefaultProfile", TX_DEFAULT_A, "A",
                                                    valid_to=in_a_minute))).status == "Accepted"
        assert await configure(station, version, "MeterValueSampleInterval", "SampledDataCtrlr", "TxUpdatedInterval",
                               "15") == "Accepted"
        assert await configure(station, version, "MeterValuesSampledData", "SampledDataCtrlr",
                               "TxUpdatedMeasurands", "Energy.Active.Import.Register,SoC") == "Accepted"
        limits = station.controller.status_view()["limits_in_force"]
        assert (limits["power_W"], limits["current_A"]) == (STATION_MAX_W, TX_DEFAULT_A)
        await station.client.commands.parts.queue.database.call(lambda _connection: None)  # the writes are done
    assert stored_profile_ids(tmp_path) == [1, 2]

    async with restarted_station(tmp_path, version) as (controller, client, csms):
        assert not client.link.booted.is_set()
        with pytest.raises(CommandRefused, match="Unavailable") as refused:
            controller.start_session(SessionParams(duration_s=60))
        assert UNAVAILABLE_REASON in str(refused.value)
        assert not controller.session_active
        limits = controller.status_view()["limits_in_force"]
        assert (limits["power_W"], limits["power_source"]) == (STATION_MAX_W, "ocpp")
        assert limits["current_source"] == "rating"  # the TxDefaultProfile expired 59 min ago: dropped
        assert [p["id"] for p in client.view()["composite_limit"]["profiles"]] == [1]
        await controller.clock.advance(0.1)  # the first ticks: still in force
        assert controller.status_view()["limits_in_force"]["power_W"] == STATION_MAX_W
        device = client.commands.device
        assert device.setting("MeterValueSampleInterval").value == "15"
        assert client.commands.parts.transactions.meter_interval_s == 15.0
        assert device.setting("MeterValuesSampledData").value == "Energy.Active.Import.Register,SoC"
        assert client.commands.parts.transactions.measurands().periodic == ("Energy.Active.Import.Register", "SoC")
        assert client.view()["operative"] is False
        await client.commands.parts.queue.database.call(lambda _connection: None)
        assert stored_profile_ids(tmp_path) == [1]  # the expired one is gone from the database too
        # the CSMS sees it Unavailable once it accepts the station
        csms.boot_responses = [("Accepted", 60)]
        await csms.wait_for(lambda: csms.calls_received("StatusNotification"), timeout_s=10.0)
        status = csms.calls_received("StatusNotification")[0].payload
        assert (status.get("status") or status.get("connectorStatus")) == "Unavailable"
        assert csms.violations == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_operative_again_is_kept_too(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        module = call16 if version == "1.6" else call201
        for kind in ("Inoperative", "Operative"):
            change = module.ChangeAvailability(connector_id=0, type=kind) if version == "1.6" else \
                module.ChangeAvailability(operational_status=kind)
            assert (await station.call(change)).status == "Accepted"
        await station.client.commands.parts.queue.database.call(lambda _connection: None)
    async with restarted_station(tmp_path, version) as (controller, client, _csms):
        assert client.view()["operative"] is True
        assert controller.status_view()["limits_in_force"]["available"] is True


def profile(profile_id: int, purpose: Purpose, valid_to_s: float | None = None) -> ChargingProfile:
    from datetime import UTC, datetime

    origin = datetime(2026, 1, 1, tzinfo=UTC)
    return ChargingProfile(profile_id=profile_id, stack_level=0, purpose=purpose, kind=Kind.RELATIVE,
                           schedule=ChargingSchedule("A", (SchedulePeriod(0, 50.0), SchedulePeriod(60, 20.0, 3)),
                                                     duration_s=600),
                           valid_to=None if valid_to_s is None else origin + timedelta(seconds=valid_to_s),
                           transaction_id="tx-1" if purpose is Purpose.TX else None,
                           connector_id=0 if purpose is Purpose.STATION_MAX else 1, received_at=origin)


async def test_a_tx_profile_is_not_kept_and_a_profile_reads_back_as_written(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    database = await OcppDatabase(tmp_path / "ocpp.db").open()
    try:
        persisted = PersistedSettings(database, "2.0.1")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        kept = profile(1, Purpose.TX_DEFAULT, valid_to_s=7200)
        persisted.save_profiles([kept, profile(2, Purpose.TX), profile(3, Purpose.STATION_MAX, valid_to_s=100)], at)
        stored = await persisted.load(at + timedelta(seconds=100))  # profile 3's validTo: no longer valid
        assert stored.profiles == [kept]
        assert stored.expired_profile_ids == [3]
        assert (await persisted.load(at)).profiles == [kept]  # 3 was deleted at the first load
        other_version = await PersistedSettings(database, "1.6").load(at)  # profiles are kept per version
        assert (other_version.profiles, other_version.operative, other_version.settings) == ([], None, {})
    finally:
        await database.close()


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_csms_hears_accepted_only_once_the_change_is_stored(tmp_path: Path, version: str) -> None:
    """While the OCPP database's worker is held, a ChangeAvailability is not answered; once it runs, the answer
    comes and the row is on disk (a crash between the answer and the write cannot lose what the CSMS saw)."""
    import asyncio
    import threading

    async with booted_station(tmp_path, version) as station:
        database = station.client.commands.persisted.database
        release = threading.Event()
        held = database.submit(lambda _connection: release.wait(10.0))
        request = call16.ChangeAvailability(connector_id=0, type="Inoperative") if version == "1.6" \
            else call201.ChangeAvailability(operational_status="Inoperative")
        answer = asyncio.ensure_future(station.call(request))
        done, _ = await asyncio.wait([answer], timeout=0.5)
        assert not done, "answered before the change was stored"
        release.set()
        await held
        assert (await answer).status == "Accepted"
        row = await database.call(lambda db: db.execute("SELECT operative FROM ocpp_availability").fetchone())
        assert row is not None and row[0] == 0
