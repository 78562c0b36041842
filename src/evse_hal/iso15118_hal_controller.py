"""``HalEVSEController``: iso15118's ``EVSEControllerInterface`` backed by our ChargerController and HAL.

The SECC (iso15118) runs the protocol; every physical answer it needs comes from the one controller the
Live Controller API also uses, so the API, the safety supervisor and the EV see the same charger:

- CP state: the pilot reading (x2 while the 5 % PWM oscillates); the session's start sets 5 % PWM.
- Cable check: ``start_cable_check`` runs ``ChargerController.cable_check`` (contactor closed, IEC 61851-23
  CC.1 test voltage at ≤ 2 A, a real IMD reading, then the supply off until the output is below 60 V) as a
  background task (``iso15118_cable_check.CableCheckRun``); ``is_contactor_closed`` answers None while the
  contactor is closing, ``get_cable_check_status`` None while measuring and discharging, then VALID / WARNING
  / FAULT.
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
ends COMPLETE after a successful SessionStop, ABORTED on a fault, ``/stop_session`` or an abnormal end; that
session handling (start and end, the tick handler with the watchdog, the API's vehicle views, the simulated
body) is ``iso15118.session.HlcSessionLink``.
"""

from __future__ import annotations

import logging
from typing import Any

from evse_hal.iso15118 import messages  # installs the pydantic.v1 hook before iso15118 is imported

# isort: split
from iso15118.secc.controller.ev_data import EVDataContext
from iso15118.secc.controller.evse_data import CurrentType
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

from evse_hal.iso15118.authorization import PendingAuthorization, authorization_failed_code
from evse_hal.iso15118.cable_check import CableCheckRun
from evse_hal.iso15118.charger_port import ID_TOKEN_TYPE_EIM, ID_TOKEN_TYPE_EMAID, Authorization, ChargerPort
from evse_hal.iso15118.evse_id import din_evse_id, iso_15118_2_evse_id
from evse_hal.iso15118.response_values import ResponseValues, dc_limits_key
from evse_hal.iso15118.session import CHARGE_LOOP_WATCHDOG_S, HlcSessionLink
from evse_hal.iso15118.sim_body import is_credible_pack_voltage
from evse_hal.iso15118.views import ev_max_current_A, ev_max_voltage_V, plain_number
from evse_model import standards
from evse_model.faults import ISOLATION_FAULT
from evse_model.session import EndReason, Phase, Stage

__all__ = ["CHARGE_LOOP_WATCHDOG_S", "DEFAULT_EVSE_ID", "HalEVSEController", "fresh_ev_data_context"]

logger = logging.getLogger(__name__)

fresh_ev_data_context = messages.fresh_ev_data_context
DEFAULT_EVSE_ID = "DE*CCS*E0000001*1"
#: Protocols whose present voltage/current is a PhysicalValue (-20: a RationalNumber).
_PHYSICAL_VALUE_PROTOCOLS = (Protocol.DIN_SPEC_70121, Protocol.ISO_15118_2)
_LOOP_STATES = ("CurrentDemand", "DCChargeLoop", "PreCharge", "DCPreCharge", "CableCheck", "DCCableCheck",
                "WeldingDetection", "DCWeldingDetection")


class HalEVSEController(EVSEControllerInterface):
    """The SECC's EVSE controller on the shared ChargerController (see the module docstring); the session
    handling (start, end, tick handler, views) is its ``HlcSessionLink``."""

    def __init__(self, charger: ChargerPort, evse_id: str | None = None,
                 watchdog_s: float = CHARGE_LOOP_WATCHDOG_S) -> None:
        super().__init__()
        self.charger = charger
        self.evse_id = evse_id or DEFAULT_EVSE_ID
        self.ev_data_context = fresh_ev_data_context()
        self.evse_data_context = messages.dc_evse_data_context(
            charger.evse_max_power_W, charger.evse_max_current_A, charger.evse_max_voltage_V,
            charger.hw.supply.get_capabilities(), charger.settings.current_ramp_up_A_per_s)
        self.status: ServiceStatus | None = None
        #: Set by an external identification (RFID, API); False: the EV identifies itself (EIM/PnC).
        self.eim_authorized = False
        self._link = HlcSessionLink(charger, watchdog_s)
        self._cable_check = CableCheckRun(charger, self._link.own_session_active)
        self._authorization = PendingAuthorization(charger)
        #: The response values the charge loop repeats (status, present V/I, our DC maxima), rebuilt on change.
        self._responses = ResponseValues()

    def _dc_limits_key(self) -> tuple[Any, ...] | None:
        return dc_limits_key(self.evse_data_context, self.evse_data_context.current_type == CurrentType.DC)

    def reset_ev_data_context(self) -> None:
        self.ev_data_context = fresh_ev_data_context()

    async def _begin_session(self, comm_session: Any) -> None:
        """A new SECC communication session: a new session in the controller (``HlcSessionLink.begin``)."""
        self._cable_check.reset()  # the previous session's check must not command this one's supply
        self._authorization.reset(comm_session)  # nor its identification decide this one's
        self.reset_ev_data_context()
        await self._link.begin(comm_session, self._protocol_name())

    def _end_signal(self) -> tuple[DCEVSEStatusCode, bool] | None:
        """How our side ended the session, as (status code, EV must stop), or None while it runs."""
        link = self._link
        if link.session is None:
            return messages.end_signal(None, refused=link.refusal is not None)
        return messages.end_signal(link.session.summary, refused=False)

    def _refresh_views(self, force: bool = True) -> None:
        self._link.refresh_views(self.ev_data_context, self._protocol_name(), self.evse_id, force)

    def _protocol_name(self) -> str | None:
        protocol = self.get_selected_protocol()
        return protocol.name if protocol is not None else None

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

    async def get_supported_energy_transfer_modes(self, protocol: Protocol) -> list[EnergyTransferModeEnum]:
        return [EnergyTransferModeEnum.DC_EXTENDED]  # a DC charger (CCS combo, extended)

    async def get_schedule_exchange_params(
            self, selected_energy_service: SelectedEnergyService, control_mode: ControlMode,
            schedule_exchange_req: ScheduleExchangeReq,
    ) -> ScheduledScheduleExchangeResParams | DynamicScheduleExchangeResParams:
        return messages.schedule_exchange_params_v20(control_mode, self.charger.evse_max_power_W)

    async def get_energy_service_list(self) -> ServiceList:
        return messages.dc_service_list()

    def is_eim_authorized(self) -> bool:
        return self.eim_authorized

    async def is_authorized(self, id_token: str | None = None,
                            id_token_type: AuthorizationTokenType | None = None,
                            certificate_chain: bytes | None = None,
                            hash_data: list[dict[str, str]] | None = None) -> AuthorizationResponse:
        """The EV's identification (Plug & Charge: its eMAID, after the SECC's PKI checked the contract chain;
        EIM: none), decided by the charger's authoriser (accept all unless a backend such as an OCPP CSMS is
        attached): ONGOING while it decides (the EV repeats AuthorizationReq), REJECTED ends our session
        before any energy (the SECC answers FAILED and stops)."""
        protocol = self.get_selected_protocol()
        token_type = ID_TOKEN_TYPE_EMAID if id_token_type == AuthorizationTokenType.EMAID else ID_TOKEN_TYPE_EIM
        decision = await self._authorization.poll(self._link.comm_session, id_token, token_type)
        if decision is Authorization.ONGOING:
            return AuthorizationResponse(authorization_status=AuthorizationStatus.ONGOING)
        self._link.authorized = decision is Authorization.ACCEPTED
        self._refresh_views()
        if decision is Authorization.ACCEPTED:
            return AuthorizationResponse(authorization_status=AuthorizationStatus.ACCEPTED,
                                         certificate_response_status=messages.authorization_ok_code(protocol))
        if self._link.own_session_active():
            logger.warning("identification %r refused: the session ends before any energy", id_token)
            self.charger.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)
        return AuthorizationResponse(authorization_status=AuthorizationStatus.REJECTED,
                                     certificate_response_status=authorization_failed_code(protocol))

    async def get_sa_schedule_list(self, ev_data_context: EVDataContext, is_free_charging_service: bool,
                                   max_schedule_entries: int | None,
                                   departure_time: int = 0) -> list[SAScheduleTuple] | None:
        return messages.sa_schedule_list_v2(self.charger.evse_max_power_W, departure_time)

    async def get_sa_schedule_list_dinspec(self, max_schedule_entries: int | None,
                                           departure_time: int = 0) -> list[SAScheduleTupleEntryDIN] | None:
        return messages.sa_schedule_list_din(self.charger.evse_max_power_W, departure_time)

    async def get_meter_info_v2(self) -> MeterInfoV2:
        return messages.meter_info_v2(self.charger.meter_reading.energy_Wh)

    async def get_meter_info_v20(self) -> MeterInfoV20:
        return messages.meter_info_v20(self.charger.meter_reading.energy_Wh)

    async def get_supported_providers(self) -> list[ProviderID] | None:
        return None

    async def set_hlc_charging(self, is_ongoing: bool) -> None:
        if is_ongoing:
            if not self._link.own_session_active():
                return
            self._link.energy_transfer = True
            await self.charger.begin_energy_transfer(ev_max_voltage_V(self.ev_data_context))
            self._link.note_request()
            self._link.watchdog.armed = True
            return
        self._link.ev_stopping = True
        self._link.watchdog.armed = False

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

    async def get_service_parameter_list(self, service_id: int) -> ServiceParameterList | None:
        return messages.dc_service_parameter_list() if service_id == messages.DC_SERVICE_ID else None

    async def stop_charger(self) -> None:
        """Ramp down (≤ 100 A/s) and open the contactor below 1 A, then return."""
        charger = self.charger
        self._link.watchdog.armed = False
        if self._link.own_session_active():
            if not self._link.ev_stopping:
                # Not after the EV's PowerDelivery(Stop): the SECC is stopping the session on an error.
                await self._link.end_abnormally("the SECC stopped the communication session")
            else:
                charger.set_stage(Stage.RAMP_DOWN)
                await charger.ramp_down_and_open()
                return
        # Ended by our side (stop, fault, contactor) or abnormally: the controller's wind-down runs.
        await charger.wait_until(lambda: charger.latest is not None and not charger.latest.contactor_closed,
                                 charger.settings.ramp_down_timeout_s + 1.0)

    async def is_contactor_opened(self) -> bool:
        return not await self.charger.io(self.charger.hw.contactor.is_closed)

    async def is_contactor_closed(self) -> bool | None:
        if self._link.refusal is not None or self._link.session is None:
            return False
        closed = await self.charger.io(self.charger.hw.contactor.is_closed)
        if not closed and self._cable_check.running and self.charger.stage in (Stage.HANDSHAKE, Stage.CABLE_CHECK):
            return None  # closing for the cable check
        return closed

    async def get_evse_status(self) -> EVSEStatus | None:
        signal = self._end_signal()
        if signal is not None and signal[1]:
            return EVSEStatus(notification_max_delay=0, evse_notification=EVSENotificationV20.TERMINATE)
        return None

    async def set_present_protocol_state(self, state: State) -> None:
        comm_session = getattr(state, "comm_session", None)
        name = type(state).__name__
        if comm_session is not None and comm_session is not self._link.comm_session and \
                name in ("SupportedAppProtocol", "SessionSetup"):
            await self._begin_session(comm_session)
        if comm_session is not self._link.comm_session:
            return
        self._refresh_views(force=name not in _LOOP_STATES)
        if name == "SessionStop":
            stop_reason = getattr(comm_session, "stop_reason", None)
            if stop_reason is not None and getattr(stop_reason, "successful", False):
                self._link.end_complete()

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
        elif self._cable_check.running:
            code = DCEVSEStatusCode.EVSE_ISOLATION_MONITORING_ACTIVE
        elif self._link.ev_stopping:
            code = DCEVSEStatusCode.EVSE_NOT_READY
        else:
            code = DCEVSEStatusCode.EVSE_READY
        isolation = self._cable_check.isolation or IsolationLevel.INVALID
        if self.charger.active_fault is not None and self.charger.active_fault.type is ISOLATION_FAULT:
            isolation = IsolationLevel.FAULT

        async def build() -> DCEVSEStatus:
            return DCEVSEStatus(evse_notification=notification, notification_max_delay=0,
                                evse_isolation_status=isolation, evse_status_code=code)

        return await self._responses.reuse("dc_evse_status", (notification, code, isolation), build)

    async def get_dc_charge_parameters(self) -> DCEVSEChargeParameter:
        return messages.dc_charge_parameter(self.evse_data_context,
                                            await self.get_dc_evse_status())

    async def get_evse_present_voltage(self, protocol: Protocol) -> Any:
        m = self.charger.latest
        voltage_V = self.evse_data_context.present_voltage = round(m.output_voltage_V, 1) if m else 0.0
        return await self._responses.reuse("present_voltage", (protocol in _PHYSICAL_VALUE_PROTOCOLS, voltage_V),
                                 lambda: super(HalEVSEController, self).get_evse_present_voltage(protocol))

    async def get_evse_present_current(self, protocol: Protocol) -> Any:
        m = self.charger.latest
        current_A = self.evse_data_context.present_current = round(m.output_current_A, 1) if m else 0.0
        return await self._responses.reuse("present_current", (protocol in _PHYSICAL_VALUE_PROTOCOLS, current_A),
                                 lambda: super(HalEVSEController, self).get_evse_present_current(protocol))

    async def get_evse_max_voltage_limit(self) -> Any:
        key = self._dc_limits_key()
        build = super().get_evse_max_voltage_limit
        return await build() if key is None else await self._responses.reuse("max_voltage", key, build)

    async def get_evse_max_current_limit(self) -> Any:
        key = self._dc_limits_key()
        build = super().get_evse_max_current_limit
        return await build() if key is None else await self._responses.reuse("max_current", key, build)

    async def get_evse_max_power_limit(self) -> Any:
        key = self._dc_limits_key()
        build = super().get_evse_max_power_limit
        return await build() if key is None else await self._responses.reuse("max_power", key, build)

    async def start_cable_check(self) -> None:
        if not self._link.own_session_active():
            return
        self._cable_check.start(ev_max_voltage_V(self.ev_data_context))

    async def get_cable_check_status(self) -> IsolationLevel | None:
        return self._cable_check.status()

    async def send_charging_command(self, ev_target_voltage: float | None, ev_target_current: float | None,
                                    is_precharge: bool = False, is_session_bpt: bool = False) -> None:
        link = self._link
        link.note_request()
        if not link.own_session_active():
            return  # ended by our side: the output stays off, the status tells the EV to stop
        voltage_V = float(ev_target_voltage) if ev_target_voltage is not None else 0.0
        current_A = float(ev_target_current) if ev_target_current is not None else 0.0
        ev_max_V = ev_max_voltage_V(self.ev_data_context)
        target_V = link.clamp_voltage_V(voltage_V, ev_max_V)
        if is_precharge:
            if is_credible_pack_voltage(voltage_V, self.charger.evse_max_voltage_V, ev_max_V):
                link.sim_pack_at(target_V, ev_max_current_A(self.ev_data_context))
            # ≤ 2 A; an EV that names no current (-20 sends 0: "not used") gets the 2 A allowed.
            limit_A = current_A if current_A > 0.0 else standards.PRECHARGE_CURRENT_LIMIT_A
            await self.charger.precharge_step(target_V, limit_A)
        else:
            if target_V > standards.SAFE_DC_VOLTAGE_V:
                link.sim_pack_at(target_V, ev_max_current_A(self.ev_data_context))  # once: here only when the EV's precharge target was not credible
            await self.charger.set_charge_targets(target_V, current_A)
        # The API's views follow in set_present_protocol_state, which the SECC calls once the response is sent.

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
    ) -> DCChargeParameterDiscoveryResParams | BPTDCChargeParameterDiscoveryResParams | None:
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
        return self._link.refusal is None and self.charger.active_fault is None

    async def session_ended(self, current_state: str, reason: str) -> None:
        logger.info("SECC session ended in %s: %s", current_state, reason)
        await self._link.end_abnormally(f"{current_state}: {reason}")

    async def send_display_params(self) -> None:
        return None  # no CSMS connected

    async def send_rated_limits(self) -> None:
        return None  # no CSMS connected
