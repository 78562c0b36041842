"""The control loop: every control period, measure, meter, ramp the current, and let the supervisor judge.

The loop is the only place readings are taken in one consistent set (``Measurements``); everything else
reads ``charger.latest``. A fault the supervisor finds is raised through the controller (which shuts the
output down); then the tick listeners hear of the new readings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ccs_sim.core.control_thread import ControlThread
from ccs_sim.core.events import Topic
from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.safety import Measurements
from ccs_sim.core.types import Finding, MeterReading
from evse_hal.pilot import read_pilot
from evse_model import standards

log = logging.getLogger("ccs_sim.controller")


class ControlLoop:
    """Measure, meter, ramp and judge every control period.

    ``step()`` is the whole of it, synchronous, under the controller's lock: a fault the supervisor finds
    has the supply switched off before ``step()`` returns, on whichever thread runs it. What follows a
    fault (the session's end, the contactor opening, records, OCPP) and the tick listeners run on the event
    loop (``after_step``). Where the step runs:

    - a real or scaled clock: a thread of its own (``ControlThread``), so no load on the event loop (API,
      streams, SECC) delays a tick or the supervisor;
    - a manual clock: a periodic job of the clock (no event-loop wake-up per tick).
    """

    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger
        #: The supervisor found a fault the event loop has not raised yet: not reported twice meanwhile.
        self.fault_handed_over = False
        #: The thread the steps run on (real and scaled clocks), once started.
        self.thread: ControlThread | None = None

    async def run(self) -> None:
        """Tick every ``control_period_s`` (simulated time) until cancelled."""
        every = getattr(self.charger.clock, "every", None)
        if every is None:
            self.thread = ControlThread(self)
            await self.thread.run()
            return
        await self.tick()
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def periodic_tick() -> None:
            try:
                self.tick_from_clock()
            except BaseException as error:  # the loop stops, as an exception ends the control task
                job.cancel()
                if not failed.done():
                    failed.set_exception(error)

        job = every(self.charger.settings.control_period_s, periodic_tick)
        try:
            await failed
        finally:
            job.cancel()

    def tick_from_clock(self) -> None:
        """One tick called by a manual clock: the step, then (on the event loop) what must follow it."""
        findings = self.step()
        if findings:
            self.charger.track_background(self.after_step(findings), "control-tick-faults")
        else:
            self.notify_tick_listeners()

    async def tick(self) -> None:
        """One control step now (a command's ``tick_now``, the first tick) and what follows it."""
        if self.charger.hw.blocking:
            findings = await asyncio.to_thread(self.step)
        else:
            findings = self.step()
        await self.after_step(findings)

    def step(self) -> list[Finding]:
        """Measure, meter, ramp the current, judge: the part of a tick no other work may delay."""
        charger = self.charger
        with charger.lock:
            now_s = charger.clock.now()
            dt_s = 0.0 if charger._last_tick_s is None else max(0.0, now_s - charger._last_tick_s)
            charger._last_tick_s = now_s
            charger.tick_sequence += 1
            m = self._measure_sync()
            charger.latest = m
            charger.meter_reading = self._meter_sync(m)
            # Judge the reading against the limits the supply was actually told during its response time
            # before the reading: not against a ramp step planned but not yet sent, nor one the stage had no
            # time to follow (a late tick at high simulation speed makes both large).
            judged_limit_A = charger.supply_limits.highest_in_force_A(m.time_s)
            if charger.current_control_active:
                self._ramp_sync(dt_s)
            charger.context.commanded_current_limit_A = judged_limit_A
            findings: list[Finding] = []
            fault = charger.supervisor.find_fault(m, charger.context)
            if fault is not None and charger.active_fault is None and not self.fault_handed_over:
                log.warning("supervisor detected %s", fault.name)
                charger.cut_energy_now(fault.severity)
                self.fault_handed_over = True
                findings.append((fault, "", True))
            # A device that does not follow its command is reported even during another fault's shutdown (a
            # contactor that welds as the shutdown opens it): once per disagreement.
            feedback_fault = charger.feedback.judge(m)
            if feedback_fault is not None:
                fault_type, message = feedback_fault
                log.error("supervisor detected %s: %s", fault_type.name, message)
                charger.cut_energy_now(fault_type.severity)
                findings.append((fault_type, message, False))
        return findings

    async def after_step(self, findings: list[Finding]) -> None:
        """On the event loop: raise what the step found (session end, contactor open, records), then tell
        the tick listeners."""
        charger = self.charger
        try:
            for fault_type, message, _ in findings:
                await charger.raise_fault(fault_type, source="supervisor", message=message)
        finally:
            if any(by_supervisor for _, _, by_supervisor in findings):
                self.fault_handed_over = False  # this was the handed-over one: the next may be reported
        await charger.events.publish(Topic.TICK)

    def notify_tick_listeners(self) -> None:
        """The tick listeners (plain functions; a coroutine one runs as a task), on the event loop."""
        for listener in self.charger.events.listeners(Topic.TICK):
            result = listener()
            if asyncio.iscoroutine(result):
                self.charger.track_background(result, "tick-listener")

    async def measure(self) -> Measurements:
        """Read every sensor once (in one worker-thread hop when the adapter blocks)."""
        if self.charger.hw.blocking:
            return await asyncio.to_thread(self._locked_measure)
        return self._locked_measure()

    def _locked_measure(self) -> Measurements:
        with self.charger.lock:
            return self._measure_sync()

    def _measure_sync(self) -> Measurements:
        r = self.charger.hw.read_sensors()
        return Measurements(
            time_s=self.charger.clock.now(),
            pilot=read_pilot(r.cp_positive_V, r.cp_negative_V, r.duty_percent),
            cp_positive_V=r.cp_positive_V,
            cp_negative_V=r.cp_negative_V,
            duty_percent=r.duty_percent,
            contactor_closed=r.contactor_closed,
            output_voltage_V=r.output_voltage_V,
            output_current_A=r.output_current_A,
            supply_voltage_V=r.supply_voltage_V,
            supply_current_A=r.supply_current_A,
            isolation_ohm=r.isolation_ohm,
            connector_temperature_C=r.connector_temperature_C,
            estop_pressed=r.estop_pressed,
        )

    def _meter_sync(self, sample: Measurements | None) -> MeterReading:
        meter = self.charger.hw.meter
        if sample is None:
            return MeterReading(energy_Wh=meter.get_energy_Wh(), avg_voltage_V=meter.get_avg_voltage(),
                                avg_current_A=meter.get_avg_current(), session_time_s=meter.get_session_time_s())
        energy_Wh, avg_voltage_V, avg_current_A, session_time_s = meter.sample_and_read(
            sample.output_voltage_V, sample.output_current_A)
        return MeterReading(energy_Wh=energy_Wh, avg_voltage_V=avg_voltage_V, avg_current_A=avg_current_A,
                            session_time_s=session_time_s)

    async def read_meter(self, sample: Measurements | None = None) -> MeterReading:
        """Feed ``sample`` to the meter (if given) and read its counters."""
        charger = self.charger
        if charger.hw.blocking:
            charger.meter_reading = await asyncio.to_thread(self._locked_meter, sample)
        else:
            charger.meter_reading = self._locked_meter(sample)
        return charger.meter_reading

    def _locked_meter(self, sample: Measurements | None) -> MeterReading:
        with self.charger.lock:
            return self._meter_sync(sample)

    def _ramp_sync(self, dt_s: float) -> None:
        charger, settings = self.charger, self.charger.settings
        step_up = settings.current_ramp_up_A_per_s * dt_s
        step_down = settings.current_ramp_down_A_per_s * dt_s
        target = min(charger.requested_current_A, charger.evse_max_current_A)
        if target > charger.commanded_current_A:
            # The limit rises with the current actually flowing: when the battery takes less than the
            # limit (voltage-limited), a later voltage step cannot jump the current by more than the headroom.
            flowing_A = charger.latest.output_current_A if charger.latest is not None else 0.0
            headroom_A = max(standards.PRECHARGE_CURRENT_LIMIT_A,
                             settings.current_ramp_up_A_per_s * charger.RAMP_HEADROOM_S)
            charger.commanded_current_A = min(target, charger.commanded_current_A + step_up,
                                              max(charger.commanded_current_A, flowing_A + headroom_A))
        else:
            charger.commanded_current_A = max(target, charger.commanded_current_A - step_down)
        charger.set_supply_current_limit_now(charger.commanded_current_A)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Poll ``condition`` every control period (simulated time); False if ``timeout_s`` passes first."""
        clock = self.charger.clock
        deadline_s = clock.now() + timeout_s
        while not condition():
            if clock.now() >= deadline_s:
                return False
            await clock.sleep(self.charger.settings.control_period_s)
        return True
