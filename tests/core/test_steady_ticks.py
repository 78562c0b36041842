"""Steady control ticks (issue 13 item 2): several ticks in one call of the manual clock, the same numbers as full
steps.

- the clock's ``run_ahead`` serves exactly the deadlines the job would have been fired at before anything else,
  and everything runs in the same order as with plain firing;
- the plant's steady step is ``_step`` (the same state, float for float) and declines outside the steady state;
- a session charges the same with and without steady ticks, and the supervisor finds a fault at the same tick
  (the tick a reading crosses a threshold runs as a full step);
- a replaced part (a spy) or a tick listener turns the steady ticks off.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from ccs_sim.batch import simulate_session
from ccs_sim.core.control_loop import ControlLoop
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal.adapters.sim import SimHardware
from evse_model.clock import ManualClock
from evse_model.manual_clock import AHEAD_OTHERS_DUE, AHEAD_SERVE
from evse_model.session import SessionParams
from sim_plant import ChargerPlant

CHARGE = SessionParams(ev_preset="ev800", start_soc_percent=10, target_soc_percent=11, initial_current_A=400,
                       duration_s=3600)


def _settings() -> ControllerSettings:
    return ControllerSettings(_env_file=None, control_period_s=0.01)


# --- the clock ------------------------------------------------------------------------------------------------
async def _order_of_events(with_run_ahead: bool) -> tuple[list[tuple[str, float]], list[int]]:
    """A 10 ms job (running ahead or not), a 25 ms job, and sleepers (one tied with the job's 0.05 deadline)."""
    clock = ManualClock()
    order: list[tuple[str, float]] = []
    batches: list[int] = []

    def tick() -> None:
        order.append(("tick", round(clock.now(), 9)))

    def run_ahead(first_s: float, period_s: float, clear_until: Any, run_due: Any, move_to: Any) -> tuple[int, float]:
        move_to(first_s)
        tick()
        time_s, runs = first_s + period_s, 1
        while True:
            answer = clear_until(time_s)
            if answer == AHEAD_OTHERS_DUE and run_due(time_s) or answer == AHEAD_SERVE:
                assert clock.now() == time_s
                tick()
                runs += 1
                time_s += period_s
                continue
            batches.append(runs)
            return runs, time_s

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append((name, round(clock.now(), 9)))

    early = asyncio.create_task(sleeper("sleeper-before-tie", 0.05))  # before the job's 0.05 deadline: runs first
    await clock.settle()
    clock.every(0.01, tick, run_ahead=run_ahead if with_run_ahead else None)
    clock.every(0.025, lambda: order.append(("other job", round(clock.now(), 9))))
    late = asyncio.create_task(sleeper("sleeper-0.083", 0.083))
    await clock.advance(0.1)
    await asyncio.gather(early, late)
    await clock.advance(0.0249)  # stops between two deadlines
    return order, batches


async def test_run_ahead_serves_the_deadlines_plain_firing_would_in_the_same_order():
    plain, _ = await _order_of_events(with_run_ahead=False)
    ahead, batches = await _order_of_events(with_run_ahead=True)
    assert ahead == plain
    assert [event for event, _ in plain].count("tick") == 12 and ("other job", 0.05) in plain
    # 0.01..0.04 in one call, the other job fired between 0.02 and 0.03 (0.05 is the earlier sleeper's too: the
    # job fires behind its wake-up, on its own), 0.06..0.08 (0.083 is the other sleeper's), 0.09..0.10 (the first
    # advance stops at 0.1), 0.11..0.12.
    assert batches == [4, 3, 2, 2]


async def test_run_ahead_gives_the_loop_a_turn_after_the_direct_runs_allowed():
    clock = ManualClock()
    batches: list[int] = []

    def run_ahead(first_s: float, period_s: float, clear_until: Any, run_due: Any, move_to: Any) -> tuple[int, float]:
        move_to(first_s)
        time_s, runs = first_s + period_s, 1
        while clear_until(time_s) == AHEAD_SERVE:
            time_s, runs = time_s + period_s, runs + 1
        batches.append(runs)
        return runs, time_s

    clock.every(0.01, lambda: None, run_ahead=run_ahead)
    await clock.run_until_complete(clock.sleep(5.0))
    assert max(batches) == ManualClock.DIRECT_RUNS_BETWEEN_YIELDS


# --- the plant --------------------------------------------------------------------------------------------------
def _state(plant: ChargerPlant) -> dict[str, Any]:
    ev, battery = plant.ev, plant.ev.battery
    # (the caches of the OCV and taper curves' segments are not state: a lookup outside one bisects)
    return {"plant": {k: v for k, v in vars(plant).items() if k not in ("config", "ev", "meter", "_ocv_segment")},
            "meter": dict(vars(plant.meter)),
            "ev": {k: v for k, v in vars(ev).items() if k not in ("battery", "_taper_segment")},
            "battery": {k: v for k, v in vars(battery).items() if k != "_ocv_segment"}}


def test_the_steady_plant_step_is_the_full_step_float_for_float():
    plants = []
    for _ in range(2):
        clock = ManualClock()
        hardware = SimHardware(clock)
        hardware.simulation.configure_car("ev800", 20.0, 80.0)
        hardware.simulation.prepare_car(800.0, 300.0)
        plants.append((clock, hardware))
    steady_steps = declined = 0

    def both(action: Any) -> None:
        for clock, hardware in plants:
            action(clock, hardware)

    def run(seconds: float) -> None:
        nonlocal steady_steps, declined
        for _ in range(round(seconds / 0.01)):
            (full_clock, full), (steady_clock, steady) = plants
            full_clock._now_s += 0.01
            steady_clock._now_s += 0.01
            full.plant.advance_to(full_clock.now())
            if steady.plant.advance_steady_to(steady_clock.now()):
                steady_steps += 1
            else:
                declined += 1
                steady.plant.advance_to(steady_clock.now())
            assert _state(steady.plant) == _state(full.plant)

    def start(clock: ManualClock, hardware: SimHardware) -> None:
        hardware.pwm.set_duty(5.0)
        hardware.imd.start_measurement()
        hardware.supply.set_current_limit(2.0)
        hardware.supply.set_voltage(hardware.plant.ev.precharge_target_V())
        hardware.supply.set_enabled(True)
        hardware.meter.start()

    both(start)
    run(2.0)  # handshake and precharge into the output capacitance: never steady
    assert steady_steps == 0

    def close(clock: ManualClock, hardware: SimHardware) -> None:
        hardware.contactor.set_closed(True)
        hardware.plant.ev.energy_transfer_wanted = True
        hardware.supply.set_voltage(835.0)
        hardware.supply.set_current_limit(300.0)

    both(close)
    run(3.0)  # current slews up, SOC, temperature and meter move
    both(lambda clock, hardware: hardware.supply.set_current_limit(120.5))
    run(1.0)
    both(lambda clock, hardware: hardware.supply.set_power_limit(50_000.0))
    run(1.0)
    assert steady_steps > 450
    before = declined
    both(lambda clock, hardware: hardware.supply.set_enabled(False))
    run(0.2)  # switched off: the current falls to 0, the car opens
    assert declined - before == 20
    assert plants[1][1].plant.cable_current_A == plants[0][1].plant.cable_current_A == 0.0


# --- sessions and the supervisor ----------------------------------------------------------------------------
async def _session(steady: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    monkeypatch.setattr(ControlLoop, "steady_ticks", steady)
    result = await simulate_session(CHARGE, _settings())
    return result.summary, result.controller._loop.steady_tick_count


async def test_a_session_charges_the_same_with_and_without_steady_ticks(monkeypatch):
    full, none_steady = await _session(False, monkeypatch)
    steady, steady_ticks = await _session(True, monkeypatch)
    assert none_steady == 0 and steady_ticks > 1000
    assert {**steady.to_dict(), "session_id": None} == {**full.to_dict(), "session_id": None}
    assert steady.energy_Wh > 700.0


async def _charge_until_fault(steady: bool, monkeypatch: pytest.MonkeyPatch, arm: Any) -> dict[str, Any]:
    """The 800 V car charging at full current for 30 s; ``arm(controller)`` then sets a fault up; 3 s more."""
    monkeypatch.setattr(ControlLoop, "steady_ticks", steady)
    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    await clock.run_until_complete(controller.start())
    controller.start_session(replace(CHARGE, target_soc_percent=80))
    await clock.run_until_complete(clock.sleep(30.0))
    assert controller.latest is not None and controller.latest.output_current_A > 250.0
    steady_before = controller._loop.steady_tick_count
    faulted: list[tuple[float, Any, int]] = []  # (time, the readings judged, steady ticks so far) at the fault

    def on_fault(fault: Any) -> None:
        faulted.append((clock.now(), controller.latest, controller._loop.steady_tick_count - steady_before))

    controller.fault_listeners.append(on_fault)
    arm(controller)
    await clock.run_until_complete(clock.sleep(3.0))
    assert len(faulted) == 1
    fault = controller.fault_history[0]
    outcome = {"fault": fault.name, "fault_s": fault.time_s, "judged": faulted[0][1], "steady_before": faulted[0][2],
               "energy_Wh": controller.meter_reading.energy_Wh}
    await clock.run_until_complete(controller.shutdown())
    return outcome


async def test_over_temperature_trips_at_the_same_tick_with_steady_ticks(monkeypatch):
    limits_C: list[float] = []

    def arm(controller: Any) -> None:
        # The connector warms by ~0.09 K/s at 350 A: 0.05 K above it now is crossed about 0.5 s later, in the
        # middle of steady runs.
        limits_C.append(controller.latest.connector_temperature_C + 0.05)
        controller.supervisor.limits = replace(controller.supervisor.limits, connector_temperature_limit_C=limits_C[-1])

    full = await _charge_until_fault(False, monkeypatch, arm)
    steady = await _charge_until_fault(True, monkeypatch, arm)
    assert limits_C[0] == limits_C[1]
    assert full["fault"] == steady["fault"] == "OVER_TEMPERATURE"
    assert steady["fault_s"] == full["fault_s"] and 30.2 < full["fault_s"] < 31.5
    assert steady["judged"] == full["judged"]  # the same readings, taken by the full step of the same tick
    assert steady["judged"].connector_temperature_C > limits_C[0]
    assert steady["energy_Wh"] == full["energy_Wh"]
    assert full["steady_before"] == 0 and steady["steady_before"] > 20  # steady ticks right up to the crossing


async def test_a_cp_change_between_runs_is_read_and_judged_at_the_next_tick(monkeypatch):
    def arm(controller: Any) -> None:
        controller.hw.simulation.present_cp_state("B")  # S2 opened under load: the EV's emergency stop

    full = await _charge_until_fault(False, monkeypatch, arm)
    steady = await _charge_until_fault(True, monkeypatch, arm)
    assert full["fault"] == steady["fault"] == "EV_EMERGENCY_STOP"
    assert steady["fault_s"] == full["fault_s"] == pytest.approx(30.0, abs=0.011)
    assert steady["judged"] == full["judged"] and steady["judged"].pilot.state == "B"
    assert steady["energy_Wh"] == full["energy_Wh"]


async def test_a_spy_or_a_tick_listener_sees_every_tick(monkeypatch):
    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    await clock.run_until_complete(controller.start())
    controller.start_session(replace(CHARGE, target_soc_percent=80))
    await clock.run_until_complete(clock.sleep(30.0))
    loop = controller._loop
    assert loop.steady_tick_count > 2000
    ticks: list[float] = []
    controller.tick_listeners.append(lambda: ticks.append(clock.now()))
    steady_before = loop.steady_tick_count
    await clock.run_until_complete(clock.sleep(1.0))
    assert len(ticks) == 100 and loop.steady_tick_count == steady_before
    controller.tick_listeners.clear()
    limits_told: list[float] = []
    told = controller.set_supply_current_limit_now
    controller.set_supply_current_limit_now = lambda limit_A: (limits_told.append(limit_A), told(limit_A))[1]
    await clock.run_until_complete(clock.sleep(1.0))
    assert len(limits_told) == 100 and loop.steady_tick_count == steady_before
    await clock.run_until_complete(controller.shutdown())


async def test_an_error_in_the_steady_ticks_stops_the_control_loop_as_one_in_a_full_tick():
    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    await clock.run_until_complete(controller.start())
    controller.start_session(replace(CHARGE, target_soc_percent=80))
    await clock.run_until_complete(clock.sleep(30.0))
    assert controller._loop.steady_tick_count > 2000

    def broken() -> None:
        raise RuntimeError("sensor bus gone")

    controller.hw.read_sensors_steady = broken  # type: ignore[method-assign]
    await clock.run_until_complete(clock.sleep(0.1))
    task = controller._control_task
    assert task is not None and task.done() and isinstance(task.exception(), RuntimeError)
    assert str(task.exception()) == "sensor bus gone"
    await clock.run_until_complete(controller.shutdown())


async def _state_after_charging(steady: bool, monkeypatch: pytest.MonkeyPatch, seconds: float) -> dict[str, Any]:
    monkeypatch.setattr(ControlLoop, "steady_ticks", steady)
    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    await clock.run_until_complete(controller.start())
    controller.start_session(replace(CHARGE, target_soc_percent=80))
    await clock.run_until_complete(clock.sleep(seconds))
    watch = controller.feedback
    state = {"latest": controller.latest, "meter": controller.meter_reading, "ticks": controller.tick_sequence,
             "last_tick_s": controller._last_tick_s, "commanded_A": controller.commanded_current_A,
             "requested_A": controller.requested_current_A, "judged_A": controller.context.commanded_current_limit_A,
             "told": list(controller.supply_limits._told),
             "watch": {k: v for k, v in vars(watch).items() if k not in ("limits", "capabilities")},
             "plant": _state(controller.hw.plant), "steady": controller._loop.steady_tick_count}
    await clock.run_until_complete(controller.shutdown())
    return state


@pytest.mark.parametrize("seconds", [7.003, 30.0, 61.27])
async def test_what_steady_ticks_leave_is_what_full_steps_leave(monkeypatch, seconds):
    """Readings, meter reading, tick count, ramp, supply-limit history, feedback watch and plant, float for float
    (during the current ramp at 7 s, at full current at 30 s, and later in the middle of a steady run)."""
    full = await _state_after_charging(False, monkeypatch, seconds)
    steady = await _state_after_charging(True, monkeypatch, seconds)
    assert full.pop("steady") == 0 and steady.pop("steady") > 100 * (seconds - 6.0)
    assert steady == full


# --- the charge loop as a periodic job of the clock ---------------------------------------------------------------
@pytest.mark.parametrize("period_s", [0.01, 0.05])
async def test_the_charge_loop_as_a_clock_job_charges_what_the_task_loop_charges(monkeypatch, period_s):
    """At 50 ms the car's requests fall on the control ticks' instants: the session's end (its wind-down) must
    come after the control tick of that instant, as it did when the loop was a task (1.9 Wh apart otherwise)."""
    from ccs_sim.orchestrator import SimSessionDriver

    params = replace(CHARGE, target_soc_percent=12)
    summaries = []
    for on_clock in (False, True):
        monkeypatch.setattr(SimSessionDriver, "charge_loop_on_clock", on_clock)
        result = await simulate_session(params, ControllerSettings(_env_file=None, control_period_s=period_s))
        summaries.append({**result.summary.to_dict(), "session_id": None})
    assert summaries[0] == summaries[1]
    assert summaries[0]["energy_Wh"] > 1500.0


async def test_a_read_sensors_of_its_own_turns_the_steady_ticks_off():
    """A test rig's adapter that overrides read_sensors (here: an over-current spike at 30.5 s) is read every tick."""
    from evse_hal.interfaces import SensorReadings

    class SpikingSim(SimHardware):
        def read_sensors(self) -> SensorReadings:
            readings = super().read_sensors()
            if self.clock.now() >= 30.5:
                readings = replace(readings, output_current_A=readings.output_current_A + 200.0)
            return readings

    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    controller.hw = SpikingSim(clock)  # before start: the controller's only hardware
    controller.lock = controller.hw.lock
    await clock.run_until_complete(controller.start())
    controller.start_session(replace(CHARGE, target_soc_percent=80))
    await clock.run_until_complete(clock.sleep(31.0))
    assert controller._loop.steady_tick_count == 0
    assert [fault.name for fault in controller.fault_history] == ["OVERCURRENT"]
    assert controller.fault_history[0].time_s == pytest.approx(30.5, abs=0.011)
    await clock.run_until_complete(controller.shutdown())
