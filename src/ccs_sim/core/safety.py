"""Safety supervisor: IEC 61851-23 rules enforced whatever the API, the EV or the SECC asks for.

Two jobs: vet commands before they reach the hardware (``vet_*`` return a refusal message or None), and
watch every control tick's measurements for a fault (``find_fault``). Shutdown itself is done by the
controller, which owns the hardware.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from evse_hal.interfaces import SupplyCapabilities
from evse_hal.pilot import PilotReading
from evse_model import standards
from evse_model.faults import (
    CONTACTOR_FAULT,
    CP_LOSS,
    DIODE_FAULT,
    E_STOP,
    EV_EMERGENCY_STOP,
    ISOLATION_FAULT,
    OVER_TEMPERATURE,
    OVERCURRENT,
    OVERVOLTAGE,
    SUPPLY_FAULT,
    FaultType,
)
from evse_model.manual_clock import combined_attribute_dict


@dataclass(frozen=True, init=False)
class Measurements:
    """One consistent set of readings, taken at ``time_s``.

    Immutable like any frozen dataclass; its ``__init__`` fills the instance's dict in one update instead of
    the generated per-field ``object.__setattr__`` (one is built every control tick)."""

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

    def __init__(self, time_s: float, pilot: PilotReading, cp_positive_V: float, cp_negative_V: float,
                 duty_percent: float, contactor_closed: bool, output_voltage_V: float, output_current_A: float,
                 supply_voltage_V: float, supply_current_A: float, isolation_ohm: float | None,
                 connector_temperature_C: float, estop_pressed: bool) -> None:
        self.__dict__.update(
            time_s=time_s, pilot=pilot, cp_positive_V=cp_positive_V, cp_negative_V=cp_negative_V,
            duty_percent=duty_percent, contactor_closed=contactor_closed, output_voltage_V=output_voltage_V,
            output_current_A=output_current_A, supply_voltage_V=supply_voltage_V, supply_current_A=supply_current_A,
            isolation_ohm=isolation_ohm, connector_temperature_C=connector_temperature_C, estop_pressed=estop_pressed)


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
        # Newest first (the limits were told in time order): an entry is in force from its time until the next
        # one's; the first told at or before the window's start is the last that can count.
        until_s = float("inf")
        for since_s, limit_A in reversed(self._told):
            if since_s > reading_time_s:
                until_s = since_s
                continue
            if until_s > window_start_s and limit_A > highest_A:
                highest_A = limit_A
            if since_s <= window_start_s:
                break
            until_s = since_s
        return highest_A


@dataclass(frozen=True)
class SafetyLimits:
    connector_temperature_limit_C: float = 90.0
    #: Over-current margin above the commanded limit: the larger of 5 % and 5 A (regulation tolerance
    #: plus ripple; IEC 61851-23 CC.6.3 accuracy ±1.5 % / 0.5 A via EVerest docs).
    overcurrent_margin_fraction: float = 0.05
    overcurrent_margin_A: float = 5.0
    #: During precharge: 2 A + 1 A (measurement accuracy 0.5 A, CC.6.3 via EVerest docs, twice over).
    precharge_margin_A: float = 2 * standards.CURRENT_MEASUREMENT_ACCURACY_MIN_A
    #: Time the power stage may take to bring its current down to a lowered limit (its current loop's
    #: response; not a number from a standard: put the module's datasheet figure here). The controller's
    #: ramp steps are ≤ 100 A/s × one tick; the simulated stage slews 2000 A/s, so 50 ms covers 100 A.
    supply_current_response_s: float = 0.05
    #: The contactor's mirror contact agrees with its command within this (the HAL contract, IEC 61851-23 CC.5.4).
    contactor_motion_s: float = standards.CONTACTOR_MOTION_MAX_S
    #: A power stage switched off carries less than 5 A within 30 ms (the contract's emergency_off; set_enabled(False)
    #: promises 0 A within 10 ms: judged by the looser figure) (IEC 61851-23 CC.5.4 via DG L6247).
    supply_off_current_A: float = standards.EMERGENCY_CURRENT_A
    supply_off_current_s: float = standards.EMERGENCY_CURRENT_DEADLINE_S
    #: ... and, its contactor open, discharges its output below 60 V within 100 ms (the contract's set_enabled).
    supply_off_voltage_V: float = standards.EMERGENCY_VOLTAGE_V
    supply_off_voltage_s: float = standards.EMERGENCY_VOLTAGE_DEADLINE_S
    #: An enabled stage below its voltage setpoint, its current limit and its power limit (none of its
    #: regulators at work) must rise at ≥ 200 V/s; judged over this window so that measurement noise and its
    #: own current loop's response (``supply_current_response_s``) do not count.
    supply_follow_window_s: float = 0.5


class SafetySupervisor:
    def __init__(self, limits: SafetyLimits | None = None) -> None:
        self.limits = limits or SafetyLimits()
        self._ovp_reference_V: float | None = None
        self._ovp_limit_V = 0.0
        # A dict of its own (see ``evse_model.manual_clock.combined_attribute_dict``): the steady ticks look for a
        # replaced ``find_fault`` in it
        combined_attribute_dict(self)

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
        """The most severe fault these readings show, or None.

        Runs every control tick: ``max(a, b)`` is spelled as a comparison that picks the same value (the first
        on a tie, as the builtin does), and the over-voltage level is looked up once per reference voltage.
        """
        if m.estop_pressed:
            return E_STOP
        ovp_reference_V = ctx.negotiated_max_voltage_V or ctx.evse_max_voltage_V
        if ovp_reference_V != self._ovp_reference_V:
            self._ovp_reference_V, self._ovp_limit_V = ovp_reference_V, standards.overvoltage_limit_V(ovp_reference_V)
        output_V, supply_V = m.output_voltage_V, m.supply_voltage_V
        if (supply_V if supply_V > output_V else output_V) > self._ovp_limit_V:
            return OVERVOLTAGE
        limits = self.limits
        if ctx.precharging or ctx.commanded_current_limit_A <= standards.PRECHARGE_CURRENT_LIMIT_A:
            # Precharge, or the supply holds the 2 A of cable check / precharge / re-matching (or less).
            limit_A, margin_A = standards.PRECHARGE_CURRENT_LIMIT_A, limits.precharge_margin_A
        else:
            limit_A = ctx.commanded_current_limit_A
            margin_A = limits.overcurrent_margin_A
            fraction_A = limit_A * limits.overcurrent_margin_fraction
            if fraction_A > margin_A:
                margin_A = fraction_A
        contactor_closed = m.contactor_closed
        # The larger of the two current readings: in precharge the supply also charges its own output
        # capacitance, which the meter after the contactor does not see.
        if contactor_closed:
            output_A, supply_A = m.output_current_A, m.supply_current_A
            if (supply_A if supply_A > output_A else output_A) > limit_A + margin_A:
                return OVERCURRENT
            isolation_ohm = m.isolation_ohm
            if output_V > standards.SAFE_DC_VOLTAGE_V and isolation_ohm is not None \
                    and isolation_ohm < standards.ISOLATION_FAULT_OHM:
                return ISOLATION_FAULT
            if ctx.energy_transfer_expected:
                pilot = m.pilot
                state = pilot.state
                if state in ("A", "E", "F"):
                    return CP_LOSS
                if pilot.diode_fault:
                    return DIODE_FAULT
                if state == "B" and output_A >= standards.CONTACTOR_OPEN_MAX_CURRENT_A:
                    return EV_EMERGENCY_STOP
        if m.connector_temperature_C > limits.connector_temperature_limit_C:
            return OVER_TEMPERATURE
        return None


class FeedbackWatch:
    """The devices' feedback against their commands: the contactor's mirror contact, the power stage's output.

    Every command the controller sends is noted (``commanded``, from the device-writing path); every reading
    is judged (``judge``) in simulated time, against the budgets of the HAL contract (``SafetyLimits``):

    - CONTACTOR_FAULT: the mirror contact disagrees with the command for longer than ``contactor_motion_s``
      (welded: still closed after an open command; fails to close; drops out or closes by itself), counted
      from the command, or from the first reading that disagreed when no command explains it.
    - SUPPLY_FAULT: switched off, the stage still carries ≥ 5 A 30 ms later, or (its contactor open) still
      holds ≥ 60 V 100 ms later; switched on, its output is below the voltage setpoint, the current limit
      and the power limit (each by more than the measurement accuracy) and has not risen at ≥ 200 V/s over
      ``supply_follow_window_s``.

    Each disagreement is reported once (until the device agrees again, or a new command).
    """

    def __init__(self, limits: SafetyLimits, capabilities: SupplyCapabilities) -> None:
        self.limits = limits
        self.capabilities = capabilities
        self.contactor_closed: bool | None = None  # None: never commanded (nothing to judge)
        self.contactor_commanded_s = 0.0
        self._contactor_disagrees_since_s: float | None = None
        self._contactor_reported = False
        self.supply_enabled: bool | None = None
        self.supply_switched_s = 0.0
        self.voltage_setpoint_V = 0.0
        self.current_limit_A = 0.0
        self._previous_current_limit_A = 0.0
        self.current_limit_set_s = float("-inf")
        self.power_limit_W = capabilities.max_power_W
        self._stalled_since: tuple[float, float] | None = None  # (time_s, voltage_V) the stall was first seen
        self._supply_reported = False
        # A dict of its own (see ``evse_model.manual_clock.combined_attribute_dict``): the steady ticks look for
        # replaced parts in it
        combined_attribute_dict(self)

    # --- commands ---------------------------------------------------------------------------------------
    def contactor_commanded(self, closed: bool, time_s: float) -> None:
        """A command; repeating the one in force does not restart its budget."""
        if closed == self.contactor_closed:
            return
        self._contactor_reported = False
        self.contactor_closed, self.contactor_commanded_s = closed, time_s
        self._contactor_disagrees_since_s = time_s

    def supply_switched(self, enabled: bool, time_s: float) -> None:
        if enabled != self.supply_enabled:
            self.supply_switched_s = time_s
            self._supply_reported = False
            self._stalled_since = None
        self.supply_enabled = enabled

    def supply_setpoints(self, time_s: float, voltage_V: float | None = None, current_limit_A: float | None = None,
                         power_limit_W: float | None = None) -> None:
        if voltage_V is not None:
            self.voltage_setpoint_V = voltage_V
        if current_limit_A is not None and current_limit_A != self.current_limit_A:
            self._previous_current_limit_A, self.current_limit_A = self.current_limit_A, current_limit_A
            self.current_limit_set_s = time_s
        if power_limit_W is not None:
            self.power_limit_W = power_limit_W

    # --- judgement ----------------------------------------------------------------------------------
    def judge(self, m: Measurements) -> tuple[FaultType, str] | None:
        """The feedback fault these readings show (with what disagreed), or None."""
        return self._judge_contactor(m) or self._judge_supply(m)

    def _judge_contactor(self, m: Measurements) -> tuple[FaultType, str] | None:
        if self.contactor_closed is None:
            return None
        if m.contactor_closed == self.contactor_closed:
            self._contactor_disagrees_since_s = None
            self._contactor_reported = False
            return None
        if self._contactor_disagrees_since_s is None:
            self._contactor_disagrees_since_s = m.time_s
        late_s = m.time_s - self._contactor_disagrees_since_s
        if self._contactor_reported or late_s <= self.limits.contactor_motion_s + 1e-9:
            return None
        self._contactor_reported = True
        commanded, seen = ("closed", "open") if self.contactor_closed else ("open", "closed")
        return CONTACTOR_FAULT, (f"contactor commanded {commanded} but its mirror contact reads {seen} "
                                 f"{late_s * 1000:.0f} ms later (budget {self.limits.contactor_motion_s * 1000:.0f} ms)")

    def _judge_supply(self, m: Measurements) -> tuple[FaultType, str] | None:
        if self.supply_enabled is None or self._supply_reported:
            return None
        found = self._supply_off_fault(m) if not self.supply_enabled else self._supply_stalled(m)
        if found is not None:
            self._supply_reported = True
            return SUPPLY_FAULT, found
        return None

    def _supply_off_fault(self, m: Measurements) -> str | None:
        limits = self.limits
        off_for_s = m.time_s - self.supply_switched_s
        if m.supply_current_A >= limits.supply_off_current_A and off_for_s > limits.supply_off_current_s + 1e-9:
            return (f"power stage switched off {off_for_s * 1000:.0f} ms ago still carries {m.supply_current_A:.1f} A "
                    f"(< {limits.supply_off_current_A:.0f} A within {limits.supply_off_current_s * 1000:.0f} ms)")
        if self.contactor_closed is False and not m.contactor_closed:
            discharging_s = m.time_s - max(self.supply_switched_s, self.contactor_commanded_s)
            if m.supply_voltage_V >= limits.supply_off_voltage_V and discharging_s > limits.supply_off_voltage_s + 1e-9:
                return (f"power stage switched off, contactor open for {discharging_s * 1000:.0f} ms, still holds "
                        f"{m.supply_voltage_V:.0f} V (< {limits.supply_off_voltage_V:.0f} V within "
                        f"{limits.supply_off_voltage_s * 1000:.0f} ms)")
        return None

    def _supply_stalled(self, m: Measurements) -> str | None:
        limits, caps = self.limits, self.capabilities
        # min(a, b) spelled as comparisons (the same value, the first on a tie): this runs every tick.
        target_V, max_V = self.voltage_setpoint_V, caps.max_voltage_V
        if max_V < target_V:
            target_V = max_V
        voltage_V, current_A = m.supply_voltage_V, m.supply_current_A
        regulating = voltage_V >= target_V - standards.VOLTAGE_MEASUREMENT_ACCURACY_V
        limit_A, max_A = self.current_limit_A, caps.max_current_A
        if max_A < limit_A:
            limit_A = max_A
        if m.time_s - self.current_limit_set_s < limits.supply_current_response_s:
            previous_A = self._previous_current_limit_A  # the stage's current loop still follows
            if previous_A < limit_A:
                limit_A = previous_A
        if not regulating:
            limit_W, max_W = self.power_limit_W, caps.max_power_W
            if max_W < limit_W:
                limit_W = max_W
            regulating = (current_A >= limit_A - standards.current_measurement_tolerance_A(limit_A)
                          or voltage_V * current_A >= 0.97 * limit_W)
        stalled = self._stalled_since
        if regulating:
            self._stalled_since = None
            return None
        if stalled is None or voltage_V - stalled[1] >= standards.SUPPLY_MIN_VOLTAGE_SLEW_V_PER_S * (m.time_s - stalled[0]):
            self._stalled_since = (m.time_s, voltage_V)  # first seen, or still rising fast enough: a new window
            return None
        stalled_s = m.time_s - stalled[0]
        if stalled_s <= limits.supply_follow_window_s + 1e-9:
            return None
        return (f"power stage on but not following: {voltage_V:.0f} V / {current_A:.1f} A for {stalled_s:.2f} s "
                f"with the setpoint at {target_V:.0f} V and the current limit at {limit_A:.1f} A "
                f"(rose {voltage_V - stalled[1]:.0f} V, < {standards.SUPPLY_MIN_VOLTAGE_SLEW_V_PER_S:.0f} V/s)")
