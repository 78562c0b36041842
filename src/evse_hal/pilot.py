"""Pilot layer: CP plateau voltages → IEC 61851-1 states (A..F, x1/x2 sub-states, diode fault)."""

from __future__ import annotations

from dataclasses import dataclass

from evse_model import standards


def classify_cp_voltage(positive_plateau_V: float) -> str:
    """State letter from the positive plateau, with the ±1 V windows of DG L2507; F below −11 V.

    Voltages between windows are reported as the nearest state below (a conservative reading:
    a voltage sagging from C towards D is not taken for B).
    """
    if positive_plateau_V <= standards.CP_STATE_F_V + 1.0:
        return "F"
    for state, (low_V, high_V) in standards.CP_STATE_WINDOWS_V.items():
        if low_V <= positive_plateau_V <= high_V:
            return state
    if positive_plateau_V > 13.0:
        return "A"
    # Between windows: the next lower state's side.
    for state, (low_V, _high_V) in standards.CP_STATE_WINDOWS_V.items():
        if positive_plateau_V > low_V:
            return state
    return "E"


@dataclass(frozen=True)
class PilotReading:
    state: str  # A..F
    oscillating: bool
    diode_fault: bool

    @property
    def sub_state(self) -> str:
        """IEC sub-state as the iso15118 package names it: A1/A2 … D2, E, F."""
        if self.state in ("E", "F"):
            return self.state
        return f"{self.state}{2 if self.oscillating else 1}"


def _read_pilot(positive_V: float, negative_V: float, duty_percent: float) -> PilotReading:
    state = classify_cp_voltage(positive_V)
    oscillating = 0.0 < duty_percent < 100.0 and state not in ("E", "F")
    diode_fault = oscillating and state in ("B", "C", "D") and \
        negative_V > standards.CP_DIODE_FAULT_NEGATIVE_PLATEAU_V
    return PilotReading(state=state, oscillating=oscillating, diode_fault=diode_fault)


#: The last reading and the plateaus and duty it was read from: the pilot stays put for thousands of control ticks.
_last_pilot: tuple[float, float, float, PilotReading] = (0.0, 0.0, -1.0, _read_pilot(0.0, 0.0, -1.0))


def read_pilot(positive_V: float, negative_V: float, duty_percent: float) -> PilotReading:
    """The pilot's state from its plateaus and the duty (the same reading again for the same three values)."""
    global _last_pilot
    last = _last_pilot
    if last[0] == positive_V and last[1] == negative_V and last[2] == duty_percent:
        return last[3]
    reading = _read_pilot(positive_V, negative_V, duty_percent)
    _last_pilot = (positive_V, negative_V, duty_percent, reading)
    return reading
