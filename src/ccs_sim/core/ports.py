"""The controller as its parts (and the session drivers) see it: a Protocol that ``ChargerController`` fulfils.

The parts of the core (loop, outputs, DC sequence, sessions, fault shutdown, views) each hold the controller
and reach each other through it, so that none imports another and a wrapper put on a controller method
(a test's spy, a timing watch) sees every call. ``StageMachine`` is the session state machine's surface
(its home: ``ccs_sim/orchestrator.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ccs_sim.core.events import EventBus
from ccs_sim.core.limits import LimitsInForce
from ccs_sim.core.safety import (
    FeedbackWatch,
    Measurements,
    SafetySupervisor,
    SupervisionContext,
    SupplyCurrentLimitHistory,
)
from ccs_sim.core.types import ActiveSession, ContactorCommandResult, MeterReading
from ccs_sim.settings import ControllerSettings
from evse_hal.interfaces import EVSEHardware
from evse_model.clock import Clock
from evse_model.faults import Fault, FaultType
from evse_model.session import EndReason, Phase, SessionParams, SessionSummary, Stage


class StageMachine(Protocol):
    """Phase and stage, one writer (``ccs_sim.orchestrator.SessionStateMachine``)."""

    @property
    def phase(self) -> Phase: ...
    @property
    def stage(self) -> Stage: ...
    @property
    def session_active(self) -> bool: ...
    def begin_session(self, session: ActiveSession) -> None: ...
    def advance(self, stage: Stage) -> None: ...
    def report_for(self, session: ActiveSession | None, stage: Stage) -> None: ...
    def end_session(self, outcome: Phase) -> None: ...
    def fault_without_session(self) -> None: ...


class SessionDriver(Protocol):
    """Runs one session's flow: the simulated script, or the ISO 15118 SECC's callbacks."""

    source: str

    async def run(self, controller: ChargerCore, session: ActiveSession) -> None: ...


class ChargerCore(Protocol):
    """The façade's state and operations that the parts and session drivers use."""

    # configuration and devices
    hw: EVSEHardware
    clock: Clock
    settings: ControllerSettings
    supervisor: SafetySupervisor
    events: EventBus
    evse_max_voltage_V: float
    evse_max_current_A: float
    evse_max_power_W: float
    #: The rating and every external source's limit (``evse_max_*`` are their minimum), availability.
    limits: LimitsInForce
    RAMP_HEADROOM_S: float
    COMMAND_OPEN_DEADLINE_S: float
    # state
    session: ActiveSession | None
    last_session_summary: SessionSummary | None
    context: SupervisionContext
    supply_limits: SupplyCurrentLimitHistory
    feedback: FeedbackWatch
    latest: Measurements | None
    meter_reading: MeterReading
    requested_current_A: float
    commanded_current_A: float
    current_control_active: bool
    #: The controller's fault (the latest one raised; None since the session started, or none raised): the one
    #: place it is held. ``/status``'s ``error`` and ``active_fault`` and the summary's ``error`` are its name.
    active_fault: Fault | None
    fault_history: list[Fault]
    refusals: int
    late_ticks: int
    max_tick_lateness_s: float
    tick_sequence: int
    tick_lateness_s_recent: Any
    bms_view_override: dict[str, Any] | None
    _stopping: bool
    _last_tick_s: float | None
    _session_task: Any
    _shutdown_tasks: set[Any]
    _fault_shutdown: Any
    _sim_driver_factory: Callable[[], SessionDriver] | None

    @property
    def stages(self) -> StageMachine: ...
    @property
    def phase(self) -> Phase: ...
    @property
    def stage(self) -> Stage: ...
    @property
    def session_active(self) -> bool: ...

    # the device-writing path
    async def io(self, function: Callable[..., Any], *args: Any) -> Any: ...
    async def put_outputs_safe(self) -> None: ...
    async def set_contactor(self, closed: bool) -> ContactorCommandResult: ...
    async def set_pwm_duty(self, duty_percent: float) -> None: ...
    async def set_supply_current_limit(self, limit_A: float) -> None: ...
    async def drive_supply(self, voltage_V: float | None = None, enabled: bool | None = None,
                           power_limit_W: float | None = None) -> None: ...
    async def wait_current_below(self, limit_A: float, within_s: float) -> bool: ...
    def ev_side_voltage_V(self) -> float | None: ...

    # the loop
    async def tick(self) -> None: ...
    async def tick_now(self) -> None: ...
    async def read_meter(self, sample: Measurements | None = None) -> MeterReading: ...
    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool: ...
    async def hold(self, seconds: float) -> None: ...

    # the DC sequence
    async def cable_check(self, ev_max_voltage_V: float | None) -> str: ...
    async def precharge(self, target_V: Callable[[], float], timeout_s: float) -> None: ...
    async def begin_energy_transfer(self, negotiated_max_voltage_V: float | None) -> None: ...
    async def set_charge_targets(self, voltage_V: float, current_A: float, power_W: float | None = None) -> None: ...
    async def interrupt_energy_transfer(self, hold_voltage_V: float) -> None: ...
    def resume_energy_transfer(self) -> None: ...
    async def ramp_down_and_open(self, session: ActiveSession | None = None) -> None: ...

    # sessions and faults
    def set_stage(self, stage: Stage) -> None: ...
    def start_session(self, params: SessionParams, driver: SessionDriver | None = None) -> ActiveSession: ...
    def end_session(self, phase: Phase, fault: Fault | None, reason: EndReason) -> None: ...
    async def raise_fault(self, fault_type: FaultType, source: str = "api", message: str = "") -> Fault: ...
    def bms_view(self) -> dict[str, Any]: ...
    def idle_context(self) -> SupervisionContext: ...
    def track_shutdown(self, coroutine: Awaitable[None], name: str) -> Any: ...
    async def wait_quiescent(self) -> None: ...
    async def finalise_session(self, session: ActiveSession) -> None: ...
    def release(self, session: ActiveSession | None) -> None: ...
