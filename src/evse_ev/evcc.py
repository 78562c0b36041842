"""The ISO 15118 EVCC of the simulated EV: iso15118's own EVCC with a battery-backed EV controller.

* ``BatteryEVController`` subclasses the package's ``SimEVController`` (so every message the package's EV
  builds stays the package's) and replaces what a real car decides: its limits and energy (from the
  preset), precharge done when the EVSE is within 20 V of the pack, the target current from the charging
  curve, SOC from the energy actually delivered, and stopping at the target SOC (not after N loops).
* ``ObservingEXICodec`` wraps the EXI codec: every decoded CurrentDemandRes (DIN/-2) or DC_ChargeLoopRes
  (-20) gives its EVSEPresentVoltage × EVSEPresentCurrent to the battery, with the time it arrived. The
  package's EVCC states do not hand these responses to the controller; the codec sees every message.
* ``run_evcc_session``: one EVCC session on ``iface`` (SDP → … → SessionStop), returning when it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from iso15118.evcc import EVCCHandler
from iso15118.evcc.controller.interface import ChargeParamsV2
from iso15118.evcc.controller.simulator import SimEVController
from iso15118.evcc.evcc_config import EVCCConfig
from iso15118.shared.iexi_codec import IEXICodec
from iso15118.shared.messages.datatypes import (
    DCEVChargeParams,
    PVEVEnergyCapacity,
    PVEVEnergyRequest,
    PVEVMaxCurrentLimit,
    PVEVMaxPowerLimit,
    PVEVMaxVoltageLimit,
    PVEVTargetCurrent,
    PVEVTargetVoltage,
    PVRemainingTimeToBulkSOC,
    PVRemainingTimeToFullSOC,
)
from iso15118.shared.messages.din_spec.datatypes import DCEVStatus as DCEVStatusDINSPEC
from iso15118.shared.messages.enums import DCEVErrorCode, Protocol, UnitSymbol
from iso15118.shared.messages.iso15118_2.datatypes import DCEVChargeParameter, DCEVPowerDeliveryParameter, DCEVStatus
from iso15118.shared.messages.iso15118_20.common_types import DisplayParameters, RationalNumber
from iso15118.shared.messages.iso15118_20.dc import (
    DCChargeParameterDiscoveryReqParams,
    DynamicDCChargeLoopReqParams,
    ScheduledDCChargeLoopReqParams,
)

from evse_ev.battery import EvBattery
from evse_model import standards

logger = logging.getLogger(__name__)

INT16_MAX = 32767  # PhysicalValue / RationalNumber values are XSD short (ISO 15118-2 §8.5.2.7, -20 §8.3.5.3.8)
PRECHARGE_CURRENT_A = standards.PRECHARGE_CURRENT_LIMIT_A  # IEC 61851-23 CC.5.2: precharge current ≤ 2 A
BULK_SOC_PERCENT = 80
FULL_SOC_PERCENT = 100
DC_PROTOCOLS = ("DIN_SPEC_70121", "ISO_15118_2", "ISO_15118_20_DC")
CHARGE_LOOP_RESPONSES = ("CurrentDemandRes", "DC_ChargeLoopRes")


def scaled(value: float) -> tuple[int, int]:
    """(value, power of ten) with the value a 16-bit short, as precise as that allows (exponent ≥ -1)."""
    for exponent in (-1, 0, 1, 2, 3):
        mantissa = round(value / 10 ** exponent)
        if abs(mantissa) <= INT16_MAX:
            return mantissa, exponent
    raise ValueError(f"{value} does not fit a 16-bit physical value")


def pv(cls, value: float, unit: UnitSymbol):
    mantissa, exponent = scaled(value)
    return cls(multiplier=exponent, value=mantissa, unit=unit)


def rational(value: float) -> RationalNumber:
    mantissa, exponent = scaled(value)
    return RationalNumber(exponent=exponent, value=mantissa)


def evcc_config(protocol: str, *, use_tls: bool = False) -> EVCCConfig:
    """DC charging over ``protocol`` (DIN_SPEC_70121, ISO_15118_2 or ISO_15118_20_DC), EIM."""
    if protocol not in DC_PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(DC_PROTOCOLS)}, got {protocol!r}")
    config = EVCCConfig(supportedProtocols=[protocol], supportedEnergyServices=["DC"],
                        energyTransferMode="DC_extended", isCertInstallNeeded=False, useTls=use_tls,
                        enforceTls=use_tls, chargeLoopCycle=1)
    config.load_raw_values()
    return config


#: Default shortest time between two charge-loop requests: the stock EVCC cycled about every 96 ms (DIN, -2) with the
#: Java codec (../shared/reference/iso15118-notes.md, long runs); with the native codec it would go back to back.
DEFAULT_CHARGE_LOOP_INTERVAL_S = 0.1


class BatteryEVController(SimEVController):
    """The package's simulated EV with a real battery's limits, requests and SOC."""

    def __init__(self, config: EVCCConfig, battery: EvBattery, precharge_loops_limit: int | None = None,
                 charge_loop_interval_s: float = DEFAULT_CHARGE_LOOP_INTERVAL_S) -> None:
        super().__init__(config)
        self.battery = battery
        #: The shortest time between two charge-loop requests (wall seconds): a car paces its loop rather than
        #: sending back to back, so the energy of N loops does not depend on how fast the codecs are.
        self.charge_loop_interval_s = charge_loop_interval_s
        self._last_charge_loop_s: float | None = None
        # None: precharge ends only when the EVSE is within 20 V of the pack (a real car). A number: also after
        # that many PreChargeRes (the package's SimEVController uses 5), for SECCs whose simulated output
        # voltage never follows the request (iso15118's own SimEVSEController).
        self.precharge_loops_limit = precharge_loops_limit
        self.charging = False  # PowerDelivery(Start) seen: targets follow the charging curve
        self.stopped = False
        self.charge_loops = 0

    def reset_for_session(self) -> None:
        self.charging = self.stopped = self._charging_is_completed = False
        self.precharge_loop_cycles = self.welding_detection_cycles = self.charge_loops = 0
        self._last_charge_loop_s = None
        self.battery.stop_observing()

    # --- SOC and status ---------------------------------------------------------------------------------
    @property
    def _soc(self) -> int:  # the package's SimEVController reads self._soc everywhere
        return int(self.battery.soc_percent)

    @_soc.setter
    def _soc(self, value: int) -> None:
        pass  # SOC is the battery's, never the message loop's

    async def get_dc_ev_status(self) -> DCEVStatus:
        return DCEVStatus(ev_ready=True, ev_error_code=DCEVErrorCode.NO_ERROR, ev_ress_soc=self._soc)

    async def get_dc_ev_status_dinspec(self) -> DCEVStatusDINSPEC:
        return DCEVStatusDINSPEC(ev_ready=True, ev_error_code=DCEVErrorCode.NO_ERROR, ev_ress_soc=self._soc)

    # --- limits and requests ------------------------------------------------------------------------------
    def _target_current_A(self) -> float:
        return self.battery.target_current_A() if self.charging else PRECHARGE_CURRENT_A

    def _target_voltage_V(self) -> float:
        return self.battery.target_voltage_V() if self.charging else self.battery.ocv_V

    async def get_dc_charge_params(self) -> DCEVChargeParams:
        preset = self.battery.preset
        return DCEVChargeParams(
            dc_max_current_limit=pv(PVEVMaxCurrentLimit, preset.max_current_A, UnitSymbol.AMPERE),
            dc_max_power_limit=pv(PVEVMaxPowerLimit, preset.max_power_W, UnitSymbol.WATT),
            dc_max_voltage_limit=pv(PVEVMaxVoltageLimit, preset.max_voltage_V, UnitSymbol.VOLTAGE),
            dc_energy_capacity=pv(PVEVEnergyCapacity, preset.capacity_Wh, UnitSymbol.WATT_HOURS),
            dc_target_current=pv(PVEVTargetCurrent, self._target_current_A(), UnitSymbol.AMPERE),
            dc_target_voltage=pv(PVEVTargetVoltage, self._target_voltage_V(), UnitSymbol.VOLTAGE))

    async def get_charge_params_v2(self, protocol: Protocol) -> ChargeParamsV2:
        params = await self.get_dc_charge_params()
        to_target_Wh = max(0.0, (self.battery.target_soc_percent - self.battery.soc_percent) / 100.0
                           * self.battery.preset.capacity_Wh)
        dc = DCEVChargeParameter(
            departure_time=0, dc_ev_status=await self.get_dc_ev_status(),
            ev_maximum_current_limit=params.dc_max_current_limit, ev_maximum_power_limit=params.dc_max_power_limit,
            ev_maximum_voltage_limit=params.dc_max_voltage_limit, ev_energy_capacity=params.dc_energy_capacity,
            ev_energy_request=pv(PVEVEnergyRequest, to_target_Wh, UnitSymbol.WATT_HOURS),
            full_soc=FULL_SOC_PERCENT, bulk_soc=BULK_SOC_PERCENT)
        return ChargeParamsV2(await self.get_energy_transfer_mode(protocol), None, dc)

    async def get_charge_params_v20(self, selected_service):
        preset = self.battery.preset
        return DCChargeParameterDiscoveryReqParams(
            ev_max_charge_power=rational(preset.max_power_W), ev_min_charge_power=rational(0),
            ev_max_charge_current=rational(preset.max_current_A), ev_min_charge_current=rational(0),
            ev_max_voltage=rational(preset.max_voltage_V), ev_min_voltage=rational(preset.ocv_V(0.0)))

    async def get_scheduled_dc_charge_loop_params(self) -> ScheduledDCChargeLoopReqParams:
        return ScheduledDCChargeLoopReqParams(ev_target_current=rational(self._target_current_A()),
                                              ev_target_voltage=rational(self._target_voltage_V()))

    async def get_dynamic_dc_charge_loop_params(self) -> DynamicDCChargeLoopReqParams:
        preset, battery = self.battery.preset, self.battery
        to_target_Wh = max(0.0, (battery.target_soc_percent - battery.soc_percent) / 100.0 * preset.capacity_Wh)
        to_full_Wh = max(0.0, (100.0 - battery.soc_percent) / 100.0 * preset.capacity_Wh)
        return DynamicDCChargeLoopReqParams(
            ev_target_energy_request=rational(to_target_Wh), ev_max_energy_request=rational(to_full_Wh),
            ev_min_energy_request=rational(0), ev_max_charge_power=rational(preset.max_power_W),
            ev_min_charge_power=rational(0), ev_max_charge_current=rational(self._target_current_A()),
            ev_max_voltage=rational(preset.max_voltage_V), ev_min_voltage=rational(preset.ocv_V(0.0)))

    async def get_present_voltage(self) -> RationalNumber:
        return rational(self.battery.ocv_V)

    async def get_target_voltage(self) -> RationalNumber:
        return rational(self._target_voltage_V())

    async def get_remaining_time_to_full_soc(self) -> PVRemainingTimeToFullSOC:
        return pv(PVRemainingTimeToFullSOC, self.battery.remaining_time_s(FULL_SOC_PERCENT), UnitSymbol.SECONDS)

    async def get_remaining_time_to_bulk_soc(self) -> PVRemainingTimeToBulkSOC:
        return pv(PVRemainingTimeToBulkSOC, self.battery.remaining_time_s(BULK_SOC_PERCENT), UnitSymbol.SECONDS)

    async def get_display_params(self) -> DisplayParameters:
        return DisplayParameters(present_soc=self._soc, charging_complete=await self.is_charging_complete())

    # --- flow decisions --------------------------------------------------------------------------------------
    async def is_precharged(self, present_voltage_evse) -> bool:
        self.precharge_loop_cycles += 1
        done = self.battery.precharged(present_voltage_evse.get_decimal_value()) or (
            self.precharge_loops_limit is not None and self.precharge_loop_cycles >= self.precharge_loops_limit)
        if done:  # the EV closes its contactor; from PowerDelivery(Start) on it asks for the charging curve
            self.charging = not (self.stopped or self.battery.charging_complete())
        return done

    async def ready_to_charge(self) -> bool:
        self.charging = not (self.stopped or self.battery.charging_complete())
        return self.charging

    async def continue_charging(self) -> bool:
        if self.stopped or self.battery.charging_complete():
            self.battery.stop_observing()
            return False
        await self._pace_charge_loop()
        self.charge_loops += 1
        return True

    async def _pace_charge_loop(self) -> None:
        now_s = time.monotonic()
        if self._last_charge_loop_s is not None:
            wait_s = self._last_charge_loop_s + self.charge_loop_interval_s - now_s
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                now_s = time.monotonic()
        self._last_charge_loop_s = now_s

    async def get_dc_ev_power_delivery_parameter(self) -> DCEVPowerDeliveryParameter:
        return DCEVPowerDeliveryParameter(dc_ev_status=await self.get_dc_ev_status(), bulk_charging_complete=False,
                                          charging_complete=self.battery.charging_complete())

    async def is_charging_complete(self) -> bool:
        return self.stopped or self.battery.charging_complete()

    async def stop_charging(self) -> None:
        self.stopped = True
        self.charging = False
        self.battery.stop_observing()


def _find_charge_loop_response(document: object) -> dict | None:
    if isinstance(document, dict):
        for key, value in document.items():
            if key in CHARGE_LOOP_RESPONSES and isinstance(value, dict):
                return value
            found = _find_charge_loop_response(value)
            if found is not None:
                return found
    return None


def _physical(value: dict | None) -> float | None:
    if not isinstance(value, dict) or "Value" not in value:
        return None
    power = value.get("Multiplier", value.get("Exponent", 0))
    return float(value["Value"]) * 10 ** int(power)


class ObservingEXICodec(IEXICodec):
    """An ``IEXICodec`` that passes through and reports each charge-loop response's present V and I."""

    def __init__(self, inner: IEXICodec, on_present: Callable[[float, float, float], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.on_present = on_present
        self.clock = clock
        self.session_stopped = False  # a SessionStopRes arrived: the session ended as the EV asked

    def encode(self, message: str, namespace: str) -> bytes:
        return self.inner.encode(message, namespace)

    def decode(self, stream: bytes, namespace: str) -> str:
        decoded = self.inner.decode(stream, namespace)
        if "SessionStopRes" in decoded:
            self.session_stopped = True
        if "ChargeLoopRes" in decoded or "CurrentDemandRes" in decoded:
            response = _find_charge_loop_response(json.loads(decoded))
            if response is not None:
                voltage_V = _physical(response.get("EVSEPresentVoltage"))
                current_A = _physical(response.get("EVSEPresentCurrent"))
                if voltage_V is not None and current_A is not None:
                    self.on_present(voltage_V, current_A, self.clock())
        return decoded

    def get_version(self) -> str:
        return self.inner.get_version()


def load_package_settings() -> None:
    """iso15118's shared settings (PKI_PATH, MESSAGE_LOG_JSON, ...), from the environment / $CWD/.env, as its
    own EVCC main does before the first message."""
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings()


def start_exi_codec(name: str) -> tuple[IEXICodec, Callable[[], None]]:
    """``java`` (the package's EXIficient codec, one JVM) or ``native`` (pure Python); and its closer."""
    if name == "native":
        from exi_codec.codec import NativeEXICodec

        return NativeEXICodec(), lambda: None
    if name == "java":
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        codec = ExificientEXICodec()
        return codec, codec.gateway.shutdown
    raise ValueError(f"EXI codec must be native or java, got {name!r}")


async def run_evcc_session(iface: str, config: EVCCConfig, controller: BatteryEVController, codec: IEXICodec,
                           timeout_s: float) -> None:
    """One session, SDP to SessionStop (the package's EVCC returns once the session ended successfully).

    Raises TimeoutError after ``timeout_s``; the TCP connection is closed whatever happens, so the SECC
    sees the EV leave (and resumes SDP) at once."""
    controller.reset_for_session()
    handler = EVCCHandler(evcc_config=config, iface=iface, exi_codec=codec, ev_controller=controller)
    try:
        await asyncio.wait_for(handler.start(), timeout_s)
    finally:
        tcp_client = getattr(handler, "tcp_client", None)
        writer = getattr(tcp_client, "writer", None)
        if writer is not None:
            writer.close()
        udp_client = getattr(handler, "udp_client", None)
        transport = getattr(udp_client, "_transport", None)
        if transport is not None:
            transport.close()
        controller.battery.stop_observing()
