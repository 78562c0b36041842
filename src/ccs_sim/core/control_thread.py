"""The control loop on a thread of its own: no load on the event loop can delay a tick or the supervisor.

On a real or scaled clock the control step (measure, meter, ramp, judge, and the energy cut of a fault the
supervisor finds) runs here, every control period, waiting on wall time. The event loop (API, dashboard
streams, SECC, OCPP, records) gets the rest by hand-over: what a fault sets in motion (``raise_fault``: the
session's end, the contactor opening, records) and the tick listeners. Hand-overs of plain ticks coalesce: a
busy event loop gets one TICK for all the ticks it missed, never a backlog; a fault is always handed over.

The thread asks the operating system for real-time scheduling (``SCHED_FIFO``) where it may (root or
CAP_SYS_NICE, as on a charger's computer), else a raised priority (nice ``RAISED_NICE``), else runs as it is:
a loaded machine then still lets the tick run the moment it is due (one line in the log says which it got).

The interpreter's thread switch interval is lowered to ``SWITCH_INTERVAL_S`` while the thread runs: a thread
woken for its tick waits at most that long for the interpreter lock held by the event loop's thread (the
default, 5 ms, would let a busy API delay every tick by up to 5 ms).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Protocol

from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.types import Finding

log = logging.getLogger("ccs_sim.controller")


class SteppedControl(Protocol):
    """What the thread runs: the control loop's synchronous step and the event loop's part of a tick."""

    charger: ChargerCore

    def step(self) -> list[Finding]: ...
    def after_step(self, findings: list[Finding]) -> Coroutine[Any, Any, None]: ...
    def notify_tick_listeners(self) -> None: ...


class ControlThread:
    #: The interpreter's thread switch interval while a control thread runs (CPython's default is 5 ms).
    SWITCH_INTERVAL_S = 0.0005
    #: The longest single wait: a stop request or a clock without speed-change events is seen this soon.
    MAX_WAIT_WALL_S = 0.05
    #: How long ``run`` waits for the thread to finish its tick once told to stop.
    JOIN_TIMEOUT_S = 2.0
    #: SCHED_FIFO priority asked for (1-99; low: above every normal thread, below the kernel's own RT work).
    REALTIME_PRIORITY = 10
    #: The nice value asked for when real-time scheduling is refused.
    RAISED_NICE = -10

    def __init__(self, control: SteppedControl) -> None:
        self.control = control
        self.charger = control.charger
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_handed_over = False
        self._failed: asyncio.Future[None] | None = None
        #: The scheduling the thread got: "realtime", "raised" or "normal".
        self.scheduling = "normal"

    async def run(self) -> None:
        """Start the thread and wait until cancelled (then stop it) or until the thread fails."""
        self._loop = asyncio.get_running_loop()
        self._failed = self._loop.create_future()
        _switch_interval.lower_to(self.SWITCH_INTERVAL_S)
        add_waker = getattr(self.charger.clock, "wake_on_speed_change", None)
        if add_waker is not None:
            add_waker(self._wake)
        thread = threading.Thread(target=self._run_thread, name="control-loop", daemon=True)
        thread.start()
        try:
            await self._failed
        finally:
            self._stop.set()
            self._wake.set()
            thread.join(self.JOIN_TIMEOUT_S)
            if add_waker is not None:
                add_waker(self._wake, False)
            _switch_interval.release()

    def _run_thread(self) -> None:
        charger = self.charger
        clock = charger.clock
        period_s = charger.settings.control_period_s
        # A scaled clock runs only as fast as the ticks can be computed (its governor lowers the speed in
        # force and bounds what one tick integrates); a real clock has none.
        make_governor = getattr(clock, "governor", None)
        governor = make_governor(period_s) if make_governor is not None else None
        next_tick_s = clock.now()
        self.scheduling = raise_thread_priority(self.REALTIME_PRIORITY, self.RAISED_NICE)
        log.info("control loop on its own thread (%s scheduling)", self.scheduling)
        try:
            while not self._stop.is_set():
                if governor is not None:
                    governor.tick_started()
                findings = self.control.step()
                if governor is not None:
                    governor.tick_finished()
                self._hand_over(findings)
                next_tick_s += period_s
                now_s = clock.now()
                lateness_s = now_s - next_tick_s
                if lateness_s > period_s:
                    charger.late_ticks += 1
                    charger.max_tick_lateness_s = max(charger.max_tick_lateness_s, lateness_s)
                    next_tick_s = now_s
                if not self._wait_until(next_tick_s):
                    return
                charger.tick_lateness_s_recent.append(max(0.0, clock.now() - next_tick_s))
        except BaseException as error:
            log.exception("the control loop failed")
            self._call_on_loop(self._fail, error)
        finally:
            if governor is not None:
                governor.close()

    def _wait_until(self, deadline_s: float) -> bool:
        """Wait (wall time) until the clock reaches ``deadline_s``; False if told to stop meanwhile."""
        clock = self.charger.clock
        while True:
            if self._stop.is_set():
                return False
            remaining_s = deadline_s - clock.now()
            if remaining_s <= 0:
                return True
            self._wake.wait(min(remaining_s / clock.speed, self.MAX_WAIT_WALL_S))
            self._wake.clear()

    def _hand_over(self, findings: list[Finding]) -> None:
        """The event loop's part of this tick: always for a fault; a plain tick only if the last is taken."""
        if not findings:
            if self._tick_handed_over:
                return
            self._tick_handed_over = True
        self._call_on_loop(self._after_tick, findings)

    def _after_tick(self, findings: list[Finding]) -> None:
        """On the event loop."""
        if findings:
            self.charger.track_background(self.control.after_step(findings), "control-tick-faults")
            return
        self._tick_handed_over = False
        try:
            self.control.notify_tick_listeners()
        except Exception:
            log.exception("a tick listener failed")

    def _fail(self, error: BaseException) -> None:
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(error)

    def _call_on_loop(self, callback: object, *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]
        except RuntimeError:  # the loop closed between the check and the call
            pass


class _SwitchInterval:
    """The interpreter's switch interval, lowered while at least one control thread runs (a process may run
    several controllers: the last to stop restores what was there before the first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._previous_s = 0.0

    def lower_to(self, interval_s: float) -> None:
        with self._lock:
            if self._holders == 0:
                self._previous_s = sys.getswitchinterval()
                sys.setswitchinterval(min(self._previous_s, interval_s))
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                sys.setswitchinterval(self._previous_s)


_switch_interval = _SwitchInterval()


def raise_thread_priority(realtime_priority: int, raised_nice: int) -> str:
    """Ask for real-time scheduling for the calling thread, else a raised priority; say which it got."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(realtime_priority))  # 0: this thread (Linux)
        return "realtime"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), raised_nice)  # per thread on Linux
        return "raised"
    except (AttributeError, OSError):
        return "normal"
