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
from ccs_sim.core.outputs import Outputs
from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.safety import FeedbackWatch, Measurements, SafetySupervisor
from ccs_sim.core.types import Finding, MeterReading
from evse_hal.pilot import read_pilot
from evse_model import standards
from evse_model.clock import ManualClock
from evse_model.manual_clock import AHEAD_OTHERS_DUE, AHEAD_SERVE, combined_attribute_dict

log = logging.getLogger("ccs_sim.controller")

#: Parts of the loop, the feedback watch and the controller whose replacement on the instance (a test's spy, a
#: timing watch) turns the steady ticks off, so that the replacement sees every tick.
_STEADY_LOOP_PARTS = frozenset(("step", "tick_from_clock", "_measure_sync", "_meter_sync", "_ramp_sync"))
_STEADY_WATCH_PARTS = frozenset(("judge", "_judge_contactor", "_judge_supply", "_supply_stalled",
                                 "supply_setpoints"))
_STEADY_CHARGER_PARTS = frozenset(("set_supply_current_limit_now", "cut_energy_now", "call_device"))
#: ``Outputs``' part in setting the supply's current limit (see ``_plain_limit_setter``).
_OUTPUTS_LIMIT_FUNCTIONS = tuple((name, getattr(Outputs, name))
                                 for name in ("set_supply_current_limit_now", "call", "_note_command"))
#: ``_steady_ticks`` stopped at a tick it does not take (a full step takes it).
_DECLINED = -1
_INFINITY = float("inf")


def _plain_limit_setter(charger: ChargerCore, hw: object) -> Callable[[float], None] | None:
    """The supply's ``set_current_limit`` when the controller's ``set_supply_current_limit_now`` is the plain one
    (``ChargerController``'s, handing it to ``Outputs``, nothing of either replaced, the command one that
    ``Outputs`` notes for the feedback watch as such): the steady ticks then do what that does (the limit told to
    the supply-limit history, sent, noted) without the calls in between. Else None: through the controller."""
    setter: Callable[[float], None] | None = getattr(getattr(hw, "supply", None), "set_current_limit", None)
    outputs = getattr(charger, "_outputs", None)
    facade = getattr(type(charger), "set_supply_current_limit_now", None)
    if (setter is None or getattr(setter, "__name__", "") != "set_current_limit"
            or type(outputs) is not Outputs
            # each of Outputs' parts its own, bound to it (neither replaced on the class nor set on the instance)
            or any(getattr(getattr(outputs, name, None), "__func__", None) is not function
                   for name, function in _OUTPUTS_LIMIT_FUNCTIONS)
            or getattr(facade, "__module__", "") != "ccs_sim.controller"
            or getattr(facade, "__qualname__", "") != "ChargerController.set_supply_current_limit_now"
            or hasattr(facade, "__wrapped__")):
        return None
    return setter


class ControlLoop:
    """Measure, meter, ramp and judge every control period.

    ``step()`` is the whole of it, synchronous, under the controller's lock: a fault the supervisor finds
    has the supply switched off before ``step()`` returns, on whichever thread runs it. What follows a
    fault (the session's end, the contactor opening, records, OCPP) and the tick listeners run on the event
    loop (``after_step``). Where the step runs:

    - a real or scaled clock: a thread of its own (``ControlThread``), so no load on the event loop (API,
      streams, SECC) delays a tick or the supervisor;
    - a manual clock: a periodic job of the clock (no event-loop wake-up per tick); while the output delivers
      steadily, the ticks due before anything else is due run back to back in one call (``run_ahead``: the
      same step, with the same numbers, the supervisor judging every tick).
    """

    #: Run steady ticks on a manual clock (``run_ahead``); False: every tick is a full ``step()`` (tests and
    #: benchmarks compare the two).
    steady_ticks = True

    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger
        #: The supervisor found a fault the event loop has not raised yet: not reported twice meanwhile.
        self.fault_handed_over = False
        #: The thread the steps run on (real and scaled clocks), once started.
        self.thread: ControlThread | None = None
        #: How many ticks ran as steady ticks (``run_ahead``), not as a full ``step()``.
        self.steady_tick_count = 0
        # A dict of its own (see ``evse_model.manual_clock.combined_attribute_dict``): the steady ticks look for
        # replaced parts in it
        combined_attribute_dict(self)

    async def run(self) -> None:
        """Tick every ``control_period_s`` (simulated time) until cancelled."""
        every = getattr(self.charger.clock, "every", None)
        if every is None:
            self.thread = ControlThread(self)
            await self.thread.run()
            return
        await self.tick()
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def fail(error: BaseException) -> None:  # the loop stops, as an exception ends the control task
            job.cancel()
            if not failed.done():
                failed.set_exception(error)

        def periodic_tick() -> None:
            try:
                self.tick_from_clock()
            except BaseException as error:
                fail(error)

        def run_ahead(first_s: float, period_s: float, clear_until: Callable[[float], int],
                      run_due: Callable[[float], bool], move_to: Callable[[float], None]) -> tuple[int, float]:
            return self.run_ahead(first_s, period_s, clear_until, run_due, move_to, periodic_tick, fail)

        period_s = self.charger.settings.control_period_s
        if isinstance(self.charger.clock, ManualClock):
            job = every(period_s, periodic_tick, run_ahead=run_ahead)
        else:
            job = every(period_s, periodic_tick)
        try:
            await failed
        finally:
            job.cancel()

    # --- steady ticks: several control periods in one call of a manual clock ---------------------------------
    def run_ahead(self, first_s: float, period_s: float, clear_until: Callable[[float], int],
                  run_due: Callable[[float], bool], move_to: Callable[[float], None],
                  full_tick: Callable[[], None], fail: Callable[[BaseException], None]) -> tuple[int, float]:
        """The manual clock's ``run_ahead`` for the control tick (see ``ManualClock.every``): the tick due at
        ``first_s`` and those the clock lets follow it, as steady ticks while the output delivers steadily (the
        clock's other periodic jobs, the car's requests, run between them where they are due), then (at the first
        tick the steady path does not take) one full tick, after which the clock takes over again. Returns (ticks
        run, the next deadline). An exception in the steady ticks goes to ``fail`` (the loop stops, as with an
        exception in ``full_tick``); one in another job that ``run_due`` runs propagates as the clock's would."""
        runs, time_s = 0, first_s
        while True:
            try:
                served, time_s, outcome = self._steady_ticks(time_s, period_s, clear_until, move_to)
            except BaseException as error:
                fail(error)
                return runs, time_s
            runs += served
            self.steady_tick_count += served
            if outcome == AHEAD_OTHERS_DUE:
                if run_due(time_s):
                    continue  # the tick at time_s is this run's: steady if it still may be, else full
                return runs, time_s
            if outcome == _DECLINED:
                move_to(time_s)
                full_tick()
                return runs + 1, time_s + period_s
            return runs, time_s

    def _steady_ticks(self, time_s: float, period_s: float, clear_until: Callable[[float], int],
                      move_to: Callable[[float], None]) -> tuple[int, float, int]:
        """Control ticks at ``time_s``, ``time_s + period_s``, ... (the later ones while the clock's
        ``clear_until`` says they may be served now) while the output delivers steadily: each one the same step as
        ``step()`` -- the same readings, meter, ramp, supply limit and supervisor judgement, with the same floats
        -- done with the state held in local variables, the supervisor's checks applied as its thresholds, and
        one ``Measurements`` and meter reading built for the last tick only (nothing else runs between these
        ticks, so nothing can read the ones between).

        A tick is taken here only if ``step()`` would find nothing at it: the thresholds are ``find_fault``'s and
        ``FeedbackWatch.judge``'s own comparisons on the same values, and any reading at or past one of them
        (or anything else out of the steady state: a command, a CP change, the supply not regulating, a device
        replaced, a supervisor or loop part replaced, a tick listener) declines the tick, untouched but for the
        plant, which the full step then reads at the same instant (the same readings) and judges. Returns (ticks
        run, the deadline of the next tick, why they stopped there: ``_DECLINED`` or ``clear_until``'s answer)."""
        charger = self.charger
        hw = charger.hw
        steady_reader = getattr(hw, "steady_reader", None)
        read_first = getattr(hw, "read_sensors_steady", None)
        holds_limit = getattr(hw.supply, "holds_current_limit", None)
        supervisor, watch, context = charger.supervisor, charger.feedback, charger.context
        last_tick_s = charger._last_tick_s
        if (not self.steady_ticks or steady_reader is None or read_first is None or holds_limit is None
                or hw.blocking or last_tick_s is None
                or not charger.current_control_active or self.fault_handed_over or charger.active_fault is not None
                or not context.energy_transfer_expected or context.precharging
                or type(self) is not ControlLoop or not self.__dict__.keys().isdisjoint(_STEADY_LOOP_PARTS)
                or type(supervisor) is not SafetySupervisor or "find_fault" in supervisor.__dict__
                or type(watch) is not FeedbackWatch or not watch.__dict__.keys().isdisjoint(_STEADY_WATCH_PARTS)
                or not getattr(charger, "__dict__", {}).keys().isdisjoint(_STEADY_CHARGER_PARTS)
                or watch.contactor_closed is not True or watch.supply_enabled is not True
                or charger.events.listeners(Topic.TICK)):
            return 0, time_s, _DECLINED
        with charger.lock:
            move_to(time_s)
            # The first tick reads every sensor (a command or a control may have changed any of them since the
            # previous run); the later ones only what moves while nothing else runs. (When the plant is not
            # delivering steadily, nothing is read: the full step reads it.)
            first = read_first()
            if first is None:
                return 0, time_s, _DECLINED
            (voltage_V, current_A, temperature_C, duty_percent, cp_positive_V, cp_negative_V, contactor_closed,
             isolation_ohm, estop_pressed) = first
            pilot = read_pilot(cp_positive_V, cp_negative_V, duty_percent)
            if (not contactor_closed or estop_pressed or pilot.state not in ("C", "D") or pilot.diode_fault
                    or not voltage_V > standards.SAFE_DC_VOLTAGE_V
                    or (isolation_ohm is not None and isolation_ohm < standards.ISOLATION_FAULT_OHM)):
                return 0, time_s, _DECLINED
            settings, limits = charger.settings, supervisor.limits
            # find_fault's thresholds (its over-voltage level looked up as it does, and cached where it caches it)
            ovp_reference_V = context.negotiated_max_voltage_V or context.evse_max_voltage_V
            if ovp_reference_V != supervisor._ovp_reference_V:
                supervisor._ovp_reference_V = ovp_reference_V
                supervisor._ovp_limit_V = standards.overvoltage_limit_V(ovp_reference_V)
            ovp_limit_V = supervisor._ovp_limit_V
            margin_A, margin_fraction = limits.overcurrent_margin_A, limits.overcurrent_margin_fraction
            temperature_limit_C = limits.connector_temperature_limit_C
            # FeedbackWatch._supply_stalled's: the setpoints do not change while nothing else runs
            caps = watch.capabilities
            judge_supply = not watch._supply_reported
            target_V, max_V = watch.voltage_setpoint_V, caps.max_voltage_V
            if max_V < target_V:
                target_V = max_V
            regulating_from_V = target_V - standards.VOLTAGE_MEASUREMENT_ACCURACY_V
            limit_W, max_W = watch.power_limit_W, caps.max_power_W
            if max_W < limit_W:
                limit_W = max_W
            power_regulating_W = 0.97 * limit_W
            max_A = caps.max_current_A
            response_s = limits.supply_current_response_s
            # standards.current_measurement_tolerance_A(x) = max(accuracy_min_A, fraction * abs(x)), inline below
            accuracy_min_A = standards.CURRENT_MEASUREMENT_ACCURACY_MIN_A
            accuracy_fraction = standards.CURRENT_MEASUREMENT_ACCURACY_FRACTION
            # the ramp's (_ramp_sync): its target does not change while nothing else runs
            ramp_up_A_per_s, ramp_down_A_per_s = settings.current_ramp_up_A_per_s, settings.current_ramp_down_A_per_s
            target_A = min(charger.requested_current_A, charger.evse_max_current_A)
            headroom_A = max(standards.PRECHARGE_CURRENT_LIMIT_A, ramp_up_A_per_s * charger.RAMP_HEADROOM_S)
            commanded_A = charger.commanded_current_A
            history = charger.supply_limits
            told = history._told
            history_response_s = history.response_s
            read_next = steady_reader()
            runs = 0
            outcome = _DECLINED
            held_A: float | None = None  # the limit the supply is known to hold (nothing else runs meanwhile)
            committed_judged_A = context.commanded_current_limit_A
            # The limit a reading is judged against (SupplyCurrentLimitHistory.highest_in_force_A) is the highest
            # of the limits counted in its window; while the oldest of them still counts (its end after the
            # window's start: ``counted_until_s``), the same ones count and it stays the same. -inf: work it out.
            counted_until_s = -_INFINITY
            judged_A = over_limit_A = regulating_from_A = 0.0
            # the feedback watch's current limit (changed only by this loop while it runs), and the response
            # state the lowest regulating current was worked out for (None: not yet)
            watch_limit_A, watch_previous_A, watch_set_s = (
                watch.current_limit_A, watch._previous_current_limit_A, watch.current_limit_set_s)
            floor_in_response: bool | None = None
            # how the supply's current limit is set (looked up at the first limit this run sets): the supply's own
            # command (the controller's way is the plain one, done here inline) or None (through the controller)
            set_limit: Callable[[float], None] | None = None
            set_limit_known = False
            while True:
                # --- the step's bookkeeping and the meter (the plant counts by itself) ---------------------
                dt_s = time_s - last_tick_s
                if not dt_s > 0.0:
                    dt_s = 0.0
                # --- the limit the reading is judged against (SupplyCurrentLimitHistory.highest_in_force_A) ---
                window_start_s = time_s - history_response_s
                if not counted_until_s > window_start_s:  # the method's loop, inline, noting the oldest counted
                    judged_A, until_s, counted_until_s = 0.0, _INFINITY, _INFINITY
                    for since_s, limit_A in reversed(told):
                        if since_s > time_s:  # told after this reading (never in a steady run): no shortcut
                            until_s = counted_until_s = -_INFINITY
                            continue
                        if until_s > window_start_s:
                            if counted_until_s != -_INFINITY:
                                counted_until_s = until_s
                            if limit_A > judged_A:
                                judged_A = limit_A
                        if since_s <= window_start_s:
                            break
                        until_s = since_s
                    if judged_A <= standards.PRECHARGE_CURRENT_LIMIT_A:
                        break
                    # find_fault's over-current level for it
                    over_A = judged_A * margin_fraction
                    if not over_A > margin_A:
                        over_A = margin_A
                    over_limit_A = judged_A + over_A
                # --- find_fault's comparisons (E-stop, CP and isolation are the first tick's) ---------------
                if voltage_V > ovp_limit_V or current_A > over_limit_A or temperature_C > temperature_limit_C:
                    break
                # --- the ramp (_ramp_sync) --------------------------------------------------------------
                if target_A > commanded_A:
                    new_A = min(target_A, commanded_A + ramp_up_A_per_s * dt_s,
                                max(commanded_A, current_A + headroom_A))
                else:  # max(target_A, commanded_A - step down), spelled out (the same float)
                    new_A = commanded_A - ramp_down_A_per_s * dt_s
                    if not new_A > target_A:
                        new_A = target_A
                # --- FeedbackWatch.judge: the contactor agrees (checked above); the supply regulates ---------
                limit_changes = new_A != watch_limit_A  # supply_setpoints compares float(new_A): equal
                if judge_supply and not voltage_V >= regulating_from_V:
                    # _supply_stalled's current limit less the measurement tolerance: the lowest current that
                    # shows the stage regulating (its power the other way); worked out again when the limit
                    # changes or the stage's response time after the last change runs out
                    if limit_changes:
                        limit_A, previous_A, set_s = float(new_A), watch_limit_A, time_s
                        in_response = time_s - set_s < response_s
                    else:
                        limit_A, previous_A = watch_limit_A, watch_previous_A
                        in_response = time_s - watch_set_s < response_s
                    if limit_changes or in_response is not floor_in_response:
                        if max_A < limit_A:
                            limit_A = max_A
                        if in_response and previous_A < limit_A:
                            limit_A = previous_A
                        tolerance_A = accuracy_fraction * abs(limit_A)  # max(accuracy_min_A, ...), spelled out
                        if not tolerance_A > accuracy_min_A:
                            tolerance_A = accuracy_min_A
                        regulating_from_A = limit_A - tolerance_A
                        floor_in_response = None if limit_changes else in_response
                    if not (current_A >= regulating_from_A or voltage_V * current_A >= power_regulating_W):
                        break
                # --- the tick is the full step's: commit it (what only this loop reads, at its end) --------
                if new_A != held_A:  # else told, noted and held since the first tick of this run
                    if limit_changes or new_A != told[-1][1] or not holds_limit(new_A):
                        if not set_limit_known:
                            set_limit, set_limit_known = _plain_limit_setter(charger, hw), True
                        if set_limit is None:
                            charger.set_supply_current_limit_now(new_A)
                        else:  # Outputs.set_supply_current_limit_now(new_A): told, sent, noted for the watch
                            now_s = charger.clock.now()
                            history.told(now_s, new_A)
                            set_limit(new_A)
                            noted_A = float(new_A)  # FeedbackWatch.supply_setpoints(now_s, current_limit_A=...)
                            if noted_A != watch.current_limit_A:
                                watch._previous_current_limit_A, watch.current_limit_A = watch.current_limit_A, noted_A
                                watch.current_limit_set_s = now_s
                        counted_until_s = -_INFINITY  # a limit told: the next tick works its judged limit out
                        watch_limit_A, watch_previous_A, watch_set_s = (
                            watch.current_limit_A, watch._previous_current_limit_A, watch.current_limit_set_s)
                        floor_in_response = None
                    held_A = new_A
                commanded_A = new_A
                committed_judged_A = judged_A
                last_tick_s = time_s
                runs += 1
                # --- the next tick, if it is this run's -------------------------------------------------
                time_s += period_s
                outcome = clear_until(time_s)  # the clock at time_s if it may be served
                if outcome != AHEAD_SERVE:
                    break
                reading = read_next(time_s)
                if reading is None:
                    outcome = _DECLINED
                    break
                voltage_V, current_A, temperature_C = reading
                outcome = _DECLINED  # until this tick is taken
            if runs:
                charger.tick_sequence += runs
                charger.commanded_current_A = commanded_A
                context.commanded_current_limit_A = committed_judged_A
                watch._contactor_disagrees_since_s = None  # what judge() sets on each tick the contactor agrees
                watch._contactor_reported = False
                if judge_supply:
                    watch._stalled_since = None  # ... and on each tick the supply regulates
                charger._last_tick_s = last_tick_s
                if outcome != _DECLINED:
                    # What step() leaves after the last tick: its readings and meter reading (a declined tick's
                    # full step, which follows at once, sets both itself).
                    # Measurements(time_s, pilot, cp_positive_V, cp_negative_V, duty_percent, contactor_closed,
                    # output_voltage_V, output_current_A, supply_voltage_V, supply_current_A, isolation_ohm,
                    # connector_temperature_C, estop_pressed), positionally (one per run)
                    charger.latest = Measurements(last_tick_s, pilot, cp_positive_V, cp_negative_V, duty_percent, True,
                                                  voltage_V, current_A, voltage_V, current_A, isolation_ohm,
                                                  temperature_C, False)
                    # _meter_sync(latest), the reading positionally: MeterReading(energy_Wh, avg_voltage_V,
                    # avg_current_A, session_time_s)
                    charger.meter_reading = MeterReading(*hw.meter.sample_and_read(voltage_V, current_A))
        return runs, time_s, outcome

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
