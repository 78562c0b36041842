"""What the controller's parts pass around: the running session, meter readings, command results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ccs_sim.core.safety import SupervisionContext
from evse_model.faults import FaultType
from evse_model.session import SessionParams, SessionSummary


@dataclass
class ActiveSession:
    session_id: str
    params: SessionParams
    source: str
    started_at_s: float
    started_at: datetime
    charging_started_at_s: float | None = None
    summary: SessionSummary | None = None
    ev_info: dict[str, Any] = field(default_factory=dict)
    #: What the supervisor knows of this car (its maximum voltage, whether energy may flow): built fresh
    #: for each session, in force from the moment the session's own flow runs until its wind-down ends.
    supervision: SupervisionContext = field(default_factory=SupervisionContext)
    #: The meter counts for this session (started after the previous session's wind-down, reset at its own).
    owns_meter: bool = False
    #: The summary took the meter's final counts and the end listeners (records) ran: exactly once.
    finalised: bool = False


@dataclass(frozen=True)
class MeterReading:
    energy_Wh: float = 0.0
    avg_voltage_V: float = 0.0
    avg_current_A: float = 0.0
    session_time_s: float = 0.0


@dataclass(frozen=True)
class ContactorCommandResult:
    """What a contactor command did: for an open under load, the shutdown that came first."""

    #: The output current when the command arrived, and when the contactor opened (None: not opened).
    current_at_command_A: float = 0.0
    current_at_open_A: float | None = None
    #: The output was shut down to < 1 A before opening (the command came with 1 A or more flowing).
    shutdown_first: bool = False
    #: The fault raised when the supply did not follow its off command (the emergency shutdown opened).
    emergency: FaultType | None = None

    def describe(self) -> str | None:
        if self.emergency is not None:
            return (f"{self.current_at_command_A:.1f} A flowing: the supply did not bring the current below "
                    f"1 A after it was disabled; {self.emergency.name} emergency shutdown opened the contactor")
        if self.shutdown_first:
            return (f"{self.current_at_command_A:.1f} A flowing: the output was shut down first and the contactor "
                    f"opened at {self.current_at_open_A:.2f} A (< 1 A, IEC 61851-23 / DG L1283)")
        return None


#: A finding of one control step for the event loop: (fault, message, found by the supervisor's judgement rather
#: than the feedback watch); the output's energy is already cut.
Finding = tuple[FaultType, str, bool]
