"""Time for everything that waits or integrates: a real clock, a scaled simulated clock and a manual one.

All timing in the controller, the plant and the session state machine goes through a ``Clock``:
``now()`` is monotonic seconds of *simulated* time and ``sleep()`` waits for simulated seconds.

- ``RealClock``: wall time (production, and speed 1 in simulation).
- ``ScaledClock``: simulated time runs ``speed`` times faster than the wall (a server setting).
- ``ManualClock``: time moves only when a test or a batch runner calls ``advance()``; sleepers wake
  in deadline order and run before time moves on. ``run_until_complete()`` drives it as fast as
  the code can go (the faster-than-real-time runner used by benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic simulated seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of simulated time (<= 0: just yield to the loop)."""

    def utcnow(self) -> datetime:
        """Calendar time for records and timestamps (UTC), advancing with simulated time."""

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second (inf for a manual clock)."""


class RealClock:
    speed = 1.0

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def utcnow(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """Simulated time = wall time × speed, from the moment the clock is made.

    A sleep waits for a *simulated* deadline: it computes the wall time left at the current speed and, when
    the speed changes (``set_speed``), wakes and computes it again, so a sleep begun at speed 0.001 ends as
    soon as its simulated deadline passes at the new speed (and a sleep begun fast is not cut short when the
    simulation slows down).

    The simulation runs only as fast as it can compute: ``speed`` is the speed in force, which a
    ``SpeedGovernor`` (made by the control loop with ``governor()``) may hold below ``requested_speed``
    (never below 1×) while the control loop falls behind. The governor also sets a *horizon*: simulated
    time never runs more than ``SpeedGovernor.max_tick_span_s`` past the control loop's last tick; at the
    horizon it waits (and resumes from there), so no tick ever integrates an unbounded stretch.
    Every change keeps simulated time continuous and monotonic.
    """

    #: The longest (wall) time simulated time waits at a horizon the control loop does not move on.
    HORIZON_HOLD_MAX_WALL_S = 1.0

    def __init__(self, speed: float = 1.0, wall_time: Callable[[], float] | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        #: Monotonic wall seconds (injectable: tests drive the governor without sleeping).
        self.wall_time: Callable[[], float] = wall_time or _wall_monotonic
        self._requested_speed = float(speed)
        self._speed = float(speed)
        #: The governor's limit on the speed in force (inf: not limiting).
        self._ceiling_speed = float("inf")
        self._sim_origin_s = 0.0
        self._wall_origin_s = self.wall_time()
        self._calendar_origin = datetime.now(UTC)
        #: Simulated time never runs past this (None: no control loop governs this clock), and waits there
        #: for at most ``HORIZON_HOLD_MAX_WALL_S`` (so nothing awaited by a tick can wait on it forever).
        self._horizon_s: float | None = None
        self._held_since_wall_s: float | None = None
        #: Simulated seconds the clock did not run because the control loop had not caught up.
        self.held_back_s = 0.0
        #: One future per sleep in progress (on whichever event loop it runs); a speed change resolves them all.
        self._speed_change_waiters: set[asyncio.Future[None]] = set()
        #: Threads waiting on wall time for a simulated deadline (the control thread): set on a speed change.
        self._speed_change_events: set[threading.Event] = set()
        #: ``now()`` may move the origin (at the horizon) and runs on the control thread and the event loop.
        self._lock = threading.RLock()

    @property
    def speed(self) -> float:
        """The speed in force: the requested one unless the governor holds it lower."""
        return self._speed

    @property
    def requested_speed(self) -> float:
        """The speed last asked for (``set_speed``)."""
        return self._requested_speed

    @property
    def limited(self) -> bool:
        return self._speed < self._requested_speed

    def now(self) -> float:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        wall_s = self.wall_time()
        sim_s = self._sim_origin_s + (wall_s - self._wall_origin_s) * self._speed
        horizon_s = self._horizon_s
        if horizon_s is not None and sim_s > horizon_s:
            if self._held_since_wall_s is None:
                self._held_since_wall_s = wall_s
            released_wall_s = self._held_since_wall_s + self.HORIZON_HOLD_MAX_WALL_S
            # The control loop is behind: time waits at the horizon and runs on from there (no jump).
            self.held_back_s += sim_s - horizon_s
            self._sim_origin_s, self._wall_origin_s = horizon_s, wall_s
            if wall_s < released_wall_s:
                return horizon_s
            # Nobody moved the horizon on: stop waiting, and run on from the moment the wait ended.
            self._horizon_s = self._held_since_wall_s = None
            self._wall_origin_s = released_wall_s
            sim_s = horizon_s + (wall_s - released_wall_s) * self._speed
            self.held_back_s -= sim_s - horizon_s
        return sim_s

    def set_speed(self, speed: float) -> None:
        """Ask for a new speed from now on; simulated time stays continuous, and every sleep in progress
        wakes and recomputes its remaining wall time for its unchanged simulated deadline. The speed in
        force is the requested one, or the governor's limit if that is lower."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._requested_speed = float(speed)
        if self._ceiling_speed >= self._requested_speed:
            self._ceiling_speed = float("inf")
        self._apply_speed(min(self._requested_speed, self._ceiling_speed))

    def governor(self, control_period_s: float) -> SpeedGovernor:
        """A governor for the control loop that ticks every ``control_period_s`` simulated seconds."""
        return SpeedGovernor(self, control_period_s)

    def _limit_speed(self, ceiling_speed: float) -> None:
        """The governor's limit: the speed in force is at most ``ceiling_speed`` (never below 1×, nor
        above the requested speed; a ceiling at or above the request lifts the limit)."""
        ceiling_speed = max(1.0, ceiling_speed)
        self._ceiling_speed = float("inf") if ceiling_speed >= self._requested_speed else ceiling_speed
        self._apply_speed(min(self._requested_speed, self._ceiling_speed))

    def _set_horizon(self, horizon_s: float | None) -> None:
        with self._lock:
            if horizon_s is None or self._horizon_s is None:
                self._horizon_s = horizon_s
            else:
                self._horizon_s = max(self._horizon_s, horizon_s)
            self._held_since_wall_s = None

    def wake_on_speed_change(self, event: threading.Event, wanted: bool = True) -> None:
        """Set ``event`` at every speed change while ``wanted`` (a thread waiting on wall time for a simulated
        deadline recomputes its wait); ``wanted=False`` stops."""
        if wanted:
            self._speed_change_events.add(event)
        else:
            self._speed_change_events.discard(event)

    def _apply_speed(self, speed: float) -> None:
        with self._lock:
            if speed == self._speed:
                return
            self._sim_origin_s = self._now_locked()
            self._wall_origin_s = self.wall_time()
            self._speed = float(speed)
        for event in list(self._speed_change_events):
            event.set()
        for waiter in list(self._speed_change_waiters):
            # Thread-safe: set_speed may be called from outside the loop the sleeper runs on.
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:
            await asyncio.sleep(0)
            return
        deadline_s = self.now() + seconds
        loop = asyncio.get_running_loop()
        while True:
            remaining_wall_s = (deadline_s - self.now()) / self._speed
            if remaining_wall_s <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            timer = loop.call_later(remaining_wall_s, _resolve, waiter)
            self._speed_change_waiters.add(waiter)
            try:
                await waiter  # the wall time left has passed, or the speed changed: look again
            finally:
                timer.cancel()
                self._speed_change_waiters.discard(waiter)

    def utcnow(self) -> datetime:
        from datetime import timedelta

        return self._calendar_origin + timedelta(seconds=self.now())


class SpeedGovernor:
    """Runs a ``ScaledClock`` only as fast as the control loop can compute (issue 10, item 12).

    Each tick integrates the simulated time since the last one, and that costs wall time in proportion:
    at a speed the machine cannot sustain, every tick is late, the next has more to integrate, and the
    event loop (API, supervisor, shutdown) stalls. The control loop calls ``tick_started()`` and
    ``tick_finished()`` around each tick (``close()`` when it stops); the governor

    - sets the clock's horizon ``max_tick_span_s`` past the tick, so a tick never integrates more;
    - when two ticks in a row were behind (ran into the horizon, or cost more than ``tick_budget_wall_s``
      of wall time) and the speed exceeds ``KEEP_UP_SHARE`` × what the ticks could integrate (simulated
      seconds per wall second of tick, the better of the two: a pause of the process spoils one), lowers
      the speed in force to ``UTILISATION`` × that, by at most ``MAX_DECREASE_FACTOR`` at once and never
      below 1×, with a warning the first time for a requested speed (a lone late tick is the machine
      pausing the process: the horizon already bounds what the next tick integrates);
    - after ``RAISE_AFTER_WALL_S`` of ticks on time, raises it by ``RAISE_FACTOR`` towards the request.
    """

    #: The most simulated time one tick may integrate (seconds), at least two control periods.
    MAX_TICK_SPAN_S = 10.0
    #: A tick costing more wall time than this keeps the event loop from the API and the shutdown.
    TICK_BUDGET_WALL_S = 0.025
    #: The share of wall time the ticks may take at the speed the governor sets.
    UTILISATION = 0.5
    #: A loop that stays behind is too fast when its speed exceeds this share of what it could integrate.
    KEEP_UP_SHARE = 0.9
    #: One late tick lowers the speed at most this many times (a lone hiccup of the machine costs little).
    MAX_DECREASE_FACTOR = 4.0
    RAISE_AFTER_WALL_S = 0.25
    RAISE_FACTOR = 1.5

    def __init__(self, clock: ScaledClock, control_period_s: float) -> None:
        self.clock = clock
        self.max_tick_span_s = max(2.0 * control_period_s, self.MAX_TICK_SPAN_S)
        self.tick_budget_wall_s = self.TICK_BUDGET_WALL_S
        self.limit_count = 0
        self._warned_for_speed: float | None = None
        self._tick_wall_start_s = 0.0
        self._tick_sim_start_s: float | None = None
        self._span_s = 0.0
        self._held_back_seen_s = clock.held_back_s
        self._behind_last_tick = False
        self._computable_last_tick = 0.0
        self._last_change_wall_s = clock.wall_time()

    def tick_started(self) -> None:
        clock = self.clock
        self._tick_wall_start_s = clock.wall_time()
        now_s = clock.now()  # holds time at the horizon if the loop fell that far behind
        self._span_s = 0.0 if self._tick_sim_start_s is None else now_s - self._tick_sim_start_s
        self._tick_sim_start_s = now_s
        clock._set_horizon(now_s + self.max_tick_span_s)

    def tick_finished(self) -> None:
        clock = self.clock
        wall_s = clock.wall_time()
        cost_wall_s = wall_s - self._tick_wall_start_s
        held_back = clock.held_back_s > self._held_back_seen_s
        self._held_back_seen_s = clock.held_back_s
        behind = held_back or cost_wall_s > self.tick_budget_wall_s
        # The speed at which integrating took all the wall time (simulated seconds per wall second of tick).
        computable = self._span_s / cost_wall_s if cost_wall_s > 0 else float("inf")
        if behind and self._behind_last_tick:
            # The loop stays behind. Too fast if even the better of the two ticks' estimates (a pause of
            # the process inflates one) could not integrate at this speed; else the machine paused us,
            # and the horizon already bounds what the next tick integrates.
            speed = clock.speed
            computable_best = max(computable, self._computable_last_tick)
            if speed > self.KEEP_UP_SHARE * computable_best and speed > 1.0:
                target = max(speed / self.MAX_DECREASE_FACTOR, self.UTILISATION * computable_best)
                self._lower(max(1.0, min(speed, target)), cost_wall_s, wall_s)
        elif clock.limited and wall_s - self._last_change_wall_s >= self.RAISE_AFTER_WALL_S:
            clock._limit_speed(clock.speed * self.RAISE_FACTOR)
            self._last_change_wall_s = wall_s
            if not clock.limited:
                log.info("simulation back at the requested speed %g×", clock.requested_speed)
        self._behind_last_tick = behind
        self._computable_last_tick = computable

    def close(self) -> None:
        """The control loop stopped: time runs freely again (no horizon)."""
        self.clock._set_horizon(None)

    def _lower(self, speed: float, cost_wall_s: float, wall_s: float) -> None:
        clock = self.clock
        clock._limit_speed(speed)
        self._last_change_wall_s = wall_s
        self.limit_count += 1
        if self._warned_for_speed != clock.requested_speed:
            self._warned_for_speed = clock.requested_speed
            log.warning("the simulation cannot keep up with %g×: running at %.3g× (the control loop fell behind; "
                        "a tick integrated %.3g s of simulated time in %.1f ms); it will return to the requested "
                        "speed when it can", clock.requested_speed, clock.speed, self._span_s, cost_wall_s * 1e3)
        else:
            log.debug("simulation speed limited to %.3g× (requested %g×)", clock.speed, clock.requested_speed)


def _wall_monotonic() -> float:
    return time.monotonic()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# The manual clock lives in its own module; importing it from here keeps every existing import working.
from evse_model.manual_clock import ManualClock  # noqa: E402

__all__ = ["Clock", "ManualClock", "RealClock", "ScaledClock", "SpeedGovernor"]
