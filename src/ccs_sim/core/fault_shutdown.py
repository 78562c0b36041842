"""A fault: the supply off at once, the session (if any) ended ABORTED, the contactor opened as soon as the
current allows and within 100 ms (IEC 61851-23 CC.5.4), in a shutdown task of its own."""

from __future__ import annotations

import asyncio
import logging

from ccs_sim.core.events import Topic
from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.types import ActiveSession
from evse_model import standards
from evse_model.faults import SUPPLY_FAULT, Fault, FaultType, Severity
from evse_model.session import EndReason, Phase, Stage

log = logging.getLogger("ccs_sim.controller")


class FaultShutdown:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    def record(self, fault_type: FaultType, source: str, message: str = "") -> Fault:
        """A fault of ``fault_type`` at this moment, appended to the fault history."""
        charger = self.charger
        fault = Fault(fault_type, source, message, charger.clock.now(), charger.clock.utcnow())
        charger.fault_history.append(fault)
        return fault

    async def raise_fault(self, fault_type: FaultType, source: str = "api", message: str = "") -> Fault:
        """Shut the output down for a fault: the part that stops energy runs before this returns.

        Supply off at once (both severities); emergency also stops the oscillator (X1). The session (if
        any) ends ABORTED with this fault; the contactor opens once the current is below 5 A (emergency) or
        1 A (error), within 100 ms at the latest, in a shutdown task of its own. No shutdown already under
        way is cancelled: each finishes its own session's record. Returns the fault as recorded.
        """
        charger = self.charger
        fault = self.record(fault_type, source, message)
        running = charger._fault_shutdown
        if not charger.session_active and charger.active_fault is not None and running is not None \
                and not running[1].done() \
                and (running[0] is Severity.EMERGENCY or fault.severity is Severity.ERROR):
            return fault  # a shutdown at least as severe is already under way, and no session to end
        charger.active_fault = fault
        if charger.hw.blocking:
            await asyncio.to_thread(self.cut_energy_now, fault.severity)
        else:
            self.cut_energy_now(fault.severity)
        session = charger.session if charger.session_active else None
        if session is not None:
            charger.end_session(Phase.ABORTED, fault, EndReason.FAULT)
        else:
            charger.stages.fault_without_session()  # phase ABORTED
        charger.stages.advance(Stage.EMERGENCY_SHUTDOWN)
        task = charger.track_shutdown(self._emergency_open(fault.type, session), f"emergency-open-{fault.name}")
        charger._fault_shutdown = (fault.severity, task)
        await charger.events.publish(Topic.FAULT, fault)
        return fault

    def cut_energy_now(self, severity: Severity) -> None:
        """The part of a shutdown that stops energy, on this thread, under the controller's lock: current
        control off, the supply told 0 A and switched off (emergency off), and for an emergency the oscillator
        stopped (X1). The control step calls it the moment the supervisor finds a fault."""
        charger = self.charger
        with charger.lock:
            charger.current_control_active = False
            charger.requested_current_A = charger.commanded_current_A = 0.0
            charger.supply_limits.told(charger.clock.now(), 0.0)
            charger.call_device(charger.hw.supply.emergency_off)
            if severity is Severity.EMERGENCY:
                charger.call_device(charger.hw.pwm.set_duty, 100.0)

    async def _emergency_open(self, fault: FaultType, session: ActiveSession | None) -> None:
        charger = self.charger
        try:
            emergency = fault.severity is Severity.EMERGENCY
            limit_A = standards.EMERGENCY_CURRENT_A if emergency else standards.CONTACTOR_OPEN_MAX_CURRENT_A
            # Open as soon as the current allows, and within 90 ms whatever happens (< 100 ms budget).
            if not await charger.wait_current_below(limit_A, 0.090) and not emergency:
                # Only an emergency opens under load: the stage did not follow its off command, which is one.
                current_A = await charger.io(charger.hw.meter.read_current_A)
                self._record_escalation(fault, current_A)
                await charger.io(charger.hw.pwm.set_duty, 100.0)
            await charger.io(charger.hw.contactor.set_closed, False)
            await charger.io(charger.hw.imd.stop_measurement)
            await charger.tick_now()
            if fault.severity is not Severity.EMERGENCY and (session is None or session.source != "hlc"):
                # Error shutdown kept the oscillator for the HLC session to end cleanly; without one, X1 now.
                await charger.io(charger.hw.pwm.set_duty, 100.0)
            if session is not None:
                await charger.finalise_session(session)
            charger.stages.report_for(session, Stage.ENDED)
        finally:
            if session is not None:
                charger.release(session)

    def _record_escalation(self, fault: FaultType, current_A: float) -> None:
        log.error("%s: the output still carried %.1f A after the supply was switched off; opening as an "
                  "emergency (SUPPLY_FAULT)", fault.name, current_A)
        self.record(SUPPLY_FAULT, "supervisor", f"{current_A:.1f} A after the supply was switched off for {fault.name}")
