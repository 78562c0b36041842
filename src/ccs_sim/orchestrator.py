"""The session state machine, and the spec's session flow with the simulated car.

**The state machine** (``SessionStateMachine``) owns a session's phase and stage, for simulated and
ISO 15118 sessions alike, and is their one writer: the controller's DC steps, its session lifecycle and
fault shutdown, this module's simulated driver and the SECC glue (through ``charger.set_stage``) all
move the stage through it. ``TRANSITIONS`` is the table of the moves allowed; the phase follows the stage
(``STAGE_PHASE``) while a session runs, and is the session's outcome (COMPLETE or ABORTED) once it ends.
A move the table does not allow raises ``IllegalTransition`` when the machine is strict (always under
pytest); in production it is logged as an error and refused, the stage staying where it is: a wrong
stage report must never stop a shutdown that is bringing the output to its safe state.

**The simulated flow** (``SimSessionDriver``): HANDSHAKE → (cable check) → PRECHARGE → CHARGING → COMPLETE.

This driver plays the part the ISO 15118 stack plays in HLC mode — it reads the simulated car's BMS
instead of V2G messages — and uses the same controller primitives (cable check, precharge, charge
targets, ramp-down) that the SECC's HAL controller uses. Timing (spec):

1. HANDSHAKE ≈ 2 s: the car plugs in (CP B), 5 % PWM after 0.5 s, the car answers with CP C.
2. Cable check ≈ 1 s (stage of HANDSHAKE): contactor closed, CC.1 test voltage at ≤ 2 A, IMD reading;
   an insulation fault aborts. Then the supply is switched off and its active discharge brings the output
   below 60 V before the check finishes (``discharge_after_cable_check``, on by default).
3. PRECHARGE: output up from below 60 V to the car's battery voltage (the session's ``target_voltage`` for
   the default car) at ≤ 2 A — C·ΔV / 2 A, ≈ 0.5 s for 400 V — within ``precharge_timeout_s`` (default 7 s);
   the car closes its contactor once within 20 V.
4. CHARGING: deliver the car's request (``initial_current``, stepped down after 5 s for the default car),
   ramped ≤ 100 A/s; for ``duration_s`` or until the car is full.
5. COMPLETE: summary recorded; the output ramps down ≤ 100 A/s and opens below 1 A; meter reset.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.types import ActiveSession
from evse_hal.simulation import simulation_controls
from evse_model import standards
from evse_model.faults import EV_NOT_READY, PRECHARGE_TIMEOUT
from evse_model.session import STAGE_PHASE, EndReason, Phase, Stage
from evse_model.session_errors import SessionAbort

log = logging.getLogger(__name__)


class IllegalTransition(RuntimeError):
    """A stage change the transition table does not allow."""


#: Stages a fault's emergency shutdown may interrupt: every one (a fault can strike at any time).
_ANY_STAGE = frozenset(Stage)

#: The stage → the stages it may move to. EMERGENCY_SHUTDOWN may follow any stage (a fault); PLUG_IN only
#: by ``begin_session`` (a new session, once the previous one has ended); staying in a stage is no move.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.IDLE: frozenset({Stage.PLUG_IN, Stage.EMERGENCY_SHUTDOWN}),
    # The simulated car's handshake (5 % PWM, CP C) is a stage of its own; a driver whose handshake happens
    # elsewhere (a test's, or before the controller knew of the session) may go to the cable check at once.
    Stage.PLUG_IN: frozenset({Stage.HANDSHAKE, Stage.CABLE_CHECK, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    Stage.HANDSHAKE: frozenset({Stage.CABLE_CHECK, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    Stage.CABLE_CHECK: frozenset({Stage.PRECHARGE, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    Stage.PRECHARGE: frozenset({Stage.CURRENT_RAMP, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    Stage.CURRENT_RAMP: frozenset({Stage.CHARGING, Stage.OUTPUT_INTERRUPTED, Stage.RAMP_DOWN,
                                   Stage.EMERGENCY_SHUTDOWN}),
    Stage.CHARGING: frozenset({Stage.OUTPUT_INTERRUPTED, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    Stage.OUTPUT_INTERRUPTED: frozenset({Stage.CURRENT_RAMP, Stage.RAMP_DOWN, Stage.EMERGENCY_SHUTDOWN}),
    # The wind-down: ramp down, open (welding detection), record final. The ISO 15118 EV's PowerDelivery(Stop)
    # ramps down and opens before its SessionStop ends the session, whose wind-down then ramps down again.
    Stage.RAMP_DOWN: frozenset({Stage.WELDING_DETECTION, Stage.ENDED, Stage.EMERGENCY_SHUTDOWN, Stage.PLUG_IN}),
    Stage.WELDING_DETECTION: frozenset({Stage.RAMP_DOWN, Stage.ENDED, Stage.EMERGENCY_SHUTDOWN, Stage.PLUG_IN}),
    Stage.EMERGENCY_SHUTDOWN: frozenset({Stage.ENDED, Stage.EMERGENCY_SHUTDOWN, Stage.PLUG_IN}),
    # After the end: only a new session, or a fault (which may come at any time).
    Stage.ENDED: frozenset({Stage.PLUG_IN, Stage.EMERGENCY_SHUTDOWN}),
}
assert all(Stage.EMERGENCY_SHUTDOWN in allowed for allowed in TRANSITIONS.values()), "a fault may strike anywhere"
assert set(TRANSITIONS) == _ANY_STAGE, "every stage has its row"

#: The outcomes a session ends with (its phase from then on).
SESSION_OUTCOMES = frozenset({Phase.COMPLETE, Phase.ABORTED})


def strict_by_default() -> bool:
    """Strict (raise on an illegal move) under pytest, or with ``CCS_STRICT_STAGES=1``."""
    return "PYTEST_CURRENT_TEST" in os.environ or os.environ.get("CCS_STRICT_STAGES") == "1"


class SessionStateMachine:
    """Phase and stage of the charger's latest session; the one writer of both."""

    def __init__(self, strict: bool | None = None) -> None:
        self.strict = strict_by_default() if strict is None else strict
        self._phase = Phase.IDLE
        self._stage = Stage.IDLE
        self._session_active = False
        #: The latest session: its shutdown's stage reports count, an earlier session's do not.
        self._owner: ActiveSession | None = None
        #: Moves refused (production); each is also logged.
        self.refused: list[tuple[Stage, Stage]] = []

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def stage(self) -> Stage:
        return self._stage

    @property
    def session_active(self) -> bool:
        return self._session_active

    def allowed(self, stage: Stage) -> bool:
        return stage is self._stage or stage in TRANSITIONS[self._stage]

    def begin_session(self, session: ActiveSession) -> None:
        """A new session: phase HANDSHAKE, stage PLUG_IN. Only once the previous session has ended."""
        if self._session_active or Stage.PLUG_IN not in TRANSITIONS[self._stage]:
            self._illegal(Stage.PLUG_IN, "a new session starts only after the previous one has ended")
            if not self.strict and self._session_active:
                return
        self._owner = session
        self._session_active = True
        self._stage = Stage.PLUG_IN
        self._phase = Phase.HANDSHAKE

    def advance(self, stage: Stage) -> None:
        """Move to ``stage`` (the phase follows while a session runs)."""
        if stage is self._stage:
            pass
        elif stage is Stage.PLUG_IN:
            self._illegal(stage, "a session's plug-in is begun by begin_session")
            return
        elif stage not in TRANSITIONS[self._stage]:
            self._illegal(stage)
            return
        self._stage = stage
        if self._session_active and stage in STAGE_PHASE:
            self._phase = STAGE_PHASE[stage]

    def report_for(self, session: ActiveSession | None, stage: Stage) -> None:
        """A shutdown's stage report: applied only while its session is the latest one (or, for a shutdown
        without a session, while no session runs); an earlier session's wind-down no longer reports."""
        if (self._owner is session) if session is not None else not self._session_active:
            self.advance(stage)

    def end_session(self, outcome: Phase) -> None:
        """The running session ends: its phase is the outcome (COMPLETE or ABORTED) from now on."""
        if outcome not in SESSION_OUTCOMES:
            raise ValueError(f"a session ends COMPLETE or ABORTED, not {outcome.value}")
        self._session_active = False
        self._phase = outcome

    def fault_without_session(self) -> None:
        """A fault while no session runs: the phase shows ABORTED (the stage moves to EMERGENCY_SHUTDOWN)."""
        self._phase = Phase.ABORTED

    def _illegal(self, stage: Stage, why: str = "") -> None:
        message = f"illegal stage transition {self._stage.value} -> {stage.value}" + (f": {why}" if why else "")
        self.refused.append((self._stage, stage))
        log.error("%s", message)
        if self.strict:
            raise IllegalTransition(message)


class SimSessionDriver:
    source = "sim"
    #: How often the car's request is read, like a CurrentDemandReq loop (real cars: 100–250 ms, standards.md §2.4).
    EV_REQUEST_PERIOD_S = 0.05
    #: On a manual clock, the charge loop is a periodic job of the clock (False: the task's loop of sleeps, as on
    #: other clocks; tests compare the two).
    charge_loop_on_clock = True

    async def run(self, controller: ChargerCore, session: ActiveSession) -> None:
        sim = simulation_controls(controller.hw)
        if sim is None:
            raise SessionAbort(EV_NOT_READY, "the simulated session needs the sim adapter")
        params = session.params
        settings = controller.settings
        sim.configure_car(params.ev_preset, params.start_soc_percent, params.target_soc_percent)
        ev = sim.prepare_car(params.target_voltage_V, params.initial_current_A)
        session.ev_info = {"preset": sim.preset_name, "start_soc": round(ev.battery.soc_percent, 2)}

        # 1. HANDSHAKE: plug-in (B), 5 % PWM, the car answers C.
        handshake_started_s = controller.clock.now()
        controller.set_stage(Stage.PLUG_IN)
        await controller.hold(settings.pwm_start_delay_s)
        await controller.set_pwm_duty(standards.CP_HLC_DUTY_PERCENT)
        controller.set_stage(Stage.HANDSHAKE)
        remaining_s = settings.handshake_s - (controller.clock.now() - handshake_started_s)
        await controller.hold(max(0.0, remaining_s))
        if controller.latest is None or controller.latest.pilot.state not in ("C", "D"):
            state = controller.latest.pilot.state if controller.latest else "?"
            raise SessionAbort(EV_NOT_READY, f"CP state {state} after the handshake, expected C or D")

        # 2. Cable check.
        await controller.cable_check(ev.preset.max_voltage_V)

        # 3. PRECHARGE: the car wants its contactor closed once the output matches its battery.
        ev.energy_transfer_wanted = True
        timeout_s = params.precharge_timeout_s or settings.precharge_timeout_s
        await controller.precharge(ev.precharge_target_V, timeout_s)
        if not await controller.wait_until(lambda: ev.contactor_closed, 1.0):
            raise SessionAbort(PRECHARGE_TIMEOUT, "the car did not close its contactor after precharge")

        # 4. CHARGING
        await controller.begin_energy_transfer(ev.preset.max_voltage_V)
        charging_started_s = controller.clock.now()
        every = getattr(controller.clock, "every", None)
        if every is not None and self.charge_loop_on_clock and not controller.hw.blocking:
            await self._charge_on_manual_clock(controller, ev, charging_started_s, params.duration_s, every)
            return
        reason = EndReason.DURATION_ELAPSED
        while True:
            if controller.clock.now() - charging_started_s >= params.duration_s:
                break
            if ev.charging_complete():
                reason = EndReason.EV_FULL
                break
            await self._follow_car(controller, ev)
            await controller.clock.sleep(self.EV_REQUEST_PERIOD_S)
        controller.end_session(Phase.COMPLETE, None, reason)

    async def _charge_on_manual_clock(self, controller: ChargerCore, ev: Any, charging_started_s: float,
                                      duration_s: float, every: Callable[..., Any]) -> None:
        """The charge loop above as a periodic job of a manual clock: the same steps at the same instants and in
        the same order (the job's deadlines are summed as the loop's sleeps are, and it is scheduled where the
        loop's first sleep would be), without an event-loop wake-up per car request.

        Each request runs ``_follow_car`` to its end on the clock's call: with an adapter that does not block,
        none of the controller calls it makes suspends. One that would (it never should) ends the charge loop
        with an error, as an exception in the loop does."""
        done: asyncio.Future[EndReason | None] = asyncio.get_running_loop().create_future()
        clock = controller.clock

        def request() -> EndReason | None:
            """One pass of the loop: the reason the charge is over, or None once the car's request is followed."""
            if clock.now() - charging_started_s >= duration_s:
                return EndReason.DURATION_ELAPSED
            if ev.charging_complete():
                return EndReason.EV_FULL
            m = controller.latest
            if (m is None or m.contactor_closed) and controller.stage is not Stage.OUTPUT_INTERRUPTED:
                # _follow_car's usual case, without its own coroutine: the car's request
                step = controller.set_charge_targets(ev.target_voltage_V(), ev.target_current_A())
            else:
                step = self._follow_car(controller, ev)
            try:
                step.send(None)
            except StopIteration:
                return None
            step.close()
            raise RuntimeError("a car request suspended on a manual clock with a non-blocking adapter")

        def periodic_request() -> None:
            try:
                reason = request()
            except BaseException as error:  # ends the loop as the exception would end the coroutine's loop
                job.cancel()
                if not done.done():
                    done.set_exception(error)
                return
            if reason is None:
                return
            job.cancel()
            # The loop ended the session in its task, woken at this instant: what that starts (the wind-down) runs
            # after the clock's other jobs of this instant. Called directly by the clock, hand the end to the task
            # (its wake-up queues them behind it); from the event loop, at the task's place in it, end it here.
            if not getattr(clock, "firing_directly", True):
                controller.end_session(Phase.COMPLETE, None, reason)
                reason = None
            if not done.done():
                done.set_result(reason)

        reason = request()
        if reason is None:
            job = every(self.EV_REQUEST_PERIOD_S, periodic_request)
            try:
                reason = await done
            finally:
                job.cancel()
        if reason is not None:
            controller.end_session(Phase.COMPLETE, None, reason)

    @staticmethod
    async def _follow_car(controller: ChargerCore, ev: Any) -> None:
        """One step of the charge loop: the car's request, or re-matching after the output was opened."""
        m = controller.latest
        if m is not None and not m.contactor_closed:
            # The output was opened under us (/control/contactor): hold the supply at the car's voltage
            # at ≤ 2 A so that closing again is allowed and the car can reconnect.
            await controller.interrupt_energy_transfer(ev.precharge_target_V())
            return
        if controller.stage is Stage.OUTPUT_INTERRUPTED:
            if not ev.contactor_closed:
                return
            controller.resume_energy_transfer()
        await controller.set_charge_targets(ev.target_voltage_V(), ev.target_current_A())
