"""HAL adapter conformance suite: prove a driver meets the contract in ``evse_hal/interfaces.py``.

Like python-can's back-to-back tests, it ships with the package so that a third-party adapter runs it against
its own driver. Each check builds a fresh adapter through its factory, measures, and closes it: types, units and
ranges of the readings, how fast calls return, the duty on the wire within 10 ms, the contactor's mirror within
100 ms, the safe state on start (contactor open, supply off, PWM off, output ≈ 0 V), the CP state classified
from the measured plateau, and — energised, only when asked on real hardware — the shutdown and emergency paths
(supply off → current falls, output discharged, contactor opens).

From the command line (a registered adapter, options as ``ccs-sim serve`` takes them)::

    python -m evse_hal.conformance sim
    python -m evse_hal.conformance acme --adapter-options acme.toml --adapter-option can_channel=can1 \\
        --energize-output 150

From pytest (one test per check)::

    from evse_hal.conformance import ConformanceParameters, conformance_tests
    test_acme_conformance = conformance_tests(create_acme_hardware, ConformanceParameters(real_time=True))

A simulated adapter runs on the clock the suite injects (a ``SteppedClock``): no wall-clock waiting.
"""

from evse_hal.conformance.checks import CHECKS
from evse_hal.conformance.context import CheckContext, CheckFailed, CheckSkipped, ConformanceParameters, HardwareFactory
from evse_hal.conformance.pytest_support import assert_conformant, conformance_tests
from evse_hal.conformance.runner import (
                                          CheckResult,
                                          ConformanceReport,
                                          registered_adapter_factory,
                                          run_check,
                                          run_conformance,
)
from evse_hal.conformance.timebase import SteppedClock

__all__ = ["CHECKS", "CheckContext", "CheckFailed", "CheckResult", "CheckSkipped", "ConformanceParameters",
           "ConformanceReport", "HardwareFactory", "SteppedClock", "assert_conformant", "conformance_tests",
           "registered_adapter_factory", "run_check", "run_conformance"]
