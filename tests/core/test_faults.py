"""Every documented fault in every phase: ABORTED with the fault as error, < 5 A within 30 ms, contactor open
within 100 ms (simulated time), PWM per severity, and the next session accepted."""

from __future__ import annotations

import pytest

from ccs_sim.core.safety import Measurements, SafetySupervisor, SupervisionContext
from evse_hal.pilot import read_pilot
from evse_model.faults import FAULT_CATALOGUE, Severity

FAULT_TYPES = [*FAULT_CATALOGUE, "SOMETHING_UNHEARD_OF"]
#: (phase, stage) points at which to inject.
INJECTION_POINTS = [("HANDSHAKE", "handshake"), ("HANDSHAKE", "cable_check"), ("PRECHARGE", "precharge"),
                    ("CHARGING", "charging")]


async def _reach(rig, phase: str, stage: str) -> None:
    await rig.advance_until(lambda s: s["phase"] == phase and s["stage"] == stage, 30, step_s=0.02)
    if stage == "cable_check":
        await rig.advance(0.3)  # output energised


async def _assert_shutdown_within_limits(rig, fault_type: str) -> None:
    plant = rig.plant
    status = await rig.status()
    assert status["phase"] == "ABORTED" and status["error"] == fault_type
    assert status["session_active"] is False
    assert status["last_session_summary"]["ended_phase"] == "ABORTED"
    assert status["last_session_summary"]["error"] == fault_type
    injected_at = rig.clock.now()
    below_5A_at = opened_at = None
    while rig.clock.now() - injected_at < 0.2:
        await rig.clock.advance(0.001)
        plant.advance_to(rig.clock.now())
        if below_5A_at is None and plant.cable_current_A < 5.0:
            below_5A_at = rig.clock.now()
        if opened_at is None and not plant.evse_contactor_closed:
            opened_at = rig.clock.now()
    assert below_5A_at is not None and below_5A_at - injected_at <= 0.030 + 1e-9
    assert opened_at is not None and opened_at - injected_at <= 0.100 + 1e-9
    assert plant.cable_current_A == 0.0 and plant.inlet_voltage_V == 0.0


@pytest.mark.parametrize("phase, stage", INJECTION_POINTS)
@pytest.mark.parametrize("fault_type", FAULT_TYPES)
async def test_injected_fault_in_every_phase(rig, fault_type, phase, stage):
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 150, "duration_s": 30})
    await _reach(rig, phase, stage)
    response = (await rig.post("/fault", {"type": fault_type})).json()
    assert response["status"] == "fault_injected" and response["type"] == fault_type
    assert response["known"] is (fault_type in FAULT_CATALOGUE)
    await _assert_shutdown_within_limits(rig, fault_type)
    severity = FAULT_CATALOGUE[fault_type].severity if fault_type in FAULT_CATALOGUE else Severity.EMERGENCY
    status = await rig.status()
    if severity is Severity.EMERGENCY:
        assert status["pwm_duty"] == 100.0  # oscillator off (X1)
    await rig.advance_until(lambda s: s["stage"] == "ended", 2)
    summary = status["last_session_summary"]
    assert summary["end_reason"] == "fault"
    # the charger takes the next car
    assert (await rig.post("/start_session", {"duration_s": 1})).json()["status"] == "started"
    await rig.until_phase("COMPLETE", timeout_s=20, )


async def test_fault_while_idle_leaves_the_charger_safe_and_reported(rig):
    await rig.advance(0.1)
    assert (await rig.post("/fault", {"type": "E_STOP"})).json()["status"] == "fault_injected"
    status = await rig.status()
    assert status["phase"] == "ABORTED" and status["error"] == "E_STOP" and status["last_session_summary"] is None
    await rig.advance(0.2)
    status = await rig.status()
    assert status["contactor_closed"] is False and status["current"] == 0.0
    assert (await rig.post("/start_session", {"duration_s": 1})).json()["status"] == "started"
    status = await rig.status()
    assert status["error"] is None and status["phase"] == "HANDSHAKE"


async def _charging(rig, current_A: float = 100.0) -> None:
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": current_A, "duration_s": 60})
    await rig.advance_until(lambda s: s["stage"] == "charging", 30, step_s=0.02)


async def test_isolation_failure_during_charging_is_detected_by_the_supervisor(rig):
    await _charging(rig)
    rig.plant.isolation_resistance_ohm = 50_000.0  # < 100 kΩ: IEC 61851-23:2023 6.3.1.105
    await rig.advance(0.02, step_s=0.001)
    await _assert_shutdown_within_limits_after_detection(rig, "ISOLATION_FAULT")


async def test_cable_check_with_bad_insulation_aborts_before_precharge(rig):
    assert (await rig.post("/sim/plant", {"isolation_resistance_ohm": 80_000})).json()["status"] == "ok"
    await rig.post("/start_session", {})
    status = await rig.until_phase("ABORTED", timeout_s=10, record=True)
    assert status["error"] == "ISOLATION_FAULT"
    assert "PRECHARGE" not in {s["phase"] for s in rig.samples}


async def test_cp_loss_during_charging_is_an_emergency(rig):
    await _charging(rig)
    assert (await rig.post("/control/cp_state", {"state": "A"})).json() == {"status": "ok", "state": "A"}
    await _assert_shutdown_within_limits_after_detection(rig, "CP_LOSS")


async def test_emergency_stop_button_during_charging(rig):
    await _charging(rig)
    await rig.post("/sim/plant", {"estop_pressed": True})
    await _assert_shutdown_within_limits_after_detection(rig, "E_STOP")
    refused = (await rig.post("/start_session", {})).json()
    assert refused["status"] == "error" and "emergency stop" in refused["message"]
    await rig.post("/sim/plant", {"estop_pressed": False})
    await rig.advance(0.05)
    assert (await rig.post("/start_session", {})).json()["status"] == "started"


async def test_connector_over_temperature_stops_charging(rig):
    await _charging(rig)
    await rig.post("/sim/plant", {"ambient_temperature_C": 95.0})
    at_detection = await _assert_shutdown_within_limits_after_detection(rig, "OVER_TEMPERATURE")
    assert at_detection["pwm_duty"] == 5.0  # error shutdown keeps the oscillator (HLC can end cleanly)


async def test_ev_opening_s2_under_load_is_an_ev_emergency_stop(rig):
    await _charging(rig)
    await rig.post("/control/cp_state", {"state": "B"})
    await _assert_shutdown_within_limits_after_detection(rig, "EV_EMERGENCY_STOP")


async def _assert_shutdown_within_limits_after_detection(rig, fault_type: str) -> dict:
    detected = None
    for _ in range(30):
        status = await rig.status()
        if status["phase"] == "ABORTED":
            detected = status
            break
        await rig.clock.advance(0.001)
    assert detected is not None, "the supervisor did not react within 30 ms"
    await _assert_shutdown_within_limits(rig, fault_type)
    return detected


def _measurements(**overrides):  # type: ignore[no-untyped-def]
    values = dict(time_s=0.0, pilot=read_pilot(6.0, -12.0, 5.0), cp_positive_V=6.0, cp_negative_V=-12.0,
                  duty_percent=5.0, contactor_closed=True, output_voltage_V=400.0, output_current_A=100.0,
                  supply_voltage_V=400.0, supply_current_A=100.0, isolation_ohm=1e7, connector_temperature_C=40.0,
                  estop_pressed=False)
    values.update(overrides)
    return Measurements(**values)


@pytest.mark.parametrize("overrides, context, expected", [
    ({}, {}, None),
    ({"output_voltage_V": 560.0}, {"negotiated_max_voltage_V": 450.0}, "OVERVOLTAGE"),  # Table 103: 550 V
    ({"output_voltage_V": 900.0}, {"negotiated_max_voltage_V": 835.0}, None),  # 935 V level for ≤ 850 V
    ({"output_current_A": 110.0}, {}, "OVERCURRENT"),  # limit 100 A + max(5 A, 5 %)
    ({"output_current_A": 104.0}, {}, None),
    ({"output_current_A": 4.0}, {"precharging": True}, "OVERCURRENT"),  # precharge ≤ 2 A
    ({"isolation_ohm": 99_000.0}, {}, "ISOLATION_FAULT"),
    ({"pilot": read_pilot(12.0, -12.0, 5.0)}, {}, "CP_LOSS"),
    ({"pilot": read_pilot(6.0, -5.0, 5.0)}, {}, "DIODE_FAULT"),
    ({"estop_pressed": True}, {}, "E_STOP"),
    ({"connector_temperature_C": 91.0}, {}, "OVER_TEMPERATURE"),
])
def test_supervisor_judges_measurements(overrides, context, expected):
    ctx = SupervisionContext(energy_transfer_expected=True, commanded_current_limit_A=100.0, **context)
    found = SafetySupervisor().find_fault(_measurements(**overrides), ctx)
    assert (found.name if found is not None else None) == expected
