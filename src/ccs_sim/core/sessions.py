"""A session's life: start, run its driver, end (logically, with its summary), wind down, finalise its record.

A session starts atomically (the check and the claim with no await in between), runs its driver (the
simulated script or the ISO 15118 SECC) once every earlier shutdown has finished, and ends exactly once:
``end_session`` fixes its outcome and summary at once, the wind-down (ramp down, open) follows in a
shutdown task of its own, and the record is written when the output is off (``finalise``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable

from ccs_sim.core.events import Topic
from ccs_sim.core.ports import ChargerCore, SessionDriver
from ccs_sim.core.types import ActiveSession, MeterReading
from evse_hal.simulation import simulation_controls
from evse_model.faults import HLC_FAILURE, SUPPLY_FAULT, Fault
from evse_model.session import EndReason, Phase, SessionParams, SessionSummary, Stage
from evse_model.session_errors import CommandRefused, SessionAbort

log = logging.getLogger("ccs_sim.controller")


class SessionLifecycle:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    def persistent_fault_reason(self) -> str | None:
        """A condition that forbids starting a session now (it would fault at once), or None."""
        charger = self.charger
        m = charger.latest
        if m is None:
            return None
        if m.estop_pressed:
            return "emergency stop is pressed"
        if m.contactor_closed and charger.feedback.contactor_closed is False:
            return "the output contactor reads closed against its open command (welded)"
        if m.connector_temperature_C > charger.supervisor.limits.connector_temperature_limit_C:
            return f"connector temperature {m.connector_temperature_C:.1f} °C above its limit"
        return None

    def start_session(self, params: SessionParams, driver: SessionDriver | None = None) -> ActiveSession:
        """Start a session. Atomic: the check and the claim happen with no await in between."""
        charger = self.charger
        if charger.session_active:
            raise CommandRefused("Session already in progress")
        if charger.limits.unavailable_reason is not None:
            raise CommandRefused(f"cannot start: {charger.limits.unavailable_reason}")
        blocked = self.persistent_fault_reason()
        if blocked:
            raise CommandRefused(f"cannot start: {blocked}")
        if driver is None:
            if charger._sim_driver_factory is None or simulation_controls(charger.hw) is None:
                raise CommandRefused("no simulated car on this adapter: sessions come from the ISO 15118 SECC")
            driver = charger._sim_driver_factory()
        session = ActiveSession(session_id=uuid.uuid4().hex[:12], params=params, source=driver.source,
                                started_at_s=charger.clock.now(), started_at=charger.clock.utcnow(),
                                supervision=charger.idle_context())
        charger.stages.begin_session(session)  # phase HANDSHAKE, stage PLUG_IN
        charger.session = session
        charger.active_fault = None
        charger.bms_view_override = None
        charger._session_task = asyncio.create_task(self._run_session(driver, session),
                                                    name=f"session-{session.session_id}")
        return session

    async def _run_session(self, driver: SessionDriver, session: ActiveSession) -> None:
        charger = self.charger
        # Every earlier shutdown finishes first (its session's record takes the meter's final counts);
        # nothing of this session touches the output, the meter or the supervision before that.
        await charger.wait_quiescent()
        try:
            self._take_over_for(session)
            await charger.io(charger.hw.meter.start)
            session.owns_meter = True
            await charger.events.publish(Topic.SESSION_START, session)
            await driver.run(charger, session)
        except SessionAbort as abort:
            if charger.session is session and charger.session_active:
                await charger.raise_fault(abort.fault, source="session", message=str(abort))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug must still leave the charger safe and the record written
            log.exception("session %s failed", session.session_id)
            if charger.session is session and charger.session_active:
                await charger.raise_fault(SUPPLY_FAULT if isinstance(error, OSError) else HLC_FAILURE,
                                          source="session", message=repr(error))
        finally:
            if charger.session is session and charger.session_active and not charger._stopping:
                # the driver returned without ending the session: end it normally
                charger.end_session(Phase.COMPLETE, None, EndReason.DURATION_ELAPSED)

    def _take_over_for(self, session: ActiveSession) -> None:
        """Per-session state, built fresh: the new car's supervision context, no current asked or
        commanded, no current control, the supply told 0 A."""
        charger = self.charger
        with charger.lock:
            charger.context = session.supervision
            charger.requested_current_A = charger.commanded_current_A = 0.0
            charger.current_control_active = False
            charger.supply_limits.told(charger.clock.now(), 0.0)

    def release(self, session: ActiveSession | None) -> None:
        """A shutdown is over: the supervision context goes back to idle unless a newer session owns it."""
        charger = self.charger
        if session is not None and charger.context is session.supervision:
            charger.context = charger.idle_context()

    def request_stop(self) -> bool:
        """``/stop_session``: the session ends ABORTED now; the output ramps down ≤ 100 A/s and opens < 1 A."""
        charger = self.charger
        if not charger.session_active:
            return False
        charger.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)
        return True

    def end_session(self, phase: Phase, fault: Fault | None, reason: EndReason) -> None:
        """End the running session logically (phase, summary with its ending ``fault``) and start the physical
        wind-down (a fault's shutdown is the fault's own: ``raise_fault`` holds the fault and ends the session)."""
        charger = self.charger
        session = charger.session
        if session is None or not charger.session_active:
            return
        charger.stages.end_session(phase)
        if charger.context is session.supervision:
            # Only a session that took the output over touches its control: a session ended while an
            # earlier one still winds down must not stop that ramp.
            with charger.lock:
                charger.current_control_active = False
                charger.requested_current_A = 0.0
                charger.context.energy_transfer_expected = False
                charger.context.precharging = False
        session.summary = self._summary_now(session, phase, fault, reason)
        charger.last_session_summary = session.summary
        if charger._session_task is not None and charger._session_task is not asyncio.current_task():
            charger._session_task.cancel()
        if reason is not EndReason.FAULT:
            charger.set_stage(Stage.RAMP_DOWN)
            earlier = [task for task in charger._shutdown_tasks if not task.done()]
            charger.track_shutdown(self._wind_down_normally(session, earlier), f"wind-down-{session.session_id}")

    def session_meter_reading(self, session: ActiveSession) -> MeterReading:
        """The meter's counts for ``session``: zero unless the meter counts for it (a session that ended
        before the previous one's wind-down finished never had the meter)."""
        charger = self.charger
        return charger.meter_reading if session.owns_meter else MeterReading()

    def _summary_now(self, session: ActiveSession, phase: Phase, fault: Fault | None,
                     reason: EndReason) -> SessionSummary:
        charger = self.charger
        meter = self.session_meter_reading(session)
        charging_time_s = 0.0 if session.charging_started_at_s is None else \
            charger.clock.now() - session.charging_started_at_s
        ev_info = dict(session.ev_info)
        ev_info.update({key: value for key, value in charger.bms_view().items()
                        if key in ("evcc_id", "present_soc", "protocol", "total_battery_capacity")})
        return SessionSummary(
            energy_Wh=round(meter.energy_Wh, 6),
            avg_voltage=round(meter.avg_voltage_V, 6),
            avg_current=round(meter.avg_current_A, 6),
            duration_s=round(charger.clock.now() - session.started_at_s, 6),
            ended_phase=phase.value,
            fault=fault,
            session_id=session.session_id,
            end_reason=reason.value,
            charging_time_s=round(charging_time_s, 6),
            started_at=session.started_at.isoformat(),
            ended_at=charger.clock.utcnow().isoformat(),
            source=session.source,
            ev=ev_info,
        )

    async def finalise_session(self, session: ActiveSession) -> None:
        """After the output is off, exactly once per session: the summary takes the meter's final counts
        (if the meter counted for this session; then it resets) and the end listeners (records) run."""
        charger = self.charger
        if session.finalised:
            return
        session.finalised = True
        summary = session.summary
        if session.owns_meter:
            meter = await charger.read_meter()
            if summary is not None:
                summary.energy_Wh = round(meter.energy_Wh, 6)
                summary.avg_voltage = round(meter.avg_voltage_V, 6)
                summary.avg_current = round(meter.avg_current_A, 6)
            await charger.io(charger.hw.meter.reset)
            session.owns_meter = False
            await charger.read_meter()
        if summary is not None:
            await charger.events.publish(Topic.SESSION_END, summary)
        charger.stages.report_for(session, Stage.ENDED)

    async def _wind_down_normally(self, session: ActiveSession, earlier: list[asyncio.Task[None]]) -> None:
        charger = self.charger
        took_over = charger.context is session.supervision
        try:
            if took_over:
                await charger.ramp_down_and_open(session)
            elif earlier:
                await asyncio.wait(earlier)  # the output is an earlier session's: its shutdown ends first
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("normal wind-down failed; forcing the safe state")
            await charger.put_outputs_safe()
        finally:
            if took_over:
                await charger.io(charger.hw.pwm.set_duty, 100.0)
            await charger.finalise_session(session)
            charger.release(session)

    def track_shutdown(self, coroutine: Awaitable[None], name: str) -> asyncio.Task[None]:
        charger = self.charger
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        charger._shutdown_tasks.add(task)
        task.add_done_callback(charger._shutdown_tasks.discard)
        return task

    async def wait_quiescent(self) -> None:
        """Return once no shutdown is under way (every earlier session's record is final)."""
        charger = self.charger
        while True:
            pending = [task for task in charger._shutdown_tasks if not task.done()]
            if not pending:
                return
            await asyncio.wait(pending)

