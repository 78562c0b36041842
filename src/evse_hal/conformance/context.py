"""What a check works with: the adapter under test, its timebase, the parameters, and how a check reports.

A check raises ``CheckFailed`` (what was wrong, with the numbers) or ``CheckSkipped`` (why it could not run here).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evse_hal.conformance.timebase import POLL_STEP_S, Timebase
from evse_hal.interfaces import EVSEHardware

#: Builds the adapter under test on the clock the suite gives it (options already bound).
HardwareFactory = Callable[[Any], EVSEHardware]

#: Energised checks in simulated time run at this output voltage unless told otherwise (a simulation endangers
#: no one; on real hardware nothing is energised unless ``test_voltage_V`` is given).
SIMULATION_TEST_VOLTAGE_V = 400.0
#: The meter is fed one sample per control tick while the suite waits (the controller's default period).
METER_FEED_PERIOD_S = 0.01


class CheckFailed(AssertionError):
    """The adapter does not meet the contract; the message says what was measured against what."""


class CheckSkipped(Exception):
    """The check cannot run with these parameters (e.g. energised checks without a test voltage)."""


@dataclass(frozen=True)
class ConformanceParameters:
    #: False: the adapter is built on a ``SteppedClock`` the suite moves (a simulated adapter); True: on the
    #: real clock, budgets measured on the wall (hardware).
    real_time: bool = False
    #: Output voltage of the energised checks (supply on, contactor closed onto an open output). None: 400 V in
    #: simulated time; in real time the energised checks are skipped (bench: output disconnected, then opt in).
    test_voltage_V: float | None = None
    #: The CP state the bench presents while nothing drives it (A: no car plugged in); None: not checked.
    expected_idle_cp_state: str | None = "A"

    def energised_test_voltage_V(self) -> float | None:
        if self.test_voltage_V is not None:
            return self.test_voltage_V
        return None if self.real_time else SIMULATION_TEST_VOLTAGE_V


class CheckContext:
    """What a check works with: the adapter, its time, the parameters."""

    def __init__(self, hardware: EVSEHardware, timebase: Timebase, parameters: ConformanceParameters) -> None:
        self.hw = hardware
        self.time = timebase
        self.parameters = parameters
        #: Set by a check that closed the adapter itself.
        self.closed = False
        self._last_feed_s = timebase.now_s()

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            raise CheckFailed(message)

    def pass_s(self, seconds: float) -> None:
        """Let time pass, feeding the meter once per control period as the controller does."""
        end_s = self.time.now_s() + seconds
        while (left_s := end_s - self.time.now_s()) > 1e-12:
            self.time.pass_s(min(POLL_STEP_S, left_s))
            self._feed_meter()

    def within(self, budget_s: float, condition: Callable[[], bool]) -> float | None:
        """Seconds until ``condition()`` first held, polled every ``POLL_STEP_S``; None if not within ``budget_s``."""
        start_s = self.time.now_s()
        while True:
            elapsed_s = self.time.now_s() - start_s
            if condition():
                return elapsed_s
            if elapsed_s >= budget_s - 1e-9:
                return None
            self.time.pass_s(min(POLL_STEP_S, budget_s - elapsed_s))
            self._feed_meter()

    def median_call_s(self, call: Callable[[], object], repeats: int = 15) -> float:
        """Median wall time of ``call()`` over ``repeats`` calls, a poll step of adapter time between them."""
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            durations.append(time.perf_counter() - started)
            self.time.pass_s(POLL_STEP_S)
        return statistics.median(durations)

    def _feed_meter(self) -> None:
        if self.time.now_s() - self._last_feed_s >= METER_FEED_PERIOD_S:
            self._last_feed_s = self.time.now_s()
            meter = self.hw.meter
            meter.update(meter.read_voltage_V(), meter.read_current_A())


Check = Callable[[CheckContext], None]
