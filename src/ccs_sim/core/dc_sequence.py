"""The DC charging sequence: cable check, precharge, energy transfer, ramp-down and open.

The steps the simulated session script and the ISO 15118 SECC both use (IEC 61851-23 Annex CC): each
drives the output through the controller's device-writing path and reports its stage to the session
state machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.types import ActiveSession
from ccs_sim.precharge import PrechargeControl, PrechargeTimeout
from evse_model import standards
from evse_model.faults import CABLE_CHECK_FAILED, ISOLATION_FAULT, PRECHARGE_TIMEOUT
from evse_model.session import Stage
from evse_model.session_errors import SessionAbort

log = logging.getLogger("ccs_sim.controller")


class DcSequence:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    async def cable_check(self, ev_max_voltage_V: float | None) -> str:
        """Close the output, apply the CC.1 test voltage at ≤ 2 A, measure insulation, then (with
        ``discharge_after_cable_check``, the default) switch the supply off and return only once the output is
        below 60 V (IEC 61851-23:2023 CC.4.1.2), so that precharge starts from a safe voltage and rises to the
        EV's. Returns the level: VALID or WARNING (raises SessionAbort on FAULT, when no measurement arrives in
        time, or when the output does not fall below 60 V within ``discharge_timeout_s``)."""
        charger = self.charger
        session = charger.session
        await self.until_taken_over(session)
        test_V = standards.cable_check_test_voltage_V(ev_max_voltage_V, charger.evse_max_voltage_V)
        self.note_ev_max_voltage(ev_max_voltage_V)
        charger.set_stage(Stage.CABLE_CHECK)
        started_s = charger.clock.now()
        await charger.set_contactor(True)
        await charger.io(charger.hw.imd.start_measurement)
        await charger.set_supply_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
        await charger.io(charger.hw.supply.set_voltage, test_V)
        await charger.io(charger.hw.supply.set_enabled, True)
        reading: list[float] = []

        def measured() -> bool:
            m = charger.latest
            if m is None or m.isolation_ohm is None or abs(m.output_voltage_V - test_V) > 0.05 * test_V + 1.0:
                return False
            reading.append(m.isolation_ohm)
            return True

        if not await charger.wait_until(measured, charger.settings.cable_check_timeout_s):
            raise SessionAbort(CABLE_CHECK_FAILED, f"no insulation measurement at {test_V:.0f} V")
        remaining_s = charger.settings.cable_check_s - (charger.clock.now() - started_s)
        if remaining_s > 0:
            await charger.hold(remaining_s)
        level = self.isolation_level(reading[-1])
        if level == "FAULT":
            raise SessionAbort(ISOLATION_FAULT, f"insulation {reading[-1]:.0f} Ω at {test_V:.0f} V")
        if charger.session is not session or not charger.session_active:
            # The session ended (a fault, a stop) while this check ran: its supply is no longer ours to command.
            raise SessionAbort(CABLE_CHECK_FAILED, "the session ended during the cable check")
        if charger.settings.discharge_after_cable_check:
            await self.discharge_output(charger.settings.discharge_timeout_s)
        return level

    async def until_taken_over(self, session: ActiveSession | None) -> None:
        """Wait until ``session`` owns the output (every earlier shutdown has finished and written its record):
        the SECC may ask for a cable check while the previous car's wind-down still runs. Raises SessionAbort
        if the session ends first."""
        charger = self.charger
        while session is not None and charger.context is not session.supervision:
            if charger.session is not session or not charger.session_active:
                raise SessionAbort(CABLE_CHECK_FAILED, "the session ended before it took over the output")
            await charger.clock.sleep(charger.settings.control_period_s)

    def isolation_level(self, resistance_ohm: float) -> str:
        """IEC 61851-23 thresholds: FAULT < 100 kΩ; with the 2014 edition WARNING below 500 Ω/V."""
        charger = self.charger
        if resistance_ohm < standards.ISOLATION_FAULT_OHM:
            return "FAULT"
        if charger.settings.isolation_edition == "2014" and \
                resistance_ohm < standards.ISOLATION_WARNING_OHM_PER_V * charger.evse_max_voltage_V:
            return "WARNING"
        return "VALID"

    async def precharge(self, target_V: Callable[[], float], timeout_s: float) -> None:
        """Bring the output to ``target_V()`` at ≤ 2 A; raises SessionAbort(PRECHARGE_TIMEOUT)."""
        charger = self.charger
        charger.set_stage(Stage.PRECHARGE)
        charger.context.precharging = True
        control = PrechargeControl(target_V(), timeout_s, charger.clock.now(), charger.evse_max_voltage_V)
        try:
            while True:
                control.retarget(target_V(), charger.evse_max_voltage_V)
                setpoint = control.setpoint()
                await charger.set_supply_current_limit(setpoint.current_limit_A)
                await charger.io(charger.hw.supply.set_voltage, setpoint.voltage_V)
                await charger.io(charger.hw.supply.set_enabled, True)
                m = charger.latest
                if m is not None and m.contactor_closed and control.reached(m.output_voltage_V):
                    return
                if control.timed_out(charger.clock.now()):
                    reached_V = m.output_voltage_V if m else 0.0
                    raise SessionAbort(PRECHARGE_TIMEOUT, str(PrechargeTimeout(control.target_V, reached_V,
                                                                                 timeout_s)))
                await charger.clock.sleep(charger.settings.control_period_s)
        finally:
            charger.context.precharging = False

    async def precharge_step(self, target_V: float, current_A: float = standards.PRECHARGE_CURRENT_LIMIT_A) -> float:
        """One non-blocking precharge step (the HLC flow: one per PreChargeReq): the output is driven
        towards ``target_V`` (clamped to 0…EVSE max) with at most 2 A (IEC 61851-23 CC.5.2); the target
        is re-applied each call (standards.md §2.3, BMW i3 quirk). Returns the voltage set.
        ``begin_energy_transfer`` (or the end of the session) ends the precharge supervision."""
        charger = self.charger
        if charger.stage is not Stage.PRECHARGE:
            charger.set_stage(Stage.PRECHARGE)
        charger.context.precharging = True
        voltage_V = min(max(0.0, target_V), charger.evse_max_voltage_V)
        await charger.set_supply_current_limit(charger.supervisor.clamp_precharge_current(current_A))
        await charger.io(charger.hw.supply.set_voltage, voltage_V)
        await charger.io(charger.hw.supply.set_enabled, True)
        return voltage_V

    async def discharge_output(self, timeout_s: float) -> None:
        """Switch the supply off and wait until the output is below 60 V (IEC 61851-23:2023 CC.4.1.2; EVerest's
        ``cable_check_wait_below_60V_before_finish``): the power stage's active discharge empties the output
        capacitance. The contactor stays closed, so the meter shows the fall. Raises
        SessionAbort(CABLE_CHECK_FAILED) if the output is still at or above 60 V after ``timeout_s``."""
        charger = self.charger
        await charger.set_supply_current_limit(0.0)
        await charger.io(charger.hw.supply.set_voltage, 0.0)
        await charger.io(charger.hw.supply.set_enabled, False)

        def below_safe_voltage() -> bool:
            m = charger.latest
            return m is not None and \
                max(m.output_voltage_V, m.supply_voltage_V) < standards.CABLE_CHECK_DISCHARGE_BELOW_V

        if not await charger.wait_until(below_safe_voltage, timeout_s):
            m = charger.latest
            voltage_V = max(m.output_voltage_V, m.supply_voltage_V) if m is not None else float("nan")
            raise SessionAbort(CABLE_CHECK_FAILED,
                               f"output still at {voltage_V:.0f} V {timeout_s:.1f} s after the insulation test "
                               f"(must fall below {standards.CABLE_CHECK_DISCHARGE_BELOW_V:.0f} V)")

    def note_ev_max_voltage(self, ev_max_voltage_V: float | None) -> None:
        """The car's maximum voltage, once known (before the cable check): from then on this session's
        over-voltage protection follows it (IEC 61851-23:2023 6.3.1.106.2 Table 103). It lives in the
        session's own supervision context, so the next car starts from the EVSE's own limit again."""
        charger = self.charger
        if ev_max_voltage_V is not None and ev_max_voltage_V > 0:
            charger.context.negotiated_max_voltage_V = ev_max_voltage_V

    async def begin_energy_transfer(self, negotiated_max_voltage_V: float | None) -> None:
        charger = self.charger
        with charger.lock:
            charger.context.precharging = False
            charger.context.energy_transfer_expected = True
            self.note_ev_max_voltage(negotiated_max_voltage_V)
            if charger.session is not None and charger.session.charging_started_at_s is None:
                charger.session.charging_started_at_s = charger.clock.now()
            charger.commanded_current_A = min(charger.commanded_current_A, standards.PRECHARGE_CURRENT_LIMIT_A)
            charger.current_control_active = True
        charger.set_stage(Stage.CURRENT_RAMP)

    async def set_charge_targets(self, voltage_V: float, current_A: float, power_W: float | None = None) -> None:
        """EV targets → setpoints, clamped to the EVSE's limits; the current follows at the ramp rate."""
        charger = self.charger
        voltage_V = min(max(0.0, voltage_V), charger.evse_max_voltage_V)
        limit_W = charger.evse_max_power_W if power_W is None else min(power_W, charger.evse_max_power_W)
        charger.requested_current_A = min(max(0.0, current_A), charger.evse_max_current_A)
        supply, watch = charger.hw.supply, charger.feedback
        holds = getattr(supply, "holds_setpoints", None)
        # Setpoints the stage holds already and the feedback watch has noted are not sent again where the adapter
        # can tell (the simulated stage: a car request every 50 ms mostly repeats them); hardware gets every one.
        if not (holds is not None and watch.voltage_setpoint_V == float(voltage_V)
                and watch.power_limit_W == float(limit_W) and "io" not in getattr(charger, "__dict__", {})
                and holds(voltage_V, limit_W)):
            await charger.io(supply.set_voltage, voltage_V)
            await charger.io(supply.set_power_limit, limit_W)
        if charger.stage is Stage.CURRENT_RAMP and abs(charger.commanded_current_A - charger.requested_current_A) < 0.5:
            charger.set_stage(Stage.CHARGING)

    async def ramp_down_and_open(self, session: ActiveSession | None = None) -> None:
        """Normal shutdown: current down at ≤ 100 A/s (DG L4110), output off and contactor open below 1 A.
        ``session``: the session this shutdown ends (default: the latest one; its stage is reported only
        while it is the latest)."""
        charger = self.charger
        if session is None:
            session = charger.session
        with charger.lock:
            charger.requested_current_A = 0.0
            if charger.latest is not None:
                # The ramp starts from the current that flows: a limit far above it (a voltage-limited battery
                # taking less than the EV asked for) need not be walked down at 100 A/s first. The supply keeps
                # the limit it was told until the next ramp step tells it the lower one.
                charger.commanded_current_A = min(charger.commanded_current_A,
                                                  max(0.0, charger.latest.output_current_A))
            charger.current_control_active = True
        reached = await charger.wait_until(
            lambda: charger.commanded_current_A <= 0.0 and charger.latest is not None
            and charger.latest.output_current_A < standards.CONTACTOR_OPEN_MAX_CURRENT_A,
            charger.settings.ramp_down_timeout_s)
        charger.current_control_active = False
        await charger.set_supply_current_limit(0.0)
        await charger.io(charger.hw.supply.set_enabled, False)
        if not reached:
            log.error("current did not fall below 1 A within %.1f s; emergency off", charger.settings.ramp_down_timeout_s)
            await charger.io(charger.hw.supply.emergency_off)
            await charger.wait_current_below(standards.EMERGENCY_CURRENT_A, standards.EMERGENCY_CURRENT_DEADLINE_S)
        charger.stages.report_for(session, Stage.WELDING_DETECTION)
        await charger.io(charger.hw.contactor.set_closed, False)
        await charger.io(charger.hw.imd.stop_measurement)
        charger.commanded_current_A = 0.0
        await charger.tick_now()

    async def interrupt_energy_transfer(self, hold_voltage_V: float) -> None:
        """The output was opened under the session (``/control/contactor``): current control off, and the
        supply held at ``hold_voltage_V`` (the car's) at ≤ 2 A, so that closing again is allowed and the car
        can reconnect."""
        charger = self.charger
        charger.set_stage(Stage.OUTPUT_INTERRUPTED)
        with charger.lock:
            charger.current_control_active = False
            charger.commanded_current_A = 0.0
        await charger.set_supply_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
        await charger.drive_supply(voltage_V=hold_voltage_V)
        # An open under load shut the supply off first; upstream of the open contactor it may run again.
        await charger.drive_supply(enabled=True)

    def resume_energy_transfer(self) -> None:
        """The car reconnected after an interruption: current control on, ramping from where it is."""
        charger = self.charger
        charger.current_control_active = True
        charger.set_stage(Stage.CURRENT_RAMP)
