"""``ChargerPort``: what an ISO 15118 stack, through the SECC glue (``HalEVSEController``), may ask of the charger.

The glue sits in the HAL layer and must not import the controller above it (``ccs_sim``); it is written
against this port instead (dependency inversion). ``ccs_sim``'s ``ChargerController`` satisfies it
structurally — nothing registers or inherits — and any other charger core can too.

Everything the glue reads or calls is listed here, grouped by job: the session (start, stage, end, faults),
the DC sequence steps the EV's requests map to (cable check, precharge step, energy transfer, charge
targets, ramp-down), the charger's limits and the present readings, and the two views the glue fills with
the EV's data. Errors come as ``evse_model.session_errors`` (``CommandRefused``, ``SessionAbort``).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from evse_hal.interfaces import EVSEHardware
from evse_hal.pilot import PilotReading
from evse_model.clock import Clock
from evse_model.faults import Fault, FaultType
from evse_model.session import EndReason, Phase, SessionParams, SessionSummary, Stage


class Authorization(str, enum.Enum):
    """The charger's answer to an EV's identification (ISO 15118-2 AuthorizationRes: Finished or Ongoing)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    ONGOING = "Ongoing"  # not decided yet (the backend has not answered): the EV asks again


#: ``id_token_type`` of an EV's identification: its contract id (Plug & Charge, ISO 15118-2 PaymentDetailsReq
#: eMAID) or External Identification Means (EIM: the driver identifies at the charger, no token from the EV).
ID_TOKEN_TYPE_EMAID = "eMAID"
ID_TOKEN_TYPE_EIM = "EIM"

#: Who decides an identification: ``async (id_token, id_token_type) -> Authorization`` (the charger's
#: ``authorizer``; an OCPP client installs one that asks its CSMS).
Authorizer = Callable[[str | None, str], Awaitable[Authorization]]


async def accept_every_identification(id_token: str | None, id_token_type: str) -> Authorization:
    """No backend: every EIM identification and every contract the SECC's PKI checked is accepted."""
    return Authorization.ACCEPTED


class ChargerReadings(Protocol):
    """One control tick's measurements, as far as the glue reads them."""

    @property
    def pilot(self) -> PilotReading: ...
    @property
    def duty_percent(self) -> float: ...
    @property
    def contactor_closed(self) -> bool: ...
    @property
    def output_voltage_V(self) -> float: ...
    @property
    def output_current_A(self) -> float: ...


class EnergyReading(Protocol):
    @property
    def energy_Wh(self) -> float: ...


class ChargerTimings(Protocol):
    """The controller settings the glue needs."""

    @property
    def control_period_s(self) -> float: ...
    @property
    def ramp_down_timeout_s(self) -> float: ...
    @property
    def current_ramp_up_A_per_s(self) -> float: ...


class ChargingSession(Protocol):
    """The session the charger records for one ISO 15118 communication session."""

    @property
    def session_id(self) -> str: ...
    @property
    def summary(self) -> SessionSummary | None: ...
    ev_info: dict[str, Any]


class SessionFlow(Protocol):
    """The charger-side driver of a session (the SECC's flow: ``evse_hal.iso15118.session.HlcSessionDriver``)."""

    source: str

    async def run(self, charger: Any, session: Any) -> None: ...


class ChargerPort(Protocol):
    """What the SECC glue may ask of the charger (``ccs_sim.controller.ChargerController`` is one)."""

    # --- the hardware, the clock, the limits and the present readings -----------------------------------
    hw: EVSEHardware
    clock: Clock
    evse_max_power_W: float
    evse_max_current_A: float
    evse_max_voltage_V: float

    @property
    def settings(self) -> ChargerTimings: ...

    @property
    def latest(self) -> ChargerReadings | None:
        """The latest control tick's readings (None before the first tick)."""

    @property
    def meter_reading(self) -> EnergyReading: ...

    #: Called after every control tick (the glue's charge-loop watchdog is one).
    tick_listeners: list[Callable[[], None]]

    async def io(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a device function the way the charger does (off the event loop for a blocking adapter)."""

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool: ...

    # --- the session ------------------------------------------------------------------------------------
    @property
    def session(self) -> ChargingSession | None:
        """The latest session (running, or ended and winding down)."""

    @property
    def session_active(self) -> bool: ...

    @property
    def stage(self) -> Stage: ...

    @property
    def active_fault(self) -> Fault | None: ...

    def start_session(self, params: SessionParams, driver: Any = None) -> ChargingSession:
        """A new session driven by ``driver``; raises CommandRefused when none may start."""

    def set_stage(self, stage: Stage) -> None: ...

    def end_session(self, phase: Phase, fault: Fault | None, reason: EndReason) -> None: ...

    async def raise_fault(self, fault_type: FaultType, source: str = "api", message: str = "") -> Any: ...

    async def authorize(self, id_token: str | None, id_token_type: str) -> Authorization:
        """The EV's identification for the running session (``id_token``: the eMAID for Plug & Charge, None
        for EIM; ``id_token_type``: ID_TOKEN_TYPE_EMAID / ID_TOKEN_TYPE_EIM), decided by the charger's
        authoriser; may take as long as its backend (the glue polls it without blocking the SECC)."""

    # --- the DC sequence, step by step as the EV asks -------------------------------------------------
    async def set_pwm_duty(self, duty_percent: float) -> None: ...

    async def cable_check(self, ev_max_voltage_V: float | None) -> str:
        """VALID or WARNING; raises SessionAbort or CommandRefused when the check fails."""

    async def precharge_step(self, target_V: float, current_A: float = ...) -> float: ...

    async def begin_energy_transfer(self, negotiated_max_voltage_V: float | None) -> None: ...

    async def set_charge_targets(self, voltage_V: float, current_A: float, power_W: float | None = None) -> None: ...

    async def ramp_down_and_open(self, session: Any = None) -> None: ...

    # --- the EV's data as the API shows it ------------------------------------------------------------------
    bms_view_override: dict[str, Any] | None
    iso15118_view: dict[str, Any]

