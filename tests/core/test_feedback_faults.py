"""The contactor's mirror contact and the supply's output against their commands (issue 11 item 5), on the
manual clock: a contactor that does not follow within its 100 ms (HAL contract, IEC 61851-23 CC.5.4) raises
CONTACTOR_FAULT; a supply still carrying ≥ 5 A 30 ms after it was switched off, still holding ≥ 60 V 100 ms
after it was switched off with its contactor open, or switched on but stuck (below its voltage setpoint, its
current limit and its power limit, not rising at 200 V/s) for 0.5 s raises SUPPLY_FAULT. Faults are injected
through the sim adapter's ``inject_device_faults``."""

from __future__ import annotations

import pytest

from ccs_sim.core.safety import FeedbackWatch, Measurements, SafetyLimits
from ccs_sim.runtime import build_controller
from conftest import make_settings
from evse_hal.interfaces import SupplyCapabilities
from evse_hal.pilot import read_pilot
from evse_model import standards
from evse_model.clock import ManualClock
from evse_model.faults import CONTACTOR_FAULT, SUPPLY_FAULT, Severity

CONTROL_PERIOD_S = 0.01  # the default settings' control period: a reading comes at most this late
LIMITS = SafetyLimits()
CAPABILITIES = SupplyCapabilities(max_voltage_V=1000.0, min_voltage_V=0.0, max_current_A=400.0, min_current_A=0.0,
                                  max_power_W=350_000.0)


def _reading(time_s: float, **overrides: object) -> Measurements:
    values: dict[str, object] = dict(
        time_s=time_s, pilot=read_pilot(6.0, -12.0, 5.0), cp_positive_V=6.0, cp_negative_V=-12.0, duty_percent=5.0,
        contactor_closed=False, output_voltage_V=0.0, output_current_A=0.0, supply_voltage_V=0.0,
        supply_current_A=0.0, isolation_ohm=None, connector_temperature_C=25.0, estop_pressed=False)
    values.update(overrides)
    return Measurements(**values)  # type: ignore[arg-type]


def _feedback_faults(controller, fault_type):  # type: ignore[no-untyped-def]
    return [fault for fault in controller.fault_history if fault.type is fault_type]


async def _advance_until_fault(rig, fault_type, timeout_s: float, step_s: float = 0.001):  # type: ignore[no-untyped-def]
    end_s = rig.clock.now() + timeout_s
    while not _feedback_faults(rig.controller, fault_type):
        assert rig.clock.now() < end_s, f"no {fault_type.name} within {timeout_s} s: {rig.controller.fault_history}"
        await rig.clock.advance(step_s)
    return _feedback_faults(rig.controller, fault_type)[0]


async def _advance_until_commanded(rig, condition, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    """Move the clock in 1 ms steps until the watch holds the command ``condition`` looks for; its time."""
    end_s = rig.clock.now() + timeout_s
    while not condition(rig.controller.feedback):
        assert rig.clock.now() < end_s, "command not sent"
        await rig.clock.advance(0.001)
    return rig.clock.now()


# --- the watch alone: the budgets at their boundaries ------------------------------------------------------------
def test_contactor_mirror_is_judged_against_its_100_ms_budget() -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.contactor_commanded(True, 1.0)
    assert watch.judge(_reading(1.05, contactor_closed=True)) is None  # followed
    watch.contactor_commanded(False, 2.0)
    assert watch.judge(_reading(2.0 + standards.CONTACTOR_MOTION_MAX_S, contactor_closed=True)) is None  # in time
    found = watch.judge(_reading(2.11, contactor_closed=True))
    assert found is not None and found[0] is CONTACTOR_FAULT and "commanded open" in found[1]
    assert watch.judge(_reading(2.2, contactor_closed=True)) is None  # reported once per disagreement


def test_a_contactor_that_drops_out_by_itself_is_judged_from_the_first_reading_that_shows_it() -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.contactor_commanded(True, 0.0)
    assert watch.judge(_reading(5.0, contactor_closed=True)) is None
    assert watch.judge(_reading(5.01, contactor_closed=False)) is None  # first seen open: the budget starts here
    assert watch.judge(_reading(5.11, contactor_closed=False)) is None
    found = watch.judge(_reading(5.12, contactor_closed=False))
    assert found is not None and found[0] is CONTACTOR_FAULT and "commanded closed" in found[1]


def test_a_supply_switched_off_must_drop_below_5_A_within_30_ms() -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.contactor_commanded(True, 0.0)
    watch.supply_switched(False, 1.0)
    closed = {"contactor_closed": True, "supply_voltage_V": 400.0}
    assert watch.judge(_reading(1.03, supply_current_A=50.0, **closed)) is None
    assert watch.judge(_reading(1.05, supply_current_A=4.9, **closed)) is None
    found = watch.judge(_reading(1.05, supply_current_A=5.0, **closed))
    assert found is not None and found[0] is SUPPLY_FAULT and "5.0 A" in found[1]


def test_a_supply_switched_off_must_discharge_below_60_V_within_100_ms_of_the_contactor_opening() -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.supply_switched(False, 1.0)
    watch.contactor_commanded(False, 1.05)
    assert watch.judge(_reading(1.15, supply_voltage_V=400.0)) is None  # 100 ms after the open: in time
    assert watch.judge(_reading(1.16, supply_voltage_V=59.0)) is None
    found = watch.judge(_reading(1.16, supply_voltage_V=61.0))
    assert found is not None and found[0] is SUPPLY_FAULT and "61 V" in found[1]


@pytest.mark.parametrize("slew_V_per_s, faulted", [(300.0, False), (100.0, True), (0.0, True)])
def test_a_supply_switched_on_must_regulate_or_rise_at_200_V_per_s(slew_V_per_s: float, faulted: bool) -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.supply_setpoints(0.0, voltage_V=800.0, current_limit_A=100.0)
    watch.supply_switched(True, 0.0)
    found = None
    for tick in range(1, 100):  # 0.99 s, below 800 V and 100 A all along
        time_s = tick * CONTROL_PERIOD_S
        found = found or watch.judge(_reading(time_s, supply_voltage_V=slew_V_per_s * time_s, supply_current_A=1.0))
    assert (found is not None) is faulted, found
    if found is not None:
        assert found[0] is SUPPLY_FAULT and "not following" in found[1]


def test_a_supply_at_its_current_or_power_limit_is_following() -> None:
    watch = FeedbackWatch(LIMITS, CAPABILITIES)
    watch.supply_setpoints(0.0, voltage_V=800.0, current_limit_A=2.0, power_limit_W=10_000.0)
    watch.supply_switched(True, 0.0)
    for tick in range(1, 200):  # CC at 2 A (precharge into a large capacitance), then CP at 10 kW
        assert watch.judge(_reading(tick * 0.01, supply_voltage_V=100.0, supply_current_A=1.9)) is None
    watch.supply_setpoints(2.0, current_limit_A=200.0)
    for tick in range(201, 400):
        assert watch.judge(_reading(tick * 0.01, supply_voltage_V=400.0, supply_current_A=25.0)) is None


# --- the controller on the simulated plant --------------------------------------------------------------------
async def test_welded_contactor_raises_contactor_fault_within_100_ms_of_the_open_command(rig) -> None:
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 10})
    await rig.until_phase("CHARGING")
    await rig.advance(1.0)
    rig.controller.hw.simulation.inject_device_faults(contactor_welded=True)
    await rig.post("/stop_session")
    await _advance_until_commanded(rig, lambda watch: watch.contactor_closed is False, timeout_s=5.0)
    opened_s = rig.controller.feedback.contactor_commanded_s
    fault = await _advance_until_fault(rig, CONTACTOR_FAULT, timeout_s=1.0)
    assert rig.plant.evse_contactor_closed
    assert standards.CONTACTOR_MOTION_MAX_S < fault.time_s - opened_s <= standards.CONTACTOR_MOTION_MAX_S \
        + CONTROL_PERIOD_S + 1e-9
    assert fault.severity is Severity.EMERGENCY and fault.source == "supervisor" and "open" in fault.message
    await rig.advance(0.2)
    status = await rig.status()
    assert status["active_fault"] == "CONTACTOR_FAULT" and status["error"] == "CONTACTOR_FAULT"
    assert status["supply_current"] < standards.EMERGENCY_CURRENT_A and status["pwm_duty"] == 100.0
    assert len(_feedback_faults(rig.controller, CONTACTOR_FAULT)) == 1
    refused = (await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50})).json()
    assert refused["status"] == "error" and "welded" in refused["message"]


async def test_contactor_that_fails_to_close_aborts_the_session_with_contactor_fault(rig) -> None:
    rig.controller.hw.simulation.inject_device_faults(contactor_fails_to_close=True)
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 10})
    await _advance_until_commanded(rig, lambda watch: watch.contactor_closed is True, timeout_s=10.0)
    closed_s = rig.controller.feedback.contactor_commanded_s
    fault = await _advance_until_fault(rig, CONTACTOR_FAULT, timeout_s=1.0)
    assert not rig.plant.evse_contactor_closed
    assert standards.CONTACTOR_MOTION_MAX_S < fault.time_s - closed_s <= standards.CONTACTOR_MOTION_MAX_S \
        + CONTROL_PERIOD_S + 1e-9
    status = await rig.until_phase("ABORTED", timeout_s=1.0)
    assert status["last_session_summary"]["error"] == "CONTACTOR_FAULT"
    assert status["last_session_summary"]["end_reason"] == "fault"


async def test_supply_that_keeps_its_current_after_an_emergency_off_raises_supply_fault(rig) -> None:
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 10})
    await rig.until_phase("CHARGING")
    await rig.advance(1.0)
    rig.controller.hw.simulation.inject_device_faults(supply_ignores_commands=True)
    await rig.post("/fault", {"type": "E_STOP"})
    off_s = rig.controller.feedback.supply_switched_s
    assert rig.controller.feedback.supply_enabled is False
    fault = await _advance_until_fault(rig, SUPPLY_FAULT, timeout_s=1.0)
    assert standards.EMERGENCY_CURRENT_DEADLINE_S < fault.time_s - off_s <= standards.EMERGENCY_CURRENT_DEADLINE_S \
        + CONTROL_PERIOD_S + 1e-9
    assert fault.severity is Severity.EMERGENCY and "still carries" in fault.message
    await rig.advance(0.2)
    status = await rig.status()
    assert not status["contactor_closed"]  # the emergency opened it anyway (< 100 ms)
    assert status["last_session_summary"]["error"] == "E_STOP"  # the session's end is the first fault's


async def test_supply_stuck_at_zero_when_switched_on_raises_supply_fault_within_its_window(rig) -> None:
    rig.controller.hw.simulation.inject_device_faults(supply_ignores_commands=True)
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 10})
    await _advance_until_commanded(rig, lambda watch: watch.supply_enabled is True, timeout_s=10.0)
    on_s = rig.controller.feedback.supply_switched_s
    fault = await _advance_until_fault(rig, SUPPLY_FAULT, timeout_s=2.0)
    window_s = LIMITS.supply_follow_window_s
    # the window opens once the stage has a current limit to reach (and its current loop's response time passed)
    followable_s = max(on_s, rig.controller.feedback.current_limit_set_s + LIMITS.supply_current_response_s)
    assert window_s < fault.time_s - on_s and fault.time_s - followable_s <= window_s + 2 * CONTROL_PERIOD_S + 1e-9
    assert "not following" in fault.message
    status = await rig.until_phase("ABORTED", timeout_s=1.0)
    assert status["last_session_summary"]["error"] == "SUPPLY_FAULT"


async def test_supply_that_does_not_discharge_when_switched_off_raises_supply_fault() -> None:
    clock = ManualClock()
    controller = build_controller(make_settings(), clock)
    hw = controller.hw
    hw.supply.set_voltage(400.0)  # left on by a crash, the contactor open
    hw.supply.set_current_limit(2.0)
    hw.supply.set_enabled(True)
    await clock.advance(1.0)
    assert hw.supply.get_status()[0] > 390.0
    hw.simulation.inject_device_faults(supply_ignores_commands=True)
    await controller.start()  # the safe state: emergency off (ignored), contactor open
    started_s = clock.now()
    try:
        while not _feedback_faults(controller, SUPPLY_FAULT):
            assert clock.now() - started_s < 1.0, controller.fault_history
            await clock.advance(0.001)
        fault = _feedback_faults(controller, SUPPLY_FAULT)[0]
        assert standards.EMERGENCY_VOLTAGE_DEADLINE_S < fault.time_s - started_s \
            <= standards.EMERGENCY_VOLTAGE_DEADLINE_S + CONTROL_PERIOD_S + 1e-9
        assert "holds" in fault.message
    finally:
        hw.simulation.inject_device_faults(supply_ignores_commands=False)
        await controller.shutdown()


async def test_a_healthy_session_raises_no_feedback_fault(rig) -> None:
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 2})
    await rig.until_phase("COMPLETE", timeout_s=30)
    await rig.advance(1.0)
    assert rig.controller.fault_history == []
