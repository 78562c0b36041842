"""Issue 10 item 4: the supervisor judges a current reading against the limits the power stage was told, not
against a ramp step the controller planned but had not yet sent.

At high simulation speed a control tick covers a long stretch of simulated time. The normal ramp-down used to
lower the controller's limit to the current flowing at the last tick *before* telling the stage; a stage still
following its previous (higher) limit then read as an over-current and the session ended with a false
OVERCURRENT emergency. Here long ticks come from a 60 ms control period (what a tick 50 ms late at speed 5 is)
and a stage whose current loop slews 200 A/s, so the current is still rising towards its limit when the stop
comes.
"""

from __future__ import annotations

from ccs_sim.core.safety import SupplyCurrentLimitHistory

LONG_TICK_S = 0.06
SLOW_STAGE_SLEW_A_PER_S = 200.0


async def test_a_stop_during_the_current_ramp_with_long_ticks_is_no_overcurrent(rig_factory):
    async with rig_factory(control_period_s=LONG_TICK_S) as rig:
        rig.plant.config.current_slew_A_per_s = SLOW_STAGE_SLEW_A_PER_S
        await rig.post("/start_session", {"target_voltage": 400, "initial_current": 150, "duration_s": 60})
        await rig.advance_until(lambda s: s["stage"] == "current_ramp" and s["current"] >= 20.0, 30,
                                step_s=LONG_TICK_S)
        limit_A = rig.controller.commanded_current_A
        assert rig.controller.latest.output_current_A < limit_A - 5.0  # the stage lags its limit by > 5 A
        assert (await rig.post("/stop_session")).json()["status"] == "stopping"
        final = await rig.advance_until(lambda s: s["stage"] == "ended", 10, step_s=LONG_TICK_S)
        assert final["error"] is None and final["active_fault"] is None
        assert final["last_session_summary"]["end_reason"] == "stop_requested"
        assert [fault["type"] for fault in rig.controller.fault_history] == []


def test_a_reading_is_judged_against_the_highest_limit_in_force_within_the_response_time():
    history = SupplyCurrentLimitHistory(response_s=0.05)
    history.told(1.00, 100.0)
    history.told(1.02, 40.0)  # lowered: the stage needs up to 50 ms to follow
    assert history.in_force_A() == 40.0
    assert history.highest_in_force_A(1.03) == 100.0
    assert history.highest_in_force_A(1.069) == 100.0
    assert history.highest_in_force_A(1.071) == 40.0
    history.told(1.08, 60.0)  # raised: in force at once
    assert history.highest_in_force_A(1.08) == 60.0
    assert history.highest_in_force_A(1.079) == 40.0  # a reading taken before the raise is not judged by it
