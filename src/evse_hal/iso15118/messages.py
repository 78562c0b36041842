"""The iso15118 data objects the SECC glue answers with: EVSE limits, DC charge parameters, schedules,
services, meter info, response codes — built from plain numbers, one function per answer, DIN SPEC 70121 /
ISO 15118-2 / ISO 15118-20 each where they differ. ``HalEVSEController`` decides the numbers; this module only
puts them into iso15118's types.
"""

from __future__ import annotations

import time
from typing import Any

from evse_hal.iso15118 import compat

compat.install()  # before the first iso15118 import (pydantic.v1 hook; see that module)

from iso15118.secc.controller.ev_data import (  # noqa: E402 (after the import hook)
    EVACCLLimits,
    EVACCPDLimits,
    EVDataContext,
    EVDCCLLimits,
    EVDCCPDLimits,
    EVRatedLimits,
    EVSessionLimits,
)
from iso15118.secc.controller.evse_data import (  # noqa: E402
    CurrentType,
    EVSEACCLLimits,
    EVSEACCPDLimits,
    EVSEDataContext,
    EVSEDCCLLimits,
    EVSEDCCPDLimits,
    EVSERatedLimits,
    EVSESessionLimits,
)
from iso15118.shared.messages.datatypes import (  # noqa: E402
    DCEVSEChargeParameter,
    DCEVSEStatus,
    DCEVSEStatusCode,
    PhysicalValue,
    PVEVSEMaxCurrentLimit,
    PVEVSEMaxPowerLimit,
    PVEVSEMaxVoltageLimit,
    PVEVSEMinCurrentLimit,
    PVEVSEMinVoltageLimit,
    PVEVSEPeakCurrentRipple,
)
from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntry as PMaxScheduleEntryDIN  # noqa: E402
from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntryDetails as PMaxScheduleEntryDetailsDIN  # noqa: E402
from iso15118.shared.messages.din_spec.datatypes import RelativeTimeInterval as RelativeTimeIntervalDIN  # noqa: E402
from iso15118.shared.messages.din_spec.datatypes import ResponseCode as ResponseCodeDIN  # noqa: E402
from iso15118.shared.messages.din_spec.datatypes import SAScheduleTupleEntry as SAScheduleTupleEntryDIN  # noqa: E402
from iso15118.shared.messages.enums import ControlMode, Protocol, ServiceV20, UnitSymbol  # noqa: E402
from iso15118.shared.messages.iso15118_2.datatypes import MeterInfo as MeterInfoV2  # noqa: E402
from iso15118.shared.messages.iso15118_2.datatypes import (  # noqa: E402
    PMaxSchedule,
    PMaxScheduleEntry,
    PVPMax,
    RelativeTimeInterval,
    SAScheduleTuple,
)
from iso15118.shared.messages.iso15118_2.datatypes import ResponseCode as ResponseCodeV2  # noqa: E402
from iso15118.shared.messages.iso15118_20.common_messages import (  # noqa: E402
    ChargingSchedule,
    DynamicScheduleExchangeResParams,
    Parameter,
    ParameterSet,
    PowerSchedule,
    PowerScheduleEntry,
    PowerScheduleEntryList,
    PriceLevelSchedule,
    PriceLevelScheduleEntry,
    PriceLevelScheduleEntryList,
    ScheduledScheduleExchangeResParams,
    ScheduleTuple,
    Service,
    ServiceList,
    ServiceParameterList,
)
from iso15118.shared.messages.iso15118_20.common_types import MeterInfo as MeterInfoV20  # noqa: E402
from iso15118.shared.messages.iso15118_20.common_types import RationalNumber  # noqa: E402
from iso15118.shared.messages.iso15118_20.common_types import ResponseCode as ResponseCodeV20  # noqa: E402
from iso15118.shared.messages.iso15118_20.dc import DCChargeParameterDiscoveryResParams  # noqa: E402

from evse_hal.interfaces import SupplyCapabilities  # noqa: E402
from evse_model.faults import Severity  # noqa: E402
from evse_model.session import Phase  # noqa: E402

#: Schedules cover 24 h when the EV names no departure time ([V2G2-304]).
SCHEDULE_DURATION_S = 86_400
#: DIN SPEC 70121 PMax is an xs:short in W: a larger charger announces the maximum it can express.
DIN_PMAX_MAX_W = 32_767
#: ISO 15118-20 Table 204: DC = 2; ServiceParameterList Connector 2 = Extended, ControlMode 1 = Scheduled.
DC_SERVICE_ID = ServiceV20.DC.value
METER_ID = "CCS-SIM-METER"


def physical_value(cls: type, value: float, unit: str) -> Any:
    """A DIN/-2 PhysicalValue subtype (multiplier, value, unit) for ``value``."""
    exponent, number = PhysicalValue.get_exponent_value_repr(value)
    return cls(multiplier=exponent, value=number, unit=unit)


def rational(value: float) -> RationalNumber:
    """An ISO 15118-20 RationalNumber for ``value``."""
    return RationalNumber.get_rational_repr(value)


def fresh_ev_data_context() -> EVDataContext:
    """An EVDataContext with its own limit objects (iso15118's defaults share one instance between all)."""
    return EVDataContext(rated_limits=EVRatedLimits(ac_limits=EVACCPDLimits(), dc_limits=EVDCCPDLimits()),
                         session_limits=EVSessionLimits(ac_limits=EVACCLLimits(), dc_limits=EVDCCLLimits()))


def dc_evse_data_context(max_power_W: float, max_current_A: float, max_voltage_V: float,
                         supply: SupplyCapabilities, power_ramp_limit_A_per_s: float) -> EVSEDataContext:
    """The charger's DC limits as iso15118's EVSEDataContext (rated = session limits; no AC): the minimum voltage
    and the peak-to-peak current ripple (DIN/-2 EVSEPeakCurrentRipple) are the power stage's own."""
    min_voltage_V = supply.min_voltage_V
    dc_rated = EVSEDCCPDLimits(max_charge_power=max_power_W, min_charge_power=0.0,
                               max_charge_current=max_current_A, min_charge_current=0.0,
                               max_voltage=max_voltage_V, min_voltage=min_voltage_V)
    dc_session = EVSEDCCLLimits(max_charge_power=max_power_W, min_charge_power=0.0,
                                max_charge_current=max_current_A, max_voltage=max_voltage_V, min_voltage=min_voltage_V)
    context = EVSEDataContext(rated_limits=EVSERatedLimits(ac_limits=EVSEACCPDLimits(), dc_limits=dc_rated),
                              session_limits=EVSESessionLimits(ac_limits=EVSEACCLLimits(), dc_limits=dc_session))
    context.current_type = CurrentType.DC
    context.peak_current_ripple = supply.peak_current_ripple_A
    context.power_ramp_limit = power_ramp_limit_A_per_s
    return context


def dc_charge_parameter(context: EVSEDataContext, status: DCEVSEStatus) -> DCEVSEChargeParameter:
    """DIN/-2 ChargeParameterDiscoveryRes: the charger's DC limits (``dc_evse_data_context``)."""
    limits = context.rated_limits.dc_limits
    return DCEVSEChargeParameter(
        dc_evse_status=status,
        evse_maximum_power_limit=physical_value(PVEVSEMaxPowerLimit, limits.max_charge_power, UnitSymbol.WATT),
        evse_maximum_current_limit=physical_value(PVEVSEMaxCurrentLimit, limits.max_charge_current,
                                                  UnitSymbol.AMPERE),
        evse_maximum_voltage_limit=physical_value(PVEVSEMaxVoltageLimit, limits.max_voltage, UnitSymbol.VOLTAGE),
        evse_minimum_current_limit=physical_value(PVEVSEMinCurrentLimit, limits.min_charge_current,
                                                  UnitSymbol.AMPERE),
        evse_minimum_voltage_limit=physical_value(PVEVSEMinVoltageLimit, limits.min_voltage, UnitSymbol.VOLTAGE),
        evse_peak_current_ripple=physical_value(PVEVSEPeakCurrentRipple, context.peak_current_ripple,
                                                UnitSymbol.AMPERE),
    )


def dc_charge_params_v20(limits: EVSEDCCPDLimits) -> DCChargeParameterDiscoveryResParams:
    """-20 DC_ChargeParameterDiscoveryRes: the charger's DC limits (no bidirectional power transfer)."""
    return DCChargeParameterDiscoveryResParams(
        evse_max_charge_power=rational(limits.max_charge_power),
        evse_min_charge_power=rational(limits.min_charge_power),
        evse_max_charge_current=rational(limits.max_charge_current),
        evse_min_charge_current=rational(limits.min_charge_current),
        evse_max_voltage=rational(limits.max_voltage),
        evse_min_voltage=rational(limits.min_voltage),
    )


def dc_service_list() -> ServiceList:
    """-20 ServiceDiscoveryRes: DC only."""
    return ServiceList(services=[Service(service_id=DC_SERVICE_ID, free_service=False)])


def dc_service_parameter_list() -> ServiceParameterList:
    """-20 ServiceDetailRes for DC: extended connector, scheduled control, mobility needs from the EV, no pricing."""
    scheduled = ParameterSet(id=1, parameters=[
        Parameter(name="Connector", int_value=2),  # Extended
        Parameter(name="ControlMode", int_value=1),  # Scheduled
        Parameter(name="MobilityNeedsMode", int_value=1),  # provided by the EV
        Parameter(name="Pricing", int_value=0),  # no pricing
    ])
    return ServiceParameterList(parameter_sets=[scheduled])


def schedule_exchange_params_v20(control_mode: ControlMode, max_power_W: float,
                                 ) -> ScheduledScheduleExchangeResParams | DynamicScheduleExchangeResParams:
    """-20 ScheduleExchangeRes: one flat price level; scheduled mode gets the charger's maximum power for 24 h."""
    price_levels = PriceLevelSchedule(
        id="id1", time_anchor=0, schedule_id=1, schedule_description="flat rate", num_price_levels=1,
        schedule_entries=PriceLevelScheduleEntryList(
            entries=[PriceLevelScheduleEntry(duration=SCHEDULE_DURATION_S, price_level=1)]))
    if control_mode == ControlMode.DYNAMIC:
        return DynamicScheduleExchangeResParams(departure_time=SCHEDULE_DURATION_S, min_soc=0, target_soc=100,
                                                price_level_schedule=price_levels)
    power_schedule = PowerSchedule(time_anchor=0, schedule_entry_list=PowerScheduleEntryList(entries=[
        PowerScheduleEntry(duration=SCHEDULE_DURATION_S, power=rational(max_power_W))]))
    schedule = ScheduleTuple(schedule_tuple_id=1, charging_schedule=ChargingSchedule(
        power_schedule=power_schedule, price_level_schedule=price_levels))
    return ScheduledScheduleExchangeResParams(schedule_tuples=[schedule])


def sa_schedule_list_v2(max_power_W: float, departure_time_s: int) -> list[SAScheduleTuple]:
    """-2 ChargeParameterDiscoveryRes: one PMax schedule at the charger's maximum power until departure."""
    entry = PMaxScheduleEntry(p_max=physical_value(PVPMax, max_power_W, UnitSymbol.WATT),
                              time_interval=RelativeTimeInterval(start=0,
                                                                 duration=departure_time_s or SCHEDULE_DURATION_S))
    return [SAScheduleTuple(sa_schedule_tuple_id=1, p_max_schedule=PMaxSchedule(schedule_entries=[entry]),
                            sales_tariff=None)]


def sa_schedule_list_din(max_power_W: float, departure_time_s: int) -> list[SAScheduleTupleEntryDIN]:
    """DIN SPEC 70121 ChargeParameterDiscoveryRes: the same, PMax capped at what an xs:short can carry."""
    details = PMaxScheduleEntryDetailsDIN(
        p_max=int(min(DIN_PMAX_MAX_W, max_power_W)),
        time_interval=RelativeTimeIntervalDIN(start=0, duration=departure_time_s or SCHEDULE_DURATION_S))
    return [SAScheduleTupleEntryDIN(sa_schedule_tuple_id=1, sales_tariff=None,
                                    p_max_schedule=PMaxScheduleEntryDIN(p_max_schedule_id=0,
                                                                        entry_details=[details]))]


def meter_info_v2(energy_Wh: float) -> MeterInfoV2:
    return MeterInfoV2(meter_id=METER_ID, meter_reading=int(energy_Wh), t_meter=int(time.time()))


def meter_info_v20(energy_Wh: float) -> MeterInfoV20:
    return MeterInfoV20(meter_id=METER_ID, charged_energy_reading_wh=int(energy_Wh), meter_timestamp=int(time.time()))


def authorization_ok_code(protocol: Protocol | None) -> Any:
    """The OK response code of ``protocol``'s message set (DIN, -20, else -2)."""
    if protocol == Protocol.DIN_SPEC_70121:
        return ResponseCodeDIN.OK
    if protocol is not None and protocol.name.startswith("ISO_15118_20"):
        return ResponseCodeV20.OK
    return ResponseCodeV2.OK


def end_signal(summary: Any, refused: bool) -> tuple[DCEVSEStatusCode, bool] | None:
    """How our side ended the session (its ``SessionSummary``, None while it runs; ``refused``: the charger
    never started it), as (DC status code, EV must stop), or None while it runs."""
    if summary is None:
        return (DCEVSEStatusCode.EVSE_NOT_READY, True) if refused else None
    if summary.ended_phase == Phase.COMPLETE.value:
        return DCEVSEStatusCode.EVSE_NOT_READY, False
    if summary.fault is not None:
        if summary.fault.severity is Severity.EMERGENCY:
            return DCEVSEStatusCode.EVSE_EMERGENCY_SHUTDOWN, True
    return DCEVSEStatusCode.EVSE_SHUTDOWN, True
