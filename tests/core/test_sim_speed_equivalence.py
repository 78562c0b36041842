"""The fast simulation paths give the same results as the plain ones (issue 13 item 2).

- ``SimHardware.read_sensors()`` (one plant snapshot) reads what the per-device pass reads, and falls back to
  the devices when one of their reads is replaced;
- the bisected OCV/taper lookup, the newest-first current-limit history and the cached pilot reading agree
  with straightforward reference implementations;
- a short charge charges the recorded energy (to the milliwatt-hour);
- a batch run in parallel gives every session the summary it has when run alone, in order, and names a
  session that fails.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccs_sim.batch import BatchSessionError, simulate_session, simulate_sessions
from ccs_sim.cli import main
from ccs_sim.core.safety import SupplyCurrentLimitHistory
from ccs_sim.settings import ControllerSettings
from evse_hal.adapters.sim import SimEStop, SimHardware
from evse_hal.interfaces import EVSEHardware
from evse_hal.pilot import _read_pilot, read_pilot
from evse_model.clock import ManualClock
from evse_model.session import SessionParams
from sim_plant.battery import BATTERY_PRESETS, NMC_CELL_OCV_CURVE, TAPER_CURVE, interpolate

#: The 10→15 % charge of the 800 V car at the default 10 ms period; its energy recorded before the fast paths and
#: the control thread (main at aff5d5e, with the loop, plant, sensors and supervisor as they were): the same to the
#: mWh since (the 10→80 % charge likewise: 57966.867421 Wh then and now).
SHORT_CHARGE = SessionParams(ev_preset="ev800", start_soc_percent=10, target_soc_percent=15, initial_current_A=400,
                             duration_s=3600)
SHORT_CHARGE_ENERGY_WH = 4039.629236


def _settings(period_s: float = 0.01) -> ControllerSettings:
    return ControllerSettings(_env_file=None, control_period_s=period_s)


# --- one plant snapshot per tick ------------------------------------------------------------------------
def _both_passes(hardware: SimHardware) -> tuple[object, object]:
    return hardware.read_sensors(), EVSEHardware.read_sensors(hardware)


def test_the_snapshot_reads_what_every_device_reads_through_a_whole_charge():
    clock = ManualClock()
    hardware = SimHardware(clock)
    sim = hardware.simulation
    sim.configure_car("ev800", 20.0, 80.0)
    ev = sim.prepare_car(800.0, 300.0)
    compared = 0

    def advance_and_compare(seconds: float, step_s: float = 0.007) -> None:
        nonlocal compared
        end_s = clock.now() + seconds
        while clock.now() < end_s:
            clock._now_s += step_s  # time moves; the plant follows at the next read
            snapshot, per_device = _both_passes(hardware)
            assert snapshot == per_device
            compared += 1

    advance_and_compare(0.2)
    hardware.pwm.set_duty(5.0)
    advance_and_compare(0.1)  # the car closes S2 (B → C) after its reaction time
    hardware.imd.start_measurement()
    hardware.supply.set_current_limit(2.0)
    hardware.supply.set_voltage(ev.precharge_target_V())
    hardware.supply.set_enabled(True)
    advance_and_compare(1.5)  # precharge into the output capacitance
    hardware.contactor.set_closed(True)
    ev.energy_transfer_wanted = True
    hardware.supply.set_voltage(830.0)
    hardware.supply.set_current_limit(300.0)
    advance_and_compare(3.0)  # charging: current slews up, SOC and temperature move
    snapshot = hardware.read_sensors()
    assert snapshot.contactor_closed and snapshot.output_current_A > 250.0 and snapshot.isolation_ohm is not None
    hardware._sim_estop.pressed = True
    hardware.supply.emergency_off()
    advance_and_compare(0.1)
    hardware.contactor.set_closed(False)
    hardware.pwm.set_state_f()
    advance_and_compare(0.2)
    assert hardware.read_sensors().duty_percent == 0.0 and hardware.read_sensors().estop_pressed
    assert compared > 700


def test_a_replaced_sensor_read_is_what_the_pass_returns():
    hardware = SimHardware(ManualClock())
    hardware.cp.read_voltage = lambda: 3.0  # type: ignore[method-assign]
    assert hardware.read_sensors().cp_positive_V == 3.0


def test_a_swapped_device_is_what_the_pass_reads():
    hardware = SimHardware(ManualClock())
    pressed = SimEStop()
    pressed.pressed = True
    hardware.estop = pressed
    assert hardware.read_sensors().estop_pressed


class _CountingClock(ManualClock):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        return super().now()


def test_one_clock_read_and_one_plant_advance_per_pass_unless_the_per_device_pass_is_chosen():
    clock = _CountingClock()
    hardware = SimHardware(clock)
    advances: list[float] = []
    advance_to = hardware.plant.advance_to
    hardware.plant.advance_to = lambda time_s: (advances.append(time_s), advance_to(time_s))[1]  # type: ignore

    def one_pass() -> tuple[int, int]:
        clock._now_s += 0.01
        clock.reads, advances[:] = 0, []
        hardware.read_sensors()
        return clock.reads, len(advances)

    assert one_pass() == (1, 1)
    hardware.one_snapshot_sensor_pass = False
    reads, advanced = one_pass()
    assert (reads, advanced) == (9, 1)  # each of 9 device reads asks the clock; the first one moves the plant


# --- reference implementations ---------------------------------------------------------------------------
def _interpolate_by_scan(curve: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= curve[0][0]:
        return curve[0][1]
    for (x0, y0), (x1, y1) in pairwise(curve):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return curve[-1][1]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)
       | st.sampled_from([x for x, _ in NMC_CELL_OCV_CURVE] + [x for x, _ in TAPER_CURVE]))
def test_bisected_lookup_equals_the_linear_scan(x):
    for curve in (NMC_CELL_OCV_CURVE, TAPER_CURVE):
        assert interpolate(curve, x) == _interpolate_by_scan(curve, x)
    preset = BATTERY_PRESETS["ev800"]
    assert preset.ocv_V(x) == preset.series_cells * preset.cell_voltage_scale * _interpolate_by_scan(
        NMC_CELL_OCV_CURVE, x)


def _highest_by_forward_scan(told: list[tuple[float, float]], response_s: float, reading_time_s: float) -> float:
    window_start_s = reading_time_s - response_s
    highest_A = 0.0
    for index, (since_s, limit_A) in enumerate(told):
        if since_s > reading_time_s:
            break
        until_s = told[index + 1][0] if index + 1 < len(told) else math.inf
        if until_s > window_start_s:
            highest_A = max(highest_A, limit_A)
    return highest_A


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.2), st.sampled_from([0.0, 2.0, 50.0, 120.5, 400.0])),
                max_size=12),
       st.floats(min_value=-0.1, max_value=0.3))
def test_highest_limit_in_force_equals_the_forward_scan(steps, reading_offset_s):
    history = SupplyCurrentLimitHistory(response_s=0.05)
    time_s = 0.0
    for gap_s, limit_A in steps:
        time_s += gap_s
        history.told(time_s, limit_A)
    reading_s = time_s + reading_offset_s
    assert history.highest_in_force_A(reading_s) == _highest_by_forward_scan(list(history._told), 0.05, reading_s)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([12.0, 9.0, 8.6, 6.0, 5.5, 3.0, 0.0, -12.0, 10.5]),
                          st.sampled_from([-12.0, -11.9, -5.0, 0.0, 9.0]),
                          st.sampled_from([100.0, 5.0, 0.0, 50.0])), min_size=1, max_size=20))
def test_the_cached_pilot_reading_is_the_fresh_one(readings):
    for positive_V, negative_V, duty_percent in readings:
        assert read_pilot(positive_V, negative_V, duty_percent) == _read_pilot(positive_V, negative_V, duty_percent)


# --- energy and batches -----------------------------------------------------------------------------------
async def test_a_short_charge_charges_the_recorded_energy():
    result = await simulate_session(SHORT_CHARGE, _settings())
    assert result.summary.ended_phase == "COMPLETE"
    assert result.summary.energy_Wh == pytest.approx(SHORT_CHARGE_ENERGY_WH, abs=0.001)


def _alone(params: SessionParams) -> dict[str, object]:
    summary = asyncio.run(simulate_session(params, _settings())).summary
    return {**summary.to_dict(), "session_id": None}


BATCH = [SessionParams(target_voltage_V=400.0, initial_current_A=60.0, duration_s=8.0),
         replace(SHORT_CHARGE, target_soc_percent=12),
         SessionParams(target_voltage_V=300.0, initial_current_A=120.0, duration_s=6.0),
         SessionParams(ev_preset="ev_small", start_soc_percent=50, target_soc_percent=51, initial_current_A=100.0,
                       duration_s=60.0)]


def test_a_parallel_batch_gives_each_session_its_summary_alone_in_order():
    runs = simulate_sessions(BATCH, _settings(), workers=2)
    assert [run.index for run in runs] == [0, 1, 2, 3]
    alone = [_alone(params) for params in BATCH]
    assert [{**run.summary.to_dict(), "session_id": None} for run in runs] == alone
    energies = [run.summary.energy_Wh for run in runs]
    assert len(set(energies)) == 4 and all(energy > 10.0 for energy in energies)
    assert all(run.simulated_s > 0 and run.wall_s > 0 for run in runs)


def test_a_failing_session_is_named_with_its_cause():
    sessions = [BATCH[0], SHORT_CHARGE, BATCH[2]]  # the 10→15 % charge needs more than 60 simulated s
    with pytest.raises(BatchSessionError) as raised:
        simulate_sessions(sessions, _settings(), workers=2, max_simulated_s=60.0)
    error = raised.value
    assert error.index == 1 and error.params == SHORT_CHARGE
    assert "session 1 of 3 failed" in str(error) and "TimeoutError" in str(error)
    with pytest.raises(BatchSessionError, match="session 1 of 3 failed"):
        simulate_sessions(sessions, _settings(), workers=1, max_simulated_s=60.0)


def test_ccs_sim_simulate_batch_prints_every_summary(capsys):
    assert main(["simulate", "--duration", "3", "--current", "40", "--batch", "2"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert len(summaries) == 2 and summaries[0]["energy_Wh"] == summaries[1]["energy_Wh"] > 1.0
