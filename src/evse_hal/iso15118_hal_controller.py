"""``HalEVSEController``: iso15118's ``EVSEControllerInterface`` backed by our ChargerController and HAL.

The SECC (iso15118) runs the protocol; every physical answer it needs comes from the one controller the
Live Controller API also uses, so the API, the safety supervisor and the EV see the same charger:

- CP state: the pilot reading (x2 while the 5 % PWM oscillates); the session's start sets 5 % PWM.
- Cable check: ``start_cable_check`` runs ``ChargerController.cable_check`` (contactor closed, IEC 61851-23
  CC.1 test voltage at ≤ 2 A, a real IMD reading, then the supply off until the output is below 60 V) as a
  background task; ``is_contactor_closed`` answers None while the contactor is closing,
  ``get_cable_check_status`` None while measuring and discharging, then VALID / WARNING / FAULT.
- Precharge: every PreChargeReq re-applies the EV's target (clamped to the EV's and our maximum) at
  ≤ 2 A (``precharge_step``): the output rises from below 60 V, so PreChargeRes never reports more than
  the EV asked or its maximum. Charge loop: ``set_charge_targets`` (clamped to our limits; the current
  follows at the controller's slew). Present voltage/current are the meter's measurements.
- ``stop_charger`` ramps down (≤ 100 A/s) and opens below 1 A before it returns.
- Our faults, ``/stop_session`` and an output opened by ``/control/contactor`` reach the EV in the
  status of every response: EVSE_EmergencyShutdown (emergency fault) or EVSE_Shutdown with
  EVSENotification StopCharging (DIN / -2: the stock EVCC only reacts to StopCharging), and
  EVSENotification Terminate in -20.
- Our own charge-loop watchdog: no CurrentDemand/ChargeLoop request for 1 s during energy transfer →
  COMMUNICATION_TIMEOUT fault (the SECC's own sequence timer is 60 s).
- With the simulated adapter, the simulated car gets a battery matching the EV stack's request
  (``SimulationControls.prepare_hlc_car``) so energy really flows.

The session in the controller (source ``hlc``) starts with the SECC's session (SupportedAppProtocol) and
ends COMPLETE after a successful SessionStop, ABORTED on a fault, ``/stop_session`` or an abnormal end.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Union

from evse_hal import iso15118_messages as messages  # installs the pydantic.v1 hook before iso15118 is imported
from iso15118.secc.controller.ev_data import EVDataContext
from iso15118.secc.controller.interface import AuthorizationResponse, EVSEControllerInterface, ServiceStatus
from iso15118.secc.controller.simulator import SimEVSEController
from iso15118.shared.messages.datatypes import DCEVSEChargeParameter, DCEVSEStatus, DCEVSEStatusCode
from iso15118.shared.messages.datatypes import EVSENotification as EVSENotificationV2
from iso15118.shared.messages.din_spec.datatypes import SAScheduleTupleEntry as SAScheduleTupleEntryDIN
from iso15118.shared.messages.enums import (
    AuthorizationStatus,
    AuthorizationTokenType,
    ControlMode,
    CpState,
    EnergyTransferModeEnum,
    IsolationLevel,
    Protocol,
    ServiceV20,
    SessionStopAction,
)
from iso15118.shared.messages.iso15118_2.datatypes import ACEVSEChargeParameter, ACEVSEStatus, SAScheduleTuple
from iso15118.shared.messages.iso15118_2.datatypes import MeterInfo as MeterInfoV2
from iso15118.shared.messages.iso15118_20.common_messages import (
    DynamicScheduleExchangeResParams,
    ProviderID,
    ScheduledScheduleExchangeResParams,
    ScheduleExchangeReq,
    SelectedEnergyService,
    ServiceList,
    ServiceParameterList,
)
from iso15118.shared.messages.iso15118_20.common_types import EVSENotification as EVSENotificationV20
from iso15118.shared.messages.iso15118_20.common_types import EVSEStatus
from iso15118.shared.messages.iso15118_20.common_types import MeterInfo as MeterInfoV20
from iso15118.shared.messages.iso15118_20.dc import (
    BPTDCChargeParameterDiscoveryResParams,
    DCChargeParameterDiscoveryResParams,
)
from iso15118.shared.states import State

from evse_hal.charger_port import ChargerPort, ChargingSession
from evse_hal.iso15118_evse_id import din_evse_id, iso_15118_2_evse_id
from evse_hal.iso15118_session import CHARGE_LOOP_WATCHDOG_S, ChargeLoopWatchdog, HlcSessionDriver
from evse_hal.iso15118_sim_body import SimulatedEvStackBody, is_credible_pack_voltage
from evse_hal.iso15118_views import bms_view_from_ev_data, energy_service_name, enum_value, iso15118_view, plain_number
from evse_model import standards
from evse_model.session import EndReason, Phase, SessionParams, Stage
from evse_model.session_errors import CommandRefused, SessionAbort

__all__ = ["CHARGE_LOOP_WATCHDOG_S", "DEFAULT_EVSE_ID", "HalEVSEController", "fresh_ev_data_context"]

logger = logging.getLogger(__name__)

fresh_ev_data_context = messages.fresh_ev_data_context
DEFAULT_EVSE_ID = "DE*CCS*E0000001*1"
#: How often the API's vehicle views are rebuilt while the EV repeats a request (charge loop, precharge).
VIEW_REFRESH_S = 0.1
_LOOP_STATES = ("CurrentDemand", "DCChargeLoop", "PreCharge", "DCPreCharge", "CableCheck", "DCCableCheck",
                "WeldingDetection", "DCWeldingDetection")
#: Session stages in which energy transfer is under way (the contactor must be closed).
_ENERGY_STAGES = (Stage.CURRENT_RAMP, Stage.CHARGING)


class HalEVSEController(EVSEControllerInterface):
    """The SECC's EVSE controller on the shared ChargerController (see the module docstring)."""

    def __init__(self, charger: ChargerPort, evse_id: str | None = None,
                 watchdog_s: float = CHARGE_LOOP_WATCHDOG_S) -> None:
        super().__init__()
        self.charger = charger
        self.evse_id = evse_id or DEFAULT_EVSE_ID
        self._watchdog = ChargeLoopWatchdog(watchdog_s)
        self.ev_data_context = fresh_ev_data_context()
        self.evse_data_context = self._evse_data_context()
        self.status: ServiceStatus | None = None
        #: Set by an external identification (RFID, API); False: the EV identifies itself (EIM/PnC).
        self.eim_authorized = False
        self._comm_session: Any = None
        self._session: ChargingSession | None = None
        self._driver: HlcSessionDriver | None = None
        self._refusal: str | None = None
        self._cable_check_task: asyncio.Task[None] | None = None
        self._isolation: IsolationLevel | None = None
        self._energy_transfer = False
        self._ev_stopping = False
        #: The EV stack's body on the simulated adapter (None on real hardware).
        self._sim_body = SimulatedEvStackBody.on(charger.hw, charger.evse_max_voltage_V, charger.evse_max_current_A)
        self._authorized: bool | None = None
        self._started_at = None
        self._last_message_at = None
        self._views_built_s = float("-inf")
        self._background: set[asyncio.Task[Any]] = set()
        charger.tick_listeners.append(self._on_tick)

    # --- EVSE data ----------------------------------------------------------------------------------
    def _evse_data_context(self) -> Any:
        charger = self.charger
        return messages.dc_evse_data_context(charger.evse_max_power_W, charger.evse_max_current_A,
                                             charger.evse_max_voltage_V,
                                             charger.hw.supply.get_capabilities().min_voltage_V,
                                             charger.settings.current_ramp_up_A_per_s)

    def reset_ev_data_context(self) -> None:
        self.ev_data_context = fresh_ev_data_context()

    # --- the session in the controller -----------------------------------------------------------------
    def _own_session_active(self) -> bool:
        charger = self.charger
        return self._session is not None and charger.session is self._session and charger.session_active

    async def _begin_session(self, comm_session: Any) -> None:
        """A new SECC communication session: a new session in the controller (phase HANDSHAKE)."""
        self._comm_session = comm_session
        self._session, self._driver, self._refusal = None, None, None
        if self._cable_check_task is not None and not self._cable_check_task.done():
            self._cable_check_task.cancel()  # the previous session's check must not command this one's supply
        self._cable_check_task, self._isolation = None, None
        self._energy_transfer = self._ev_stopping = self._watchdog.armed = False
        self._authorized = None
        self.reset_ev_data_context()
        driver = HlcSessionDriver()
        charger = self.charger
        try:
            session = charger.start_session(SessionParams(target_voltage_V=0.0, initial_current_A=0.0,
                                                          duration_s=0.0), driver)
        except CommandRefused as refused:
            self._refusal = str(refused)
            logger.error("HLC session not started in the controller: %s; the EV will be refused at cable check",
                         refused)
            return
        self._session, self._driver = session, driver
        self._started_at = charger.clock.utcnow()
        session.ev_info = {"protocol": self._protocol_name()}
        charger.set_stage(Stage.HANDSHAKE)
        if self._sim_body is not None:
            self._sim_body.arrive()  # plugged in (CP B → C at 5 %), its contactor open until its pack is known
        if self.charger.latest is None or self.charger.latest.duty_percent != standards.CP_HLC_DUTY_PERCENT:
            await charger.set_pwm_duty(standards.CP_HLC_DUTY_PERCENT)
        logger.info("HLC session %s started in the controller", session.session_id)

    def _end_complete(self) -> None:
        if self._own_session_active():
            self.charger.end_session(Phase.COMPLETE, None, EndReason.EV_REQUESTED_STOP)
        self._finish_driver()

    async def _end_abnormally(self, reason: str) -> None:
        self._watchdog.armed = False
        if self._own_session_active():
            logger.warning("HLC session ended abnormally: %s", reason)
            await self.charger.raise_fault("HLC_FAILURE", source="hlc", message=reason)
        self._finish_driver()

    def _finish_driver(self) -> None:
        if self._driver is not None:
            self._driver.finish()

    def _end_signal(self) -> tuple[DCEVSEStatusCode, bool] | None:
        """How our side ended the session, as (status code, EV must stop), or None while it runs."""
        if self._session is None:
            return messages.end_signal(None, refused=self._refusal is not None)
        return messages.end_signal(self._session.summary, refused=False)

    def _on_tick(self) -> None:
        """Every control tick: the charge-loop watchdog, and an output opened under the session."""
        charger = self.charger
        running = self._own_session_active()
        silence_s = self._watchdog.tick(charger.clock.now(), charger.settings.control_period_s, running)
        if not running:
            return
        if silence_s is not None:
            logger.error("no CurrentDemand/ChargeLoop request for %.2f s: COMMUNICATION_TIMEOUT", silence_s)
            self._spawn(charger.raise_fault("COMMUNICATION_TIMEOUT", source="hlc",
                                            message=f"no charge-loop request for {silence_s:.2f} s"))
            return
        m = charger.latest
        if self._energy_transfer and not self._ev_stopping and m is not None and not m.contactor_closed \
                and charger.stage in _ENERGY_STAGES:
            logger.warning("output contactor opened during energy transfer: stopping the HLC session")
            self._watchdog.armed = False
            charger.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _refresh_views(self, force: bool = True) -> None:
        """/vehicle/bms and /vehicle/iso15118 from the SECC's data. In the charge loop (``force`` False) the
        timestamp moves with every message and the views are rebuilt at most every VIEW_REFRESH_S, so the
        response path stays as short as the simulator's (bench/bench_secc.py)."""
        charger = self.charger
        if self._session is None or charger.session is not self._session:
            return
        self._last_message_at = charger.clock.utcnow()
        now_s = charger.clock.now()
        if not force and now_s - self._views_built_s < VIEW_REFRESH_S:
            charger.iso15118_view["timestamps"]["last_message_at"] = self._last_message_at.isoformat()
            return
        self._views_built_s = now_s
        comm = self._comm_session
        if self.ev_data_context.evcc_id is None and getattr(comm, "evcc_id", None):
            self.ev_data_context.evcc_id = comm.evcc_id  # -20 keeps it in the session only
        protocol = self._protocol_name()
        charger.bms_view_override = bms_view_from_ev_data(self.ev_data_context, protocol)
        charger.iso15118_view = iso15118_view(
            protocol=protocol, energy_service=energy_service_name(comm, self.ev_data_context),
            control_mode=enum_value(getattr(comm, "control_mode", None)) if comm is not None else None,
            authorized=self._authorized, evse_id=self.evse_id, session_id=getattr(comm, "session_id", None) or None,
            started_at=self._started_at, last_message_at=self._last_message_at)

    def _protocol_name(self) -> str | None:
        protocol = self.get_selected_protocol()
        return protocol.name if protocol is not None else None

    def _ev_max_voltage_V(self) -> float | None:
        value = plain_number(self.ev_data_context.rated_limits.dc_limits.max_voltage)
        return float(value) if value else None

    def _ev_max_current_A(self) -> float | None:
        value = plain_number(self.ev_data_context.rated_limits.dc_limits.max_charge_current)
        return float(value) if value else None

    def _clamp_voltage_V(self, voltage_V: float) -> float:
        """An EV voltage target clamped to the EV's own maximum and ours (the -20 EVCC asks 20 kV)."""
        limit_V = self.charger.evse_max_voltage_V
        ev_max_V = self._ev_max_voltage_V()
        if ev_max_V is not None:
            limit_V = min(limit_V, ev_max_V)
        return min(max(0.0, voltage_V), limit_V)

    def _sim_pack_at(self, pack_voltage_V: float) -> None:
        if self._sim_body is not None:
            self._sim_body.pack_at(pack_voltage_V, self._ev_max_current_A())

    def _note_request(self) -> None:
        self._watchdog.note_request(self.charger.clock.now())

    # ============================================================================================
    # common
    # ============================================================================================
    async def set_status(self, status: ServiceStatus) -> None:
        self.status = status
        logger.info("SECC status: %s", status.value)

    async def get_evse_id(self, protocol: Protocol) -> str:
        if protocol == Protocol.DIN_SPEC_70121:
            return din_evse_id(self.evse_id)
        if protocol == Protocol.ISO_15118_2:
            return iso_15118_2_evse_id(self.evse_id)
        return self.evse_id

    async def get_supported_energy_transfer_modes(self, protocol: Protocol) -> List[EnergyTransferModeEnum]:
        return [EnergyTransferModeEnum.DC_EXTENDED]  # a DC charger (CCS combo, extended)

    async def get_schedule_exchange_params(
            self, selected_energy_service: SelectedEnergyService, control_mode: ControlMode,
            schedule_exchange_req: ScheduleExchangeReq,
    ) -> Union[ScheduledScheduleExchangeResParams, DynamicScheduleExchangeResParams]:
        return messages.schedule_exchange_params_v20(control_mode, self.charger.evse_max_power_W)

    async def get_energy_service_list(self) -> ServiceList:
        return messages.dc_service_list()

    def is_eim_authorized(self) -> bool:
        return self.eim_authorized

    async def is_authorized(self, id_token: Optional[str] = None,
                            id_token_type: Optional[AuthorizationTokenType] = None,
                            certificate_chain: Optional[bytes] = None,
                            hash_data: Optional[List[Dict[str, str]]] = None) -> AuthorizationResponse:
        """No backend: every EIM identification and every contract the SECC's PKI checks is accepted."""
        code = messages.authorization_ok_code(self.get_selected_protocol())
        self._authorized = True
        self._refresh_views()
        return AuthorizationResponse(authorization_status=AuthorizationStatus.ACCEPTED,
                                     certificate_response_status=code)

    async def get_sa_schedule_list(self, ev_data_context: EVDataContext, is_free_charging_service: bool,
                                   max_schedule_entries: Optional[int],
                                   departure_time: int = 0) -> Optional[List[SAScheduleTuple]]:
        return messages.sa_schedule_list_v2(self.charger.evse_max_power_W, departure_time)

    async def get_sa_schedule_list_dinspec(self, max_schedule_entries: Optional[int],
                                           departure_time: int = 0) -> Optional[List[SAScheduleTupleEntryDIN]]:
        return messages.sa_schedule_list_din(self.charger.evse_max_power_W, departure_time)

    async def get_meter_info_v2(self) -> MeterInfoV2:
        return messages.meter_info_v2(self.charger.meter_reading.energy_Wh)

    async def get_meter_info_v20(self) -> MeterInfoV20:
        return messages.meter_info_v20(self.charger.meter_reading.energy_Wh)

    async def get_supported_providers(self) -> Optional[List[ProviderID]]:
        return None

    async def set_hlc_charging(self, is_ongoing: bool) -> None:
        if is_ongoing:
            if not self._own_session_active():
                return
            self._energy_transfer = True
            await self.charger.begin_energy_transfer(self._ev_max_voltage_V())
            self._note_request()
            self._watchdog.armed = True
            return
        self._ev_stopping = True
        self._watchdog.armed = False

    async def get_cp_state(self) -> CpState:
        m = self.charger.latest
        if m is None:
            return CpState.UNKNOWN
        try:
            return CpState(m.pilot.sub_state)
        except ValueError:
            return CpState.UNKNOWN

    async def service_renegotiation_supported(self) -> bool:
        return False

    async def get_service_parameter_list(self, service_id: int) -> Optional[ServiceParameterList]:
        return messages.dc_service_parameter_list() if service_id == messages.DC_SERVICE_ID else None

    async def stop_charger(self) -> None:
        """Ramp down (≤ 100 A/s) and open the contactor below 1 A, then return."""
        charger = self.charger
        self._watchdog.armed = False
        if self._own_session_active():
            if not self._ev_stopping:
                # Not after the EV's PowerDelivery(Stop): the SECC is stopping the session on an error.
                await self._end_abnormally("the SECC stopped the communication session")
            else:
                charger.set_stage(Stage.RAMP_DOWN)
                await charger.ramp_down_and_open()
                return
        # Ended by our side (stop, fault, contactor) or abnormally: the controller's wind-down runs.
        await charger.wait_until(lambda: charger.latest is not None and not charger.latest.contactor_closed,
                                 charger.settings.ramp_down_timeout_s + 1.0)

    async def is_contactor_opened(self) -> bool:
        return not await self.charger.io(self.charger.hw.contactor.is_closed)

    async def is_contactor_closed(self) -> Optional[bool]:
        if self._refusal is not None or self._session is None:
            return False
        closed = await self.charger.io(self.charger.hw.contactor.is_closed)
        task = self._cable_check_task
        if not closed and task is not None and not task.done() and self.charger.stage in (Stage.HANDSHAKE,
                                                                                          Stage.CABLE_CHECK):
            return None  # closing for the cable check
        return closed

    async def get_evse_status(self) -> Optional[EVSEStatus]:
        signal = self._end_signal()
        if signal is not None and signal[1]:
            return EVSEStatus(notification_max_delay=0, evse_notification=EVSENotificationV20.TERMINATE)
        return None

    async def set_present_protocol_state(self, state: State) -> None:
        comm_session = getattr(state, "comm_session", None)
        name = type(state).__name__
        if comm_session is not None and comm_session is not self._comm_session and \
                name in ("SupportedAppProtocol", "SessionSetup"):
            await self._begin_session(comm_session)
        if comm_session is not self._comm_session:
            return
        self._refresh_views(force=name not in _LOOP_STATES)
        if name == "SessionStop":
            stop_reason = getattr(comm_session, "stop_reason", None)
            if stop_reason is not None and getattr(stop_reason, "successful", False):
                self._end_complete()

    # ============================================================================================
    # AC: this is a DC charger; the SECC asks these only for AC energy modes, which it never offers.
    # ============================================================================================
    async def get_ac_evse_status(self) -> ACEVSEStatus:
        return ACEVSEStatus(notification_max_delay=0, evse_notification=EVSENotificationV2.NONE, rcd=False)

    async def get_ac_charge_params_v2(self) -> ACEVSEChargeParameter:
        raise NotImplementedError("DC charger: no AC charge parameters")

    async def get_ac_charge_params_v20(self, energy_service: ServiceV20) -> None:
        return None

    # ============================================================================================
    # DC
    # ============================================================================================
    async def get_dc_evse_status(self) -> DCEVSEStatus:
        signal = self._end_signal()
        notification = EVSENotificationV2.NONE
        if signal is not None:
            code, must_stop = signal
            if must_stop:
                notification = EVSENotificationV2.STOP_CHARGING
        elif self._cable_check_task is not None and not self._cable_check_task.done():
            code = DCEVSEStatusCode.EVSE_ISOLATION_MONITORING_ACTIVE
        elif self._ev_stopping:
            code = DCEVSEStatusCode.EVSE_NOT_READY
        else:
            code = DCEVSEStatusCode.EVSE_READY
        isolation = self._isolation or IsolationLevel.INVALID
        if self.charger.active_fault == "ISOLATION_FAULT":
            isolation = IsolationLevel.FAULT
        return DCEVSEStatus(evse_notification=notification, notification_max_delay=0,
                            evse_isolation_status=isolation, evse_status_code=code)

    async def get_dc_charge_parameters(self) -> DCEVSEChargeParameter:
        return messages.dc_charge_parameter(self.evse_data_context.rated_limits.dc_limits,
                                            await self.get_dc_evse_status())

    async def get_evse_present_voltage(self, protocol: Protocol) -> Any:
        m = self.charger.latest
        self.evse_data_context.present_voltage = round(m.output_voltage_V, 1) if m else 0.0
        return await super().get_evse_present_voltage(protocol)

    async def get_evse_present_current(self, protocol: Protocol) -> Any:
        m = self.charger.latest
        self.evse_data_context.present_current = round(m.output_current_A, 1) if m else 0.0
        return await super().get_evse_present_current(protocol)

    async def start_cable_check(self) -> None:
        if not self._own_session_active():
            return
        self._isolation = None
        self._cable_check_task = asyncio.get_running_loop().create_task(
            self._run_cable_check(self._ev_max_voltage_V()), name="hlc-cable-check")

    async def _run_cable_check(self, ev_max_voltage_V: float | None) -> None:
        try:
            level = await self.charger.cable_check(ev_max_voltage_V)
            self._isolation = IsolationLevel.WARNING if level == "WARNING" else IsolationLevel.VALID
        except (SessionAbort, CommandRefused) as failed:
            self._isolation = IsolationLevel.FAULT
            name = failed.fault_name if isinstance(failed, SessionAbort) else "CABLE_CHECK_FAILED"
            if self._own_session_active():
                await self.charger.raise_fault(name, source="hlc", message=str(failed))
        except asyncio.CancelledError:
            self._isolation = IsolationLevel.INVALID
            raise
        except Exception as error:  # the session must end safely whatever went wrong
            logger.exception("cable check failed")
            self._isolation = IsolationLevel.FAULT
            if self._own_session_active():
                await self.charger.raise_fault("CABLE_CHECK_FAILED", source="hlc", message=repr(error))

    async def get_cable_check_status(self) -> Optional[IsolationLevel]:
        task = self._cable_check_task
        if task is None:
            return IsolationLevel.INVALID
        if not task.done():
            return None
        return self._isolation

    async def send_charging_command(self, ev_target_voltage: Optional[float], ev_target_current: Optional[float],
                                    is_precharge: bool = False, is_session_bpt: bool = False) -> None:
        self._note_request()
        if not self._own_session_active():
            return  # ended by our side: the output stays off, the status tells the EV to stop
        voltage_V = float(ev_target_voltage) if ev_target_voltage is not None else 0.0
        current_A = float(ev_target_current) if ev_target_current is not None else 0.0
        if is_precharge:
            target_V = self._clamp_voltage_V(voltage_V)
            if is_credible_pack_voltage(voltage_V, self.charger.evse_max_voltage_V, self._ev_max_voltage_V()):
                self._sim_pack_at(target_V)
            # ≤ 2 A; an EV that names no current (-20 sends 0: "not used") gets the 2 A allowed.
            limit_A = current_A if current_A > 0.0 else standards.PRECHARGE_CURRENT_LIMIT_A
            await self.charger.precharge_step(target_V, limit_A)
        else:
            target_V = self._clamp_voltage_V(voltage_V)
            if target_V > standards.SAFE_DC_VOLTAGE_V:
                self._sim_pack_at(target_V)  # once: here only when the EV's precharge target was not credible
            await self.charger.set_charge_targets(target_V, current_A)
        self._refresh_views(force=False)

    async def is_evse_current_limit_achieved(self) -> bool:
        target_A = plain_number(self.ev_data_context.target_current) or 0.0
        return target_A >= self.charger.evse_max_current_A

    async def is_evse_voltage_limit_achieved(self) -> bool:
        target_V = plain_number(self.ev_data_context.target_voltage) or 0.0
        return target_V >= self.charger.evse_max_voltage_V

    async def is_evse_power_limit_achieved(self) -> bool:
        m = self.charger.latest
        return m is not None and m.output_voltage_V * m.output_current_A >= self.charger.evse_max_power_W

    async def get_dc_charge_params_v20(
            self, energy_service: ServiceV20,
    ) -> Optional[Union[DCChargeParameterDiscoveryResParams, BPTDCChargeParameterDiscoveryResParams]]:
        if energy_service != ServiceV20.DC:
            return None  # no bidirectional power transfer offered
        return messages.dc_charge_params_v20(self.evse_data_context.rated_limits.dc_limits)

    async def get_15118_ev_certificate(self, base64_encoded_cert_installation_req: str, namespace: str) -> str:
        """No CPO backend: answered from the local PKI (the certificate provisioning service's keys), as
        iso15118's own simulator does — suitable for test PKIs only."""
        return await SimEVSEController.get_15118_ev_certificate(self, base64_encoded_cert_installation_req,
                                                                 namespace)

    async def update_data_link(self, action: SessionStopAction) -> None:
        logger.info("data link: %s", action.value)

    def ready_to_charge(self) -> bool:
        return self._refusal is None and self.charger.active_fault is None

    async def session_ended(self, current_state: str, reason: str) -> None:
        logger.info("SECC session ended in %s: %s", current_state, reason)
        await self._end_abnormally(f"{current_state}: {reason}")

    async def send_display_params(self) -> None:
        return None  # no CSMS connected

    async def send_rated_limits(self) -> None:
        return None  # no CSMS connected
