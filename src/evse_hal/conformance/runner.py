"""Running the conformance checks: one fresh adapter per check, a result per check, a report.

A check gets a ``CheckContext``: the adapter just built (nothing commanded yet), the timebase, the parameters.
It raises ``CheckFailed`` (what was wrong, with the numbers) or ``CheckSkipped`` (why it could not run here);
any other exception from the adapter fails the check with its type and message. The adapter is closed after
every check.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from evse_hal.conformance.timebase import POLL_STEP_S, RealTimebase, SimulatedTimebase, Timebase
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


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: str  # "pass", "fail" or "skip"
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


@dataclass
class ConformanceReport:
    adapter: str
    parameters: ConformanceParameters
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No check failed (skipped ones do not count against the adapter)."""
        return all(result.outcome != "fail" for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.outcome == "fail"]

    def format(self) -> str:
        voltage_V = self.parameters.energised_test_voltage_V()
        header = (f"HAL adapter conformance: {self.adapter} ("
                  f"{'real time' if self.parameters.real_time else 'simulated time'}, "
                  f"{f'energised checks at {voltage_V:g} V' if voltage_V is not None else 'nothing energised'})")
        width = max((len(result.name) for result in self.results), default=0)
        lines = [header]
        lines += [f"  {result.outcome.upper():4}  {result.name:{width}}  {result.detail}".rstrip()
                  for result in self.results]
        counts = {outcome: sum(result.outcome == outcome for result in self.results)
                  for outcome in ("pass", "fail", "skip")}
        lines.append(f"{len(self.results)} checks: {counts['pass']} passed, {counts['fail']} failed, "
                     f"{counts['skip']} skipped -> {'CONFORMS' if self.passed else 'DOES NOT CONFORM'}")
        return "\n".join(lines)


def run_check(factory: HardwareFactory, name: str, parameters: ConformanceParameters | None = None) -> CheckResult:
    """Build a fresh adapter, run check ``name`` on it, close it."""
    parameters = parameters or ConformanceParameters()
    from evse_hal.conformance.checks import CHECKS

    check = CHECKS[name]
    timebase: Timebase = RealTimebase() if parameters.real_time else SimulatedTimebase()
    hardware = factory(timebase.clock)
    context = CheckContext(hardware, timebase, parameters)
    try:
        check(context)
        result = CheckResult(name, "pass")
    except CheckFailed as failure:
        result = CheckResult(name, "fail", str(failure))
    except CheckSkipped as skipped:
        result = CheckResult(name, "skip", str(skipped))
    except Exception as error:  # the adapter raised: that is a failure of the adapter, not of the suite
        result = CheckResult(name, "fail", f"raised {type(error).__name__}: {error}")
    if not context.closed:
        try:
            hardware.close()
        except Exception as error:
            if result.outcome != "fail":
                result = CheckResult(name, "fail", f"close() raised {type(error).__name__}: {error}")
    return result


def run_conformance(factory: HardwareFactory, parameters: ConformanceParameters | None = None,
                    adapter: str = "adapter", checks: Iterable[str] | None = None) -> ConformanceReport:
    """Every check (or the ones named), each on a fresh adapter from ``factory``."""
    parameters = parameters or ConformanceParameters()
    from evse_hal.conformance.checks import CHECKS

    names = list(checks) if checks is not None else list(CHECKS)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown conformance check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    return ConformanceReport(adapter, parameters, [run_check(factory, name, parameters) for name in names])


def registered_adapter_factory(name: str, **options: Any) -> HardwareFactory:
    """The registered adapter ``name`` with ``options`` bound (through the registry, as the launchers build it)."""
    from evse_hal.registry import check_adapter_options, create_hardware

    check_adapter_options(name, options)
    return lambda clock: create_hardware(name, clock, **options)
