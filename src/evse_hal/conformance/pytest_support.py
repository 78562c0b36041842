"""The suite inside a pytest run: one test per check, or one assertion for them all.

pytest is imported only when ``conformance_tests`` is called (the package does not depend on it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from evse_hal.conformance.context import ConformanceParameters, HardwareFactory
from evse_hal.conformance.runner import ConformanceReport, run_check, run_conformance


def conformance_tests(factory: HardwareFactory, parameters: ConformanceParameters | None = None,
                      checks: Iterable[str] | None = None) -> Callable[..., None]:
    """A pytest test function parametrized over the checks; assign it to a ``test_*`` name in a test module.

    A skipped check (e.g. energised checks on real hardware without a test voltage) is reported as skipped."""
    import pytest

    from evse_hal.conformance.checks import CHECKS

    names = list(checks) if checks is not None else list(CHECKS)
    parameters = parameters or ConformanceParameters()

    @pytest.mark.parametrize("conformance_check", names)
    def test_hal_adapter_conformance(conformance_check: str) -> None:
        result = run_check(factory, conformance_check, parameters)
        if result.outcome == "skip":
            pytest.skip(result.detail)
        assert result.passed, f"{conformance_check}: {result.detail}"

    return test_hal_adapter_conformance


def assert_conformant(factory: HardwareFactory, parameters: ConformanceParameters | None = None,
                      **run_options: Any) -> ConformanceReport:
    """Run every check; ``AssertionError`` with the whole report if any failed, else the report."""
    report = run_conformance(factory, parameters or ConformanceParameters(), **run_options)
    assert report.passed, "\n" + report.format()
    return report
