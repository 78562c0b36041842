"""The control loop: every control period, measure, meter, ramp the current, and let the supervisor judge.

The loop is the only place readings are taken in one consistent set (``Measurements``); everything else
reads ``charger.latest``. A fault the supervisor finds is raised through the controller (which shuts the
output down); then the tick listeners hear of the new readings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ccs_sim.core.events import Topic
from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.safety import Measurements
from ccs_sim.core.types import MeterReading
from evse_hal.pilot import read_pilot
from evse_model import standards

log = logging.getLogger("ccs_sim.controller")


class ControlLoop:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    async def run(self) -> None:
        """Tick every ``control_period_s`` (simulated time) until cancelled; a late tick is counted."""
        charger = self.charger
        period_s = charger.settings.control_period_s
        # A scaled clock runs only as fast as the ticks can be computed (its governor lowers the speed in
        # force and bounds what one tick integrates); a manual or real clock has none.
        make_governor = getattr(charger.clock, "governor", None)
        governor = make_governor(period_s) if make_governor is not None else None
        next_tick_s = charger.clock.now()
        try:
            while True:
                if governor is not None:
                    governor.tick_started()
                await charger.tick()
                if governor is not None:
                    governor.tick_finished()
                next_tick_s += period_s
                now_s = charger.clock.now()
                lateness_s = now_s - next_tick_s
                if lateness_s > period_s:
                    charger.late_ticks += 1
                    charger.max_tick_lateness_s = max(charger.max_tick_lateness_s, lateness_s)
                    next_tick_s = now_s
                await charger.clock.sleep(max(0.0, next_tick_s - now_s))
                charger.tick_lateness_s_recent.append(max(0.0, charger.clock.now() - next_tick_s))
        finally:
            if governor is not None:
                governor.close()

    async def tick(self) -> None:
        """One control step: measure, meter, ramp the current, look for faults, notify listeners."""
        charger = self.charger
        now_s = charger.clock.now()
        dt_s = 0.0 if charger._last_tick_s is None else max(0.0, now_s - charger._last_tick_s)
        charger._last_tick_s = now_s
        charger.tick_sequence += 1
        m = await self.measure()
        charger.latest = m
        await charger.read_meter(m)
        # Judge the reading against the limits the supply was actually told during its response time
        # before the reading: not against a ramp step planned but not yet sent, nor one the stage had no
        # time to follow (a late tick at high simulation speed makes both large).
        judged_limit_A = charger.supply_limits.highest_in_force_A(m.time_s)
        if charger.current_control_active:
            await self.ramp_current(dt_s)
        charger.context.commanded_current_limit_A = judged_limit_A
        fault = charger.supervisor.find_fault(m, charger.context)
        if fault is not None and charger.active_fault is None:
            log.warning("supervisor detected %s", fault.name)
            await charger.raise_fault(fault, source="supervisor")
        # A device that does not follow its command is reported even during another fault's shutdown (a
        # contactor that welds as the shutdown opens it): once per disagreement.
        feedback_fault = charger.feedback.judge(m)
        if feedback_fault is not None:
            fault_type, message = feedback_fault
            log.error("supervisor detected %s: %s", fault_type.name, message)
            await charger.raise_fault(fault_type, source="supervisor", message=message)
        await charger.events.publish(Topic.TICK)

    async def measure(self) -> Measurements:
        """Read every sensor once (in one worker-thread hop when the adapter blocks)."""
        if self.charger.hw.blocking:
            return await asyncio.to_thread(self._measure_sync)
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
        if sample is not None:
            meter.update(sample.output_voltage_V, sample.output_current_A)
        return MeterReading(energy_Wh=meter.get_energy_Wh(), avg_voltage_V=meter.get_avg_voltage(),
                            avg_current_A=meter.get_avg_current(), session_time_s=meter.get_session_time_s())

    async def read_meter(self, sample: Measurements | None = None) -> MeterReading:
        """Feed ``sample`` to the meter (if given) and read its counters."""
        charger = self.charger
        if charger.hw.blocking:
            charger.meter_reading = await asyncio.to_thread(self._meter_sync, sample)
        else:
            charger.meter_reading = self._meter_sync(sample)
        return charger.meter_reading

    async def ramp_current(self, dt_s: float) -> None:
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
        await charger.set_supply_current_limit(charger.commanded_current_A)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Poll ``condition`` every control period (simulated time); False if ``timeout_s`` passes first."""
        clock = self.charger.clock
        deadline_s = clock.now() + timeout_s
        while not condition():
            if clock.now() >= deadline_s:
                return False
            await clock.sleep(self.charger.settings.control_period_s)
        return True
