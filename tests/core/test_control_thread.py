"""The control loop on its own thread (real and scaled clocks): a stalled event loop cannot delay the supervisor.

These tests run the production path on the wall clock (a real clock, speed 1): they wait with bounds, and the
event loop is stalled on purpose (``time.sleep`` in the loop's thread: an API handler hogging it).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

from ccs_sim.core.control_thread import ControlThread
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model import standards
from evse_model.clock import RealClock, ScaledClock
from evse_model.faults import E_STOP
from evse_model.session import Phase, SessionParams, Stage

#: How long the tests stall the event loop (wall seconds).
STALL_S = 0.3


async def wait_for(condition, bound_s: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + bound_s
    while not condition():
        assert time.monotonic() < end, f"not within {bound_s} s"
        await asyncio.sleep(0.01)


async def test_an_e_stop_cuts_the_supply_from_the_control_thread_while_the_event_loop_is_stalled():
    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    await controller.start()
    try:
        controls = controller.hw.simulation
        plant = controls.plant
        controller.start_session(SessionParams(target_voltage_V=400, initial_current_A=100, duration_s=600))
        await wait_for(lambda: controller.stage is Stage.CHARGING and plant.cable_current_A > 50, 30.0)
        cuts: list[tuple[int, float]] = []
        emergency_off = controller.hw.supply.emergency_off

        def recording_emergency_off() -> None:
            cuts.append((threading.get_ident(), controller.clock.now()))
            emergency_off()

        controller.hw.supply.emergency_off = recording_emergency_off  # type: ignore[method-assign]
        ticks_before = controller.tick_sequence
        pressed_at_s = controller.clock.now()
        controls.set_estop_pressed(True)
        time.sleep(STALL_S)  # the event loop is stalled: only the control thread runs
        # While the loop was stalled: the supply was cut from another thread within one control period (+ the
        # thread's wake-up), the current fell below 5 A, and the ticks went on.
        assert cuts and cuts[0][0] != threading.get_ident()
        assert cuts[0][1] - pressed_at_s <= standards.EMERGENCY_CURRENT_DEADLINE_S
        assert plant.cable_current_A < standards.EMERGENCY_CURRENT_A
        assert controller.latest is not None and controller.latest.output_current_A < standards.EMERGENCY_CURRENT_A
        assert controller.tick_sequence - ticks_before >= STALL_S / controller.settings.control_period_s / 2
        # Once the loop runs again, the rest of the shutdown follows: the fault recorded, the session ended,
        # the contactor open.
        await wait_for(lambda: controller.stage is Stage.ENDED, 5.0)
        assert controller.active_fault is not None and controller.active_fault.type is E_STOP
        assert controller.phase is Phase.ABORTED and not plant.evse_contactor_closed
        assert len([fault for fault in controller.fault_history if fault.type is E_STOP]) == 1
    finally:
        await controller.shutdown()


async def test_ticks_keep_their_period_while_the_event_loop_is_stalled_and_the_lateness_is_recorded():
    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    await controller.start()
    try:
        await wait_for(lambda: controller.tick_sequence >= 3, 5.0)
        controller.tick_lateness_s_recent.clear()
        time.sleep(STALL_S)
        lateness_s = list(controller.tick_lateness_s_recent)
        period_s = controller.settings.control_period_s
        assert len(lateness_s) >= STALL_S / period_s / 2
        assert min(lateness_s) < period_s  # measured from each tick's schedule, not accumulated
    finally:
        await controller.shutdown()


async def test_a_speed_change_wakes_the_control_thread_at_once(monkeypatch):  # type: ignore[no-untyped-def]
    # Without the speed-change wake-up the thread would sleep out the 10 wall seconds its next tick is away.
    monkeypatch.setattr(ControlThread, "MAX_WAIT_WALL_S", 60.0)
    clock = ScaledClock(0.001)  # a tick every 10 wall seconds
    controller = build_controller(ControllerSettings(_env_file=None), clock)
    await controller.start()
    try:
        await wait_for(lambda: controller.tick_sequence >= 1, 5.0)
        ticks = controller.tick_sequence
        clock.set_speed(1.0)
        await wait_for(lambda: controller.tick_sequence >= ticks + 5, 2.0)
    finally:
        await controller.shutdown()


async def test_shutdown_stops_the_control_thread():
    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    await controller.start()
    await wait_for(lambda: controller.tick_sequence >= 2, 5.0)
    await controller.shutdown()
    assert not [thread for thread in threading.enumerate() if thread.name == "control-loop"]
    ticks = controller.tick_sequence
    await asyncio.sleep(0.05)
    assert controller.tick_sequence == ticks


def realtime_permitted() -> bool:
    """Whether a thread of this process may take SCHED_FIFO (probed on a throwaway thread)."""
    permitted: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            permitted.append(True)
        except (AttributeError, OSError):
            permitted.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return permitted[0]


async def test_the_control_thread_gets_realtime_scheduling_where_permitted():
    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    await controller.start()
    try:
        await wait_for(lambda: controller.tick_sequence >= 2, 5.0)
        thread = controller._loop.thread
        assert thread is not None
        if realtime_permitted():  # root with CAP_SYS_NICE: as on a charger's computer, and in CI
            assert thread.scheduling == "realtime"
        else:
            assert thread.scheduling in ("raised", "normal")
        # The event loop's own thread keeps its normal scheduling.
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        await controller.shutdown()


def test_simulation_controls_wait_for_the_control_step_holding_the_adapters_lock():
    controller = build_controller(ControllerSettings(_env_file=None), RealClock())
    assert controller.lock is controller.hw.lock  # one lock for the step, every device call and the controls
    controls = controller.hw.simulation
    changed = threading.Event()

    def change_isolation() -> None:
        controls.set_isolation_resistance(20e3)
        changed.set()

    with controller.lock:  # as the control step holds it for a whole tick
        worker = threading.Thread(target=change_isolation)
        worker.start()
        assert not changed.wait(0.2)
        assert controls.plant.isolation_resistance_ohm != 20e3
    assert changed.wait(5.0)
    worker.join()
    assert controls.plant.isolation_resistance_ohm == 20e3


async def test_the_switch_interval_is_lowered_while_any_control_thread_runs_and_restored_after_the_last():
    before_s = sys.getswitchinterval()
    first = build_controller(ControllerSettings(_env_file=None), RealClock())
    second = build_controller(ControllerSettings(_env_file=None), RealClock())
    await first.start()
    await second.start()
    try:
        await wait_for(lambda: first.tick_sequence >= 1 and second.tick_sequence >= 1, 5.0)
        assert sys.getswitchinterval() <= ControlThread.SWITCH_INTERVAL_S
        await first.shutdown()
        assert sys.getswitchinterval() <= ControlThread.SWITCH_INTERVAL_S  # the second still runs
    finally:
        await first.shutdown()
        await second.shutdown()
    assert sys.getswitchinterval() == before_s
