"""The two ways a charger command can fail, shared by the controller core and everything that drives it
(the simulated session script, the ISO 15118 SECC glue): a refused command, and a session that must end with
a fault. They live here, at the ground, so a caller catches them without importing the controller."""

from __future__ import annotations

from evse_model.faults import FaultType


class SessionAbort(Exception):
    """Raised inside a session driver to end the session with this fault (a catalogue entry)."""

    def __init__(self, fault: FaultType, message: str = "") -> None:
        super().__init__(message or fault.name)
        self.fault = fault


class CommandRefused(Exception):
    """A command the safety rules or the current state forbid; the message says why."""
