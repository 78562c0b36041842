"""A session's DC steps wait until the session owns the output: a cable check asked for (by the SECC) while the
previous car's wind-down still runs must not command the supply, the contactor or the supervision context of
that wind-down (issue 10: per-session state has one owner)."""

from __future__ import annotations

import asyncio

from evse_model.session import EndReason, Phase, SessionParams


class WaitingDriver:
    """Like the HLC driver: the session's flow comes from outside (here: the test)."""

    source = "hlc"

    async def run(self, controller, session) -> None:  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()


async def test_a_cable_check_asked_during_the_previous_wind_down_waits_for_it(rig):
    controller = rig.controller
    await rig.post("/start_session", {"target_voltage": 400, "initial_current": 300, "duration_s": 60})
    await rig.advance_until(lambda s: s["stage"] == "charging" and s["current"] > 250.0, 30, step_s=0.02)
    assert (await rig.post("/stop_session")).json()["status"] == "stopping"  # ramps down at 100 A/s: ~3 s
    session = controller.start_session(SessionParams(), driver=WaitingDriver())
    check = asyncio.ensure_future(controller.cable_check(500.0))
    samples = []
    while controller.shutting_down:
        await rig.clock.advance(0.01)
        samples.append((controller.stage.value, rig.plant.cable_current_A, controller.context is session.supervision))
    # Throughout the wind-down the previous car's ramp ran undisturbed: the current fell at <= 100 A/s and the
    # new session's context was not in force; no cable check stage was shown before the take-over.
    assert samples and not any(in_force for _, _, in_force in samples[:-1])
    assert all(stage != "cable_check" for stage, _, _ in samples[:-1])
    falls = [a - b for (_, a, _), (_, b, _) in zip(samples, samples[1:])]
    assert max(falls) <= 100.0 * 0.01 + 0.5 + 1e-6  # 100 A/s over a 10 ms step, plus CC.6.3 accuracy
    await rig.advance_until(lambda s: s["stage"] == "cable_check", 1.0)
    assert controller.context is session.supervision
    check.cancel()
    controller.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)
    await rig.advance(0.5)
