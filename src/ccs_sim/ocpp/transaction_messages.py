"""The payloads of transaction messages for both versions, built with the ``ocpp`` package's dataclasses.

Pure functions: a meter sample and a transaction's facts in, the wire payload (camelCase dict, as the
queue stores and sends it) out. ``to_wire`` / ``request_from_wire`` convert between the package's
dataclasses and that form.

Measurands (DC output; ``location`` Outlet, the EV's SoC at location EV): Energy.Active.Import.Register
(Wh, the station's register), Power.Active.Import (W), Current.Import (A), Voltage (V), SoC (Percent),
Power.Offered (W) and Current.Offered (A): the limit in force. Contexts: Transaction.Begin / Transaction.End
at the start and the end, Sample.Periodic for the samples in between. Which measurands a meter value carries
is the CSMS's choice (``MeasurandSelection``, from the device model): 1.6 MeterValuesSampledData (periodic) and
StopTxnSampledData (StopTransaction's transactionData); 2.0.1 SampledDataCtrlr.TxUpdatedMeasurands,
TxStartedMeasurands and TxEndedMeasurands. The end sample carries only the register (the output is off). A
periodic sample none of whose selected measurands is known (only SoC chosen, no SoC from the EV): 2.0.1's
TransactionEvent goes without meterValue, 1.6 StopTransaction without transactionData; a MeterValues message must
carry one sampled value (the schemas' minItems 1) and carries the register.

Stop reasons (how the session ended -> 1.6 Reason, 2.0.1 ReasonEnumType and the Ended event's triggerReason):
the API's ``/stop_session`` -> Local / Local / StopAuthorized; the CSMS's remote stop -> Remote / Remote /
RemoteStop; duration elapsed -> Other / TimeLimitReached / TimeLimitReached; EV full or EV stop ->
Other (1.6 has no EV-side reason) / SOCLimitReached or StoppedByEV / ChargingStateChanged; the process died
(closed at restart) -> PowerLoss / PowerLoss / AbnormalCondition; a fault -> E_STOP EmergencyStop, CP_LOSS
EVDisconnected (2.0.1 EVDisconnected, trigger EVCommunicationLost), ISOLATION_FAULT (2.0.1 GroundFault),
OVERCURRENT (2.0.1 OvercurrentFault), EV_EMERGENCY_STOP (2.0.1 StoppedByEV), COMMUNICATION_TIMEOUT (2.0.1
Timeout, trigger EVCommunicationLost), the rest Other; faults trigger AbnormalCondition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.v16 import call as call16
from ocpp.v16 import datatypes as types16
from ocpp.v201 import call as call201
from ocpp.v201 import datatypes as types201

from ccs_sim.ocpp.date_time_check import format_date_time
from evse_model.session import EndReason

#: 1.6 StartTransaction needs an idTag (CiString20): a session started without one is charged under this.
NO_AUTHORIZATION_ID_TAG = "NoAuthorization"
#: 1.6 CiString20 (idTag), 2.0.1 IdTokenType.idToken is CiString36.
ID_TAG_MAX_LENGTH_16 = 20
ID_TOKEN_MAX_LENGTH_201 = 36

_OUTLET, _EV = "Outlet", "EV"

ENERGY_REGISTER = "Energy.Active.Import.Register"
#: The measurands this station samples, in the order a meter value lists them (issue 12: the DC measurands a
#: CSMS bills and monitors from). The default periodic selection.
MEASURANDS = (ENERGY_REGISTER, "Power.Active.Import", "Current.Import", "Voltage", "SoC", "Power.Offered",
              "Current.Offered")
#: What the start and the end of a transaction carry unless the CSMS chooses otherwise: the register.
BEGIN_END_MEASURANDS = (ENERGY_REGISTER,)


@dataclass(frozen=True)
class MeasurandSelection:
    """The measurands each context's meter values carry (see the module's description)."""

    periodic: tuple[str, ...] = MEASURANDS
    begin: tuple[str, ...] = BEGIN_END_MEASURANDS
    end: tuple[str, ...] = BEGIN_END_MEASURANDS

    def for_context(self, context: str) -> tuple[str, ...]:
        if context == "Transaction.Begin":
            return self.begin
        if context == "Transaction.End":
            return self.end
        return self.periodic


#: The fallback of a meter value none of whose selected measurands is known.
REGISTER_ONLY = MeasurandSelection(BEGIN_END_MEASURANDS, BEGIN_END_MEASURANDS, BEGIN_END_MEASURANDS)


def parse_measurands(value: str) -> tuple[str, ...]:
    """A comma-separated measurand list (a device model value) as a tuple, blanks dropped."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class MeterSample:
    """The station's meter and limits at one moment."""

    timestamp: datetime
    register_Wh: float
    power_W: float = 0.0
    current_A: float = 0.0
    voltage_V: float = 0.0
    soc_percent: float | None = None
    offered_power_W: float = 0.0
    offered_current_A: float = 0.0
    #: What the CSMS chose to receive (None: the defaults).
    measurands: MeasurandSelection | None = None

    def selected(self, context: str) -> tuple[str, ...]:
        """The measurands to send in ``context`` that this sample has (the end sample: only the register)."""
        chosen = (self.measurands or MeasurandSelection()).for_context(context)
        known = {ENERGY_REGISTER} if context == "Transaction.End" else set(MEASURANDS) - (
            {"SoC"} if self.soc_percent is None else set())
        return tuple(measurand for measurand in _MEASURAND_FIELDS if measurand in chosen and measurand in known)


#: measurand -> (MeterSample field, unit, digits, location), in the order a meter value lists them
_MEASURAND_FIELDS = {
    ENERGY_REGISTER: ("register_Wh", "Wh", 3, _OUTLET),
    "Power.Active.Import": ("power_W", "W", 1, _OUTLET),
    "Current.Import": ("current_A", "A", 3, _OUTLET),
    "Voltage": ("voltage_V", "V", 3, _OUTLET),
    "Power.Offered": ("offered_power_W", "W", 1, _OUTLET),
    "Current.Offered": ("offered_current_A", "A", 3, _OUTLET),
    "SoC": ("soc_percent", "Percent", 1, _EV),
}


@dataclass(frozen=True)
class StopReason:
    reason_16: str
    reason_201: str
    trigger_201: str


_STOP_BY_END_REASON = {
    EndReason.STOP_REQUESTED: StopReason("Local", "Local", "StopAuthorized"),
    EndReason.DURATION_ELAPSED: StopReason("Other", "TimeLimitReached", "TimeLimitReached"),
    EndReason.EV_FULL: StopReason("Other", "SOCLimitReached", "ChargingStateChanged"),
    EndReason.EV_REQUESTED_STOP: StopReason("Other", "StoppedByEV", "ChargingStateChanged"),
    EndReason.INTERRUPTED: StopReason("PowerLoss", "PowerLoss", "AbnormalCondition"),
}
_STOP_BY_FAULT = {
    "E_STOP": StopReason("EmergencyStop", "EmergencyStop", "AbnormalCondition"),
    "CP_LOSS": StopReason("EVDisconnected", "EVDisconnected", "EVCommunicationLost"),
    "ISOLATION_FAULT": StopReason("Other", "GroundFault", "AbnormalCondition"),
    "OVERCURRENT": StopReason("Other", "OvercurrentFault", "AbnormalCondition"),
    "EV_EMERGENCY_STOP": StopReason("Other", "StoppedByEV", "AbnormalCondition"),
    "COMMUNICATION_TIMEOUT": StopReason("Other", "Timeout", "EVCommunicationLost"),
}
REMOTE_STOP = StopReason("Remote", "Remote", "RemoteStop")
OTHER_FAULT = StopReason("Other", "Other", "AbnormalCondition")


def stop_reason(end_reason: str, fault_name: str | None, remote: bool = False) -> StopReason:
    """How the session ended (its summary's ``end_reason`` and fault) as OCPP stop reasons."""
    if remote and end_reason == EndReason.STOP_REQUESTED.value:
        return REMOTE_STOP
    if fault_name is not None or end_reason == EndReason.FAULT.value:
        return _STOP_BY_FAULT.get(fault_name or "", OTHER_FAULT)
    try:
        return _STOP_BY_END_REASON[EndReason(end_reason)]
    except (ValueError, KeyError):
        return StopReason("Other", "Other", "AbnormalCondition")


def to_wire(request: Any) -> dict[str, Any]:
    """A ``ocpp`` call dataclass as its wire payload (camelCase, no None fields)."""
    return remove_nones(snake_to_camel_case(serialize_as_dict(request)))


def request_from_wire(version: str, action: str, payload: dict[str, Any]) -> Any:
    """The ``ocpp`` call dataclass of a wire payload (what the link's ``call`` takes)."""
    module = call16 if version == "1.6" else call201
    return getattr(module, action)(**camel_to_snake_case(payload))


def _number(value: float, digits: int) -> float:
    return round(float(value), digits)


# --- 1.6 ----------------------------------------------------------------------------------------------------
def register_value_16(register_Wh: float) -> int:
    """1.6 meterStart / meterStop are integers (Wh)."""
    return int(round(register_Wh))


def _sampled_16(value: float, measurand: str, unit: str, context: str, location: str = _OUTLET,
                digits: int = 3) -> types16.SampledValue:
    return types16.SampledValue(value=str(_number(value, digits)), context=context, measurand=measurand,
                                location=location, unit=unit)


def meter_value_16(sample: MeterSample, context: str = "Sample.Periodic") -> types16.MeterValue:
    """The sample's selected measurands in ``context``, or the register when it has none of them (a meter value
    carries one sampled value at least: the schema's minItems 1)."""
    return selected_meter_value_16(sample, context) or selected_meter_value_16(
        replace(sample, measurands=REGISTER_ONLY), context)


def _selected_sampled_values(sample: MeterSample, context: str, make_sampled: Callable[..., Any]) -> list[Any]:
    """The sample's selected measurands in ``context``, each made a sampled value of the version."""
    values = []
    for measurand in sample.selected(context):
        field_name, unit, digits, location = _MEASURAND_FIELDS[measurand]
        values.append(make_sampled(getattr(sample, field_name), measurand, unit, context, location, digits))
    return values


def selected_meter_value_16(sample: MeterSample, context: str = "Sample.Periodic") -> types16.MeterValue | None:
    """The sample's selected measurands in ``context``; None when it has none of them."""
    values = _selected_sampled_values(sample, context, _sampled_16)
    return types16.MeterValue(timestamp=format_date_time(sample.timestamp), sampled_value=values) if values else None


def authorize_16(id_tag: str) -> dict[str, Any]:
    return to_wire(call16.Authorize(id_tag=id_tag[:ID_TAG_MAX_LENGTH_16]))


def start_transaction_16(connector_id: int, id_tag: str, sample: MeterSample) -> dict[str, Any]:
    return to_wire(call16.StartTransaction(connector_id=connector_id, id_tag=id_tag[:ID_TAG_MAX_LENGTH_16],
                                           meter_start=register_value_16(sample.register_Wh),
                                           timestamp=format_date_time(sample.timestamp)))


def meter_values_16(connector_id: int, sample: MeterSample) -> dict[str, Any]:
    """Periodic MeterValues of a transaction (its ``transactionId`` is filled in by the queue)."""
    return to_wire(call16.MeterValues(connector_id=connector_id, meter_value=[meter_value_16(sample)]))


def stop_transaction_16(sample: MeterSample, reason: StopReason, id_tag: str | None) -> dict[str, Any]:
    """StopTransaction without its ``transactionId`` (the queue fills it in from the CSMS's answer)."""
    payload = to_wire(call16.StopTransaction(
        meter_stop=register_value_16(sample.register_Wh), timestamp=format_date_time(sample.timestamp),
        transaction_id=0, reason=reason.reason_16,
        id_tag=id_tag[:ID_TAG_MAX_LENGTH_16] if id_tag else None,
        transaction_data=[value] if (value := selected_meter_value_16(sample, "Transaction.End")) is not None else None))
    del payload["transactionId"]
    return payload


# --- 2.0.1 --------------------------------------------------------------------------------------------------
def _sampled_201(value: float, measurand: str, unit: str, context: str, location: str = _OUTLET,
                 digits: int = 3) -> types201.SampledValueType:
    return types201.SampledValueType(value=_number(value, digits), context=context, measurand=measurand,
                                     location=location, unit_of_measure=types201.UnitOfMeasureType(unit=unit))


def meter_value_201(sample: MeterSample, context: str = "Sample.Periodic") -> types201.MeterValueType:
    """The sample's selected measurands in ``context``, or the register when it has none of them (a meter value
    carries one sampled value at least: the schema's minItems 1)."""
    return selected_meter_value_201(sample, context) or selected_meter_value_201(
        replace(sample, measurands=REGISTER_ONLY), context)


def selected_meter_value_201(sample: MeterSample, context: str = "Sample.Periodic") -> types201.MeterValueType | None:
    """The sample's selected measurands in ``context``; None when it has none of them."""
    values = _selected_sampled_values(sample, context, _sampled_201)
    return types201.MeterValueType(timestamp=format_date_time(sample.timestamp), sampled_value=values) \
        if values else None


def id_token_201(id_token: str | None, token_type: str = "ISO14443") -> types201.IdTokenType:
    """The session's token, or NoAuthorization (an empty idToken) when none was given."""
    if not id_token:
        return types201.IdTokenType(id_token="", type="NoAuthorization")
    return types201.IdTokenType(id_token=id_token[:ID_TOKEN_MAX_LENGTH_201], type=token_type)


def authorize_201(id_token: str, token_type: str = "ISO14443") -> dict[str, Any]:
    return to_wire(call201.Authorize(id_token=id_token_201(id_token, token_type)))


def transaction_event_201(event_type: str, trigger_reason: str, seq_no: int, transaction_id: str,
                          sample: MeterSample, *, evse_id: int, connector_id: int, charging_state: str | None,
                          context: str | None = None, stopped_reason: str | None = None,
                          id_token: types201.IdTokenType | None = None, offline: bool | None = None,
                          time_spent_charging_s: float | None = None) -> dict[str, Any]:
    """One TransactionEvent (Started / Updated / Ended) with its meter value in ``context``."""
    info = types201.TransactionType(
        transaction_id=transaction_id, charging_state=charging_state,
        time_spent_charging=None if time_spent_charging_s is None else int(time_spent_charging_s),
        stopped_reason=stopped_reason)
    request = call201.TransactionEvent(
        event_type=event_type, timestamp=format_date_time(sample.timestamp), trigger_reason=trigger_reason,
        seq_no=seq_no, transaction_info=info,
        meter_value=[value] if context is not None and (value := selected_meter_value_201(sample, context)) is not None
        else None,
        offline=offline, evse=types201.EVSEType(id=evse_id, connector_id=connector_id) if event_type == "Started"
        else None, id_token=id_token)
    return to_wire(request)
