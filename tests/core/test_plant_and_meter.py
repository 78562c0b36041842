"""The simulated plant: CP levels, consistency of every reading, the meter against ∫V·I dt, precharge current."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evse_hal.adapters.sim import SimHardware
from evse_model.clock import ManualClock
from sim_plant import ChargerPlant, PlantConfig
from sim_plant.battery import BATTERY_PRESETS, follow_preset
from sim_plant.ev import SimulatedEV


@pytest.mark.parametrize("state, expected_high_V", [("A", 12.0), ("B", 9.0), ("C", 6.0), ("D", 3.0), ("E", 0.0)])
def test_cp_plateau_follows_the_resistor_network(state, expected_high_V):
    hardware = SimHardware(ManualClock())
    hardware.pwm.set_duty(5.0)
    hardware.simulation.present_cp_state(state)
    assert hardware.cp.read_voltage() == pytest.approx(expected_high_V, abs=0.15)
    assert hardware.cp.get_state() == state
    expected_low_V = 0.0 if state == "E" else -12.0
    assert hardware.cp.read_negative_plateau_V() == pytest.approx(expected_low_V, abs=0.01)


def test_state_f_is_minus_twelve_volts():
    hardware = SimHardware(ManualClock())
    hardware.simulation.present_cp_state("B")
    hardware.pwm.set_state_f()
    assert hardware.cp.read_voltage() == -12.0 and hardware.cp.read_negative_plateau_V() == -12.0
    assert hardware.cp.get_state() == "F" and hardware.pwm.get_duty() == 0.0


def test_oscillator_off_holds_a_constant_level():
    hardware = SimHardware(ManualClock())
    hardware.simulation.present_cp_state("B")
    hardware.pwm.set_duty(100.0)
    assert hardware.cp.read_voltage() == hardware.cp.read_negative_plateau_V() == pytest.approx(9.0, abs=0.15)


def test_diode_fault_raises_the_negative_plateau():
    hardware = SimHardware(ManualClock())
    hardware.simulation.present_cp_state("C")
    hardware.pwm.set_duty(5.0)
    hardware.plant.ev.diode_fault = True
    assert hardware.cp.read_negative_plateau_V() > -6.0


def test_battery_presets_match_their_classes():
    ev400, ev800 = BATTERY_PRESETS["ev400"], BATTERY_PRESETS["ev800"]
    assert 288 <= ev400.ocv_V(0.0) and ev400.ocv_V(1.0) <= 404
    assert 576 <= ev800.ocv_V(0.0) and ev800.ocv_V(1.0) <= 807
    follow = follow_preset(20.0, 10.0)
    assert follow.ocv_V(0.5) == pytest.approx(19.9, abs=0.01)


class _Plant:
    """A plant with a car connected and charging, for invariant checks."""

    def __init__(self, preset_name: str = "ev400", soc: float = 30.0) -> None:
        ev = SimulatedEV(BATTERY_PRESETS[preset_name], soc)
        ev.plug_in()
        self.plant = ChargerPlant(PlantConfig(), ev)
        self.plant.set_pwm_duty(5.0)
        self.t = 0.0

    def run(self, seconds: float, step_s: float = 0.01) -> list[tuple[float, float, float]]:
        """(t, V, I) at the meter, every step."""
        samples = []
        end = self.t + seconds
        while self.t < end - 1e-12:
            self.t = min(end, self.t + step_s)
            self.plant.advance_to(self.t)
            samples.append((self.t, self.plant.inlet_voltage_V, self.plant.cable_current_A))
        return samples


def test_precharge_current_stays_at_or_below_2A_and_the_car_closes_within_20V():
    rig = _Plant()
    plant, ev = rig.plant, rig.plant.ev
    plant.meter.running = True
    plant.set_evse_contactor(True)
    plant.supply_enabled = True
    plant.current_limit_A = 2.0
    plant.voltage_setpoint_V = ev.precharge_target_V()
    ev.energy_transfer_wanted = True
    samples = rig.run(2.0, step_s=0.001)
    assert max(current for _, _, current in samples) <= 2.0
    assert ev.contactor_closed
    assert abs(plant.inlet_voltage_V - ev.battery.ocv_V()) < 20.0


def test_meter_energy_equals_the_integral_of_what_flowed():
    rig = _Plant()
    plant, ev = rig.plant, rig.plant.ev
    plant.meter.running = True
    plant.voltage_setpoint_V = ev.precharge_target_V()
    plant.supply_enabled = True
    plant.current_limit_A = 2.0
    plant.set_evse_contactor(True)
    ev.energy_transfer_wanted = True
    rig.run(1.0)
    plant.voltage_setpoint_V = ev.target_voltage_V()
    plant.current_limit_A = 200.0
    samples = rig.run(30.0, step_s=0.001)
    plant.current_limit_A = 80.0
    samples += rig.run(20.0, step_s=0.001)
    integral_Wh = sum((t1 - t0) * v1 * i1 for (t0, _, _), (t1, v1, i1) in zip(samples, samples[1:])) / 3600
    assert integral_Wh > 500
    assert plant.meter.energy_Wh == pytest.approx(integral_Wh, rel=0.01)
    assert ev.battery.charged_Wh == pytest.approx(plant.meter.energy_Wh, rel=0.01)
    assert plant.meter.avg_current_A == pytest.approx(
        sum((t1 - t0) * i1 for (t0, _, _), (t1, _, i1) in zip(samples, samples[1:])) / (samples[-1][0] - samples[0][0]),
        rel=0.02)


def test_soc_rises_with_the_charge_that_flowed():
    rig = _Plant("ev800", soc=10.0)
    plant, ev = rig.plant, rig.plant.ev
    plant.set_evse_contactor(True)
    plant.supply_enabled = True
    plant.current_limit_A = 2.0
    plant.voltage_setpoint_V = ev.precharge_target_V()
    ev.energy_transfer_wanted = True
    rig.run(1.0)
    plant.voltage_setpoint_V = ev.target_voltage_V()
    plant.current_limit_A = 300.0
    rig.run(60.0, step_s=0.02)
    expected_soc = 10.0 + 100.0 * ev.battery.charged_Ah / ev.preset.capacity_Ah
    assert ev.battery.soc_percent == pytest.approx(expected_soc, rel=1e-9)
    assert ev.battery.soc_percent > 10.0


commands = st.lists(st.tuples(
    st.sampled_from(["contactor", "enable", "voltage", "current", "emergency", "cp", "wait"]),
    st.floats(min_value=0.0, max_value=1.0)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(commands)
def test_every_reading_agrees_with_every_other_whatever_is_commanded(sequence):
    rig = _Plant("ev400", soc=40.0)
    plant, ev = rig.plant, rig.plant.ev
    ev.energy_transfer_wanted = True
    plant.meter.running = True
    last_soc = ev.battery.soc_percent
    for command, value in sequence:
        if command == "contactor":
            plant.set_evse_contactor(value > 0.5)
        elif command == "enable":
            plant.supply_enabled = value > 0.3
            plant.supply_emergency_off = False
        elif command == "voltage":
            plant.voltage_setpoint_V = 1000.0 * value
        elif command == "current":
            plant.current_limit_A = 400.0 * value
        elif command == "emergency":
            plant.supply_emergency_off = True
        elif command == "cp":
            ev.force_cp_state("ABCDE"[int(value * 4.999)])
        rig.run(0.05 + value * 0.2, step_s=0.01)
        # the output is 0 V / 0 A whenever the contactor is open
        if not plant.evse_contactor_closed:
            assert plant.inlet_voltage_V == 0.0 and plant.cable_current_A == 0.0
        # never more current than the limit allows (after the power stage's own slew)
        assert plant.cable_current_A <= max(plant.current_limit_A, 0.0) + 1e-6 or plant.supply_emergency_off \
            or not plant.supply_enabled
        assert plant.cable_current_A >= 0.0
        # the car's contactor is only closed onto a live, matched output
        if ev.contactor_closed:
            assert plant.evse_contactor_closed
        # SOC never falls while charging (no discharge path)
        assert ev.battery.soc_percent >= last_soc - 1e-12
        last_soc = ev.battery.soc_percent
    # The meter counts what entered the cable: the battery's share plus, at most, charging the cable's
    # capacitance (½·C·V² ≤ 0.028 Wh at 1000 V) once per command, plus leakage to PE.
    surplus_Wh = plant.meter.energy_Wh - ev.battery.charged_Wh
    assert -1e-9 <= surplus_Wh <= 0.03 * (len(sequence) + 1)
