"""The station model the CSMS sees: the connector's status from the controller's state, and when it changes.

A pure function (``connector_status``) maps what the controller knows (``StationInputs``: availability,
CP state, phase and stage, the fault in force, the EV's request, the offered limit) to the 1.6 connector
status and error code and the 2.0.1 ConnectorStatus and transaction ChargingState. ``StatusChangeDetector``
says when a notification is due (the first report, then only a different status: never a duplicate).

OCPP 1.6 connector status (§4.9 StatusNotification, the table of §7.7 ChargePointStatus), first rule that
applies:

==========================================================  ==============  ====================  ============
condition                                                   1.6 status      2.0.1 ConnectorStatus ChargingState
==========================================================  ==============  ====================  ============
a fault that forbids a start (E-stop pressed, hot connector)  Faulted        Faulted               Idle / –
a fault's shutdown under way (stage EMERGENCY_SHUTDOWN)     Faulted         Faulted               Idle
made inoperative (ChangeAvailability) and no session        Unavailable     Unavailable           Idle
session: plug-in, handshake, cable check, precharge         Preparing       Occupied              EVConnected
session: energy transfer, the offered limit is 0            SuspendedEVSE   Occupied              SuspendedEVSE
session: the output interrupted (contactor opened)          SuspendedEVSE   Occupied              SuspendedEVSE
session: energy transfer, the EV asks for no current        SuspendedEV     Occupied              SuspendedEV
session: energy transfer                                    Charging        Occupied              Charging
no session, wind-down still running                         Finishing       Occupied              EVConnected
no session, EV still plugged (CP B/C/D) after a session     Finishing       Occupied              EVConnected
no session, EV plugged (CP B/C/D) before any session        Preparing       Occupied              EVConnected
otherwise (CP A: no EV)                                     Available       Available             Idle
==========================================================  ==============  ====================  ============

Error codes (1.6 ChargePointErrorCode) follow the fault: OVERCURRENT -> OverCurrentFailure, OVERVOLTAGE ->
OverVoltage, ISOLATION_FAULT -> GroundFailure, OVER_TEMPERATURE -> HighTemperature, CONTACTOR_FAULT ->
PowerSwitchFailure, SUPPLY_FAULT -> InternalError, the EV/communication faults -> EVCommunicationError,
the rest OtherError; the fault's name goes in ``vendorErrorCode`` and its message in ``info``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evse_model.faults import FaultType
from evse_model.session import Phase, Stage

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController

#: Below this the EV is taken as asking for no current (SuspendedEV), in A.
NO_CURRENT_REQUEST_A = 0.5
#: CP states with an EV connected (IEC 61851-1 Table A.4: B connected, C/D ready to charge).
EV_CONNECTED_CP_STATES = frozenset({"B", "C", "D"})

_PREPARING_STAGES = frozenset({Stage.PLUG_IN, Stage.HANDSHAKE, Stage.CABLE_CHECK, Stage.PRECHARGE})
_ENERGY_TRANSFER_STAGES = frozenset({Stage.CURRENT_RAMP, Stage.CHARGING})

_ERROR_CODE_BY_FAULT = {
    "OVERCURRENT": "OverCurrentFailure", "OVERVOLTAGE": "OverVoltage", "ISOLATION_FAULT": "GroundFailure",
    "OVER_TEMPERATURE": "HighTemperature", "CONTACTOR_FAULT": "PowerSwitchFailure", "SUPPLY_FAULT": "InternalError",
    "CP_LOSS": "EVCommunicationError", "DIODE_FAULT": "EVCommunicationError",
    "EV_NOT_READY": "EVCommunicationError", "COMMUNICATION_TIMEOUT": "EVCommunicationError",
    "HLC_FAILURE": "EVCommunicationError", "SLAC_FAILURE": "EVCommunicationError",
}


class ConnectorStatus16(str, enum.Enum):
    """OCPP 1.6 ChargePointStatus (Reserved is not used: no reservations)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    FAULTED = "Faulted"
    UNAVAILABLE = "Unavailable"


_STATUS_201 = {  # 1.6 status -> (2.0.1 ConnectorStatusEnumType, ChargingStateEnumType)
    ConnectorStatus16.AVAILABLE: ("Available", "Idle"),
    ConnectorStatus16.PREPARING: ("Occupied", "EVConnected"),
    ConnectorStatus16.CHARGING: ("Occupied", "Charging"),
    ConnectorStatus16.SUSPENDED_EV: ("Occupied", "SuspendedEV"),
    ConnectorStatus16.SUSPENDED_EVSE: ("Occupied", "SuspendedEVSE"),
    ConnectorStatus16.FINISHING: ("Occupied", "EVConnected"),
    ConnectorStatus16.FAULTED: ("Faulted", "Idle"),
    ConnectorStatus16.UNAVAILABLE: ("Unavailable", "Idle"),
}


@dataclass(frozen=True)
class StationInputs:
    """What the status is made of, read from the controller at one moment."""

    available: bool = True
    cp_state: str = "A"
    phase: Phase = Phase.IDLE
    stage: Stage = Stage.IDLE
    session_active: bool = False
    #: A shutdown (wind-down or a fault's emergency open) is still bringing the output to its safe state.
    shutting_down: bool = False
    #: Why a session cannot start now (E-stop pressed, connector too hot), else None.
    blocking_reason: str | None = None
    #: The fault in force (the latest raised since the session's start), else None.
    fault: FaultType | None = None
    fault_message: str = ""
    #: The current the EV asks for (A) and the limit the station offers (A; None: no limit but the rating).
    ev_requested_current_A: float = 0.0
    offered_current_A: float | None = None


@dataclass(frozen=True)
class ConnectorState:
    """The connector's status for both versions (``charging_state``: 2.0.1 TransactionEvent's)."""

    status_16: ConnectorStatus16
    error_code: str = "NoError"
    vendor_error_code: str | None = None
    info: str | None = None

    @property
    def status_201(self) -> str:
        return _STATUS_201[self.status_16][0]

    @property
    def charging_state(self) -> str:
        return _STATUS_201[self.status_16][1]


def error_code_for(fault: FaultType | None) -> str:
    if fault is None:
        return "OtherError"
    return _ERROR_CODE_BY_FAULT.get(fault.name, "OtherError")


def connector_status(inputs: StationInputs) -> ConnectorState:
    """The connector's state from ``inputs`` (the module's table, first rule that applies)."""
    if inputs.blocking_reason is not None:
        fault = inputs.fault
        code = "HighTemperature" if "temperature" in inputs.blocking_reason else error_code_for(fault)
        return ConnectorState(ConnectorStatus16.FAULTED, code, fault.name if fault else None,
                              inputs.blocking_reason[:50])
    if inputs.stage is Stage.EMERGENCY_SHUTDOWN and inputs.shutting_down and inputs.fault is not None:
        return ConnectorState(ConnectorStatus16.FAULTED, error_code_for(inputs.fault), inputs.fault.name,
                              (inputs.fault_message or inputs.fault.description)[:50])
    if not inputs.available and not inputs.session_active:
        return ConnectorState(ConnectorStatus16.UNAVAILABLE)
    plugged = inputs.cp_state in EV_CONNECTED_CP_STATES
    if inputs.session_active:
        if inputs.stage in _PREPARING_STAGES:
            return ConnectorState(ConnectorStatus16.PREPARING)
        if inputs.stage is Stage.OUTPUT_INTERRUPTED:
            return ConnectorState(ConnectorStatus16.SUSPENDED_EVSE)
        if inputs.stage in _ENERGY_TRANSFER_STAGES:
            if inputs.offered_current_A is not None and inputs.offered_current_A <= 0.0:
                return ConnectorState(ConnectorStatus16.SUSPENDED_EVSE)
            if inputs.ev_requested_current_A < NO_CURRENT_REQUEST_A:
                return ConnectorState(ConnectorStatus16.SUSPENDED_EV)
            return ConnectorState(ConnectorStatus16.CHARGING)
        return ConnectorState(ConnectorStatus16.PREPARING)
    if inputs.shutting_down:
        return ConnectorState(ConnectorStatus16.FINISHING)
    if plugged:
        after_session = inputs.stage is not Stage.IDLE
        return ConnectorState(ConnectorStatus16.FINISHING if after_session else ConnectorStatus16.PREPARING)
    return ConnectorState(ConnectorStatus16.AVAILABLE)


def station_inputs(controller: ChargerController, available: bool = True,
                   offered_current_A: float | None = None) -> StationInputs:
    """Read ``StationInputs`` from the controller now (no side effect)."""
    latest = controller.latest
    fault = controller.active_fault
    return StationInputs(
        available=available,
        cp_state=latest.pilot.state if latest is not None else "A",
        phase=controller.phase,
        stage=controller.stage,
        session_active=controller.session_active,
        shutting_down=controller.shutting_down,
        blocking_reason=controller.persistent_fault_reason(),
        fault=fault.type if fault is not None else None,
        fault_message=fault.message if fault is not None else "",
        ev_requested_current_A=controller.requested_current_A,
        offered_current_A=offered_current_A,
    )


class StatusChangeDetector:
    """A notification is due for the first state and for every different one after (never a duplicate)."""

    def __init__(self) -> None:
        self._last: ConnectorState | None = None

    @property
    def last(self) -> ConnectorState | None:
        return self._last

    def changed(self, state: ConnectorState) -> bool:
        """True (and remembered) when ``state`` differs from the last one notified."""
        if state == self._last:
            return False
        self._last = state
        return True

    def forget(self) -> None:
        """The next state is due whatever it is (e.g. after a reconnect: the CSMS is told again)."""
        self._last = None


class StationModel:
    """The controller's connector as the CSMS sees it: ``current()`` reads it, ``poll()`` returns it when due.

    ``available`` and ``offered_current_A`` are callables so that the commands (ChangeAvailability) and
    smart charging (the composite limit) can feed them without this module knowing them."""

    def __init__(self, controller: ChargerController, available: Callable[[], bool] = lambda: True,
                 offered_current_A: Callable[[], float | None] = lambda: None) -> None:
        self.controller = controller
        self.available = available
        self.offered_current_A = offered_current_A
        self.detector = StatusChangeDetector()

    def current(self) -> ConnectorState:
        return connector_status(station_inputs(self.controller, self.available(), self.offered_current_A()))

    def poll(self) -> ConnectorState | None:
        """The current state if a notification is due (changed since the last one), else None."""
        state = self.current()
        return state if self.detector.changed(state) else None
