"""After the cable check the output is discharged below 60 V, then precharged up to the car at ≤ 2 A (issue 10
item 9), in the simulated session on the manual clock. Every control tick is recorded (a tick listener), so a
single tick above a limit is seen. The same flow through the ISO 15118 HAL controller is tested in
tests/hlc/test_hal_controller.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evse_model import standards

#: Float round-off only: the simulated measurements are exact, so a limit is asserted as the number it is.
ROUND_OFF_A = 1e-9


@dataclass(frozen=True)
class Tick:
    t: float
    stage: str
    output_voltage_V: float
    supply_voltage_V: float
    output_current_A: float
    supply_current_A: float


def record_ticks(rig) -> list[Tick]:  # type: ignore[no-untyped-def]
    ticks: list[Tick] = []

    def on_tick() -> None:
        m = rig.controller.latest
        ticks.append(Tick(m.time_s, rig.controller.stage.value, m.output_voltage_V, m.supply_voltage_V,
                          m.output_current_A, m.supply_current_A))

    rig.controller.tick_listeners.append(on_tick)
    return ticks


def output_capacitance_F(rig) -> float:  # type: ignore[no-untyped-def]
    config = rig.plant.config
    return config.output_capacitance_F + config.cable_capacitance_F


def assert_an_unlimited_precharge_would_exceed_2_A(rig) -> None:  # type: ignore[no-untyped-def]
    """The test can fail: a precharge that did not limit its current would charge the output capacitance at
    the supply's full slew, which needs more than 2 A (I = C·dV/dt)."""
    unlimited_current_A = output_capacitance_F(rig) * rig.plant.config.voltage_slew_up_V_per_s
    assert unlimited_current_A > 1.2 * standards.PRECHARGE_CURRENT_LIMIT_A


CARS = [
    pytest.param({"target_voltage": 400, "initial_current": 50, "duration_s": 1}, id="follow-400V"),
    pytest.param({"ev_preset": "ev800", "start_soc": 30, "initial_current": 100, "duration_s": 1}, id="ev800"),
]


async def _run_until_charging(rig, body: dict) -> list[Tick]:  # type: ignore[no-untyped-def]
    ticks = record_ticks(rig)
    assert (await rig.post("/start_session", body)).json()["status"] == "started"
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 30)
    return ticks


@pytest.mark.parametrize("body", CARS)
async def test_output_falls_below_60_V_after_the_cable_check_before_precharge_starts(rig, body):
    ticks = await _run_until_charging(rig, body)
    cable_check = [tick for tick in ticks if tick.stage == "cable_check"]
    test_V = standards.cable_check_test_voltage_V(rig.plant.ev.preset.max_voltage_V, rig.controller.evse_max_voltage_V)
    assert max(tick.output_voltage_V for tick in cable_check) == pytest.approx(test_V, abs=0.05 * test_V + 1.0)
    # The cable check ends (and precharge begins) only once the output — meter and supply side — is below 60 V.
    last = cable_check[-1]
    assert last.output_voltage_V < standards.SAFE_DC_VOLTAGE_V and last.supply_voltage_V < standards.SAFE_DC_VOLTAGE_V
    first_precharge = next(tick for tick in ticks if tick.stage == "precharge")
    assert first_precharge.output_voltage_V < standards.SAFE_DC_VOLTAGE_V
    # It fell with the discharge's time constant, measured at the meter (the contactor stayed closed): several
    # ticks between the test voltage and 60 V, not one jump.
    peak_index = max(range(len(cable_check)), key=lambda i: cable_check[i].output_voltage_V)
    falling = cable_check[peak_index:]
    assert len(falling) >= 3 and all(b.output_voltage_V <= a.output_voltage_V for a, b in zip(falling, falling[1:]))


@pytest.mark.parametrize("body", CARS)
async def test_precharge_rises_to_the_car_at_most_2_A_every_tick_taking_the_time_the_physics_needs(rig, body):
    assert_an_unlimited_precharge_would_exceed_2_A(rig)
    ticks = await _run_until_charging(rig, body)
    ev = rig.plant.ev
    precharge = [tick for tick in ticks if tick.stage == "precharge"]
    assert precharge
    for tick in precharge:
        assert tick.supply_current_A <= standards.PRECHARGE_CURRENT_LIMIT_A + ROUND_OFF_A, tick
        assert tick.output_current_A <= standards.PRECHARGE_CURRENT_LIMIT_A + ROUND_OFF_A, tick
        # Never above what the car asked (its pack) nor its maximum voltage.
        assert tick.output_voltage_V <= ev.precharge_target_V() + 1.0, tick
        assert tick.output_voltage_V <= ev.preset.max_voltage_V, tick
    # The output rose from below 60 V to within 20 V of the pack (where the car closes): at ≤ 2 A into the output
    # capacitance that takes at least C·ΔV / 2 A (dV/dt = I/C); PRECHARGE is visible at least that long.
    rise_V = ev.precharge_target_V() - standards.CONTACTOR_CLOSE_MAX_DELTA_V - standards.SAFE_DC_VOLTAGE_V
    physics_s = output_capacitance_F(rig) * rise_V / standards.PRECHARGE_CURRENT_LIMIT_A
    assert physics_s > 0.3
    visible_s = precharge[-1].t - precharge[0].t
    assert visible_s >= physics_s - rig.controller.settings.control_period_s
    assert visible_s <= rig.controller.settings.precharge_timeout_s
    status = await rig.status()
    assert status["active_fault"] is None and status["contactor_closed"]


async def test_precharge_stage_is_visible_in_status_for_the_rise(rig):
    """What an operator polling /status sees: PRECHARGE, with the voltage rising from below 60 V to the car's."""
    samples = []
    assert (await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50})).json()["status"] \
        == "started"
    while True:
        status = await rig.status()
        samples.append(status)
        if status["phase"] == "CHARGING":
            break
        await rig.clock.advance(0.01)
    precharge = [s for s in samples if s["phase"] == "PRECHARGE"]
    assert len(precharge) * 0.01 >= 0.4  # 3.2 mF × (378 − 60) V / 2 A ≈ 0.5 s
    assert precharge[0]["voltage"] < standards.SAFE_DC_VOLTAGE_V
    assert precharge[-1]["voltage"] == pytest.approx(400 * 0.995, abs=5.0)
    assert max(s["supply_current"] for s in precharge) <= standards.PRECHARGE_CURRENT_LIMIT_A


async def test_discharge_after_cable_check_can_be_switched_off(rig_factory):
    """``discharge_after_cable_check=False``: the output goes from the test voltage straight down to the car
    (what some supplies with a fast active discharge prefer, EVerest's option set to false)."""
    async with rig_factory(discharge_after_cable_check=False) as rig:
        ticks = await _run_until_charging(rig, {"target_voltage": 400, "initial_current": 50, "duration_s": 1})
        first_precharge = next(tick for tick in ticks if tick.stage == "precharge")
        assert first_precharge.output_voltage_V > 400.0


async def test_output_that_does_not_discharge_fails_the_cable_check(rig_factory):
    """A supply whose discharge does not work: the cable check fails rather than precharging from above."""
    async with rig_factory(discharge_timeout_s=0.5) as rig:
        rig.plant.config.discharge_resistance_ohm = 1e9  # discharge path broken: only the insulation leaks
        await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50})
        status = await rig.advance_until(lambda s: s["phase"] == "ABORTED", 10)
        assert status["error"] == "CABLE_CHECK_FAILED"
        assert status["last_session_summary"]["ended_phase"] == "ABORTED"
