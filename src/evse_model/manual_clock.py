"""Simulated time that moves only when a test or a batch runner says so (``ManualClock``).

Sleepers wake in deadline order (ties in the order they began to sleep), each woken task running before time
moves on. A *periodic job* (``every``: the control loop's tick) is a plain function the clock calls at each of
its deadlines, in the same order as a sleeper of that deadline would run, but without an event-loop wake-up when
nothing else shares its instant: a steady charge of 100 000 ticks costs 100 000 calls, not 100 000 turns of
the event loop. ``run_until_complete()`` drives the clock as fast as the code can go (the faster-than-real-time
runner of benchmarks and ``ccs-sim simulate``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")


#: What ``clear_until(t)`` answers a periodic job running ahead (``ManualClock.every``): stop before ``t``; serve
#: ``t`` now (nothing else is due before it); other periodic jobs are due first (``run_due(t)`` runs them).
AHEAD_STOP, AHEAD_SERVE, AHEAD_OTHERS_DUE = 0, 1, 2
#: ``run_ahead(first_s, period_s, clear_until, run_due, move_to) -> (deadlines served, next deadline)``.
RunAhead = Callable[[float, float, Callable[[float], int], Callable[[float], bool], Callable[[float], None]],
                    tuple[int, float]]


def combined_attribute_dict(obj: object) -> None:
    """Give ``obj`` an attribute dict of its own, not one sharing its keys with the other instances of its class:
    for objects the simulation's hot loops read whose ``__dict__`` some code looks into (the steady ticks look for
    replaced methods there).

    On CPython 3.11 the first look at an object's ``__dict__`` turns its attributes into a dict that shares its
    keys with its class, and from then on every ``obj.attribute`` read misses the interpreter's specialised path
    (about 300 machine instructions a read instead of 20-40: measured with callgrind, the steady charge's cost per
    control tick fell by 18 % when the plant, the sim adapter, the control loop, the supervisor and the feedback
    watch got a dict of their own). Nothing else changes: the same attributes and values."""
    object.__setattr__(obj, "__dict__", dict(obj.__dict__))


class PeriodicJob:
    """A function the clock calls every ``period_s`` simulated seconds until ``cancel()``."""

    def __init__(self, clock: ManualClock, period_s: float, callback: Callable[[], None],
                 run_ahead: RunAhead | None = None) -> None:
        self.clock = clock
        self.period_s = period_s
        self.callback = callback
        self.run_ahead = run_ahead
        self.first_s = 0.0
        self.next_s = 0.0
        self.fired = 0
        self.cancelled = False
        #: (deadline, sequence) kept for this job's next entry while it runs ahead (see ``_run_due``).
        self._reserved: tuple[float, int] | None = None

    def cancel(self) -> None:
        self.cancelled = True

    def done(self) -> bool:  # the heap's test for an entry nobody waits for any more
        return self.cancelled

    def fire(self) -> None:
        """Run the callback at this deadline and schedule the next one (unless cancelled meanwhile)."""
        if self.cancelled:
            return
        self.callback()
        if not self.cancelled:
            self.fired += 1
            # Summed like a loop that sleeps one period after each tick: deadlines land where the steps of a
            # caller advancing in periods land (``first_s + fired * period_s`` drifts apart from those).
            self.next_s += self.period_s
            self.clock._push(self.next_s, self)

    def fire_ahead(self) -> int:
        """Run the job at this deadline and, through ``run_ahead``, at the following ones the clock allows (see
        ``ManualClock.every``); schedule the next. Returns how many deadlines were served."""
        if self.cancelled:
            return 0
        assert self.run_ahead is not None
        clock = self.clock
        self._reserved = None
        runs, next_s = self.run_ahead(self.next_s, self.period_s, clock._clear_until, self._run_due, clock._move_to)
        if not self.cancelled:
            self.fired += runs
            self.next_s = next_s
            reserved = self._reserved
            if reserved is not None and reserved[0] == next_s:
                heapq.heappush(clock._sleepers, (next_s, reserved[1], self))
            else:
                clock._push(next_s, self)
        self._reserved = None
        return runs

    def _run_due(self, time_s: float) -> bool:
        return self.clock._run_due(self, time_s)


class ManualClock:
    """Simulated time that moves only when ``advance()`` (or ``run_until_complete()``) is called."""

    #: How many loop iterations ``settle()`` yields so that woken tasks and what they awaken run.
    SETTLE_YIELDS = 8
    #: Periodic jobs run back to back without the event loop at most this many times: then the loop gets a
    #: turn (work handed over by other threads, such as a database writer's answers, arrives through it).
    DIRECT_RUNS_BETWEEN_YIELDS = 200

    speed = float("inf")

    def __init__(self, start_s: float = 0.0, calendar_origin: datetime | None = None) -> None:
        self._now_s = float(start_s)
        self._sleepers: list[tuple[float, int, asyncio.Future[None] | PeriodicJob]] = []
        self._sequence = itertools.count()
        self._calendar_origin = calendar_origin or datetime(2026, 1, 1, tzinfo=UTC)
        self._direct_runs = 0
        #: ``DIRECT_RUNS_BETWEEN_YIELDS`` as this clock's own attribute (a class attribute read through an instance
        #: is a slow read on CPython 3.11, and ``_clear_until`` reads it every tick).
        self._direct_runs_limit = self.DIRECT_RUNS_BETWEEN_YIELDS
        #: True while a periodic job runs directly inside ``advance``/``run_until_complete`` (not from the event
        #: loop): work it hands to the loop then runs after the jobs due at the same instant (see ``every``).
        self.firing_directly = False
        #: Where the running ``advance``/``run_until_complete`` stops (a periodic job runs ahead no further).
        self._until_s = float("inf")
        #: The running event loop's ready queue (CPython's), as ``_wake_next`` found it for the jobs it fires.
        self._ready: Any = None

    def _clear_until(self, time_s: float) -> int:
        """``clear_until`` of a periodic job running ahead (see ``every``)."""
        if time_s > self._until_s or self._direct_runs >= self._direct_runs_limit:
            return AHEAD_STOP
        sleepers = self._sleepers
        if sleepers and sleepers[0][0] <= time_s:  # due before it (an entry of the same deadline came first)
            return AHEAD_OTHERS_DUE
        self._direct_runs += 1
        if time_s > self._now_s:  # _move_to, inline (this runs once per deadline served)
            self._now_s = time_s
        return AHEAD_SERVE

    def _run_due(self, job: PeriodicJob, time_s: float) -> bool:
        """``run_due`` of ``job`` running ahead (see ``every``): fire the periodic jobs due before its deadline
        ``time_s``, as ``_wake_next`` would. Its entry for ``time_s`` is numbered now, as its plain firing would
        have pushed it after serving the deadline before: a job fired here re-schedules itself behind it."""
        sequence = next(self._sequence)
        job._reserved = (time_s, sequence)
        ready = self._ready  # the running loop's ready queue (``_wake_next`` looked it up)
        if ready is None or time_s > self._until_s:
            return False
        sleepers = self._sleepers
        limit = self._direct_runs_limit
        while sleepers:
            deadline_s, entry_sequence, entry = sleepers[0]
            if deadline_s > time_s or (deadline_s == time_s and entry_sequence > sequence):
                break
            if entry.done():  # a cancelled job or sleeper (_drop_cancelled)
                heapq.heappop(sleepers)
                continue
            if not isinstance(entry, PeriodicJob) or entry.run_ahead is not None or self._direct_runs >= limit:
                return False  # a sleeper to wake (the event loop's), or the loop is owed its turn
            heapq.heappop(sleepers)
            if deadline_s > self._now_s:  # _move_to(deadline_s), inline
                self._now_s = deadline_s
            directly, self.firing_directly = self.firing_directly, True
            try:
                entry.fire()
            finally:
                self.firing_directly = directly
            self._direct_runs += 1
            if ready:
                return False  # it started work on the event loop: that runs before anything else
        if self._direct_runs >= limit:
            return False
        self._direct_runs += 1
        if time_s > self._now_s:  # _move_to(time_s), inline
            self._now_s = time_s
        return True

    def _move_to(self, time_s: float) -> None:
        """A periodic job running ahead serves its deadline ``time_s`` (never backwards)."""
        if time_s > self._now_s:
            self._now_s = time_s

    def now(self) -> float:
        return self._now_s

    def utcnow(self) -> datetime:
        return self._calendar_origin + timedelta(seconds=self._now_s)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(self._now_s + seconds, future)
        await future

    def every(self, period_s: float, callback: Callable[[], None], first_at_s: float | None = None,
              run_ahead: RunAhead | None = None) -> PeriodicJob:
        """Call ``callback()`` at ``first_at_s`` (default: one period from now) and every ``period_s`` after.

        The callback runs synchronously inside ``advance``/``run_until_complete``; what it starts on the event
        loop (a task, a queue put) runs before time moves on, as a woken sleeper's would. One difference from a
        sleeper remains: a woken sleeper's task runs after the jobs due at its instant were queued behind it, so
        what it starts runs after them; a job fired directly (``firing_directly``) that starts work on the loop
        has it queued before them. A job that stands for a task's loop and must keep that order hands such
        work to the task (resolves a future it awaits) when ``firing_directly``, and does it itself otherwise.

        ``run_ahead``, if given, may serve several deadlines in one call:
        ``run_ahead(first_s, period_s, clear_until, run_due, move_to)`` is called (instead of the callback) at the
        deadline ``first_s`` when the job may run directly. It serves that deadline, and may go on to the next ones
        (each the previous plus ``period_s``, summed as the job sums them): before serving ``t`` it asks
        ``clear_until(t)``: ``AHEAD_SERVE`` (nothing else is due before: the clock is at ``t``, serve it),
        ``AHEAD_STOP`` (stop: ``t``
        is the next deadline; ``advance`` or ``run_until_complete`` stop before it, or the loop is owed a turn),
        or ``AHEAD_OTHERS_DUE``: other periodic jobs are due first; having made its state what they may read,
        the job calls ``run_due(t)``, which runs them (in deadline order, as the clock would) and answers whether
        ``t`` may now be served (the clock then at ``t``; False: stop there, something else is due, or what ran
        started work on the event loop). ``move_to(t)`` moves the clock to a deadline (the first one's, or one
        it serves otherwise) before anything is done at it that reads the clock.
        It returns (deadlines served, at least 1 unless the job was cancelled first; the next deadline). This is
        the same as calling the callback at each of those deadlines in turn, with the other jobs fired between
        them, as long as what the job did at each started nothing on the event loop (else it must stop there)."""
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        job = PeriodicJob(self, period_s, callback, run_ahead)
        job.first_s = job.next_s = self._now_s + period_s if first_at_s is None else first_at_s
        self._push(job.next_s, job)
        return job

    def _push(self, deadline_s: float, entry: asyncio.Future[None] | PeriodicJob) -> None:
        heapq.heappush(self._sleepers, (deadline_s, next(self._sequence), entry))

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every runnable task run until it blocks again.

        On CPython's event loop the ready queue is visible, so this yields exactly until nothing else is
        runnable; on another loop it yields a fixed number of passes.
        """
        self._direct_runs = 0
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        await asyncio.sleep(0)
        if ready is None:
            for _ in range(self.SETTLE_YIELDS - 1):
                await asyncio.sleep(0)
            return
        passes = 1
        while ready and passes < 10_000:
            await asyncio.sleep(0)
            passes += 1

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers (and running periodic jobs) in deadline order."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        target_s = self._now_s + seconds
        await self.settle()
        outer_until_s, self._until_s = self._until_s, target_s
        try:
            while True:
                self._drop_cancelled()
                if not self._sleepers or self._sleepers[0][0] > target_s:
                    break
                if self._wake_next():
                    await self.settle()
        finally:
            self._until_s = outer_until_s
        self._now_s = target_s
        await self.settle()

    async def advance_until(self, condition: Callable[[], bool], timeout_s: float, step_s: float = 0.01) -> bool:
        """Advance in steps of ``step_s`` until ``condition()`` holds; False if ``timeout_s`` passes first."""
        deadline_s = self._now_s + timeout_s
        while not condition():
            if self._now_s >= deadline_s:
                return False
            await self.advance(min(step_s, deadline_s - self._now_s))
        return True

    async def run_until_complete(self, awaitable: Awaitable[T], max_sim_s: float = 1e7) -> T:
        """Run ``awaitable`` with time jumping straight to the next deadline whenever all tasks wait.

        The faster-than-real-time mode: a 20-minute charge runs in as long as its computation takes.
        """
        task = asyncio.ensure_future(awaitable)
        limit_s = self._now_s + max_sim_s
        await self.settle()
        outer_until_s, self._until_s = self._until_s, limit_s
        try:
            while not task.done():
                self._drop_cancelled()
                if not self._sleepers:
                    await asyncio.sleep(0)
                    continue
                deadline_s = self._sleepers[0][0]
                if deadline_s > limit_s:
                    task.cancel()
                    raise TimeoutError(f"simulation exceeded {max_sim_s} s of simulated time")
                if self._wake_next():
                    await self.settle()
        finally:
            self._until_s = outer_until_s
        return task.result()

    def _wake_next(self) -> bool:
        """Move to the earliest deadline and wake (or run) everything due then, in order; True when the event
        loop has work to do before time may move on."""
        sleepers = self._sleepers
        self._now_s = max(self._now_s, sleepers[0][0])
        loop = asyncio.get_running_loop()
        ready = self._ready = getattr(loop, "_ready", None)
        needs_loop = False
        while sleepers and sleepers[0][0] <= self._now_s:
            _, _, entry = heapq.heappop(sleepers)
            if isinstance(entry, PeriodicJob):
                if entry.cancelled:
                    continue
                if needs_loop or ready is None:
                    # Tasks woken before it at this instant run first: the job queues behind them.
                    loop.call_soon(entry.fire)
                    needs_loop = True
                    continue
                self.firing_directly = True
                try:
                    if entry.run_ahead is not None:
                        self._direct_runs += 1  # the first deadline; run_ahead's clear_until / run_due count the rest
                        entry.fire_ahead()
                    else:
                        entry.fire()
                        self._direct_runs += 1
                finally:
                    self.firing_directly = False
                if ready or self._direct_runs >= self._direct_runs_limit:
                    needs_loop = True
            elif not entry.done():
                entry.set_result(None)
                needs_loop = True
        return needs_loop

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
