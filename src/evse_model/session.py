"""Session vocabulary: the spec's six phases, the finer stages beside them, parameters and summaries."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field, fields
from typing import Any

from evse_model.faults import Fault


class Phase(str, enum.Enum):
    """Exactly the spec's ``/status.phase`` values."""

    IDLE = "IDLE"
    HANDSHAKE = "HANDSHAKE"
    PRECHARGE = "PRECHARGE"
    CHARGING = "CHARGING"
    COMPLETE = "COMPLETE"
    ABORTED = "ABORTED"


class Stage(str, enum.Enum):
    """Finer steps, reported in the additive ``/status.stage`` field."""

    IDLE = "idle"
    PLUG_IN = "plug_in"
    HANDSHAKE = "handshake"
    CABLE_CHECK = "cable_check"
    PRECHARGE = "precharge"
    CURRENT_RAMP = "current_ramp"
    CHARGING = "charging"
    OUTPUT_INTERRUPTED = "output_interrupted"
    RAMP_DOWN = "ramp_down"
    WELDING_DETECTION = "welding_detection"
    EMERGENCY_SHUTDOWN = "emergency_shutdown"
    ENDED = "ended"


#: Which spec phase each stage belongs to while a session runs.
STAGE_PHASE = {
    Stage.PLUG_IN: Phase.HANDSHAKE,
    Stage.HANDSHAKE: Phase.HANDSHAKE,
    Stage.CABLE_CHECK: Phase.HANDSHAKE,
    Stage.PRECHARGE: Phase.PRECHARGE,
    Stage.CURRENT_RAMP: Phase.CHARGING,
    Stage.CHARGING: Phase.CHARGING,
    Stage.OUTPUT_INTERRUPTED: Phase.CHARGING,
    Stage.RAMP_DOWN: Phase.CHARGING,
    Stage.WELDING_DETECTION: Phase.CHARGING,
}


class EndReason(str, enum.Enum):
    DURATION_ELAPSED = "duration_elapsed"
    EV_FULL = "ev_target_soc_reached"
    EV_REQUESTED_STOP = "ev_requested_stop"
    STOP_REQUESTED = "stop_requested"
    FAULT = "fault"
    INTERRUPTED = "interrupted"  # the process died mid-session (found at start-up)


@dataclass(frozen=True)
class SessionParams:
    target_voltage_V: float = 400.0
    initial_current_A: float = 50.0
    duration_s: float = 10.0
    ev_preset: str | None = None
    start_soc_percent: float | None = None
    target_soc_percent: float | None = None
    precharge_timeout_s: float | None = None
    #: The driver's id token (OCPP idTag / idToken) given with the start, if any.
    id_token: str | None = None


@dataclass
class SessionSummary:
    """``last_session_summary``: the spec's six fields, then additive ones."""

    energy_Wh: float
    avg_voltage: float
    avg_current: float
    duration_s: float
    ended_phase: str
    #: The fault that ended the session (None: it ended without one); its name is the spec's ``error``.
    fault: Fault | None
    session_id: str = ""
    end_reason: str = ""
    charging_time_s: float = 0.0
    started_at: str = ""
    ended_at: str = ""
    source: str = "sim"
    ev: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        """The spec's ``error``: the ending fault's name, or None."""
        return self.fault.name if self.fault is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The summary as the API and the records show it (the fault as its name, ``error``)."""
        return {("error" if f.name == "fault" else f.name):
                (self.error if f.name == "fault" else copy.deepcopy(getattr(self, f.name))) for f in fields(self)}
