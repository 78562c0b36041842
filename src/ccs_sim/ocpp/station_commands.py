"""What the CSMS's commands do to the station, for both versions (the version's handler mixins translate).

- Remote start / stop: a real session through the controller (``start_session`` with the id token; the
  transactions are told first: ``note_remote_start`` / ``note_remote_stop``). With AuthorizeRemoteTxRequests
  (AuthCtrlr.AuthorizeRemoteStart) true the token is authorised first.
- Reset: a running session is stopped through the controller's stop path (ramp-down, contactor open below
  1 A: never breaking DC under load), the transaction's stop message queued, then the link is closed and
  opened again and boots again (a BootNotification, 2.0.1 reason RemoteReset); the process goes on.
  2.0.1 OnIdle with a transaction running: Scheduled, done when it ends.
- ChangeAvailability: Inoperative makes the connector Unavailable and the controller refuses sessions
  (``limits.unavailable_reason``); with a transaction running: Scheduled, applied when it ends.
- TriggerMessage: the message goes out after the answer (``after_trigger``).
- UnlockConnector: this DC station's cable is fixed and has no retention lock of its own (the lock is the
  EV inlet's): 1.6 NotSupported (§7.42 UnlockStatus: "no connector lock"); 2.0.1 has no such status:
  OngoingAuthorizedTransaction during a transaction (F05.FR.02), UnknownConnector for another EVSE or
  connector, else UnlockFailed (nothing to unlock).
- The device model's changes take effect: HeartbeatInterval -> the link's heartbeat, MeterValueSampleInterval
  / TxUpdatedInterval -> the transactions' meter interval (0: none), the measurand lists -> what the
  transaction messages carry.
- What the CSMS set survives a restart (``persisted_settings.py``): the availability, the profiles (but
  TxProfiles), the configuration values it wrote; loaded in ``start``, before the link boots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ccs_sim.core.events import Topic
from ccs_sim.ocpp import transaction_messages as messages
from ccs_sim.ocpp.charging_limit import OcppChargingLimit
from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused
from ccs_sim.ocpp.device_model import DeviceModel, default_settings, setting_name
from ccs_sim.ocpp.link import DEFAULT_HEARTBEAT_INTERVAL_S, OcppCallError, OcppNotReady
from ccs_sim.ocpp.persisted_settings import PersistedSettings
from ccs_sim.ocpp.transaction_messages import StopReason
from evse_model.session import SessionParams
from evse_model.session_errors import CommandRefused

if TYPE_CHECKING:
    from ccs_sim.ocpp.station_context import StationContext
    from ccs_sim.ocpp.station_parts import StationTransactionParts

log = logging.getLogger(__name__)

#: A remotely started session runs until stopped (the EV full, a stop, a fault): its duration, s.
REMOTE_SESSION_DURATION_S = 24 * 3600.0
UNAVAILABLE_REASON = "the connector is Unavailable: the CSMS set it Inoperative (ChangeAvailability)"
#: While waiting for a session to wind down, how often to look (wall clock), s.
POLL_S = 0.02


class StationCommands:
    """The commands' effects for one OcppClient (``client.commands``); a part with start / stop / view."""

    def __init__(self, client: StationContext, parts: StationTransactionParts) -> None:
        self.client = client
        self.controller = client.controller
        self.version = client.config.version
        self.connector_id = client.config.connector_id if self.version == "1.6" else client.config.evse_id
        self.parts = parts
        self.limit = OcppChargingLimit(self.controller, parts, self.version, self.connector_id)
        heartbeat_s = int(client.link.state.heartbeat_interval_s or DEFAULT_HEARTBEAT_INTERVAL_S)
        self.device = DeviceModel(default_settings(1, heartbeat_s, int(client.config.meter_interval_s)))
        self.device.on_change("HeartbeatInterval", lambda value: client.link.set_heartbeat_interval(int(value)))
        self.device.on_change("MeterValueSampleInterval", self._set_meter_interval)
        self.persisted = PersistedSettings(parts.database, self.version)
        self.device.on_written = lambda setting: self.persisted.save_setting(
            setting_name(setting), setting.value, self.controller.clock.utcnow())
        self.limit.on_profiles_changed = lambda: self.persisted.save_profiles(
            list(self.limit.store.profiles.values()), self.controller.clock.utcnow())
        parts.transactions.measurands = self.device.measurand_selection
        self.operative = True
        #: A ChangeAvailability or Reset that waits for the running transaction to end.
        self.scheduled_operative: bool | None = None
        self.scheduled_reset: str | None = None
        self.resets = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: tuple[tuple[Topic, Any], ...] = (
            (Topic.TICK, self._on_tick), (Topic.SESSION_START, self._on_session_start),
            (Topic.SESSION_END, self._on_session_end))
        parts.model.available = lambda: self.operative
        parts.model.offered_current_A = self.limit.offered_current_A
        parts.transactions.offered_current_A = lambda: self.limit.limit.current_A
        parts.transactions.offered_power_W = lambda: self.limit.limit.power_W
        client.composite_limit = self.limit.view
        client.link.on_booted(self._sync_heartbeat_setting)

    # --- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """What the CSMS set before a restart back in force (the link is not started yet), then the events."""
        stored = await self.persisted.load(self.controller.clock.utcnow())
        self.device.restore(stored.settings)
        self.limit.restore(stored.profiles)
        if stored.operative is not None:
            self._set_operative(stored.operative)
        for topic, listener in self._listeners:
            self.controller.events.listeners(topic).append(listener)
        self.limit.apply()

    async def stop(self) -> None:
        for topic, listener in self._listeners:
            if listener in self.controller.events.listeners(topic):
                self.controller.events.listeners(topic).remove(listener)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.limit.release()

    def view(self) -> dict[str, Any]:
        return {"operative": self.operative, "scheduled_operative": self.scheduled_operative,
                "scheduled_reset": self.scheduled_reset, "resets": self.resets}

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    # --- events --------------------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        self.limit.on_tick()

    def _on_session_start(self, _session: Any) -> None:
        self.limit.on_session_start()

    def _on_session_end(self, _summary: Any) -> None:
        self.limit.on_session_end()
        if self.scheduled_operative is not None:
            self._set_operative(self.scheduled_operative)
            self.scheduled_operative = None
        if self.scheduled_reset is not None:
            self.scheduled_reset = None
            self.spawn(self.reset_now(None))

    def _sync_heartbeat_setting(self) -> None:
        """The CSMS's BootNotification interval is the HeartbeatInterval setting's value."""
        interval = self.client.link.state.heartbeat_interval_s
        setting = self.device.setting("HeartbeatInterval")
        if interval is not None and setting is not None:
            self.device.force(setting, str(int(interval)))

    def _set_meter_interval(self, value: str) -> None:
        seconds = float(value)
        self.parts.transactions.meter_interval_s = seconds if seconds > 0 else float("inf")

    # --- remote start / stop -------------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.controller.session_active or self.controller.shutting_down

    def remote_start(self, id_tag: str, remote_start_id: int | None = None, tx_profile: Any = None) -> str:
        """Accepted (the session starts, or is authorised first) or Rejected (busy, unavailable)."""
        if self.busy() or not self.operative or self.controller.persistent_fault_reason() is not None:
            return "Rejected"
        self.limit.pending_tx_profile = tx_profile
        authorize = self.device.setting("AuthorizeRemoteTxRequests")
        if authorize is not None and authorize.value == "true":
            self.spawn(self._authorize_then_start(id_tag, remote_start_id))
            return "Accepted"
        return "Accepted" if self._start(id_tag, remote_start_id) else "Rejected"

    def _start(self, id_tag: str, remote_start_id: int | None) -> bool:
        try:
            self.controller.start_session(SessionParams(duration_s=REMOTE_SESSION_DURATION_S, id_token=id_tag))
        except CommandRefused as refused:
            log.warning("OCPP remote start refused by the controller: %s", refused)
            return False
        # told before the session's start event (it comes from the session's task, after this returns)
        self.parts.transactions.note_remote_start(id_tag, remote_start_id)
        return True

    async def _authorize_then_start(self, id_tag: str, remote_start_id: int | None) -> None:
        payload = messages.authorize_16(id_tag) if self.version == "1.6" else messages.authorize_201(id_tag)
        try:
            response = await self.parts.send("Authorize", payload) or {}
        except Exception as error:  # offline or no answer: the token is not known to be refused
            log.info("OCPP Authorize for a remote start not answered (%s): starting", error)
            response = {}
        info = response.get("idTagInfo") or response.get("idTokenInfo") or {}
        if info.get("status", "Accepted") != "Accepted":
            log.warning("OCPP remote start: id token %r not authorised (%s)", id_tag, info.get("status"))
            return
        self._start(id_tag, remote_start_id)

    def current_transaction_id(self) -> str | None:
        tx = self.parts.transactions.current
        if tx is None or not self.controller.session_active:
            return None
        if self.version == "1.6":
            csms_id = self.parts.queue.csms_transaction_id(tx.local_ref)
            return str(csms_id) if csms_id is not None else None
        return tx.local_ref

    def remote_stop(self, transaction_id: str) -> str:
        """Accepted when ``transaction_id`` is the running transaction (it is stopped), else Rejected."""
        if transaction_id != self.current_transaction_id():
            return "Rejected"
        self.parts.transactions.note_remote_stop()
        return "Accepted" if self.controller.request_stop() else "Rejected"

    # --- reset ---------------------------------------------------------------------------------------------
    def reset(self, kind: str) -> str:
        """1.6 Soft / Hard, 2.0.1 Immediate / OnIdle: Accepted (the reset follows the answer: ``after_reset``)
        or Scheduled (2.0.1 OnIdle during a transaction)."""
        if kind == "OnIdle" and self.busy():
            self.scheduled_reset = kind
            return "Scheduled"
        return "Accepted"

    def after_reset(self, kind: str) -> None:
        if self.scheduled_reset is None:
            self.spawn(self.reset_now(kind))

    async def reset_now(self, kind: str | None) -> None:
        """Stop the running session safely, then reconnect and boot again."""
        controller = self.controller
        if controller.session_active:
            reason = {"Soft": StopReason("SoftReset", "SoftReset", "ResetCommand"),
                      "Hard": StopReason("HardReset", "HardReset", "ResetCommand")}.get(
                kind or "", StopReason("Other", "ImmediateReset", "ResetCommand"))
            self.parts.transactions.note_stop_reason(reason)
            controller.request_stop()
        while controller.session_active or controller.shutting_down:
            await asyncio.sleep(POLL_S)
        await self.parts.transactions.wait_settled()  # the stop message is in the durable queue
        link = self.client.link
        await link.stop()
        link.state.boots_accepted = 0
        if self.version == "2.0.1":
            from ccs_sim.ocpp import v201

            link.protocol = replace(link.protocol, boot_request=lambda config: v201.boot_request(config, "RemoteReset"))
        self.resets += 1
        log.warning("OCPP reset (%s): reconnecting and booting again", kind or "scheduled")
        await link.start()

    # --- availability --------------------------------------------------------------------------------------
    def change_availability(self, connector_id: int, operative: bool) -> str:
        """Accepted, Scheduled (a transaction runs: applied when it ends) or Rejected (unknown connector)."""
        if connector_id not in (0, self.connector_id):
            return "Rejected"
        # kept across a restart at once, Scheduled too: a restart ends the transaction (persisted_settings.py)
        self.persisted.save_availability(operative, self.controller.clock.utcnow())
        if not operative and self.controller.session_active:
            self.scheduled_operative = False
            return "Scheduled"
        self.scheduled_operative = None
        self._set_operative(operative)
        return "Accepted"

    def _set_operative(self, operative: bool) -> None:
        self.operative = operative
        self.controller.limits.unavailable_reason = None if operative else UNAVAILABLE_REASON
        setting = self.device.setting(component="ChargingStation", variable="AvailabilityState")
        if setting is not None:
            self.device.force(setting, "Available" if operative else "Unavailable")

    # --- trigger -------------------------------------------------------------------------------------------
    def send_later(self, build: Callable[[], Any]) -> None:
        """Send the request ``build()`` makes, after the answer to the CSMS's CALL has gone out."""
        async def send() -> None:
            try:
                for request in (lambda made: made if isinstance(made, list) else [made])(build()):
                    await self.client.link.call(request)
            except (TimeoutError, OcppNotReady, OcppCallError, OutgoingPayloadRefused) as error:
                log.warning("OCPP triggered message not delivered: %s", error)
        self.spawn(send())

    def meter_sample(self) -> Any:
        transactions = self.parts.transactions
        tx = transactions.current
        session = self.controller.session if tx is not None and self.controller.session_active else None
        return transactions.sample(session, tx.register_start_Wh if tx is not None and session is not None
                                   else transactions.register_Wh)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("OCPP command step failed: %r", task.exception())
