"""The charger controller: one HAL instance, one control loop, the session state and every command.

The API, the simulated session script and the ISO 15118 SECC all act through this object; the safety
supervisor vets its commands and watches its measurements. It owns the hardware: nothing else writes
to a device.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Protocol

from evse_model import standards
from evse_model.clock import Clock
from evse_model.faults import FaultType, Severity, lookup_fault
from evse_hal.pilot import read_pilot
from ccs_sim.precharge import PrechargeControl, PrechargeTimeout
from ccs_sim.safety import Measurements, SafetySupervisor, SupervisionContext, SupplyCurrentLimitHistory
from evse_model.session_errors import CommandRefused, SessionAbort  # noqa: F401 (re-exported)
from evse_model.session import STAGE_PHASE, EndReason, Phase, SessionParams, SessionSummary, Stage
from ccs_sim.settings import ControllerSettings
from ccs_sim.vehicle import empty_bms_view, empty_iso15118_view, empty_slac_view, sim_bms_view
from evse_hal.interfaces import EVSEHardware

log = logging.getLogger(__name__)


class SessionDriver(Protocol):
    """Runs one session's flow: the simulated script, or the ISO 15118 SECC's callbacks."""

    source: str

    async def run(self, controller: "ChargerController", session: "ActiveSession") -> None: ...


@dataclass
class ActiveSession:
    session_id: str
    params: SessionParams
    source: str
    started_at_s: float
    started_at: datetime
    charging_started_at_s: float | None = None
    summary: SessionSummary | None = None
    ev_info: dict[str, Any] = field(default_factory=dict)
    #: What the supervisor knows of this car (its maximum voltage, whether energy may flow): built fresh
    #: for each session, in force from the moment the session's own flow runs until its wind-down ends.
    supervision: SupervisionContext = field(default_factory=SupervisionContext)
    #: The meter counts for this session (started after the previous session's wind-down, reset at its own).
    owns_meter: bool = False
    #: The summary took the meter's final counts and the end listeners (records) ran: exactly once.
    finalised: bool = False


@dataclass(frozen=True)
class MeterReading:
    energy_Wh: float = 0.0
    avg_voltage_V: float = 0.0
    avg_current_A: float = 0.0
    session_time_s: float = 0.0


@dataclass(frozen=True)
class ContactorCommandResult:
    """What a contactor command did: for an open under load, the shutdown that came first."""

    #: The output current when the command arrived, and when the contactor opened (None: not opened).
    current_at_command_A: float = 0.0
    current_at_open_A: float | None = None
    #: The output was shut down to < 1 A before opening (the command came with 1 A or more flowing).
    shutdown_first: bool = False
    #: The fault raised when the supply did not follow its off command (the emergency shutdown opened).
    emergency: str | None = None

    def describe(self) -> str | None:
        if self.emergency is not None:
            return (f"{self.current_at_command_A:.1f} A flowing: the supply did not bring the current below "
                    f"1 A after it was disabled; {self.emergency} emergency shutdown opened the contactor")
        if self.shutdown_first:
            return (f"{self.current_at_command_A:.1f} A flowing: the output was shut down first and the contactor "
                    f"opened at {self.current_at_open_A:.2f} A (< 1 A, IEC 61851-23 / DG L1283)")
        return None


class ChargerController:
    #: How far the current limit may run ahead of the current flowing, in seconds of ramp.
    RAMP_HEADROOM_S = 0.1
    #: A contactor open command under load waits this long for the disabled supply to bring the current
    #: below 1 A (the supply contract: 0 A within 10 ms), then treats it as a SUPPLY_FAULT emergency, whose
    #: shutdown still opens within the 100 ms of IEC 61851-23 CC.5.4 (DG L6247-6249).
    COMMAND_OPEN_DEADLINE_S = 0.030

    def __init__(self, hardware: EVSEHardware, clock: Clock, settings: ControllerSettings | None = None,
                 supervisor: SafetySupervisor | None = None) -> None:
        self.hw = hardware
        self.clock = clock
        self.settings = settings or ControllerSettings()
        self.supervisor = supervisor or SafetySupervisor()
        capabilities = hardware.supply.get_capabilities()
        self.evse_max_voltage_V = min(self.settings.evse_max_voltage_V, capabilities.max_voltage_V)
        self.evse_max_current_A = min(self.settings.evse_max_current_A, capabilities.max_current_A)
        self.evse_max_power_W = min(self.settings.evse_max_power_W, capabilities.max_power_W)
        self.phase = Phase.IDLE
        self.stage = Stage.IDLE
        self.error: str | None = None
        self.session_active = False
        self.session: ActiveSession | None = None
        self.last_session_summary: SessionSummary | None = None
        #: The supervision context in force: the running (or winding-down) session's, else an idle one.
        self.context = self._idle_context()
        #: The current limits the supply was told (over-current is judged against these, not the ramp's plan).
        self.supply_limits = SupplyCurrentLimitHistory(self.supervisor.limits.supply_current_response_s)
        self.latest: Measurements | None = None
        self.meter_reading = MeterReading()
        self.requested_current_A = 0.0
        self.commanded_current_A = 0.0
        self.current_control_active = False
        self.active_fault: str | None = None
        self.fault_history: list[dict[str, Any]] = []
        self.refusals = 0
        self.late_ticks = 0
        self.max_tick_lateness_s = 0.0
        self.bms_view_override: dict[str, Any] | None = None
        self.slac_view: dict[str, Any] = empty_slac_view(clock.utcnow())
        self.iso15118_view: dict[str, Any] = empty_iso15118_view()
        self.session_end_listeners: list[Callable[[SessionSummary], Awaitable[None] | None]] = []
        self.session_start_listeners: list[Callable[[ActiveSession], Awaitable[None] | None]] = []
        self.fault_listeners: list[Callable[[FaultType], Awaitable[None] | None]] = []
        self.tick_listeners: list[Callable[[], None]] = []
        self._session_task: asyncio.Task[None] | None = None
        #: Shutdowns under way (a session's normal wind-down, a fault's emergency open), each finishing
        #: its own session's record; none is ever cancelled by a later session or fault.
        self._shutdown_tasks: set[asyncio.Task[None]] = set()
        #: The shutdown that holds the output now (a later, more severe fault may take over the output,
        #: but the earlier task still finishes its session).
        #: The latest fault's shutdown (its severity and task): a later fault escalates it or joins it.
        self._fault_shutdown: tuple[Severity, asyncio.Task[None]] | None = None
        self._control_task: asyncio.Task[None] | None = None
        #: ``shutdown`` has begun: the process is stopping, sessions are not ended as if complete.
        self._stopping = False
        self._last_tick_s: float | None = None
        self._sim_driver_factory: Callable[[], SessionDriver] | None = None

    # --- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Put the hardware in its safe state and start the control loop."""
        await self.put_outputs_safe()
        self._control_task = asyncio.create_task(self._control_loop(), name="control-loop")

    def _idle_context(self) -> SupervisionContext:
        return SupervisionContext(evse_max_voltage_V=self.evse_max_voltage_V)

    def _track_shutdown(self, coroutine: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._shutdown_tasks.add(task)
        task.add_done_callback(self._shutdown_tasks.discard)
        return task

    @property
    def shutting_down(self) -> bool:
        """A shutdown (wind-down or emergency open) is still bringing the output to its safe state."""
        return any(not task.done() for task in self._shutdown_tasks)

    async def wait_quiescent(self) -> None:
        """Return once no shutdown is under way (every earlier session's record is final)."""
        while True:
            pending = [task for task in self._shutdown_tasks if not task.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    async def shutdown(self) -> None:
        # A session cut by the process stopping is not ended here (no summary, no wind-down of its own):
        # the records close it as interrupted, with its last checkpoint. Repeat until nothing of ours runs.
        self._stopping = True
        while True:
            tasks = [task for task in (self._session_task, *self._shutdown_tasks, self._control_task)
                     if task is not None and not task.done()]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            for task in tasks:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        await self.put_outputs_safe()
        await self.io(self.hw.close)

    async def put_outputs_safe(self) -> None:
        """Supply off, contactor open, oscillator off (X1): the state after start-up or a crash."""
        await self.io(self.hw.supply.emergency_off)
        await self.io(self.hw.contactor.set_closed, False)
        await self.io(self.hw.pwm.set_duty, 100.0)
        await self.io(self.hw.imd.stop_measurement)

    async def io(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a driver method; in a worker thread when the adapter's calls can block."""
        if self.hw.blocking:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    # --- measurements and the control loop ----------------------------------------------------------
    async def measure(self) -> Measurements:
        """Read every sensor once (in one worker-thread hop when the adapter blocks)."""
        if self.hw.blocking:
            return await asyncio.to_thread(self._measure_sync)
        return self._measure_sync()

    def _measure_sync(self) -> Measurements:
        hw = self.hw
        duty = hw.pwm.get_duty()
        supply_V, supply_A = hw.supply.get_status()
        cp_positive_V = hw.cp.read_voltage()
        cp_negative_V = hw.cp.read_negative_plateau_V()
        return Measurements(
            time_s=self.clock.now(),
            pilot=read_pilot(cp_positive_V, cp_negative_V, duty),
            cp_positive_V=cp_positive_V,
            cp_negative_V=cp_negative_V,
            duty_percent=duty,
            contactor_closed=hw.contactor.is_closed(),
            output_voltage_V=hw.meter.read_voltage_V(),
            output_current_A=hw.meter.read_current_A(),
            supply_voltage_V=supply_V,
            supply_current_A=supply_A,
            isolation_ohm=hw.imd.read_isolation_ohm(),
            connector_temperature_C=hw.temperature.read_connector_temperature_C(),
            estop_pressed=bool(hw.estop and hw.estop.is_pressed()),
        )

    def _meter_sync(self, sample: Measurements | None) -> "MeterReading":
        meter = self.hw.meter
        if sample is not None:
            meter.update(sample.output_voltage_V, sample.output_current_A)
        return MeterReading(energy_Wh=meter.get_energy_Wh(), avg_voltage_V=meter.get_avg_voltage(),
                            avg_current_A=meter.get_avg_current(), session_time_s=meter.get_session_time_s())

    async def _control_loop(self) -> None:
        period_s = self.settings.control_period_s
        # A scaled clock runs only as fast as the ticks can be computed (its governor lowers the speed in
        # force and bounds what one tick integrates); a manual or real clock has none.
        make_governor = getattr(self.clock, "governor", None)
        governor = make_governor(period_s) if make_governor is not None else None
        next_tick_s = self.clock.now()
        try:
            while True:
                if governor is not None:
                    governor.tick_started()
                await self.tick()
                if governor is not None:
                    governor.tick_finished()
                next_tick_s += period_s
                now_s = self.clock.now()
                lateness_s = now_s - next_tick_s
                if lateness_s > period_s:
                    self.late_ticks += 1
                    self.max_tick_lateness_s = max(self.max_tick_lateness_s, lateness_s)
                    next_tick_s = now_s
                await self.clock.sleep(max(0.0, next_tick_s - now_s))
        finally:
            if governor is not None:
                governor.close()

    async def tick(self) -> None:
        """One control step: measure, meter, ramp the current, look for faults, notify listeners."""
        now_s = self.clock.now()
        dt_s = 0.0 if self._last_tick_s is None else max(0.0, now_s - self._last_tick_s)
        self._last_tick_s = now_s
        m = await self.measure()
        self.latest = m
        await self.read_meter(m)
        # Judge the reading against the limits the supply was actually told during its response time
        # before the reading: not against a ramp step planned but not yet sent, nor one the stage had no
        # time to follow (a late tick at high simulation speed makes both large).
        judged_limit_A = self.supply_limits.highest_in_force_A(m.time_s)
        if self.current_control_active:
            await self._ramp_current(dt_s)
        self.context.commanded_current_limit_A = judged_limit_A
        fault = self.supervisor.find_fault(m, self.context)
        if fault is not None and self.active_fault is None:
            log.warning("supervisor detected %s", fault)
            await self.raise_fault(fault, source="supervisor")
        for listener in self.tick_listeners:
            listener()

    async def read_meter(self, sample: Measurements | None = None) -> "MeterReading":
        """Feed ``sample`` to the meter (if given) and read its counters."""
        if self.hw.blocking:
            self.meter_reading = await asyncio.to_thread(self._meter_sync, sample)
        else:
            self.meter_reading = self._meter_sync(sample)
        return self.meter_reading

    async def _ramp_current(self, dt_s: float) -> None:
        step_up = self.settings.current_ramp_up_A_per_s * dt_s
        step_down = self.settings.current_ramp_down_A_per_s * dt_s
        target = min(self.requested_current_A, self.evse_max_current_A)
        if target > self.commanded_current_A:
            # The limit rises with the current actually flowing: when the battery takes less than the
            # limit (voltage-limited), a later voltage step cannot jump the current by more than the headroom.
            flowing_A = self.latest.output_current_A if self.latest is not None else 0.0
            headroom_A = max(standards.PRECHARGE_CURRENT_LIMIT_A,
                             self.settings.current_ramp_up_A_per_s * self.RAMP_HEADROOM_S)
            self.commanded_current_A = min(target, self.commanded_current_A + step_up,
                                           max(self.commanded_current_A, flowing_A + headroom_A))
        else:
            self.commanded_current_A = max(target, self.commanded_current_A - step_down)
        await self.set_supply_current_limit(self.commanded_current_A)

    async def set_supply_current_limit(self, limit_A: float) -> None:
        """Tell the power stage its current limit. Every limit goes through here: the supervisor judges
        the output current against the limits the stage was told (``supply_limits``)."""
        self.supply_limits.told(self.clock.now(), limit_A)
        await self.io(self.hw.supply.set_current_limit, limit_A)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Poll ``condition`` every control period (simulated time); False if ``timeout_s`` passes first."""
        deadline_s = self.clock.now() + timeout_s
        while not condition():
            if self.clock.now() >= deadline_s:
                return False
            await self.clock.sleep(self.settings.control_period_s)
        return True

    async def hold(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    # --- state ------------------------------------------------------------------------------------
    def set_stage(self, stage: Stage) -> None:
        self.stage = stage
        if self.session_active and stage in STAGE_PHASE:
            self.phase = STAGE_PHASE[stage]

    def register_sim_driver(self, factory: Callable[[], SessionDriver]) -> None:
        self._sim_driver_factory = factory

    def persistent_fault_reason(self) -> str | None:
        """A condition that forbids starting a session now (it would fault at once), or None."""
        m = self.latest
        if m is None:
            return None
        if m.estop_pressed:
            return "emergency stop is pressed"
        if m.connector_temperature_C > self.supervisor.limits.connector_temperature_limit_C:
            return f"connector temperature {m.connector_temperature_C:.1f} °C above its limit"
        return None

    # --- sessions ------------------------------------------------------------------------------------
    def start_session(self, params: SessionParams, driver: SessionDriver | None = None) -> ActiveSession:
        """Start a session. Atomic: the check and the claim happen with no await in between."""
        if self.session_active:
            raise CommandRefused("Session already in progress")
        blocked = self.persistent_fault_reason()
        if blocked:
            raise CommandRefused(f"cannot start: {blocked}")
        if driver is None:
            if self._sim_driver_factory is None or self.hw.simulation is None:
                raise CommandRefused("no simulated car on this adapter: sessions come from the ISO 15118 SECC")
            driver = self._sim_driver_factory()
        session = ActiveSession(session_id=uuid.uuid4().hex[:12], params=params, source=driver.source,
                                started_at_s=self.clock.now(), started_at=self.clock.utcnow(),
                                supervision=self._idle_context())
        self.session = session
        self.session_active = True
        self.error = None
        self.active_fault = None
        self.phase = Phase.HANDSHAKE
        self.stage = Stage.PLUG_IN
        self.bms_view_override = None
        self._session_task = asyncio.create_task(self._run_session(driver, session), name=f"session-{session.session_id}")
        return session

    async def _run_session(self, driver: SessionDriver, session: ActiveSession) -> None:
        # Every earlier shutdown finishes first (its session's record takes the meter's final counts);
        # nothing of this session touches the output, the meter or the supervision before that.
        await self.wait_quiescent()
        try:
            self._take_over_for(session)
            await self.io(self.hw.meter.start)
            session.owns_meter = True
            for listener in self.session_start_listeners:
                result = listener(session)
                if asyncio.iscoroutine(result):
                    await result
            await driver.run(self, session)
        except SessionAbort as abort:
            if self.session is session and self.session_active:
                await self.raise_fault(abort.fault_name, source="session", message=str(abort))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug must still leave the charger safe and the record written
            log.exception("session %s failed", session.session_id)
            if self.session is session and self.session_active:
                await self.raise_fault("SUPPLY_FAULT" if isinstance(error, OSError) else "HLC_FAILURE",
                                       source="session", message=repr(error))
        finally:
            if self.session is session and self.session_active and not self._stopping:
                # the driver returned without ending the session: end it normally
                self.end_session(Phase.COMPLETE, None, EndReason.DURATION_ELAPSED)

    def _take_over_for(self, session: ActiveSession) -> None:
        """Per-session state, built fresh: the new car's supervision context, no current asked or
        commanded, no current control, the supply told 0 A."""
        self.context = session.supervision
        self.requested_current_A = self.commanded_current_A = 0.0
        self.current_control_active = False
        self.supply_limits.told(self.clock.now(), 0.0)

    def _release(self, session: ActiveSession | None) -> None:
        """A shutdown is over: the supervision context goes back to idle unless a newer session owns it."""
        if session is not None and self.context is session.supervision:
            self.context = self._idle_context()

    def _set_stage_for(self, session: ActiveSession | None, stage: Stage) -> None:
        """A shutdown reports its stage only while its session is still the controller's latest one (or,
        for a shutdown without a session, while no session runs)."""
        if (self.session is session) if session is not None else not self.session_active:
            self.set_stage(stage)

    def request_stop(self) -> bool:
        """``/stop_session``: the session ends ABORTED now; the output ramps down ≤ 100 A/s and opens < 1 A."""
        if not self.session_active:
            return False
        self.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)
        return True

    def end_session(self, phase: Phase, error: str | None, reason: EndReason) -> None:
        """End the running session logically (phase, summary) and start the physical wind-down."""
        session = self.session
        if session is None or not self.session_active:
            return
        self.session_active = False
        self.phase = phase
        self.error = error
        if self.context is session.supervision:
            # Only a session that took the output over touches its control: a session ended while an
            # earlier one still winds down must not stop that ramp.
            self.current_control_active = False
            self.requested_current_A = 0.0
            self.context.energy_transfer_expected = False
            self.context.precharging = False
        session.summary = self._summary_now(session, phase, error, reason)
        self.last_session_summary = session.summary
        if self._session_task is not None and self._session_task is not asyncio.current_task():
            self._session_task.cancel()
        if reason is not EndReason.FAULT:
            self.set_stage(Stage.RAMP_DOWN)
            earlier = [task for task in self._shutdown_tasks if not task.done()]
            self._track_shutdown(self._wind_down_normally(session, earlier), f"wind-down-{session.session_id}")

    def session_meter_reading(self, session: ActiveSession) -> MeterReading:
        """The meter's counts for ``session``: zero unless the meter counts for it (a session that ended
        before the previous one's wind-down finished never had the meter)."""
        return self.meter_reading if session.owns_meter else MeterReading()

    def _summary_now(self, session: ActiveSession, phase: Phase, error: str | None,
                     reason: EndReason) -> SessionSummary:
        meter = self.session_meter_reading(session)
        charging_time_s = 0.0 if session.charging_started_at_s is None else \
            self.clock.now() - session.charging_started_at_s
        ev_info = dict(session.ev_info)
        ev_info.update({key: value for key, value in self.bms_view().items()
                        if key in ("evcc_id", "present_soc", "protocol", "total_battery_capacity")})
        return SessionSummary(
            energy_Wh=round(meter.energy_Wh, 6),
            avg_voltage=round(meter.avg_voltage_V, 6),
            avg_current=round(meter.avg_current_A, 6),
            duration_s=round(self.clock.now() - session.started_at_s, 6),
            ended_phase=phase.value,
            error=error,
            session_id=session.session_id,
            end_reason=reason.value,
            charging_time_s=round(charging_time_s, 6),
            started_at=session.started_at.isoformat(),
            ended_at=self.clock.utcnow().isoformat(),
            source=session.source,
            ev=ev_info,
        )

    async def _finalise_session(self, session: ActiveSession) -> None:
        """After the output is off, exactly once per session: the summary takes the meter's final counts
        (if the meter counted for this session; then it resets) and the end listeners (records) run."""
        if session.finalised:
            return
        session.finalised = True
        summary = session.summary
        if session.owns_meter:
            meter = await self.read_meter()
            if summary is not None:
                summary.energy_Wh = round(meter.energy_Wh, 6)
                summary.avg_voltage = round(meter.avg_voltage_V, 6)
                summary.avg_current = round(meter.avg_current_A, 6)
            await self.io(self.hw.meter.reset)
            session.owns_meter = False
            await self.read_meter()
        if summary is not None:
            for listener in self.session_end_listeners:
                try:
                    result = listener(summary)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("session-end listener failed for %s", session.session_id)
        self._set_stage_for(session, Stage.ENDED)

    async def _wind_down_normally(self, session: ActiveSession, earlier: list[asyncio.Task[None]]) -> None:
        took_over = self.context is session.supervision
        try:
            if took_over:
                await self.ramp_down_and_open(session)
            elif earlier:
                await asyncio.wait(earlier)  # the output is an earlier session's: its shutdown ends first
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("normal wind-down failed; forcing the safe state")
            await self.put_outputs_safe()
        finally:
            if took_over:
                await self.io(self.hw.pwm.set_duty, 100.0)
            await self._finalise_session(session)
            self._release(session)

    async def ramp_down_and_open(self, session: ActiveSession | None = None) -> None:
        """Normal shutdown: current down at ≤ 100 A/s (DG L4110), output off and contactor open below 1 A.
        ``session``: the session this shutdown ends (default: the latest one; its stage is reported only
        while it is the latest)."""
        if session is None:
            session = self.session
        self.requested_current_A = 0.0
        if self.latest is not None:
            # The ramp starts from the current that flows: a limit far above it (a voltage-limited battery
            # taking less than the EV asked for) need not be walked down at 100 A/s first. The supply keeps
            # the limit it was told until the next ramp step tells it the lower one.
            self.commanded_current_A = min(self.commanded_current_A, max(0.0, self.latest.output_current_A))
        self.current_control_active = True
        reached = await self.wait_until(
            lambda: self.commanded_current_A <= 0.0 and self.latest is not None
            and self.latest.output_current_A < standards.CONTACTOR_OPEN_MAX_CURRENT_A,
            self.settings.ramp_down_timeout_s)
        self.current_control_active = False
        await self.set_supply_current_limit(0.0)
        await self.io(self.hw.supply.set_enabled, False)
        if not reached:
            log.error("current did not fall below 1 A within %.1f s; emergency off", self.settings.ramp_down_timeout_s)
            await self.io(self.hw.supply.emergency_off)
            await self._wait_current_below(standards.EMERGENCY_CURRENT_A, standards.EMERGENCY_CURRENT_DEADLINE_S)
        self._set_stage_for(session, Stage.WELDING_DETECTION)
        await self.io(self.hw.contactor.set_closed, False)
        await self.io(self.hw.imd.stop_measurement)
        self.commanded_current_A = 0.0
        await self.tick_now()

    async def _wait_current_below(self, limit_A: float, within_s: float) -> bool:
        deadline_s = self.clock.now() + within_s
        while True:
            current_A = await self.io(self.hw.meter.read_current_A)
            if current_A < limit_A:
                return True
            if self.clock.now() >= deadline_s:
                return False
            await self.clock.sleep(0.001)

    # --- faults -------------------------------------------------------------------------------------------
    async def raise_fault(self, name: str, source: str = "api", message: str = "") -> tuple[FaultType, bool]:
        """Shut the output down for a fault: the part that stops energy runs before this returns.

        Supply off at once (both severities); emergency also stops the oscillator (X1). The session (if
        any) ends ABORTED with ``error`` = the fault name; the contactor opens once the current is below
        5 A (emergency) or 1 A (error), within 100 ms at the latest, in a shutdown task of its own. No
        shutdown already under way is cancelled: each finishes its own session's record.
        """
        fault, known = lookup_fault(name)
        fault_name = name.strip() if not known else fault.name
        self.fault_history.append({"type": fault_name, "severity": fault.severity.value, "source": source,
                                   "known": known, "message": message, "time_s": self.clock.now(),
                                   "at": self.clock.utcnow().isoformat()})
        running = self._fault_shutdown
        if not self.session_active and self.active_fault is not None and running is not None \
                and not running[1].done() \
                and (running[0] is Severity.EMERGENCY or fault.severity is Severity.ERROR):
            return fault, known  # a shutdown at least as severe is already under way, and no session to end
        self.active_fault = fault_name
        self.current_control_active = False
        self.requested_current_A = self.commanded_current_A = 0.0
        self.supply_limits.told(self.clock.now(), 0.0)
        await self.io(self.hw.supply.emergency_off)
        if fault.severity is Severity.EMERGENCY:
            await self.io(self.hw.pwm.set_duty, 100.0)
        session = self.session if self.session_active else None
        if session is not None:
            self.end_session(Phase.ABORTED, fault_name, EndReason.FAULT)
        else:
            self.phase = Phase.ABORTED
            self.error = fault_name
        self.stage = Stage.EMERGENCY_SHUTDOWN
        task = self._track_shutdown(self._emergency_open(fault, session), f"emergency-open-{fault_name}")
        self._fault_shutdown = (fault.severity, task)
        for listener in self.fault_listeners:
            result = listener(fault)
            if asyncio.iscoroutine(result):
                await result
        return fault, known

    async def _emergency_open(self, fault: FaultType, session: ActiveSession | None) -> None:
        try:
            emergency = fault.severity is Severity.EMERGENCY
            limit_A = standards.EMERGENCY_CURRENT_A if emergency else standards.CONTACTOR_OPEN_MAX_CURRENT_A
            # Open as soon as the current allows, and within 90 ms whatever happens (< 100 ms budget).
            if not await self._wait_current_below(limit_A, 0.090) and not emergency:
                # Only an emergency opens under load: the stage did not follow its off command, which is one.
                current_A = await self.io(self.hw.meter.read_current_A)
                self._record_escalation(fault, current_A)
                await self.io(self.hw.pwm.set_duty, 100.0)
            await self.io(self.hw.contactor.set_closed, False)
            await self.io(self.hw.imd.stop_measurement)
            await self.tick_now()
            if fault.severity is not Severity.EMERGENCY and (session is None or session.source != "hlc"):
                # Error shutdown kept the oscillator for the HLC session to end cleanly; without one, X1 now.
                await self.io(self.hw.pwm.set_duty, 100.0)
            if session is not None:
                await self._finalise_session(session)
            self._set_stage_for(session, Stage.ENDED)
        finally:
            if session is not None:
                self._release(session)

    def _record_escalation(self, fault: FaultType, current_A: float) -> None:
        log.error("%s: the output still carried %.1f A after the supply was switched off; opening as an "
                  "emergency (SUPPLY_FAULT)", fault.name, current_A)
        self.fault_history.append({"type": "SUPPLY_FAULT", "severity": Severity.EMERGENCY.value,
                                   "source": "supervisor", "known": True,
                                   "message": f"{current_A:.1f} A after the supply was switched off for {fault.name}",
                                   "time_s": self.clock.now(), "at": self.clock.utcnow().isoformat()})

    # --- primitives used by session drivers ---------------------------------------------------------
    def ev_side_voltage_V(self) -> float | None:
        """The voltage of a stiff source on the EV side of the contactor, if one is known to be there."""
        m = self.latest
        if m is not None and not m.contactor_closed and m.output_voltage_V > standards.SAFE_DC_VOLTAGE_V:
            return m.output_voltage_V
        if self.session_active and self.stage in (Stage.CHARGING, Stage.CURRENT_RAMP, Stage.OUTPUT_INTERRUPTED):
            present = self.bms_view().get("present_voltage")
            if present:
                return float(present)
        return None

    async def set_contactor(self, closed: bool) -> ContactorCommandResult:
        """Open or close the output contactor.

        Closing is vetted by the supervisor (|V_out - V_ev| < 20 V). Opening never breaks DC under load:
        with 1 A or more flowing, the output is shut down first (an error shutdown: current control off,
        supply disabled, which brings the current to 0 within 10 ms by the supply's contract, not the
        100 A/s ramp) and the contactor opens once the current is below 1 A (DG L1283-1285). If the
        current does not fall below 1 A within ``COMMAND_OPEN_DEADLINE_S``, the power stage did not
        follow: that is a SUPPLY_FAULT emergency, recorded as one, and the emergency shutdown opens.
        """
        if closed:
            supply_V, _ = await self.io(self.hw.supply.get_status)
            refusal = self.supervisor.vet_contactor_close(supply_V, self.ev_side_voltage_V())
            if refusal:
                self.refusals += 1
                raise CommandRefused(refusal)
            await self.io(self.hw.contactor.set_closed, True)
            await self.tick_now()
            return ContactorCommandResult()
        current_A = await self.io(self.hw.meter.read_current_A)
        if current_A < standards.CONTACTOR_OPEN_MAX_CURRENT_A:
            await self.io(self.hw.contactor.set_closed, False)
            await self.tick_now()
            return ContactorCommandResult(current_at_command_A=current_A, current_at_open_A=current_A)
        log.warning("contactor open commanded under load (%.1f A): shutting the output down first", current_A)
        self.current_control_active = False
        self.requested_current_A = self.commanded_current_A = 0.0
        await self.set_supply_current_limit(0.0)
        await self.io(self.hw.supply.set_enabled, False)
        if not await self._wait_current_below(standards.CONTACTOR_OPEN_MAX_CURRENT_A, self.COMMAND_OPEN_DEADLINE_S):
            still_A = await self.io(self.hw.meter.read_current_A)
            await self.raise_fault("SUPPLY_FAULT", source="supervisor",
                                   message=f"{still_A:.1f} A flowing {self.COMMAND_OPEN_DEADLINE_S * 1000:.0f} ms "
                                           f"after the supply was disabled for a contactor open command")
            return ContactorCommandResult(current_at_command_A=current_A, shutdown_first=True,
                                          emergency="SUPPLY_FAULT")
        opened_at_A = await self.io(self.hw.meter.read_current_A)
        await self.io(self.hw.contactor.set_closed, False)
        await self.tick_now()
        return ContactorCommandResult(current_at_command_A=current_A, current_at_open_A=opened_at_A,
                                      shutdown_first=True)

    async def set_pwm_duty(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise CommandRefused(f"duty must be within 0..100 %, got {duty_percent}")
        await self.io(self.hw.pwm.set_duty, duty_percent)
        await self.tick_now()

    async def set_cp_state(self, state: str) -> None:
        await self.io(self.hw.cp.simulate_state, state)
        await self.tick_now()

    async def tick_now(self) -> None:
        """Re-measure at once after a command, so the supervisor reacts without waiting for the next tick."""
        await self.tick()

    async def cable_check(self, ev_max_voltage_V: float | None) -> str:
        """Close the output, apply the CC.1 test voltage at ≤ 2 A, measure insulation, then (with
        ``discharge_after_cable_check``, the default) switch the supply off and return only once the output is
        below 60 V (IEC 61851-23:2023 CC.4.1.2), so that precharge starts from a safe voltage and rises to the
        EV's. Returns the level: VALID or WARNING (raises SessionAbort on FAULT, when no measurement arrives in
        time, or when the output does not fall below 60 V within ``discharge_timeout_s``)."""
        session = self.session
        await self.until_taken_over(session)
        test_V = standards.cable_check_test_voltage_V(ev_max_voltage_V, self.evse_max_voltage_V)
        self.note_ev_max_voltage(ev_max_voltage_V)
        self.set_stage(Stage.CABLE_CHECK)
        started_s = self.clock.now()
        await self.set_contactor(True)
        await self.io(self.hw.imd.start_measurement)
        await self.set_supply_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
        await self.io(self.hw.supply.set_voltage, test_V)
        await self.io(self.hw.supply.set_enabled, True)
        reading: list[float] = []

        def measured() -> bool:
            m = self.latest
            if m is None or m.isolation_ohm is None or abs(m.output_voltage_V - test_V) > 0.05 * test_V + 1.0:
                return False
            reading.append(m.isolation_ohm)
            return True

        if not await self.wait_until(measured, self.settings.cable_check_timeout_s):
            raise SessionAbort("CABLE_CHECK_FAILED", f"no insulation measurement at {test_V:.0f} V")
        remaining_s = self.settings.cable_check_s - (self.clock.now() - started_s)
        if remaining_s > 0:
            await self.hold(remaining_s)
        level = self.isolation_level(reading[-1])
        if level == "FAULT":
            raise SessionAbort("ISOLATION_FAULT", f"insulation {reading[-1]:.0f} Ω at {test_V:.0f} V")
        if self.session is not session or not self.session_active:
            # The session ended (a fault, a stop) while this check ran: its supply is no longer ours to command.
            raise SessionAbort("CABLE_CHECK_FAILED", "the session ended during the cable check")
        if self.settings.discharge_after_cable_check:
            await self.discharge_output(self.settings.discharge_timeout_s)
        return level

    async def until_taken_over(self, session: ActiveSession | None) -> None:
        """Wait until ``session`` owns the output (every earlier shutdown has finished and written its record):
        the SECC may ask for a cable check while the previous car's wind-down still runs. Raises SessionAbort
        if the session ends first."""
        while session is not None and self.context is not session.supervision:
            if self.session is not session or not self.session_active:
                raise SessionAbort("CABLE_CHECK_FAILED", "the session ended before it took over the output")
            await self.clock.sleep(self.settings.control_period_s)

    def isolation_level(self, resistance_ohm: float) -> str:
        """IEC 61851-23 thresholds: FAULT < 100 kΩ; with the 2014 edition WARNING below 500 Ω/V."""
        if resistance_ohm < standards.ISOLATION_FAULT_OHM:
            return "FAULT"
        if self.settings.isolation_edition == "2014" and \
                resistance_ohm < standards.ISOLATION_WARNING_OHM_PER_V * self.evse_max_voltage_V:
            return "WARNING"
        return "VALID"

    async def precharge(self, target_V: Callable[[], float], timeout_s: float) -> None:
        """Bring the output to ``target_V()`` at ≤ 2 A; raises SessionAbort(PRECHARGE_TIMEOUT)."""
        self.set_stage(Stage.PRECHARGE)
        self.context.precharging = True
        control = PrechargeControl(target_V(), timeout_s, self.clock.now(), self.evse_max_voltage_V)
        try:
            while True:
                control.retarget(target_V(), self.evse_max_voltage_V)
                setpoint = control.setpoint()
                await self.set_supply_current_limit(setpoint.current_limit_A)
                await self.io(self.hw.supply.set_voltage, setpoint.voltage_V)
                await self.io(self.hw.supply.set_enabled, True)
                m = self.latest
                if m is not None and m.contactor_closed and control.reached(m.output_voltage_V):
                    return
                if control.timed_out(self.clock.now()):
                    reached_V = m.output_voltage_V if m else 0.0
                    raise SessionAbort("PRECHARGE_TIMEOUT", str(PrechargeTimeout(control.target_V, reached_V,
                                                                                 timeout_s)))
                await self.clock.sleep(self.settings.control_period_s)
        finally:
            self.context.precharging = False

    async def precharge_step(self, target_V: float, current_A: float = standards.PRECHARGE_CURRENT_LIMIT_A) -> float:
        """One non-blocking precharge step (the HLC flow: one per PreChargeReq): the output is driven
        towards ``target_V`` (clamped to 0…EVSE max) with at most 2 A (IEC 61851-23 CC.5.2); the target
        is re-applied each call (standards.md §2.3, BMW i3 quirk). Returns the voltage set.
        ``begin_energy_transfer`` (or the end of the session) ends the precharge supervision."""
        if self.stage is not Stage.PRECHARGE:
            self.set_stage(Stage.PRECHARGE)
        self.context.precharging = True
        voltage_V = min(max(0.0, target_V), self.evse_max_voltage_V)
        await self.set_supply_current_limit(self.supervisor.clamp_precharge_current(current_A))
        await self.io(self.hw.supply.set_voltage, voltage_V)
        await self.io(self.hw.supply.set_enabled, True)
        return voltage_V

    async def discharge_output(self, timeout_s: float) -> None:
        """Switch the supply off and wait until the output is below 60 V (IEC 61851-23:2023 CC.4.1.2; EVerest's
        ``cable_check_wait_below_60V_before_finish``): the power stage's active discharge empties the output
        capacitance. The contactor stays closed, so the meter shows the fall. Raises
        SessionAbort(CABLE_CHECK_FAILED) if the output is still at or above 60 V after ``timeout_s``."""
        await self.set_supply_current_limit(0.0)
        await self.io(self.hw.supply.set_voltage, 0.0)
        await self.io(self.hw.supply.set_enabled, False)

        def below_safe_voltage() -> bool:
            m = self.latest
            return m is not None and \
                max(m.output_voltage_V, m.supply_voltage_V) < standards.CABLE_CHECK_DISCHARGE_BELOW_V

        if not await self.wait_until(below_safe_voltage, timeout_s):
            m = self.latest
            voltage_V = max(m.output_voltage_V, m.supply_voltage_V) if m is not None else float("nan")
            raise SessionAbort("CABLE_CHECK_FAILED",
                               f"output still at {voltage_V:.0f} V {timeout_s:.1f} s after the insulation test "
                               f"(must fall below {standards.CABLE_CHECK_DISCHARGE_BELOW_V:.0f} V)")

    def note_ev_max_voltage(self, ev_max_voltage_V: float | None) -> None:
        """The car's maximum voltage, once known (before the cable check): from then on this session's
        over-voltage protection follows it (IEC 61851-23:2023 6.3.1.106.2 Table 103). It lives in the
        session's own supervision context, so the next car starts from the EVSE's own limit again."""
        if ev_max_voltage_V is not None and ev_max_voltage_V > 0:
            self.context.negotiated_max_voltage_V = ev_max_voltage_V

    async def begin_energy_transfer(self, negotiated_max_voltage_V: float | None) -> None:
        self.context.precharging = False
        self.context.energy_transfer_expected = True
        self.note_ev_max_voltage(negotiated_max_voltage_V)
        if self.session is not None and self.session.charging_started_at_s is None:
            self.session.charging_started_at_s = self.clock.now()
        self.commanded_current_A = min(self.commanded_current_A, standards.PRECHARGE_CURRENT_LIMIT_A)
        self.current_control_active = True
        self.set_stage(Stage.CURRENT_RAMP)

    async def set_charge_targets(self, voltage_V: float, current_A: float, power_W: float | None = None) -> None:
        """EV targets → setpoints, clamped to the EVSE's limits; the current follows at the ramp rate."""
        voltage_V = min(max(0.0, voltage_V), self.evse_max_voltage_V)
        limit_W = self.evse_max_power_W if power_W is None else min(power_W, self.evse_max_power_W)
        self.requested_current_A = min(max(0.0, current_A), self.evse_max_current_A)
        await self.io(self.hw.supply.set_voltage, voltage_V)
        await self.io(self.hw.supply.set_power_limit, limit_W)
        if self.stage is Stage.CURRENT_RAMP and abs(self.commanded_current_A - self.requested_current_A) < 0.5:
            self.set_stage(Stage.CHARGING)

    # --- views -----------------------------------------------------------------------------------------
    def bms_view(self) -> dict[str, Any]:
        if self.bms_view_override is not None:
            return self.bms_view_override
        sim = self.hw.simulation
        if sim is not None and getattr(sim, "ev", None) is not None and sim.ev.plugged_in:
            present_V = self.latest.output_voltage_V if self.latest else 0.0
            return sim_bms_view(sim.ev, present_V)
        return empty_bms_view()

    def status_view(self) -> dict[str, Any]:
        m = self.latest
        cp_state = m.pilot.state if m else "A"
        session = self.session
        time_s = 0.0
        if session is not None and self.session_active:
            time_s = self.clock.now() - session.started_at_s
        summary = self.last_session_summary.to_dict() if self.last_session_summary else None
        return {
            "session_active": self.session_active,
            "phase": self.phase.value,
            "error": self.error,
            "contactor_closed": bool(m.contactor_closed) if m else False,
            "cp_state": cp_state,
            "voltage": round(m.output_voltage_V, 3) if m else 0.0,
            "current": round(m.output_current_A, 3) if m else 0.0,
            "energy_Wh": round(self.meter_reading.energy_Wh, 6),
            "time_s": round(time_s, 3),
            "last_session_summary": summary,
            # additive fields
            "stage": self.stage.value,
            "session_id": session.session_id if session else None,
            "cp_sub_state": m.pilot.sub_state if m else None,
            "cp_voltage": round(m.cp_positive_V, 3) if m else None,
            "pwm_duty": m.duty_percent if m else None,
            "supply_voltage": round(m.supply_voltage_V, 3) if m else 0.0,
            "supply_current": round(m.supply_current_A, 3) if m else 0.0,
            "power_W": round(m.output_voltage_V * m.output_current_A, 1) if m else 0.0,
            "isolation_ohm": m.isolation_ohm if m else None,
            "connector_temperature_C": round(m.connector_temperature_C, 2) if m else None,
            "requested_current": round(self.requested_current_A, 3),
            "commanded_current": round(self.commanded_current_A, 3),
            "active_fault": self.active_fault,
            "clock_s": round(self.clock.now(), 3),
            # The speed in force (a scaled clock's governor holds it below the request while the machine
            # cannot keep up), and the one requested; None on a manual clock.
            "speed": round(self.clock.speed, 3) if self.clock.speed != float("inf") else None,
            "speed_requested": getattr(self.clock, "requested_speed", None) or (
                self.clock.speed if self.clock.speed != float("inf") else None),
            "adapter": self.hw.name,
        }

    def meter_view(self) -> dict[str, Any]:
        reading, m = self.meter_reading, self.latest
        return {
            "energy_Wh": round(reading.energy_Wh, 6),
            "avg_voltage": round(reading.avg_voltage_V, 6),
            "avg_current": round(reading.avg_current_A, 6),
            "session_time_s": round(reading.session_time_s, 6),
            "voltage": round(m.output_voltage_V, 3) if m else 0.0,
            "current": round(m.output_current_A, 3) if m else 0.0,
        }
