"""OCPP 2.0.1: the handlers of the CSMS's CALLs (a mixin of the station's ChargePoint, ``v201.py``).

Each handler answers at once from ``self.context.commands`` (``StationCommands``); what must happen after
the answer (a triggered message, a reset) is started by the ``@after`` hook (the ChargePoint handles one
incoming message at a time). Functional blocks: B (Reset B11/B12, Get/SetVariables B05/B06), F (remote
control F01-F06: RequestStart/StopTransaction, UnlockConnector, TriggerMessage), G03 (ChangeAvailability),
K (SmartCharging K01-K08).
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call, call_result

from ccs_sim.ocpp import transaction_messages as messages
from ccs_sim.ocpp.charging_profiles import PURPOSE_201, ProfileRefused, profile_from_201
from ccs_sim.ocpp.date_time_check import format_date_time
from ccs_sim.ocpp.persisted_settings import stored_before_answer
from ccs_sim.ocpp.station_commands import StationCommands

#: What TriggerMessage may ask for here (a BootNotification only before one was Accepted: F06.FR.17).
TRIGGERABLE = ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues")


def status_info(reason_code: str, additional_info: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"reason_code": reason_code}
    if additional_info:
        info["additional_info"] = additional_info[:512]
    return info


class V201Commands:
    context: Any  # the OcppClient

    @property
    def commands(self) -> StationCommands:
        return self.context.commands

    def _known_evse(self, evse_id: int | None, connector_id: int | None = None) -> bool:
        config = self.context.config
        return evse_id in (None, config.evse_id) and connector_id in (None, config.connector_id)

    # --- transactions ----------------------------------------------------------------------------------------
    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None,
                         charging_profile: dict[str, Any] | None = None, **_: Any) -> Any:
        commands = self.commands
        if not self._known_evse(evse_id):
            return call_result.RequestStartTransaction(status="Rejected", status_info=status_info("UnknownEvse"))
        profile = None
        if charging_profile is not None:
            try:
                if charging_profile.get("charging_profile_purpose") != "TxProfile":
                    raise ProfileRefused("only a TxProfile may come with RequestStartTransaction (F01.FR.12)")
                profile = profile_from_201(commands.connector_id, charging_profile,
                                           commands.controller.clock.utcnow())
            except (ProfileRefused, ValueError, KeyError) as refusal:
                return call_result.RequestStartTransaction(status="Rejected",
                                                           status_info=status_info("InvalidProfile", str(refusal)))
        status = commands.remote_start(str(id_token.get("id_token", "")), remote_start_id, profile)
        return call_result.RequestStartTransaction(status=status)

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        return call_result.RequestStopTransaction(status=self.commands.remote_stop(transaction_id))

    # --- reset, availability, unlock --------------------------------------------------------------------------
    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:  # noqa: A002 - the payload's name
        if evse_id is not None:  # resetting one EVSE alone is not supported (B11.FR.10 allows Rejected)
            return call_result.Reset(status="Rejected", status_info=status_info("UnsupportedRequest"))
        return call_result.Reset(status=self.commands.reset(type))

    @after("Reset")
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:  # noqa: A002
        if evse_id is None:
            self.commands.after_reset(type)

    @on("ChangeAvailability")
    @stored_before_answer
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None,
                               **_: Any) -> Any:
        evse_id = evse.get("id", 0) if evse else 0
        connector_id = evse.get("connector_id") if evse else None
        if evse_id != 0 and not self._known_evse(evse_id, connector_id):
            return call_result.ChangeAvailability(status="Rejected", status_info=status_info("UnknownEvse"))
        return call_result.ChangeAvailability(
            status=self.commands.change_availability(0, operational_status == "Operative"))

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        # A fixed DC cable with no retention lock at the station: nothing to unlock (2.0.1 has no NotSupported).
        if not self._known_evse(evse_id, connector_id):
            return call_result.UnlockConnector(status="UnknownConnector")
        if self.commands.current_transaction_id() is not None:
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")  # F05.FR.02
        return call_result.UnlockConnector(status="UnlockFailed",
                                           status_info=status_info("NoLock", "fixed cable without a connector lock"))

    # --- trigger ---------------------------------------------------------------------------------------------
    def _trigger_status(self, requested_message: str, evse: dict[str, Any] | None) -> str:
        if requested_message not in TRIGGERABLE:
            return "NotImplemented"
        if evse is not None and not self._known_evse(evse.get("id"), evse.get("connector_id")):
            return "Rejected"
        if requested_message == "BootNotification" and self.context.link.state.boot_status == "Accepted":
            return "Rejected"  # F06.FR.17: already accepted
        return "Accepted"

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> Any:
        return call_result.TriggerMessage(status=self._trigger_status(requested_message, evse))

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        commands = self.commands
        if requested_message == "Heartbeat":
            commands.send_later(lambda: call.Heartbeat())
        elif requested_message == "StatusNotification" and self._known_evse(*(
                (evse.get("id"), evse.get("connector_id")) if evse else (None, None))):
            commands.send_later(commands.client.status_requests)
        elif requested_message == "MeterValues":
            commands.send_later(lambda: call.MeterValues(
                evse_id=commands.connector_id,
                meter_value=[messages.meter_value_201(commands.meter_sample(), "Trigger")]))

    # --- device model ----------------------------------------------------------------------------------------
    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            status, value = self.commands.device.get_variable(component["name"], variable["name"],
                                                              item.get("attribute_type"))
            result = {"attribute_status": status, "component": component, "variable": variable}
            if item.get("attribute_type"):
                result["attribute_type"] = item["attribute_type"]
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    @stored_before_answer
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            status = self.commands.device.set_variable(component["name"], variable["name"],
                                                       str(item["attribute_value"]), item.get("attribute_type"))
            result = {"attribute_status": status, "component": component, "variable": variable}
            if item.get("attribute_type"):
                result["attribute_type"] = item["attribute_type"]
            results.append(result)
        return call_result.SetVariables(set_variable_result=results)

    # --- smart charging --------------------------------------------------------------------------------------
    @on("SetChargingProfile")
    @stored_before_answer
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        commands = self.commands
        try:
            profile = profile_from_201(evse_id, charging_profile, commands.controller.clock.utcnow())
        except (ProfileRefused, ValueError, KeyError) as refusal:
            return call_result.SetChargingProfile(status="Rejected", status_info=status_info("InvalidProfile",
                                                                                             str(refusal)))
        status, reason = commands.limit.set_profile(profile)
        return call_result.SetChargingProfile(status=status,
                                              status_info=status_info("InvalidProfile", reason) if reason else None)

    @on("ClearChargingProfile")
    @stored_before_answer
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict[str, Any] | None = None, **_: Any) -> Any:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        return call_result.ClearChargingProfile(status=self.commands.limit.clear_profiles(
            charging_profile_id, criteria.get("evse_id"), PURPOSE_201[purpose] if purpose else None,
            criteria.get("stack_level")))

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, duration: int, evse_id: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> Any:
        commands = self.commands
        if evse_id not in (0, commands.connector_id):
            return call_result.GetCompositeSchedule(status="Rejected", status_info=status_info("UnknownEvse"))
        start, periods, unit = commands.limit.composite_schedule(duration, charging_rate_unit)
        return call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration, "schedule_start": format_date_time(start),
            "charging_rate_unit": unit,
            "charging_schedule_period": [{"start_period": p.start_period_s, "limit": p.limit} for p in periods]})
