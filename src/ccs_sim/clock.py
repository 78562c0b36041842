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
import heapq
import itertools
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable, Protocol, TypeVar

T = TypeVar("T")


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
        return datetime.now(timezone.utc)


class ScaledClock:
    """Simulated time = wall time × speed, from the moment the clock is made.

    A sleep waits for a *simulated* deadline: it computes the wall time left at the current speed and, when
    the speed changes (``set_speed``), wakes and computes it again, so a sleep begun at speed 0.001 ends as
    soon as its simulated deadline passes at the new speed (and a sleep begun fast is not cut short when the
    simulation slows down).
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._speed = float(speed)
        self._sim_origin_s = 0.0
        self._wall_origin_s = time.monotonic()
        self._calendar_origin = datetime.now(timezone.utc)
        #: One future per sleep in progress (on whichever event loop it runs); a speed change resolves them all.
        self._speed_change_waiters: set[asyncio.Future[None]] = set()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._sim_origin_s + (time.monotonic() - self._wall_origin_s) * self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on; simulated time stays continuous, and every sleep in progress wakes
        and recomputes its remaining wall time for its unchanged simulated deadline."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._sim_origin_s = self.now()
        self._wall_origin_s = time.monotonic()
        self._speed = float(speed)
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


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class ManualClock:
    """Simulated time that moves only when ``advance()`` is called.

    ``advance(dt)`` wakes every sleeper whose deadline falls inside the step, one deadline at a time
    and in order, letting each woken task run (and schedule its next sleep) before time moves on.
    """

    #: How many loop iterations ``settle()`` yields so that woken tasks and what they awaken run.
    SETTLE_YIELDS = 8

    def __init__(self, start_s: float = 0.0, calendar_origin: datetime | None = None) -> None:
        self._now_s = float(start_s)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = itertools.count()
        self._calendar_origin = calendar_origin or datetime(2026, 1, 1, tzinfo=timezone.utc)

    speed = float("inf")

    def now(self) -> float:
        return self._now_s

    def utcnow(self) -> datetime:
        from datetime import timedelta

        return self._calendar_origin + timedelta(seconds=self._now_s)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now_s + seconds, next(self._sequence), future))
        await future

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every runnable task run until it blocks again.

        On CPython's event loop the ready queue is visible, so this yields exactly until nothing else is
        runnable; on another loop it yields a fixed number of passes.
        """
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
        """Move time forward by ``seconds``, waking sleepers in deadline order."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        target_s = self._now_s + seconds
        await self.settle()
        while True:
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > target_s:
                break
            self._wake_next()
            await self.settle()
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
        while not task.done():
            self._drop_cancelled()
            if not self._sleepers:
                await asyncio.sleep(0)
                continue
            deadline_s = self._sleepers[0][0]
            if deadline_s > limit_s:
                task.cancel()
                raise TimeoutError(f"simulation exceeded {max_sim_s} s of simulated time")
            self._wake_next()
            await self.settle()
        return task.result()

    def _wake_next(self) -> None:
        """Move to the earliest deadline and wake every sleeper due then."""
        self._now_s = max(self._now_s, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self._now_s:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
