"""Safety supervisor: IEC 61851-23 rules enforced whatever the API, the EV or the SECC asks for.

Two jobs: vet commands before they reach the hardware (``vet_*`` return a refusal message or None), and
watch every control tick's measurements for a fault (``find_fault``). Shutdown itself is done by the
controller, which owns the hardware.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from evse_hal.pilot import PilotReading
from evse_model import standards
from evse_model.faults import (
    CP_LOSS,
    DIODE_FAULT,
    E_STOP,
    EV_EMERGENCY_STOP,
    ISOLATION_FAULT,
    OVER_TEMPERATURE,
    OVERCURRENT,
    OVERVOLTAGE,
    FaultType,
)


@dataclass(frozen=True)
class Measurements:
    """One consistent set of readings, taken at ``time_s``."""

    time_s: float
    pilot: PilotReading
    cp_positive_V: float
    cp_negative_V: float
    duty_percent: float
    contactor_closed: bool
    output_voltage_V: float  # cable side (meter)
    output_current_A: float
    supply_voltage_V: float  # power-stage side
    supply_current_A: float
    isolation_ohm: float | None
    connector_temperature_C: float
    estop_pressed: bool


@dataclass
class SupervisionContext:
    """What the supervisor needs to know of the session to judge readings."""

    energy_transfer_expected: bool = False
    precharging: bool = False
    commanded_current_limit_A: float = 0.0
    negotiated_max_voltage_V: float | None = None
    evse_max_voltage_V: float = 1000.0


class SupplyCurrentLimitHistory:
    """The current limits the power stage was told, with when: what a reading may be judged against.

    A reading taken at ``t`` shows the stage's answer to every limit in force shortly before ``t``: the
    stage needs time to bring its current down to a lowered limit. So a reading is an over-current only
    above the highest limit that was in force at any moment of the ``response_s`` before it (never
    against a limit that was lowered in the controller but not yet told to the stage).
    """

    def __init__(self, response_s: float) -> None:
        self.response_s = response_s
        self._told: deque[tuple[float, float]] = deque([(float("-inf"), 0.0)])

    def told(self, time_s: float, limit_A: float) -> None:
        """The stage was told ``limit_A`` at ``time_s``."""
        if limit_A == self._told[-1][1]:
            return
        self._told.append((time_s, limit_A))
        # Keep one entry that was in force before the window of the newest reading; older ones are moot.
        while len(self._told) > 2 and self._told[1][0] <= time_s - self.response_s:
            self._told.popleft()

    def in_force_A(self) -> float:
        """The limit the stage holds now."""
        return self._told[-1][1]

    def highest_in_force_A(self, reading_time_s: float) -> float:
        """The highest limit in force at any time within ``response_s`` before (and up to) ``reading_time_s``."""
        window_start_s = reading_time_s - self.response_s
        highest_A = 0.0
        told = self._told
        for index, (since_s, limit_A) in enumerate(told):
            if since_s > reading_time_s:
                break
            until_s = told[index + 1][0] if index + 1 < len(told) else float("inf")
            if until_s > window_start_s:
                highest_A = max(highest_A, limit_A)
        return highest_A


@dataclass(frozen=True)
class SafetyLimits:
    connector_temperature_limit_C: float = 90.0
    #: Over-current margin above the commanded limit: the larger of 5 % and 5 A (regulation tolerance
    #: plus ripple; IEC 61851-23 CC.6.3 accuracy ±1.5 % / 0.5 A via EVerest docs).
    overcurrent_margin_fraction: float = 0.05
    overcurrent_margin_A: float = 5.0
    #: During precharge: 2 A + 1 A (measurement accuracy 0.5 A, CC.6.3 via EVerest docs, twice over).
    precharge_margin_A: float = 1.0
    #: Time the power stage may take to bring its current down to a lowered limit (its current loop's
    #: response; not a number from a standard: put the module's datasheet figure here). The controller's
    #: ramp steps are ≤ 100 A/s × one tick; the simulated stage slews 2000 A/s, so 50 ms covers 100 A.
    supply_current_response_s: float = 0.05


class SafetySupervisor:
    def __init__(self, limits: SafetyLimits | None = None) -> None:
        self.limits = limits or SafetyLimits()

    # --- command vetting ----------------------------------------------------------------------------
    def vet_contactor_close(self, supply_voltage_V: float, ev_side_voltage_V: float | None) -> str | None:
        """Refuse to close onto a live EV side that differs by 20 V or more (IEC 61851-23 CC.5.2, DG L981)."""
        if ev_side_voltage_V is None:
            return None
        delta_V = abs(supply_voltage_V - ev_side_voltage_V)
        if delta_V >= standards.CONTACTOR_CLOSE_MAX_DELTA_V:
            return (f"refused: closing the contactor needs |V_out - V_ev| < "
                    f"{standards.CONTACTOR_CLOSE_MAX_DELTA_V:.0f} V, but the supply is at {supply_voltage_V:.1f} V "
                    f"and the EV side at {ev_side_voltage_V:.1f} V (difference {delta_V:.1f} V)")
        return None

    @staticmethod
    def clamp_precharge_current(current_A: float) -> float:
        """Precharge current never above 2 A (IEC 61851-23 CC.5.2)."""
        return min(max(0.0, current_A), standards.PRECHARGE_CURRENT_LIMIT_A)

    # --- monitoring ------------------------------------------------------------------------------
    def find_fault(self, m: Measurements, ctx: SupervisionContext) -> FaultType | None:
        """The most severe fault these readings show, or None."""
        if m.estop_pressed:
            return E_STOP
        ovp_reference_V = ctx.negotiated_max_voltage_V or ctx.evse_max_voltage_V
        if max(m.output_voltage_V, m.supply_voltage_V) > standards.overvoltage_limit_V(ovp_reference_V):
            return OVERVOLTAGE
        if ctx.precharging:
            limit_A, margin_A = standards.PRECHARGE_CURRENT_LIMIT_A, self.limits.precharge_margin_A
        elif ctx.commanded_current_limit_A <= standards.PRECHARGE_CURRENT_LIMIT_A:
            # The supply holds the 2 A of cable check / precharge / re-matching (or less): judged as precharge.
            limit_A, margin_A = standards.PRECHARGE_CURRENT_LIMIT_A, self.limits.precharge_margin_A
        else:
            limit_A = ctx.commanded_current_limit_A
            margin_A = max(self.limits.overcurrent_margin_A, limit_A * self.limits.overcurrent_margin_fraction)
        # The larger of the two current readings: in precharge the supply also charges its own output
        # capacitance, which the meter after the contactor does not see.
        if m.contactor_closed and max(m.output_current_A, m.supply_current_A) > limit_A + margin_A:
            return OVERCURRENT
        energised = m.contactor_closed and m.output_voltage_V > standards.SAFE_DC_VOLTAGE_V
        if energised and m.isolation_ohm is not None and m.isolation_ohm < standards.ISOLATION_FAULT_OHM:
            return ISOLATION_FAULT
        if ctx.energy_transfer_expected and m.contactor_closed:
            if m.pilot.state in ("A", "E", "F"):
                return CP_LOSS
            if m.pilot.diode_fault:
                return DIODE_FAULT
            if m.pilot.state == "B" and m.output_current_A >= standards.CONTACTOR_OPEN_MAX_CURRENT_A:
                return EV_EMERGENCY_STOP
        if m.connector_temperature_C > self.limits.connector_temperature_limit_C:
            return OVER_TEMPERATURE
        return None
