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
import time
from typing import Any, Dict, List, Optional, Union

from evse_hal import iso15118_compat

iso15118_compat.install()  # before the first iso15118 import (pydantic.v1 hook; see that module)

from iso15118.secc.controller.ev_data import (  # noqa: E402 (after the import hook)
    EVACCLLimits,
    EVACCPDLimits,
    EVDataContext,
    EVDCCLLimits,
    EVDCCPDLimits,
    EVRatedLimits,
    EVSessionLimits,
)
from iso15118.secc.controller.evse_data import (
    CurrentType,
    EVSEACCLLimits,
    EVSEACCPDLimits,
    EVSEDataContext,
    EVSEDCCLLimits,
    EVSEDCCPDLimits,
    EVSERatedLimits,
    EVSESessionLimits,
)
from iso15118.secc.controller.interface import AuthorizationResponse, EVSEControllerInterface, ServiceStatus
from iso15118.secc.controller.simulator import SimEVSEController
from iso15118.shared.messages.datatypes import (
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
from iso15118.shared.messages.datatypes import EVSENotification as EVSENotificationV2
from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntry as PMaxScheduleEntryDIN
from iso15118.shared.messages.din_spec.datatypes import PMaxScheduleEntryDetails as PMaxScheduleEntryDetailsDIN
from iso15118.shared.messages.din_spec.datatypes import RelativeTimeInterval as RelativeTimeIntervalDIN
from iso15118.shared.messages.din_spec.datatypes import ResponseCode as ResponseCodeDIN
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
    UnitSymbol,
)
from iso15118.shared.messages.iso15118_2.datatypes import (
    ACEVSEChargeParameter,
    ACEVSEStatus,
    PMaxSchedule,
    PMaxScheduleEntry,
    PVPMax,
    RelativeTimeInterval,
    SAScheduleTuple,
)
from iso15118.shared.messages.iso15118_2.datatypes import MeterInfo as MeterInfoV2
from iso15118.shared.messages.iso15118_2.datatypes import ResponseCode as ResponseCodeV2
from iso15118.shared.messages.iso15118_20.common_messages import (
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
    ProviderID,
    ScheduledScheduleExchangeResParams,
    ScheduleExchangeReq,
    ScheduleTuple,
    SelectedEnergyService,
    Service,
    ServiceList,
    ServiceParameterList,
)
from iso15118.shared.messages.iso15118_20.common_types import EVSENotification as EVSENotificationV20
from iso15118.shared.messages.iso15118_20.common_types import EVSEStatus
from iso15118.shared.messages.iso15118_20.common_types import MeterInfo as MeterInfoV20
from iso15118.shared.messages.iso15118_20.common_types import RationalNumber
from iso15118.shared.messages.iso15118_20.common_types import ResponseCode as ResponseCodeV20
from iso15118.shared.messages.iso15118_20.dc import (
    BPTDCChargeParameterDiscoveryResParams,
    DCChargeParameterDiscoveryResParams,
)
from iso15118.shared.states import State

from evse_model import standards
from ccs_sim.controller import ActiveSession, ChargerController, CommandRefused, SessionAbort
from evse_model.faults import Severity, lookup_fault
from ccs_sim.hlc_session import HlcSessionDriver, bms_view_from_ev_data, enum_value, iso15118_view, plain_number
from evse_model.session import EndReason, Phase, SessionParams, Stage
from evse_secc.evse_id import din_evse_id, iso_15118_2_evse_id

logger = logging.getLogger(__name__)

DEFAULT_EVSE_ID = "DE*CCS*E0000001*1"
#: No request for this long during energy transfer → COMMUNICATION_TIMEOUT. IEC 61851-25 requires an error
#: shutdown after 1 s without valid data (standards.md §2.4); iso15118's own sequence timer is 60 s.
CHARGE_LOOP_WATCHDOG_S = 1.0
#: A control tick this much later than the one before means our own event loop did not run (CPU contention):
#: a request the EV sent meanwhile waits unread in the socket, so that time is not the EV's silence.
EVENT_LOOP_STALL_S = 0.1
#: Peak-to-peak current ripple of the power stage announced in DIN/-2 ChargeParameterDiscoveryRes
#: (a power-module datasheet figure; no standard number).
PEAK_CURRENT_RIPPLE_A = 2.0
#: Schedules cover 24 h when the EV names no departure time ([V2G2-304]).
SCHEDULE_DURATION_S = 86_400
#: DIN SPEC 70121 PMax is an xs:short in W: a larger charger announces the maximum it can express.
DIN_PMAX_MAX_W = 32_767
#: ISO 15118-20 Table 204: DC = 2; ServiceParameterList Connector 2 = Extended, ControlMode 1 = Scheduled.
DC_SERVICE_ID = ServiceV20.DC.value
METER_ID = "CCS-SIM-METER"
#: How often the API's vehicle views are rebuilt while the EV repeats a request (charge loop, precharge).
VIEW_REFRESH_S = 0.1
_LOOP_STATES = ("CurrentDemand", "DCChargeLoop", "PreCharge", "DCPreCharge", "CableCheck", "DCCableCheck",
                "WeldingDetection", "DCWeldingDetection")
#: Session stages in which energy transfer is under way (the contactor must be closed).
_ENERGY_STAGES = (Stage.CURRENT_RAMP, Stage.CHARGING)


def _pv(cls: type, value: float, unit: str) -> Any:
    exponent, number = PhysicalValue.get_exponent_value_repr(value)
    return cls(multiplier=exponent, value=number, unit=unit)


def _rational(value: float) -> RationalNumber:
    return RationalNumber.get_rational_repr(value)


def fresh_ev_data_context() -> EVDataContext:
    """An EVDataContext with its own limit objects (iso15118's defaults share one instance between all)."""
    return EVDataContext(rated_limits=EVRatedLimits(ac_limits=EVACCPDLimits(), dc_limits=EVDCCPDLimits()),
                         session_limits=EVSessionLimits(ac_limits=EVACCLLimits(), dc_limits=EVDCCLLimits()))


class HalEVSEController(EVSEControllerInterface):
    """The SECC's EVSE controller on the shared ChargerController (see the module docstring)."""

    def __init__(self, charger: ChargerController, evse_id: str | None = None,
                 watchdog_s: float = CHARGE_LOOP_WATCHDOG_S) -> None:
        super().__init__()
        self.charger = charger
        self.evse_id = evse_id or DEFAULT_EVSE_ID
        self.watchdog_s = watchdog_s
        self.ev_data_context = fresh_ev_data_context()
        self.evse_data_context = self._evse_data_context()
        self.status: ServiceStatus | None = None
        #: Set by an external identification (RFID, API); False: the EV identifies itself (EIM/PnC).
        self.eim_authorized = False
        self._comm_session: Any = None
        self._session: ActiveSession | None = None
        self._driver: HlcSessionDriver | None = None
        self._refusal: str | None = None
        self._cable_check_task: asyncio.Task[None] | None = None
        self._isolation: IsolationLevel | None = None
        self._energy_transfer = False
        self._ev_stopping = False
        self._car_ready = False
        self._watchdog_armed = False
        self._last_request_s = 0.0
        self._last_tick_s: float | None = None
        self._authorized: bool | None = None
        self._started_at = None
        self._last_message_at = None
        self._views_built_s = float("-inf")
        self._background: set[asyncio.Task[Any]] = set()
        charger.tick_listeners.append(self._on_tick)

    # --- EVSE data ----------------------------------------------------------------------------------
    def _evse_data_context(self) -> EVSEDataContext:
        charger = self.charger
        min_voltage_V = charger.hw.supply.get_capabilities().min_voltage_V
        dc_rated = EVSEDCCPDLimits(max_charge_power=charger.evse_max_power_W, min_charge_power=0.0,
                                   max_charge_current=charger.evse_max_current_A, min_charge_current=0.0,
                                   max_voltage=charger.evse_max_voltage_V, min_voltage=min_voltage_V)
        dc_session = EVSEDCCLLimits(max_charge_power=charger.evse_max_power_W, min_charge_power=0.0,
                                    max_charge_current=charger.evse_max_current_A,
                                    max_voltage=charger.evse_max_voltage_V, min_voltage=min_voltage_V)
        context = EVSEDataContext(rated_limits=EVSERatedLimits(ac_limits=EVSEACCPDLimits(), dc_limits=dc_rated),
                                  session_limits=EVSESessionLimits(ac_limits=EVSEACCLLimits(), dc_limits=dc_session))
        context.current_type = CurrentType.DC
        context.peak_current_ripple = PEAK_CURRENT_RIPPLE_A
        context.power_ramp_limit = charger.settings.current_ramp_up_A_per_s
        return context

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
        self._energy_transfer = self._ev_stopping = self._car_ready = self._watchdog_armed = False
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
        sim = charger.hw.simulation
        if sim is not None:
            # The EV stack's body on the sim adapter: plugged in, not yet wanting energy (CP B → C at 5 %).
            sim.prepare_hlc_car(standards.CABLE_CHECK_DEFAULT_TEST_V, charger.evse_max_current_A).\
                energy_transfer_wanted = False
        if self.charger.latest is None or self.charger.latest.duty_percent != standards.CP_HLC_DUTY_PERCENT:
            await charger.set_pwm_duty(standards.CP_HLC_DUTY_PERCENT)
        logger.info("HLC session %s started in the controller", session.session_id)

    def _end_complete(self) -> None:
        if self._own_session_active():
            self.charger.end_session(Phase.COMPLETE, None, EndReason.EV_REQUESTED_STOP)
        self._finish_driver()

    async def _end_abnormally(self, reason: str) -> None:
        self._watchdog_armed = False
        if self._own_session_active():
            logger.warning("HLC session ended abnormally: %s", reason)
            await self.charger.raise_fault("HLC_FAILURE", source="hlc", message=reason)
        self._finish_driver()

    def _finish_driver(self) -> None:
        if self._driver is not None:
            self._driver.finish()

    def _end_signal(self) -> tuple[DCEVSEStatusCode, bool] | None:
        """How our side ended the session, as (status code, EV must stop), or None while it runs."""
        session = self._session
        if session is None:
            return (DCEVSEStatusCode.EVSE_NOT_READY, True) if self._refusal else None
        summary = session.summary
        if summary is None:
            return None
        if summary.ended_phase == Phase.COMPLETE.value:
            return DCEVSEStatusCode.EVSE_NOT_READY, False
        if summary.error:
            fault, _known = lookup_fault(summary.error)
            if fault.severity is Severity.EMERGENCY:
                return DCEVSEStatusCode.EVSE_EMERGENCY_SHUTDOWN, True
        return DCEVSEStatusCode.EVSE_SHUTDOWN, True

    def _on_tick(self) -> None:
        """Every control tick: the charge-loop watchdog, and an output opened under the session."""
        charger = self.charger
        now_s = charger.clock.now()
        previous_tick_s, self._last_tick_s = self._last_tick_s, now_s
        if not self._own_session_active():
            return
        if self._watchdog_armed and previous_tick_s is not None and now_s - previous_tick_s > EVENT_LOOP_STALL_S:
            # Our loop stalled: the stall does not count as the EV's silence (its request may be in the socket).
            self._last_request_s += now_s - previous_tick_s - charger.settings.control_period_s
        if self._watchdog_armed and now_s - self._last_request_s > self.watchdog_s:
            self._watchdog_armed = False
            silence_s = charger.clock.now() - self._last_request_s
            logger.error("no CurrentDemand/ChargeLoop request for %.2f s: COMMUNICATION_TIMEOUT", silence_s)
            self._spawn(charger.raise_fault("COMMUNICATION_TIMEOUT", source="hlc",
                                            message=f"no charge-loop request for {silence_s:.2f} s"))
            return
        m = charger.latest
        if self._energy_transfer and not self._ev_stopping and m is not None and not m.contactor_closed \
                and charger.stage in _ENERGY_STAGES:
            logger.warning("output contactor opened during energy transfer: stopping the HLC session")
            self._watchdog_armed = False
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
        charger.bms_view_override = bms_view_from_ev_data(self.ev_data_context, self._protocol_name())
        energy_service = None
        if comm is not None and getattr(comm, "selected_energy_service", None) is not None:
            energy_service = comm.selected_energy_service.service.name  # -20: DC, DC_BPT, ...
        elif self.ev_data_context.selected_energy_mode is not None:  # DIN / -2: DC_extended, ...
            energy_service = enum_value(self.ev_data_context.selected_energy_mode)
        control_mode = enum_value(getattr(comm, "control_mode", None)) if comm is not None else None
        charger.iso15118_view = iso15118_view(
            protocol=self._protocol_name(), energy_service=energy_service, control_mode=control_mode,
            authorized=self._authorized, evse_id=self.evse_id,
            session_id=getattr(comm, "session_id", None) or None,
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

    def _credible_voltage(self, voltage_V: float) -> bool:
        ev_max_V = self._ev_max_voltage_V()
        return standards.SAFE_DC_VOLTAGE_V < voltage_V <= self.charger.evse_max_voltage_V and \
            (ev_max_V is None or voltage_V <= ev_max_V)

    def _prepare_sim_car(self, pack_voltage_V: float) -> None:
        """Sim adapter only: the simulated battery behind the EV stack sits at the voltage it asked for."""
        sim = self.charger.hw.simulation
        if sim is None or self._car_ready:
            return
        current_A = self._ev_max_current_A() or self.charger.evse_max_current_A
        sim.prepare_hlc_car(pack_voltage_V, min(current_A, self.charger.evse_max_current_A))
        self._car_ready = True
        logger.info("simulated car: pack at %.1f V behind the EV stack", pack_voltage_V)

    def _note_request(self) -> None:
        self._last_request_s = self.charger.clock.now()

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
        price_levels = PriceLevelSchedule(
            id="id1", time_anchor=0, schedule_id=1, schedule_description="flat rate", num_price_levels=1,
            schedule_entries=PriceLevelScheduleEntryList(
                entries=[PriceLevelScheduleEntry(duration=SCHEDULE_DURATION_S, price_level=1)]))
        if control_mode == ControlMode.DYNAMIC:
            return DynamicScheduleExchangeResParams(departure_time=SCHEDULE_DURATION_S, min_soc=0, target_soc=100,
                                                    price_level_schedule=price_levels)
        power_schedule = PowerSchedule(time_anchor=0, schedule_entry_list=PowerScheduleEntryList(entries=[
            PowerScheduleEntry(duration=SCHEDULE_DURATION_S, power=_rational(self.charger.evse_max_power_W))]))
        schedule = ScheduleTuple(schedule_tuple_id=1, charging_schedule=ChargingSchedule(
            power_schedule=power_schedule, price_level_schedule=price_levels))
        return ScheduledScheduleExchangeResParams(schedule_tuples=[schedule])

    async def get_energy_service_list(self) -> ServiceList:
        return ServiceList(services=[Service(service_id=DC_SERVICE_ID, free_service=False)])

    def is_eim_authorized(self) -> bool:
        return self.eim_authorized

    async def is_authorized(self, id_token: Optional[str] = None,
                            id_token_type: Optional[AuthorizationTokenType] = None,
                            certificate_chain: Optional[bytes] = None,
                            hash_data: Optional[List[Dict[str, str]]] = None) -> AuthorizationResponse:
        """No backend: every EIM identification and every contract the SECC's PKI checks is accepted."""
        protocol = self.get_selected_protocol()
        if protocol == Protocol.DIN_SPEC_70121:
            code: Any = ResponseCodeDIN.OK
        elif protocol is not None and protocol.name.startswith("ISO_15118_20"):
            code = ResponseCodeV20.OK
        else:
            code = ResponseCodeV2.OK
        self._authorized = True
        self._refresh_views()
        return AuthorizationResponse(authorization_status=AuthorizationStatus.ACCEPTED,
                                     certificate_response_status=code)

    async def get_sa_schedule_list(self, ev_data_context: EVDataContext, is_free_charging_service: bool,
                                   max_schedule_entries: Optional[int],
                                   departure_time: int = 0) -> Optional[List[SAScheduleTuple]]:
        duration_s = departure_time or SCHEDULE_DURATION_S
        entry = PMaxScheduleEntry(p_max=_pv(PVPMax, self.charger.evse_max_power_W, UnitSymbol.WATT),
                                  time_interval=RelativeTimeInterval(start=0, duration=duration_s))
        return [SAScheduleTuple(sa_schedule_tuple_id=1, p_max_schedule=PMaxSchedule(schedule_entries=[entry]),
                                sales_tariff=None)]

    async def get_sa_schedule_list_dinspec(self, max_schedule_entries: Optional[int],
                                           departure_time: int = 0) -> Optional[List[SAScheduleTupleEntryDIN]]:
        details = PMaxScheduleEntryDetailsDIN(
            p_max=int(min(DIN_PMAX_MAX_W, self.charger.evse_max_power_W)),
            time_interval=RelativeTimeIntervalDIN(start=0, duration=departure_time or SCHEDULE_DURATION_S))
        return [SAScheduleTupleEntryDIN(sa_schedule_tuple_id=1, sales_tariff=None,
                                        p_max_schedule=PMaxScheduleEntryDIN(p_max_schedule_id=0,
                                                                            entry_details=[details]))]

    async def get_meter_info_v2(self) -> MeterInfoV2:
        energy_Wh = self.charger.meter_reading.energy_Wh
        return MeterInfoV2(meter_id=METER_ID, meter_reading=int(energy_Wh), t_meter=int(time.time()))

    async def get_meter_info_v20(self) -> MeterInfoV20:
        energy_Wh = self.charger.meter_reading.energy_Wh
        return MeterInfoV20(meter_id=METER_ID, charged_energy_reading_wh=int(energy_Wh),
                            meter_timestamp=int(time.time()))

    async def get_supported_providers(self) -> Optional[List[ProviderID]]:
        return None

    async def set_hlc_charging(self, is_ongoing: bool) -> None:
        if is_ongoing:
            if not self._own_session_active():
                return
            self._energy_transfer = True
            await self.charger.begin_energy_transfer(self._ev_max_voltage_V())
            self._note_request()
            self._watchdog_armed = True
            return
        self._ev_stopping = True
        self._watchdog_armed = False
        sim = self.charger.hw.simulation
        if sim is not None:
            sim.ev.energy_transfer_wanted = False  # the EV opens its contactor once the current is < 1 A

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
        if service_id != DC_SERVICE_ID:
            return None
        scheduled = ParameterSet(id=1, parameters=[
            Parameter(name="Connector", int_value=2),  # Extended
            Parameter(name="ControlMode", int_value=1),  # Scheduled
            Parameter(name="MobilityNeedsMode", int_value=1),  # provided by the EV
            Parameter(name="Pricing", int_value=0),  # no pricing
        ])
        return ServiceParameterList(parameter_sets=[scheduled])

    async def stop_charger(self) -> None:
        """Ramp down (≤ 100 A/s) and open the contactor below 1 A, then return."""
        charger = self.charger
        self._watchdog_armed = False
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
        limits = self.evse_data_context.rated_limits.dc_limits
        return DCEVSEChargeParameter(
            dc_evse_status=await self.get_dc_evse_status(),
            evse_maximum_power_limit=_pv(PVEVSEMaxPowerLimit, limits.max_charge_power, UnitSymbol.WATT),
            evse_maximum_current_limit=_pv(PVEVSEMaxCurrentLimit, limits.max_charge_current, UnitSymbol.AMPERE),
            evse_maximum_voltage_limit=_pv(PVEVSEMaxVoltageLimit, limits.max_voltage, UnitSymbol.VOLTAGE),
            evse_minimum_current_limit=_pv(PVEVSEMinCurrentLimit, limits.min_charge_current, UnitSymbol.AMPERE),
            evse_minimum_voltage_limit=_pv(PVEVSEMinVoltageLimit, limits.min_voltage, UnitSymbol.VOLTAGE),
            evse_peak_current_ripple=_pv(PVEVSEPeakCurrentRipple, PEAK_CURRENT_RIPPLE_A, UnitSymbol.AMPERE),
        )

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
        sim = self.charger.hw.simulation
        if is_precharge:
            target_V = self._clamp_voltage_V(voltage_V)
            if self._credible_voltage(voltage_V):
                self._prepare_sim_car(target_V)
            # ≤ 2 A; an EV that names no current (-20 sends 0: "not used") gets the 2 A allowed.
            limit_A = current_A if current_A > 0.0 else standards.PRECHARGE_CURRENT_LIMIT_A
            await self.charger.precharge_step(target_V, limit_A)
        else:
            target_V = self._clamp_voltage_V(voltage_V)
            if not self._car_ready and target_V > standards.SAFE_DC_VOLTAGE_V:
                self._prepare_sim_car(target_V)  # the EV's precharge target was not credible
            await self.charger.set_charge_targets(target_V, current_A)
        if sim is not None:
            sim.ev.hlc_target_voltage_V, sim.ev.hlc_target_current_A = voltage_V, current_A
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
        limits = self.evse_data_context.rated_limits.dc_limits
        return DCChargeParameterDiscoveryResParams(
            evse_max_charge_power=_rational(limits.max_charge_power),
            evse_min_charge_power=_rational(limits.min_charge_power),
            evse_max_charge_current=_rational(limits.max_charge_current),
            evse_min_charge_current=_rational(limits.min_charge_current),
            evse_max_voltage=_rational(limits.max_voltage),
            evse_min_voltage=_rational(limits.min_voltage),
        )

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
