"""Time for the conformance suite: simulated (the suite moves the adapter's injected clock) or real (wall time).

A simulated adapter is built on a ``SteppedClock``, a ``ManualClock`` the suite moves forward itself, a
millisecond at a time while it waits for an effect; nothing sleeps on the wall, so the budgets are measured in
the adapter's own time. A hardware adapter is built on a ``RealClock`` and the suite polls on the wall.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from evse_model.clock import Clock, ManualClock, RealClock

#: How often the suite looks again while it waits for an effect (fine enough for the 10 ms budgets).
POLL_STEP_S = 0.001


class SteppedClock(ManualClock):
    """A ``ManualClock`` moved synchronously by the suite (no task sleeps on it while the suite runs)."""

    def step(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now_s += seconds


class Timebase(ABC):
    """The clock given to the adapter's factory, and how the suite lets time pass on it."""

    #: True: budgets are measured on the wall (real hardware).
    real_time: bool
    clock: Clock

    @abstractmethod
    def now_s(self) -> float:
        """Seconds, monotonic, in the adapter's time."""

    @abstractmethod
    def pass_s(self, seconds: float) -> None:
        """Let ``seconds`` of the adapter's time pass."""


class SimulatedTimebase(Timebase):
    real_time = False
    clock: SteppedClock

    def __init__(self) -> None:
        self.clock = SteppedClock()

    def now_s(self) -> float:
        return self.clock.now()

    def pass_s(self, seconds: float) -> None:
        self.clock.step(seconds)


class RealTimebase(Timebase):
    real_time = True

    def __init__(self) -> None:
        self.clock = RealClock()

    def now_s(self) -> float:
        return time.monotonic()

    def pass_s(self, seconds: float) -> None:
        time.sleep(seconds)
