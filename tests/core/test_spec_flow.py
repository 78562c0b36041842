"""The spec's session flow end to end through the HTTP API, on simulated time."""

from __future__ import annotations

import pytest

from evse_model import standards

SPEC_FIELDS = {"session_active", "phase", "error", "contactor_closed", "cp_state", "voltage", "current",
               "energy_Wh", "time_s", "last_session_summary"}
SUMMARY_FIELDS = {"energy_Wh", "avg_voltage", "avg_current", "duration_s", "ended_phase", "error"}


async def test_idle_status_has_every_spec_field(rig):
    status = await rig.status()
    assert SPEC_FIELDS <= status.keys()
    assert status["phase"] == "IDLE" and status["session_active"] is False
    assert status["contactor_closed"] is False and status["voltage"] == 0.0 and status["current"] == 0.0
    assert status["cp_state"] == "A"


async def test_spec_curl_example_runs_handshake_precharge_charging_complete(rig):
    # Every control tick of the precharge (not only the samples below): the supply's current and the meter's.
    precharge_ticks: list[tuple[float, float, float]] = []
    rig.controller.tick_listeners.append(lambda: precharge_ticks.append(
        (rig.controller.latest.supply_current_A, rig.controller.latest.output_current_A,
         rig.controller.latest.output_voltage_V)) if rig.controller.stage.value == "precharge" else None)
    response = await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 10})
    assert response.status_code == 200 and response.json()["status"] == "started"
    await rig.until_phase("COMPLETE", timeout_s=30, record=True)
    phases = [sample["phase"] for sample in rig.samples]
    order = [phase for i, phase in enumerate(phases) if i == 0 or phases[i - 1] != phase]
    assert order == ["HANDSHAKE", "PRECHARGE", "CHARGING", "COMPLETE"]

    handshake = [s for s in rig.samples if s["phase"] == "HANDSHAKE"]
    handshake_only = [s for s in handshake if s["stage"] in ("plug_in", "handshake")]
    assert 1.9 <= handshake_only[-1]["t"] - handshake_only[0]["t"] <= 2.1  # ~2 s handshake
    assert handshake_only[-1]["cp_state"] == "C" and handshake_only[-1]["pwm_duty"] == 5.0
    cable_check = [s for s in handshake if s["stage"] == "cable_check"]
    assert 0.9 <= cable_check[-1]["t"] - cable_check[0]["t"] <= 1.5  # ~1 s cable check

    precharge = [s for s in rig.samples if s["phase"] == "PRECHARGE"]
    # ≤ 2 A (IEC 61851-23 CC.5.2) at every tick. The test can fail: the precharge rises from below 60 V (after
    # the cable check's discharge) to the car's ~398 V, and charging the output capacitance at the supply's full
    # slew would take more than 2 A (I = C·dV/dt).
    config = rig.plant.config
    assert (config.output_capacitance_F + config.cable_capacitance_F) * config.voltage_slew_up_V_per_s > 2.4
    assert precharge_ticks and min(voltage_V for _, _, voltage_V in precharge_ticks) < 60.0
    assert max(supply_A for supply_A, _, _ in precharge_ticks) <= standards.PRECHARGE_CURRENT_LIMIT_A + 1e-9
    assert max(output_A for _, output_A, _ in precharge_ticks) <= standards.PRECHARGE_CURRENT_LIMIT_A + 1e-9
    assert abs(precharge[-1]["voltage"] - 400 * 0.995) < 5.0  # ramped to the car at target_voltage

    charging = [s for s in rig.samples if s["phase"] == "CHARGING" and s["stage"] == "charging"]
    assert all(s["contactor_closed"] for s in charging)
    start_t = charging[0]["t"]
    early = [s["current"] for s in charging if s["t"] - start_t < 4.0]
    late = [s["current"] for s in charging if s["t"] - start_t > 6.5]
    assert early and all(abs(current - 50.0) < 0.5 for current in early)
    assert late and all(abs(current - 25.0) < 0.5 for current in late)  # the car steps its request down

    final = await rig.status()
    summary = final["last_session_summary"]
    assert SUMMARY_FIELDS <= summary.keys()
    assert summary["ended_phase"] == "COMPLETE" and summary["error"] is None
    assert 9.9 <= summary["charging_time_s"] <= 10.2
    # 50 A for ~5 s and 25 A for ~5 s at ~400 V: ≈ 42 Wh
    assert 38.0 < summary["energy_Wh"] < 45.0
    assert 395 < summary["avg_voltage"] < 410 and 30 < summary["avg_current"] < 40


async def test_meter_resets_after_completion_and_summary_keeps_totals(rig):
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 50, "duration_s": 3})
    await rig.until_phase("CHARGING")
    await rig.advance(1.0)
    meter_running = (await rig.client.get("/meter")).json()
    assert meter_running["energy_Wh"] > 0 and meter_running["session_time_s"] > 0
    await rig.until_phase("COMPLETE")
    await rig.advance_until(lambda s: s["stage"] == "ended", 5)
    meter = (await rig.client.get("/meter")).json()
    assert meter == {"energy_Wh": 0.0, "avg_voltage": 0.0, "avg_current": 0.0, "session_time_s": 0.0,
                     "voltage": 0.0, "current": 0.0}
    status = await rig.status()
    assert status["energy_Wh"] == 0.0 and status["last_session_summary"]["energy_Wh"] > 0
    assert status["contactor_closed"] is False and status["session_active"] is False


@pytest.mark.parametrize("target_voltage, initial_current", [(20.0, 10.0), (40.0, 5.0), (800.0, 200.0)])
async def test_quick_low_voltage_sessions_complete_like_400V(rig, target_voltage, initial_current):
    await rig.post("/start_session", {"target_voltage": target_voltage, "initial_current": initial_current,
                                      "duration_s": 2})
    await rig.until_phase("CHARGING")
    status = await rig.advance_until(lambda s: s["stage"] == "charging", 3)  # ramped up at ≤ 100 A/s
    assert abs(status["current"] - initial_current) < 0.5
    assert abs(status["voltage"] - target_voltage) < 0.05 * target_voltage + 1
    status = await rig.until_phase("COMPLETE")
    assert status["last_session_summary"]["energy_Wh"] > 0


async def test_second_start_while_active_is_refused(rig):
    assert (await rig.post("/start_session", {})).json()["status"] == "started"
    second = (await rig.post("/start_session", {})).json()
    assert second == {"status": "error", "message": "Session already in progress"}


async def test_start_with_no_body_uses_spec_defaults(rig):
    response = await rig.client.post("/start_session")
    assert response.json()["status"] == "started"
    assert rig.controller.session.params.target_voltage_V == 400.0
    assert rig.controller.session.params.initial_current_A == 50.0
    assert rig.controller.session.params.duration_s == 10.0


async def test_stop_session_aborts_with_summary_and_ramps_down_at_most_100A_per_s(rig):
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 200, "duration_s": 60})
    await rig.advance_until(lambda s: s["stage"] == "charging", 30)
    assert (await rig.post("/stop_session")).json() == {"status": "stopping"}
    status = await rig.status()
    assert status["phase"] == "ABORTED" and status["last_session_summary"]["ended_phase"] == "ABORTED"
    rig.samples.clear()
    await rig.advance_until(lambda s: s["stage"] == "ended", 10, step_s=0.01, record=True)
    currents = [(s["t"], s["current"]) for s in rig.samples]
    for (t0, i0), (t1, i1) in zip(currents, currents[1:]):
        assert (i0 - i1) / (t1 - t0) <= 100.0 + 1.0
    assert not rig.samples[-1]["contactor_closed"]
    assert rig.plant.contactor_switched_under_load_A < 1.0  # the plant saw it open below 1 A
    summary = (await rig.status())["last_session_summary"]
    assert summary["error"] is None and summary["end_reason"] == "stop_requested"
    assert summary["energy_Wh"] > 0


async def test_stop_without_session_is_an_error(rig):
    assert (await rig.post("/stop_session")).json()["status"] == "error"


async def test_next_session_runs_after_the_previous_completed(rig):
    for _ in range(2):
        assert (await rig.post("/start_session", {"duration_s": 1})).json()["status"] == "started"
        await rig.until_phase("COMPLETE")
        await rig.advance_until(lambda s: s["stage"] == "ended", 5)
