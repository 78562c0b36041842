"""The charger controller: one HAL instance, one control loop, the session state and every command.

The API, the simulated session script and the ISO 15118 SECC all act through this object; the safety
supervisor vets its commands and watches its measurements. It owns the hardware: nothing else writes
to a device. ``ChargerController`` is the façade over the controller core (``ccs_sim/core/``), whose
parts each do one job: the control loop (``control_loop``), the device-writing path (``outputs``), the
DC sequence (``dc_sequence``), the session lifecycle (``sessions``), fault shutdown (``fault_shutdown``),
the read-only views (``views``) and the event bus (``events``). Phase and stage belong to the session
state machine (``ccs_sim/orchestrator.py``), whose one writer this controller's ``set_stage`` feeds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ccs_sim.core.control_loop import ControlLoop
from ccs_sim.core.dc_sequence import DcSequence
from ccs_sim.core.events import EventBus, Listener, Topic
from ccs_sim.core.fault_shutdown import FaultShutdown
from ccs_sim.core.limits import LimitsInForce
from ccs_sim.core.outputs import Outputs
from ccs_sim.core.ports import SessionDriver
from ccs_sim.core.safety import (
    FeedbackWatch,
    Measurements,
    SafetySupervisor,
    SupervisionContext,
    SupplyCurrentLimitHistory,
)
from ccs_sim.core.sessions import SessionLifecycle
from ccs_sim.core.types import ActiveSession, ContactorCommandResult, MeterReading
from ccs_sim.core.views import Views
from ccs_sim.orchestrator import SessionStateMachine
from ccs_sim.settings import ControllerSettings
from ccs_sim.vehicle import empty_iso15118_view, empty_slac_view
from evse_hal.interfaces import EVSEHardware
from evse_hal.iso15118.charger_port import Authorization, Authorizer, accept_every_identification
from evse_model import standards
from evse_model.clock import Clock
from evse_model.faults import Fault, FaultType, Severity
from evse_model.session import EndReason, Phase, SessionParams, SessionSummary, Stage
from evse_model.session_errors import CommandRefused, SessionAbort

__all__ = ["ActiveSession", "ChargerController", "CommandRefused", "ContactorCommandResult", "MeterReading",
           "SessionAbort", "SessionDriver"]


class ChargerController:
    #: How far the current limit may run ahead of the current flowing, in seconds of ramp.
    RAMP_HEADROOM_S = 0.1
    #: A contactor open command under load waits this long for the disabled supply to bring the current
    #: below 1 A (the supply contract: 0 A within 10 ms), then treats it as a SUPPLY_FAULT emergency, whose
    #: shutdown still opens within the 100 ms of IEC 61851-23 CC.5.4 (DG L6247-6249).
    COMMAND_OPEN_DEADLINE_S = standards.EMERGENCY_CURRENT_DEADLINE_S
    #: How many scheduled ticks' lateness ``tick_lateness_s_recent`` keeps (one minute at 100 Hz).
    TICK_LATENESS_WINDOW = 6000

    def __init__(self, hardware: EVSEHardware, clock: Clock, settings: ControllerSettings | None = None,
                 supervisor: SafetySupervisor | None = None) -> None:
        self.hw = hardware
        self.clock = clock
        #: Held by the control step for a whole tick and by every device call: no command lands in the middle
        #: of a tick, and two threads never drive the hardware at once. An adapter may offer its own (``lock``),
        #: shared with its simulation controls.
        self.lock: threading.RLock = getattr(hardware, "lock", None) or threading.RLock()
        self.settings = settings or ControllerSettings()
        self.supervisor = supervisor or SafetySupervisor()
        capabilities = hardware.supply.get_capabilities()
        self.evse_max_voltage_V = min(self.settings.evse_max_voltage_V, capabilities.max_voltage_V)
        #: The rating and every external source's limit (OCPP ...): ``evse_max_current_A`` / ``_power_W`` read it.
        self.limits = LimitsInForce(min(self.settings.evse_max_current_A, capabilities.max_current_A),
                                    min(self.settings.evse_max_power_W, capabilities.max_power_W))
        #: Phase and stage: the session state machine is their one writer.
        self.stages = SessionStateMachine()
        self.events = EventBus()
        self._loop = ControlLoop(self)
        self._outputs = Outputs(self)
        self._dc = DcSequence(self)
        self._sessions = SessionLifecycle(self)
        self._faults = FaultShutdown(self)
        self._views = Views(self)
        self.session: ActiveSession | None = None
        #: Decides an EV's identification (ISO 15118 EIM / Plug & Charge): accept all unless an OCPP client
        #: installs one that asks its CSMS (``ccs_sim.ocpp.authorization``).
        self.authorizer: Authorizer = accept_every_identification
        self.last_session_summary: SessionSummary | None = None
        #: The supervision context in force: the running (or winding-down) session's, else an idle one.
        self.context = self.idle_context()
        #: The current limits the supply was told (over-current is judged against these, not the ramp's plan).
        self.supply_limits = SupplyCurrentLimitHistory(self.supervisor.limits.supply_current_response_s)
        #: The contactor's and the supply's commands, against which their feedback is judged every tick.
        self.feedback = FeedbackWatch(self.supervisor.limits, capabilities)
        self.latest: Measurements | None = None
        self.meter_reading = MeterReading()
        self.requested_current_A = 0.0
        self.commanded_current_A = 0.0
        self.current_control_active = False
        #: The controller's fault: the latest raised, None from a session's start (the one place it is held;
        #: ``/status`` ``error``/``active_fault`` and the summary's ``error`` are its name).
        self.active_fault: Fault | None = None
        #: Every fault raised, oldest first (the dashboard shows the newest).
        self.fault_history: list[Fault] = []
        self.refusals = 0
        self.late_ticks = 0
        self.max_tick_lateness_s = 0.0
        #: Control ticks run so far: a reader's cache of anything built from the readings keys on it.
        self.tick_sequence = 0
        #: How late each recent scheduled tick started (simulated s; wall s at speed 1), newest last.
        self.tick_lateness_s_recent: deque[float] = deque(maxlen=self.TICK_LATENESS_WINDOW)
        self.bms_view_override: dict[str, Any] | None = None
        self.slac_view: dict[str, Any] = empty_slac_view(clock.utcnow())
        self.iso15118_view: dict[str, Any] = empty_iso15118_view()
        self._session_task: asyncio.Task[None] | None = None
        #: Shutdowns under way (a session's normal wind-down, a fault's emergency open), each finishing
        #: its own session's record; none is ever cancelled by a later session or fault.
        self._shutdown_tasks: set[asyncio.Task[None]] = set()
        #: The latest fault's shutdown (its severity and task): a later fault escalates it or joins it.
        self._fault_shutdown: Any = None
        self._control_task: asyncio.Task[None] | None = None
        #: Work a control tick hands to the event loop (raising what the supervisor found); awaited at shutdown.
        self._background_tasks: set[asyncio.Task[None]] = set()
        #: ``shutdown`` has begun: the process is stopping, sessions are not ended as if complete.
        self._stopping = False
        self._last_tick_s: float | None = None
        self._sim_driver_factory: Callable[[], SessionDriver] | None = None

    # --- the limits in force (the rating and every external source: the minimum, in ``limits``) -----------
    @property
    def evse_max_current_A(self) -> float:
        return self.limits.current_A

    @evse_max_current_A.setter
    def evse_max_current_A(self, rated_A: float) -> None:
        self.limits.rated_current_A = rated_A

    @property
    def evse_max_power_W(self) -> float:
        return self.limits.power_W

    @evse_max_power_W.setter
    def evse_max_power_W(self, rated_W: float) -> None:
        self.limits.rated_power_W = rated_W

    def set_external_limit(self, source: str, current_A: float | None = None, power_W: float | None = None) -> None:
        """``source``'s current / power limit (None: not limited by it); the control loop follows within a tick,
        lowering the current at the ramp-down rate."""
        self.limits.set_external_limit(source, current_A, power_W)

    # --- phase and stage (the session state machine's) -----------------------------------------------
    @property
    def phase(self) -> Phase:
        return self.stages.phase

    @property
    def stage(self) -> Stage:
        return self.stages.stage

    @property
    def session_active(self) -> bool:
        return self.stages.session_active

    def set_stage(self, stage: Stage) -> None:
        """Move the running session to ``stage`` (the transition table decides whether it may)."""
        self.stages.advance(stage)

    # --- listeners (one event bus) ----------------------------------------------------------------------
    @property
    def session_start_listeners(self) -> list[Listener]:
        return self.events.listeners(Topic.SESSION_START)

    @property
    def session_end_listeners(self) -> list[Listener]:
        return self.events.listeners(Topic.SESSION_END)

    @property
    def fault_listeners(self) -> list[Listener]:
        return self.events.listeners(Topic.FAULT)

    @property
    def tick_listeners(self) -> list[Listener]:
        return self.events.listeners(Topic.TICK)

    # --- life cycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Put the hardware in its safe state and start the control loop."""
        await self.put_outputs_safe()
        self._control_task = asyncio.create_task(self._loop.run(), name="control-loop")

    async def shutdown(self) -> None:
        # A session cut by the process stopping is not ended here (no summary, no wind-down of its own):
        # the records close it as interrupted, with its last checkpoint. Repeat until nothing of ours runs.
        self._stopping = True
        while True:
            tasks = [task for task in (self._session_task, *self._shutdown_tasks, self._control_task,
                                       *self._background_tasks)
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

    def idle_context(self) -> SupervisionContext:
        return SupervisionContext(evse_max_voltage_V=self.evse_max_voltage_V)

    def register_sim_driver(self, factory: Callable[[], SessionDriver]) -> None:
        self._sim_driver_factory = factory

    @property
    def shutting_down(self) -> bool:
        """A shutdown (wind-down or emergency open) is still bringing the output to its safe state."""
        return any(not task.done() for task in self._shutdown_tasks)

    # --- the control loop ---------------------------------------------------------------------------------
    async def tick(self) -> None:
        await self._loop.tick()

    async def tick_now(self) -> None:
        """Re-measure at once after a command, so the supervisor reacts without waiting for the next tick."""
        await self.tick()

    async def measure(self) -> Measurements:
        return await self._loop.measure()

    def track_background(self, coroutine: Awaitable[None], name: str) -> asyncio.Task[None]:
        """Run ``coroutine`` as a task of the controller's (kept until done; cancelled at shutdown)."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)
        return task

    async def read_meter(self, sample: Measurements | None = None) -> MeterReading:
        return await self._loop.read_meter(sample)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        return await self._loop.wait_until(condition, timeout_s)

    async def hold(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    # --- the device-writing path -------------------------------------------------------------------------
    async def io(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a driver method; in a worker thread when the adapter's calls can block."""
        return await self._outputs.io(function, *args)

    def call_device(self, function: Callable[..., Any], *args: Any) -> Any:
        """``io`` on this thread, under the lock (for the control step and the energy cut)."""
        return self._outputs.call(function, *args)

    async def put_outputs_safe(self) -> None:
        await self._outputs.put_outputs_safe()

    async def set_contactor(self, closed: bool) -> ContactorCommandResult:
        return await self._outputs.set_contactor(closed)

    async def set_pwm_duty(self, duty_percent: float) -> None:
        await self._outputs.set_pwm_duty(duty_percent)

    async def set_cp_state(self, state: str) -> None:
        await self._outputs.set_cp_state(state)

    async def set_supply_current_limit(self, limit_A: float) -> None:
        await self._outputs.set_supply_current_limit(limit_A)

    def set_supply_current_limit_now(self, limit_A: float) -> None:
        self._outputs.set_supply_current_limit_now(limit_A)

    async def drive_supply(self, voltage_V: float | None = None, enabled: bool | None = None,
                           power_limit_W: float | None = None) -> None:
        await self._outputs.drive_supply(voltage_V, enabled, power_limit_W)

    async def wait_current_below(self, limit_A: float, within_s: float) -> bool:
        return await self._outputs.wait_current_below(limit_A, within_s)

    def ev_side_voltage_V(self) -> float | None:
        return self._outputs.ev_side_voltage_V()

    # --- the DC sequence ----------------------------------------------------------------------------------
    async def cable_check(self, ev_max_voltage_V: float | None) -> str:
        return await self._dc.cable_check(ev_max_voltage_V)

    async def until_taken_over(self, session: ActiveSession | None) -> None:
        await self._dc.until_taken_over(session)

    def isolation_level(self, resistance_ohm: float) -> str:
        return self._dc.isolation_level(resistance_ohm)

    async def discharge_output(self, timeout_s: float) -> None:
        await self._dc.discharge_output(timeout_s)

    async def precharge(self, target_V: Callable[[], float], timeout_s: float) -> None:
        await self._dc.precharge(target_V, timeout_s)

    async def precharge_step(self, target_V: float, current_A: float = standards.PRECHARGE_CURRENT_LIMIT_A) -> float:
        return await self._dc.precharge_step(target_V, current_A)

    def note_ev_max_voltage(self, ev_max_voltage_V: float | None) -> None:
        self._dc.note_ev_max_voltage(ev_max_voltage_V)

    async def begin_energy_transfer(self, negotiated_max_voltage_V: float | None) -> None:
        await self._dc.begin_energy_transfer(negotiated_max_voltage_V)

    async def set_charge_targets(self, voltage_V: float, current_A: float, power_W: float | None = None) -> None:
        await self._dc.set_charge_targets(voltage_V, current_A, power_W)

    async def interrupt_energy_transfer(self, hold_voltage_V: float) -> None:
        await self._dc.interrupt_energy_transfer(hold_voltage_V)

    def resume_energy_transfer(self) -> None:
        self._dc.resume_energy_transfer()

    async def ramp_down_and_open(self, session: ActiveSession | None = None) -> None:
        await self._dc.ramp_down_and_open(session)

    # --- sessions and faults ------------------------------------------------------------------------------
    def persistent_fault_reason(self) -> str | None:
        return self._sessions.persistent_fault_reason()

    def start_session(self, params: SessionParams, driver: SessionDriver | None = None) -> ActiveSession:
        return self._sessions.start_session(params, driver)

    def request_stop(self) -> bool:
        return self._sessions.request_stop()

    def end_session(self, phase: Phase, fault: Fault | None, reason: EndReason) -> None:
        self._sessions.end_session(phase, fault, reason)

    async def authorize(self, id_token: str | None, id_token_type: str) -> Authorization:
        """The EV's identification for the running session, decided by ``authorizer``."""
        return await self.authorizer(id_token, id_token_type)

    def session_meter_reading(self, session: ActiveSession) -> MeterReading:
        return self._sessions.session_meter_reading(session)

    async def wait_quiescent(self) -> None:
        await self._sessions.wait_quiescent()

    def track_shutdown(self, coroutine: Awaitable[None], name: str) -> asyncio.Task[None]:
        return self._sessions.track_shutdown(coroutine, name)

    async def finalise_session(self, session: ActiveSession) -> None:
        await self._sessions.finalise_session(session)

    def release(self, session: ActiveSession | None) -> None:
        self._sessions.release(session)

    async def raise_fault(self, fault_type: FaultType, source: str = "api", message: str = "") -> Fault:
        return await self._faults.raise_fault(fault_type, source, message)

    def cut_energy_now(self, severity: Severity) -> None:
        self._faults.cut_energy_now(severity)

    # --- views ------------------------------------------------------------------------------------------
    def bms_view(self) -> dict[str, Any]:
        return self._views.bms_view()

    def status_view(self) -> dict[str, Any]:
        return self._views.status_view()

    def meter_view(self) -> dict[str, Any]:
        return self._views.meter_view()
