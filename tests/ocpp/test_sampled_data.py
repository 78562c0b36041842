"""The CSMS chooses the measurands (both versions): 1.6 MeterValuesSampledData / 2.0.1 SampledDataCtrlr.
TxUpdatedMeasurands for the periodic samples (default: the issue's seven), 2.0.1 TxStartedMeasurands for the
Started event; an unknown measurand is Rejected and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from commands_rig import Station, booted_station
from link_rig import VERSIONS
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ccs_sim.ocpp.transaction_messages import MEASURANDS, MeasurandSelection, MeterSample, meter_value_16
from evse_model.session import SessionParams

REGISTER = "Energy.Active.Import.Register"
CHOSEN = (REGISTER, "SoC")


async def configure(station: Station, version: str, variable: str, value: str) -> str:
    """1.6 ChangeConfiguration of the key that is ``variable``'s (TxUpdatedMeasurands: MeterValuesSampledData),
    2.0.1 SetVariables of SampledDataCtrlr.``variable``; the status."""
    if version == "1.6":
        key = {"TxUpdatedMeasurands": "MeterValuesSampledData", "TxEndedMeasurands": "StopTxnSampledData"}[variable]
        return str((await station.call(call16.ChangeConfiguration(key=key, value=value))).status)
    result = await station.call(call201.SetVariables(set_variable_data=[{
        "component": {"name": "SampledDataCtrlr"}, "variable": {"name": variable}, "attribute_value": value}]))
    return str(result.set_variable_result[0]["attribute_status"])


def periodic_samples(station: Station, version: str) -> list[list[str]]:
    """The measurands of every periodic sample the CSMS received, in order."""
    if version == "1.6":
        frames = [f.payload for f in station.csms.calls_received("MeterValues")]
    else:
        frames = [f.payload for f in station.csms.calls_received("TransactionEvent")
                  if f.payload.get("triggerReason") == "MeterValuePeriodic"]
    return [[value["measurand"] for value in frame["meterValue"][0]["sampledValue"]] for frame in frames]


def started_measurands(station: Station) -> list[str]:
    started = [f.payload for f in station.csms.calls_received("TransactionEvent") if f.payload["eventType"] == "Started"]
    return [value["measurand"] for value in started[0]["meterValue"][0]["sampledValue"]]


async def charging(station: Station) -> None:
    station.controller.start_session(SessionParams(ev_preset="ev800", start_soc_percent=20, target_soc_percent=90,
                                                   initial_current_A=100, duration_s=600))
    await station.advance_until(lambda: station.stage() == "charging", timeout_s=30, step_s=0.05)


async def next_samples(station: Station, version: str, count: int) -> list[list[str]]:
    """Move simulated time until ``count`` more periodic samples reached the CSMS; those samples."""
    before = len(periodic_samples(station, version))
    await station.advance_until(lambda: len(periodic_samples(station, version)) >= before + count,
                                timeout_s=10, step_s=0.05)
    samples = periodic_samples(station, version)[before:]
    # every sample taken so far delivered (time stands still meanwhile): what follows a change is taken after it
    await station.csms.wait_for(lambda: station.client.queue_depth() == 0)
    return samples


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_csms_chooses_the_periodic_measurands(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version, meter_interval_s=1.0) as station:
        await charging(station)
        default = await next_samples(station, version, 1)
        assert sorted(default[0]) == sorted(MEASURANDS)  # the seven (SoC: the simulated EV's)
        assert await configure(station, version, "TxUpdatedMeasurands", f"{REGISTER},Nope") == "Rejected"
        assert await configure(station, version, "TxUpdatedMeasurands", f"{REGISTER}, SoC") == "Accepted"
        samples = await next_samples(station, version, 3)
        assert samples == [list(CHOSEN)] * 3
        assert await configure(station, version, "TxUpdatedMeasurands", "Voltage,Current.Offered") == "Accepted"
        assert (await next_samples(station, version, 1)) == [["Voltage", "Current.Offered"]]


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_unknown_measurand_is_rejected_and_changes_nothing(tmp_path: Path, version: str) -> None:
    async with booted_station(tmp_path, version) as station:
        for value in ("Energy.Active.Export.Register", "SoC,Temperature", "Voltage;SoC"):
            assert await configure(station, version, "TxUpdatedMeasurands", value) == "Rejected"
        assert station.client.commands.device.measurand_selection().periodic == MEASURANDS


async def test_the_started_event_carries_tx_started_measurands_2_0_1(tmp_path: Path) -> None:
    async with booted_station(tmp_path, "2.0.1", meter_interval_s=1.0) as station:
        assert await configure(station, "2.0.1", "TxStartedMeasurands", f"{REGISTER},Current.Offered") == "Accepted"
        await charging(station)
        await station.csms.wait_for(lambda: any(f.payload["eventType"] == "Started"
                                                for f in station.csms.calls_received("TransactionEvent")))
        assert started_measurands(station) == [REGISTER, "Current.Offered"]


def test_the_end_and_the_fallbacks() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    soc_only = MeasurandSelection(periodic=("SoC",), end=())
    # no SoC known: a MeterValues message still carries one value, the register (the schema's minItems 1)
    value: Any = meter_value_16(MeterSample(at, 1000.0, measurands=soc_only))
    assert [v.measurand for v in value.sampled_value] == [REGISTER]
    with_soc: Any = meter_value_16(MeterSample(at, 1000.0, soc_percent=42.0, measurands=soc_only))
    assert [(v.measurand, v.value, v.location) for v in with_soc.sampled_value] == [("SoC", "42.0", "EV")]
    # the end sample carries only the register, and none when the CSMS chose none
    from ccs_sim.ocpp.transaction_messages import StopReason, stop_transaction_16

    stop = stop_transaction_16(MeterSample(at, 1000.0, measurands=soc_only), StopReason("Local", "Local", "x"), None)
    assert "transactionData" not in stop
    default_stop = stop_transaction_16(MeterSample(at, 1000.0), StopReason("Local", "Local", "x"), None)
    assert [v["measurand"] for v in default_stop["transactionData"][0]["sampledValue"]] == [REGISTER]
