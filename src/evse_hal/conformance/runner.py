"""Running the conformance checks: one fresh adapter per check, a result per check, a report.

A check gets a ``CheckContext``: the adapter just built (nothing commanded yet), the timebase, the parameters.
It raises ``CheckFailed`` (what was wrong, with the numbers) or ``CheckSkipped`` (why it could not run here);
any other exception from the adapter fails the check with its type and message. The adapter is closed after
every check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from evse_hal.conformance.checks import CHECKS
from evse_hal.conformance.context import CheckContext, CheckFailed, CheckSkipped, ConformanceParameters, HardwareFactory
from evse_hal.conformance.timebase import RealTimebase, SimulatedTimebase, Timebase


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
