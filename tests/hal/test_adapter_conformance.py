"""The HAL conformance suite (evse_hal.conformance): the simulated adapter passes it, and it catches adapters
that break the contract (a contactor closed on start, getters that return the command, slow calls, an
emergency stop that does not stay off)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from evse_hal import registry
from evse_hal.adapters.sim import SimHardware
from evse_hal.conformance import (
    CHECKS,
    ConformanceParameters,
    assert_conformant,
    conformance_tests,
    registered_adapter_factory,
    run_check,
    run_conformance,
)
from evse_hal.conformance.__main__ import main as conformance_main
from evse_hal.conformance.checks import NON_BLOCKING_CALL_BUDGET_S

# CI: the simulated adapter, through the registry as the launchers build it, one test per check.
test_sim_adapter_conforms = conformance_tests(registered_adapter_factory("sim"))


def test_the_sim_adapter_passes_every_check_with_400V_energised():
    report = assert_conformant(registered_adapter_factory("sim"))
    assert [result.name for result in report.results] == list(CHECKS)
    assert all(result.outcome == "pass" for result in report.results) and len(report.results) == 14
    assert report.format().splitlines()[0] == ("HAL adapter conformance: adapter (simulated time, energised checks "
                                               "at 400 V)")


# --- deliberately broken adapters ----------------------------------------------------------------------

class ContactorClosedOnStart(SimHardware):
    name = "broken-contactor"

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.contactor.set_closed(True)


class SupplyEchoesItsCommand(SimHardware):
    """get_status() returns the last setpoints instead of the measured output."""

    name = "echo-supply"

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        supply = self.supply
        commanded = {"voltage_V": 0.0, "current_A": 0.0}
        set_voltage, set_current_limit = supply.set_voltage, supply.set_current_limit

        def remember_voltage(voltage_V: float) -> None:
            commanded["voltage_V"] = voltage_V
            set_voltage(voltage_V)

        def remember_current(current_A: float) -> None:
            commanded["current_A"] = current_A
            set_current_limit(current_A)

        supply.set_voltage = remember_voltage  # type: ignore[method-assign]
        supply.set_current_limit = remember_current  # type: ignore[method-assign]
        supply.get_status = lambda: (commanded["voltage_V"], commanded["current_A"])  # type: ignore[method-assign]


class PWMEchoesItsCommand(SimHardware):
    """The oscillator never starts, but get_duty() reports the commanded duty."""

    name = "echo-pwm"

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        commanded = [100.0]
        set_duty = self.pwm.set_duty

        def ignore_oscillation(duty_percent: float) -> None:
            commanded[0] = duty_percent
            set_duty(100.0)

        self.pwm.set_duty = ignore_oscillation  # type: ignore[method-assign]
        self.pwm.get_duty = lambda: commanded[0]  # type: ignore[method-assign]


class SlowNonBlockingMeter(SimHardware):
    """Claims to be non-blocking, but a meter read takes 1 ms (e.g. a Modbus round trip on the event loop)."""

    name = "slow-meter"

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        read_voltage_V = self.meter.read_voltage_V

        def round_trip() -> float:
            deadline = time.perf_counter() + 2 * NON_BLOCKING_CALL_BUDGET_S
            while time.perf_counter() < deadline:
                pass
            return read_voltage_V()

        self.meter.read_voltage_V = round_trip  # type: ignore[method-assign]


class EmergencyOffDoesNotLatch(SimHardware):
    """A new voltage setpoint switches the supply back on after emergency_off()."""

    name = "no-latch"

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        supply, set_voltage = self.supply, self.supply.set_voltage

        def re_enable(voltage_V: float) -> None:
            set_voltage(voltage_V)
            supply.set_enabled(True)

        supply.set_voltage = re_enable  # type: ignore[method-assign]


@pytest.mark.parametrize(("adapter", "failing_check", "complaint"), [
    (ContactorClosedOnStart, "safe_state_on_start", "the contactor reads closed on start"),
    (SupplyEchoesItsCommand, "disabled_supply_holds_output_at_zero",
     "supply disabled with setpoints 400 V / 2 A: get_status() = (400 V, 2 A)"),
    (PWMEchoesItsCommand, "pwm_duty_on_the_wire", "set_duty(5): after 10 ms get_duty() = 5 % and the negative "
                                                  "plateau 12 V"),
    (SlowNonBlockingMeter, "calls_return_promptly", "non-blocking adapter, budget 500 µs per call; median: "
                                                    "meter.read_voltage_V"),
    (EmergencyOffDoesNotLatch, "emergency_off_and_stays_off", "without set_enabled(True)"),
])
def test_the_suite_catches_a_broken_adapter(adapter: type[SimHardware], failing_check: str, complaint: str):
    result = run_check(adapter, failing_check)
    assert result.outcome == "fail" and complaint in result.detail, result.detail
    report = run_conformance(adapter, adapter=adapter.name)
    assert not report.passed and failing_check in [failure.name for failure in report.failures]
    assert "DOES NOT CONFORM" in report.format()


def test_a_check_whose_adapter_raises_fails_with_the_exception():
    class RaisingCP(SimHardware):
        def __init__(self, clock: Any) -> None:
            super().__init__(clock)

            def unplugged_sensor() -> float:
                raise OSError("CP ADC not responding")

            self.cp.read_voltage = unplugged_sensor  # type: ignore[method-assign]

    result = run_check(RaisingCP, "cp_idle_state")
    assert (result.outcome, result.detail) == ("fail", "raised OSError: CP ADC not responding")


def test_energised_checks_are_skipped_in_real_time_unless_a_test_voltage_is_given():
    parameters = ConformanceParameters(real_time=True)
    assert parameters.energised_test_voltage_V() is None
    assert ConformanceParameters(real_time=True, test_voltage_V=150.0).energised_test_voltage_V() == 150.0
    assert ConformanceParameters().energised_test_voltage_V() == 400.0
    result = run_check(SimHardware, "supply_reaches_its_setpoint", ConformanceParameters(test_voltage_V=1500.0))
    assert result.outcome == "skip" and "outside the supply's 0…1000 V" in result.detail


# --- python -m evse_hal.conformance --------------------------------------------------------------------

def test_the_command_prints_a_report_and_exits_0_for_the_sim_adapter(capsys):
    assert conformance_main(["sim", "--check", "safe_state_on_start", "--check", "emergency_off_and_stays_off"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "HAL adapter conformance: sim (simulated time, energised checks at 400 V)",
        "  PASS  safe_state_on_start",
        "  PASS  emergency_off_and_stays_off",
        "2 checks: 2 passed, 0 failed, 0 skipped -> CONFORMS"]


def test_the_command_hands_options_to_the_factory_and_exits_1_on_a_failure(capsys):
    received: list[dict[str, Any]] = []

    def broken_factory(clock: Any, close_contactor_on_start: bool = False) -> SimHardware:
        received.append({"close_contactor_on_start": close_contactor_on_start})
        return ContactorClosedOnStart(clock) if close_contactor_on_start else SimHardware(clock)

    registry.register_adapter("bench-fake", broken_factory)
    try:
        assert conformance_main(["bench-fake", "--time", "simulated", "--adapter-option",
                                 "close_contactor_on_start=true", "--check", "safe_state_on_start"]) == 1
        assert received and all(options == {"close_contactor_on_start": True} for options in received)
        out = capsys.readouterr().out
        assert "FAIL  safe_state_on_start  the contactor reads closed on start" in out
        assert conformance_main(["bench-fake", "--adapter-option", "relay=3"]) == 2
        assert "adapter 'bench-fake' does not accept option(s) relay" in capsys.readouterr().err
    finally:
        registry._registered.pop("bench-fake", None)


def test_the_command_refuses_an_unknown_adapter_with_status_2(capsys):
    assert conformance_main(["acme"]) == 2
    assert "unknown HAL adapter 'acme'; known adapters: " in capsys.readouterr().err
