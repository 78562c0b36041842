"""The charge loop's response values are built once and reused while what they are built from is unchanged
(no pydantic validation of ours, no log record of the package's limit getters per request), and rebuilt at
once when it changes: a fault, a new reading, other limits."""

from __future__ import annotations

import logging

import pytest
from hlc_rig import HlcRig
from iso15118.shared.messages.datatypes import DCEVSEStatusCode
from iso15118.shared.messages.datatypes import EVSENotification as EVSENotificationV2
from iso15118.shared.messages.enums import IsolationLevel, Protocol
from iso15118.shared.messages.iso15118_2.body import CurrentDemandRes
from iso15118.shared.messages.iso15118_2.datatypes import ResponseCode

from evse_model.faults import E_STOP

PACKAGE_LIMIT_LOG = "Extracting the Session Current Limit"  # iso15118's get_evse_max_current_limit, at INFO


async def _charging(rig: HlcRig) -> None:
    await rig.handshake()
    await rig.cable_check()
    await rig.precharge(500.0)
    await rig.power_delivery_start()
    await rig.current_demand(500.0, 50.0, loops=5)


async def _response(rig: HlcRig) -> CurrentDemandRes:
    """A CurrentDemandRes from the getters the package's CurrentDemand state awaits (ISO 15118-2)."""
    hal = rig.hal
    return CurrentDemandRes(
        response_code=ResponseCode.OK, dc_evse_status=await hal.get_dc_evse_status(),
        evse_present_voltage=await hal.get_evse_present_voltage(Protocol.ISO_15118_2),
        evse_present_current=await hal.get_evse_present_current(Protocol.ISO_15118_2),
        evse_current_limit_achieved=await hal.is_evse_current_limit_achieved(),
        evse_voltage_limit_achieved=await hal.is_evse_voltage_limit_achieved(),
        evse_power_limit_achieved=await hal.is_evse_power_limit_achieved(),
        evse_max_voltage_limit=await hal.get_evse_max_voltage_limit(),
        evse_max_current_limit=await hal.get_evse_max_current_limit(),
        evse_max_power_limit=await hal.get_evse_max_power_limit(), evse_id=await hal.get_evse_id(Protocol.ISO_15118_2),
        sa_schedule_tuple_id=1, receipt_required=False)


async def test_limits_are_built_once_while_unchanged_and_again_when_they_change(rig: HlcRig, caplog):
    await _charging(rig)
    caplog.set_level(logging.INFO, logger="iso15118")
    caplog.clear()
    responses = []
    for _ in range(5):
        responses.append(await _response(rig))
        await rig.advance(0.1)
    assert sum(PACKAGE_LIMIT_LOG in record.getMessage() for record in caplog.records) == 1
    for response in responses:
        assert response.evse_max_current_limit.get_decimal_value() == 400
        assert response.evse_max_voltage_limit.get_decimal_value() == 1000
        assert response.evse_max_power_limit.get_decimal_value() == 350000
    # Each response holds its own copy (pydantic v1 copies a model field on validation): none shares ours.
    assert responses[0].dc_evse_status is not responses[1].dc_evse_status

    rig.hal.evse_data_context.session_limits.dc_limits.max_charge_current = 250.0
    response = await _response(rig)
    assert response.evse_max_current_limit.get_decimal_value() == 250
    assert sum(PACKAGE_LIMIT_LOG in record.getMessage() for record in caplog.records) == 2


async def test_present_values_follow_every_reading_and_the_status_a_fault(rig: HlcRig):
    await _charging(rig)
    seen = set()
    for _ in range(10):
        response = await _response(rig)
        latest = rig.controller.latest
        assert response.evse_present_voltage.get_decimal_value() == pytest.approx(round(latest.output_voltage_V, 1))
        assert response.evse_present_current.get_decimal_value() == pytest.approx(round(latest.output_current_A, 1))
        seen.add((round(latest.output_voltage_V, 1), round(latest.output_current_A, 1)))
        await rig.current_demand(540.0, 50.0, loops=1)
    assert len(seen) > 1  # the output moves (target above the pack): the values were rebuilt, not frozen
    ready = (await _response(rig)).dc_evse_status
    assert ready.evse_status_code == DCEVSEStatusCode.EVSE_READY and ready.evse_isolation_status == IsolationLevel.VALID

    await rig.controller.raise_fault(E_STOP, source="api")
    status = (await _response(rig)).dc_evse_status
    assert status.evse_status_code == DCEVSEStatusCode.EVSE_EMERGENCY_SHUTDOWN
    assert status.evse_notification == EVSENotificationV2.STOP_CHARGING
