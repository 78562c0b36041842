"""``python -m evse_hal.conformance NAME [options]``: run the suite against a registered adapter, print a report.

Exit status: 0 conforms, 1 a check failed, 2 usage (unknown adapter or check, malformed or refused option).
"""

from __future__ import annotations

import argparse
import sys

from evse_hal.conformance.checks import CHECKS
from evse_hal.conformance.context import SIMULATION_TEST_VOLTAGE_V, ConformanceParameters
from evse_hal.conformance.runner import registered_adapter_factory, run_conformance
from evse_hal.conformance.timebase import RealTimebase, SimulatedTimebase
from evse_hal.registry import (
    AdapterOptionError,
    UnknownAdapterError,
    add_adapter_arguments,
    merge_adapter_options,
    options_from_arguments,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evse_hal.conformance",
                                     description="HAL adapter conformance suite (the contract in "
                                                 "evse_hal/interfaces.py)")
    parser.add_argument("adapter", metavar="NAME", help="registered adapter name (sim, or your entry point's)")
    add_adapter_arguments(parser, with_name=False)
    parser.add_argument("--time", choices=("simulated", "real"), default=None,
                        help="simulated: the adapter runs on a clock the suite moves (no waiting); real: the wall "
                             "clock, for hardware (default: simulated for sim, real otherwise)")
    parser.add_argument("--energize-output", type=float, metavar="VOLTS", default=None,
                        help=f"run the energised checks (supply on, contactor closed, output disconnected!) at this "
                             f"voltage (default: {SIMULATION_TEST_VOLTAGE_V:g} V in simulated time, none in real "
                             f"time)")
    parser.add_argument("--idle-cp-state", default="A", choices=("A", "B", "C", "D", "E", "none"),
                        help="CP state the bench presents with nothing driving it (default A: no car; none: skip)")
    parser.add_argument("--check", action="append", choices=list(CHECKS), metavar="CHECK",
                        help=f"run only this check (repeatable): {', '.join(CHECKS)}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    real_time = args.time == "real" if args.time is not None else args.adapter != "sim"
    timebase = RealTimebase() if real_time else SimulatedTimebase()
    try:
        options = merge_adapter_options(args.adapter_options, options_from_arguments(args))
        factory = registered_adapter_factory(args.adapter, **options)
        factory(timebase.clock).close()  # a factory taking **options undeclared refuses a wrong one only when called
    except (UnknownAdapterError, AdapterOptionError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    parameters = ConformanceParameters(real_time=real_time, test_voltage_V=args.energize_output,
                                       expected_idle_cp_state=None if args.idle_cp_state == "none"
                                       else args.idle_cp_state)
    report = run_conformance(factory, parameters, adapter=args.adapter, checks=args.check)
    print(report.format())
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
