"""The SECC announces the power stage's own peak-to-peak current ripple (DIN 70121 / ISO 15118-2
EVSEPeakCurrentRipple): one owner, ``SupplyCapabilities.peak_current_ripple_A``, reaching the glue through the HAL."""

from __future__ import annotations

from iso15118.shared.messages.datatypes import DCEVSEStatus, DCEVSEStatusCode, EVSENotification
from iso15118.shared.messages.enums import IsolationLevel

from evse_hal.adapters.sim import create_sim_hardware
from evse_hal.interfaces import SupplyCapabilities
from evse_hal.iso15118 import messages
from evse_model.clock import ManualClock
from sim_plant import PlantConfig


def _amperes(physical_value) -> float:  # type: ignore[no-untyped-def]
    return physical_value.value * 10 ** physical_value.multiplier


def test_charge_parameters_announce_the_supplys_ripple() -> None:
    supply = SupplyCapabilities(max_voltage_V=920.0, min_voltage_V=150.0, max_current_A=300.0, min_current_A=0.0,
                                max_power_W=150_000.0, peak_current_ripple_A=3.5)
    context = messages.dc_evse_data_context(150_000.0, 300.0, 920.0, supply, 100.0)
    status = DCEVSEStatus(evse_notification=EVSENotification.NONE, notification_max_delay=0,
                          evse_isolation_status=IsolationLevel.VALID, evse_status_code=DCEVSEStatusCode.EVSE_READY)
    parameters = messages.dc_charge_parameter(context, status)
    assert context.peak_current_ripple == 3.5
    assert _amperes(parameters.evse_peak_current_ripple) == 3.5
    assert _amperes(parameters.evse_minimum_voltage_limit) == 150.0


def test_the_sim_adapter_states_its_plants_ripple() -> None:
    assert PlantConfig().peak_current_ripple_A == 5.0  # standards.md §4.1, the simulator's default
    hw = create_sim_hardware(ManualClock(), peak_current_ripple_A=2.5)
    assert hw.supply.get_capabilities().peak_current_ripple_A == 2.5
