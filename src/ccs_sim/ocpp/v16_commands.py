"""OCPP 1.6J: the handlers of the Central System's CALLs (a mixin of the station's ChargePoint, ``v16.py``).

Each handler answers at once from ``self.context.commands`` (``StationCommands``); what must happen after
the answer (a triggered message, a reset) is started by the ``@after`` hook, since the ChargePoint handles
one incoming message at a time and a CALL of ours made inside a handler could not get its answer.
Feature profiles: Core, RemoteTrigger, SmartCharging (§3.13, §5.5, §5.6, §5.16, §6.x).
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call, call_result

from ccs_sim.ocpp import transaction_messages as messages
from ccs_sim.ocpp.charging_profiles import PURPOSE_16, ProfileRefused, profile_from_16
from ccs_sim.ocpp.date_time_check import format_date_time
from ccs_sim.ocpp.persisted_settings import stored_before_answer
from ccs_sim.ocpp.station_commands import StationCommands

TRIGGERABLE = ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues")


class V16Commands:
    context: Any  # the OcppClient

    @property
    def commands(self) -> StationCommands:
        return self.context.commands

    # --- transactions ----------------------------------------------------------------------------------------
    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict[str, Any] | None = None, **_: Any) -> Any:
        commands = self.commands
        if connector_id not in (None, commands.connector_id):
            return call_result.RemoteStartTransaction(status="Rejected")
        profile = None
        if charging_profile is not None:
            if charging_profile.get("charging_profile_purpose") != "TxProfile":
                return call_result.RemoteStartTransaction(status="Rejected")  # §5.11: only a TxProfile
            try:
                profile = profile_from_16(commands.connector_id, charging_profile,
                                          commands.controller.clock.utcnow())
            except (ProfileRefused, ValueError, KeyError):
                return call_result.RemoteStartTransaction(status="Rejected")
        return call_result.RemoteStartTransaction(status=commands.remote_start(id_tag, None, profile))

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        return call_result.RemoteStopTransaction(status=self.commands.remote_stop(str(transaction_id)))

    # --- reset, availability, unlock --------------------------------------------------------------------------
    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:  # noqa: A002 - the payload's name
        return call_result.Reset(status=self.commands.reset(type))

    @after("Reset")
    def after_reset(self, type: str, **_: Any) -> None:  # noqa: A002
        self.commands.after_reset(type)

    @on("ChangeAvailability")
    @stored_before_answer
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:  # noqa: A002
        return call_result.ChangeAvailability(
            status=self.commands.change_availability(connector_id, type == "Operative"))

    @on("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        # A fixed DC cable without a retention lock at the station (the lock is the EV inlet's): §7.42
        # UnlockStatus NotSupported ("no connector lock"), for an unknown connector id as well.
        return call_result.UnlockConnector(status="NotSupported")

    # --- trigger ---------------------------------------------------------------------------------------------
    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        if connector_id not in (None, 0, self.commands.connector_id):
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted" if requested_message in TRIGGERABLE
                                          else "NotImplemented")

    @after("TriggerMessage")
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        commands = self.commands
        if requested_message not in TRIGGERABLE or connector_id not in (None, 0, commands.connector_id):
            return
        client = commands.client
        if requested_message == "BootNotification":
            commands.send_later(lambda: client.link.protocol.boot_request(client.config))
        elif requested_message == "Heartbeat":
            commands.send_later(lambda: call.Heartbeat())
        elif requested_message == "StatusNotification":
            commands.send_later(client.status_requests)
        else:
            commands.send_later(self._meter_values)

    def _meter_values(self) -> Any:
        commands = self.commands
        transaction_id = commands.current_transaction_id()
        return call.MeterValues(connector_id=commands.connector_id,
                                meter_value=[messages.meter_value_16(commands.meter_sample(), "Trigger")],
                                transaction_id=int(transaction_id) if transaction_id is not None else None)

    # --- configuration ---------------------------------------------------------------------------------------
    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known, unknown = self.commands.device.get_configuration(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeConfiguration")
    @stored_before_answer
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status=self.commands.device.change_configuration(key, value))

    # --- smart charging --------------------------------------------------------------------------------------
    @on("SetChargingProfile")
    @stored_before_answer
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        commands = self.commands
        try:
            profile = profile_from_16(connector_id, cs_charging_profiles, commands.controller.clock.utcnow())
        except (ProfileRefused, ValueError, KeyError):
            return call_result.SetChargingProfile(status="Rejected")
        status, _reason = commands.limit.set_profile(profile)
        return call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    @stored_before_answer
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,  # noqa: A002
                                  charging_profile_purpose: str | None = None, stack_level: int | None = None,
                                  **_: Any) -> Any:
        purpose = PURPOSE_16[charging_profile_purpose] if charging_profile_purpose else None
        return call_result.ClearChargingProfile(
            status=self.commands.limit.clear_profiles(id, connector_id, purpose, stack_level))

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, connector_id: int, duration: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> Any:
        commands = self.commands
        if connector_id not in (0, commands.connector_id):
            return call_result.GetCompositeSchedule(status="Rejected")
        start, periods, unit = commands.limit.composite_schedule(duration, charging_rate_unit)
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=format_date_time(start),
            charging_schedule={"duration": duration, "start_schedule": format_date_time(start),
                               "charging_rate_unit": unit,
                               "charging_schedule_period": [{"start_period": p.start_period_s, "limit": p.limit}
                                                            for p in periods]})
