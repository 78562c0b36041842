"""Fault containment in the launcher: the SECC and SLAC tasks are watched; a death or a hang makes the output
safe, is recorded, and the component is restarted for the next car.

    supervisor = LauncherSupervisor(charger)
    secc = supervisor.add(Component("SECC", HLC_FAILURE, run_secc_coroutine_function,
                                    hang_check=calls.overdue, autostart=False))
    slac = supervisor.add(Component("SLAC", SLAC_FAILURE, lambda: link_factory().run(), ...))
    await supervisor.run()        # until cancelled; LaunchError when a component cannot be kept running

What counts as a failure, checked every ``HEARTBEAT_PERIOD_S`` on the controller's clock (so a failure is
noticed within 0.1 s of a death and within ``CALL_BUDGET_S`` + 0.1 s of the start of a hung call):

* death: the component's task is done, whether it raised, returned or was cancelled by someone else;
* hang: the component's ``hang_check`` names one. For the SECC that is a call into the EVSE controller
  (``watch_controller_calls``: every coroutine method of iso15118's ``EVSEControllerInterface`` is timed)
  that has been in flight longer than its budget: the SECC's message handling awaits these calls, so a
  call that never returns leaves the SECC's session stuck, its SDP server paused and the next car unserved.
  For SLAC (``SlacLink.hang_reason``) it is a CP change whose handling has not finished within the budget,
  or a CP feed task that ended.

What happens then (``_contain``): ``ChargerController.raise_fault(<component's fault>, source="supervisor",
message=<why>)`` (supply off at once, contactor open below the fault's current limit, the running session
ends ABORTED with that fault as ``error``, written by the session records; ``fault_history`` keeps the
message), a ``evse-main: supervisor {json}`` line on stdout, the task cancelled (and awaited, bounded), and
the component started again. A component that fails before it was ever ready (e.g. the SECC cannot bind
its port) is a start-up error and is raised as it is; more than ``MAX_RESTARTS`` restarts within
``RESTART_WINDOW_S`` give up with a LaunchError (the launcher exits 1, outputs already safe).

Not covered: a hang that blocks the event loop itself (a synchronous call that never returns); nothing on the
loop can notice that, and the controller's control loop stops with it. The heartbeat records how late it was
scheduled (``max_heartbeat_lateness_s``) so a stalled loop shows up afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evse_model.faults import HLC_FAILURE, SLAC_FAILURE, FaultType
from evse_secc.errors import LaunchError

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController
    from evse_model.clock import Clock

logger = logging.getLogger(__name__)

HEARTBEAT_PERIOD_S = 0.1
#: A controller call in flight longer than this is a hang: far above what a call needs (a few ms; the EXI
#: codec is not inside them) and below the EV's message timeouts (ISO 15118-2 V2G_EVCC_Msg_Timeout: 2 s for
#: most requests), so the output is made safe before the EV gives up and within a second of the hang.
CALL_BUDGET_S = 0.8
#: ``stop_charger`` ramps the current down at ≤ 100 A/s before it returns (IEC 61851-23 / DESIGN.md
#: principle 4): its budget is the controller's ramp-down timeout plus this margin.
STOP_CHARGER_MARGIN_S = 2.0
#: Handling one CP change in SLAC (PWM switch + pyslac's state update) may take this long.
CP_CHANGE_BUDGET_S = 0.8
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
#: How long a cancelled component may take to finish before it is left behind (it is then not awaited).
STOP_TIMEOUT_S = 2.0
SUPERVISOR_LINE_PREFIX = "evse-main: supervisor"


class InFlightCalls:
    """Calls that have started and not yet returned, each with a budget, on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._calls: dict[int, tuple[str, float, float]] = {}
        self._tokens = itertools.count()

    def begin(self, name: str, budget_s: float) -> int:
        token = next(self._tokens)
        self._calls[token] = (name, self.clock.now(), budget_s)
        return token

    def end(self, token: int) -> None:
        self._calls.pop(token, None)

    def clear(self) -> None:
        self._calls.clear()

    def overdue(self) -> str | None:
        """The longest-overdue call as a sentence, or None when every call is within its budget."""
        now_s = self.clock.now()
        worst: tuple[float, str] | None = None
        for name, started_s, budget_s in self._calls.values():
            elapsed_s = now_s - started_s
            if elapsed_s > budget_s and (worst is None or elapsed_s - budget_s > worst[0]):
                worst = (elapsed_s - budget_s, f"{name} in flight for {elapsed_s:.2f} s (budget {budget_s:.2f} s)")
        return None if worst is None else worst[1]


def controller_call_budgets(charger: ChargerController) -> dict[str, float]:
    """Budgets of the controller calls that may legitimately take longer than ``CALL_BUDGET_S``."""
    return {"stop_charger": charger.settings.ramp_down_timeout_s + STOP_CHARGER_MARGIN_S}


def watch_controller_calls(controller: Any, calls: InFlightCalls, budgets: Mapping[str, float] | None = None,
                           default_budget_s: float = CALL_BUDGET_S) -> list[str]:
    """Time every coroutine method of iso15118's ``EVSEControllerInterface`` on ``controller`` (instance
    attributes wrapping the bound methods, so the SECC's calls go through them). Returns the names."""
    from iso15118.secc.controller.interface import EVSEControllerInterface

    budgets = budgets or {}
    names = sorted(name for name, member in inspect.getmembers(EVSEControllerInterface)
                   if inspect.iscoroutinefunction(member))
    for name in names:
        method = getattr(controller, name)
        setattr(controller, name, _timed(method, name, calls, budgets.get(name, default_budget_s)))
    return names


def _timed(method: Callable[..., Awaitable[Any]], name: str, calls: InFlightCalls, budget_s: float):
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        token = calls.begin(name, budget_s)
        try:
            return await method(*args, **kwargs)
        finally:
            calls.end(token)

    return timed


@dataclass
class Component:
    """A long-running part of the launcher: ``run()`` makes the coroutine that serves until cancelled."""

    name: str
    fault_type: FaultType
    run: Callable[[], Awaitable[None]]
    hang_check: Callable[[], str | None] = lambda: None
    #: False: started by ``LauncherSupervisor.start`` (the SECC starts on the first SLAC match).
    autostart: bool = True
    #: Called before each restart (e.g. forget the in-flight calls of the old instance).
    on_restart: Callable[[], None] = lambda: None
    ready: bool = False
    starts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def mark_ready(self) -> None:
        """The component serves (the SECC's ready line): a later failure is contained, not fatal."""
        self.ready = True


@dataclass(frozen=True)
class Containment:
    """One failure the supervisor contained (also printed as ``evse-main: supervisor {json}``)."""

    component: str
    reason: str
    fault: str
    time_s: float
    session_id: str | None
    session_active: bool
    restart: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _print_containment(record: Containment) -> None:
    print(f"{SUPERVISOR_LINE_PREFIX} {json.dumps(record.as_json())}", flush=True)


class LauncherSupervisor:
    """Watches components on the controller's clock; contains and restarts the one that fails."""

    def __init__(self, charger: ChargerController, *, heartbeat_period_s: float = HEARTBEAT_PERIOD_S,
                 max_restarts: int = MAX_RESTARTS, restart_window_s: float = RESTART_WINDOW_S,
                 report: Callable[[Containment], None] = _print_containment) -> None:
        self.charger = charger
        self.clock = charger.clock
        self.heartbeat_period_s = heartbeat_period_s
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.report = report
        self.components: dict[str, Component] = {}
        self.containments: list[Containment] = []
        self.max_heartbeat_lateness_s = 0.0
        self._restart_times: dict[str, list[float]] = {}
        self._running = False

    def add(self, component: Component) -> Component:
        self.components[component.name] = component
        return component

    def start(self, name: str) -> None:
        """Start ``name`` unless it runs already (idempotent)."""
        component = self.components[name]
        if component.task is None:
            self._spawn(component)

    def start_and_wait(self, name: str) -> Callable[[], Awaitable[None]]:
        """A coroutine function that starts ``name`` and then waits until cancelled: what ``SlacLink`` calls
        on a match (``start_secc``), while the SECC itself stays the supervisor's task."""
        async def start_and_wait() -> None:
            self.start(name)
            await asyncio.get_running_loop().create_future()

        return start_and_wait

    async def run(self) -> None:
        """Start the autostart components and supervise until cancelled (then stop them all)."""
        self._running = True
        for component in self.components.values():
            if component.autostart:
                self._spawn(component)
        try:
            expected_s = self.clock.now()
            while True:
                await self.check()
                expected_s += self.heartbeat_period_s
                lateness_s = self.clock.now() - expected_s
                if lateness_s > self.heartbeat_period_s:
                    self.max_heartbeat_lateness_s = max(self.max_heartbeat_lateness_s, lateness_s)
                    logger.warning("supervisor heartbeat %.2f s late (event loop stalled)", lateness_s)
                    expected_s = self.clock.now()
                await self.clock.sleep(max(0.0, expected_s - self.clock.now()))
        finally:
            self._running = False
            await asyncio.gather(*(self._stop(component) for component in self.components.values()))

    async def check(self) -> None:
        """One heartbeat: contain every component that died or hangs."""
        for component in list(self.components.values()):
            task = component.task
            if task is None:
                continue
            if task.done():
                await self._contain(component, _death(task))
                continue
            hang = component.hang_check()
            if hang is not None:
                await self._contain(component, f"hung: {hang}")

    async def _contain(self, component: Component, reason: str) -> None:
        task = component.task
        failure = task.exception() if task is not None and task.done() and not task.cancelled() else None
        if failure is not None and not component.ready:
            raise failure  # a start-up failure (no interface, no permission...): the launcher's error
        charger = self.charger
        session = charger.session if charger.session_active else None
        record = Containment(component=component.name, reason=reason, fault=component.fault_type.name,
                             time_s=round(self.clock.now(), 6), session_id=session.session_id if session else None,
                             session_active=session is not None, restart=component.starts)
        self.containments.append(record)
        logger.error("%s %s: %s, restarting it", component.name, reason, component.fault_type.name)
        self.report(record)
        await charger.raise_fault(component.fault_type, source="supervisor", message=f"{component.name} {reason}")
        await self._stop(component)
        window = self._restart_times.setdefault(component.name, [])
        now_s = self.clock.now()
        window[:] = [at_s for at_s in window if now_s - at_s <= self.restart_window_s] + [now_s]
        if len(window) > self.max_restarts:
            raise LaunchError(f"{component.name} failed {len(window)} times within {self.restart_window_s:.0f} s; "
                              f"giving up (last: {reason})")
        component.on_restart()
        self._spawn(component)

    def _spawn(self, component: Component) -> None:
        component.starts += 1
        component.task = asyncio.create_task(_run_component(component), name=f"supervised-{component.name}")

    async def _stop(self, component: Component) -> None:
        task = component.task
        component.task = None
        if task is None:
            return
        if not task.done():
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
            if not done:
                logger.error("%s did not stop within %.1f s of being cancelled; left behind", component.name,
                             STOP_TIMEOUT_S)
                return
        if not task.cancelled() and task.exception() is not None:
            logger.debug("%s ended with %r", component.name, task.exception())


async def _run_component(component: Component) -> None:
    await component.run()


def _death(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "task was cancelled"
    error = task.exception()
    if error is not None:
        return f"task died: {type(error).__name__}: {error}"
    return "task returned"


def build_launcher_supervisor(charger: ChargerController, controller: Any,
                              serve_secc: Callable[[Callable[[], None]], Awaitable[None]],
                              on_secc_ready: Callable[[], None] = lambda: None,
                              make_slac_link: Callable[[Callable[[], Awaitable[None]]], Any] | None = None,
                              **supervisor_options: Any) -> LauncherSupervisor:
    """The launcher's supervisor (whenever it has a HAL: ``--controller hal``, SLAC or the API): the SECC (``serve_secc(on_ready)``, e.g. ``run_secc``)
    with its controller's calls timed, and, with ``make_slac_link(start_secc)`` (an ``evse_secc.slac_link
    .SlacLink`` factory), SLAC, which starts the SECC on its first match. Run it with ``await .run()``."""
    supervisor = LauncherSupervisor(charger, **supervisor_options)
    calls = InFlightCalls(charger.clock)
    watch_controller_calls(controller, calls, controller_call_budgets(charger))
    secc = Component("SECC", HLC_FAILURE, run=lambda: serve_secc(secc_ready), hang_check=calls.overdue,
                     autostart=make_slac_link is None, on_restart=calls.clear)

    def secc_ready() -> None:
        secc.mark_ready()
        on_secc_ready()

    supervisor.add(secc)
    if make_slac_link is None:
        return supervisor
    links: list[Any] = []

    async def run_slac() -> None:
        links[:] = [make_slac_link(supervisor.start_and_wait("SECC"))]
        await links[0].run()

    def slac_hang() -> str | None:
        if not links:
            return None
        if links[0].started:
            slac.mark_ready()  # its service started: a later failure is contained, not a start-up error
        return links[0].hang_reason(CP_CHANGE_BUDGET_S)

    slac = supervisor.add(Component("SLAC", SLAC_FAILURE, run=run_slac, hang_check=slac_hang))
    return supervisor
