"""Preset cars, the BMS view in simulation, and a full 10→80 % charge faster than real time."""

from __future__ import annotations

import pytest

from ccs_sim.batch import simulate_session
from ccs_sim.settings import ControllerSettings
from evse_model.session import SessionParams

BMS_FIELDS = {"protocol", "evcc_id", "present_soc", "present_voltage", "target_voltage", "target_current",
              "total_battery_capacity", "energy_requests", "soc_limits", "rated_limits", "session_limits"}
DC_LIMITS = {"max_charge_power", "min_charge_power", "max_charge_current", "min_charge_current", "max_voltage",
             "min_voltage", "max_discharge_power", "min_discharge_power", "max_discharge_current"}


async def test_bms_view_shows_the_simulated_car_while_it_charges(rig):
    await rig.post("/start_session", {"ev_preset": "ev800", "start_soc": 20, "initial_current": 300,
                                      "duration_s": 30})
    await rig.advance_until(lambda s: s["stage"] == "charging", 30, step_s=0.02)
    bms = (await rig.client.get("/vehicle/bms")).json()
    assert BMS_FIELDS <= bms.keys()
    assert set(bms["rated_limits"]["dc"]) == DC_LIMITS and set(bms["session_limits"]["dc"]) == DC_LIMITS
    assert {"target_energy_request", "max_energy_request", "min_energy_request"} == set(bms["energy_requests"])
    assert {"min_soc", "max_soc", "target_soc"} == set(bms["soc_limits"])
    assert bms["evcc_id"] == "SIM-EV800" and bms["present_soc"] == 20
    assert bms["rated_limits"]["dc"]["max_voltage"] == 835.0
    status = await rig.status()
    assert bms["present_voltage"] == pytest.approx(status["voltage"], abs=2.0)
    assert bms["target_current"] == pytest.approx(300.0)
    soc_before = bms["present_soc"]
    await rig.advance(20.0, step_s=0.05)
    assert (await rig.client.get("/vehicle/bms")).json()["present_soc"] > soc_before


async def test_slac_and_iso15118_views_exist_in_sim_mode(rig):
    slac = (await rig.client.get("/vehicle/slac")).json()
    assert slac["state"] == "IDLE" and {"ev_mac", "nid", "run_id", "attenuation_db", "last_updated"} <= slac.keys()
    iso = (await rig.client.get("/vehicle/iso15118")).json()
    assert {"protocol", "energy_service", "control_mode", "authorized", "evse_id", "session_id",
            "timestamps"} <= iso.keys()


async def test_800V_car_charges_10_to_80_percent_and_stops_itself():
    result = await simulate_session(
        SessionParams(ev_preset="ev800", start_soc_percent=10, target_soc_percent=80, initial_current_A=400,
                      duration_s=3600),
        ControllerSettings(_env_file=None, control_period_s=0.05))
    summary = result.summary
    assert summary.ended_phase == "COMPLETE" and summary.end_reason == "ev_target_soc_reached"
    ev = result.controller.hw.simulation.ev
    assert 80.0 <= ev.battery.soc_percent < 80.5
    # 70 % of 77.4 kWh, give or take losses in R·I: what the meter counted is what the pack took
    assert summary.energy_Wh == pytest.approx(ev.battery.charged_Wh, rel=0.01)
    assert 0.68 * 77_400 < summary.energy_Wh < 0.76 * 77_400
    assert 12 * 60 < summary.charging_time_s < 25 * 60  # E-GMP: 10→80 % in ~18 min
