"""External limit sources (an operator's charging profile): the minimum of every source is in force, the output
follows it within 1 s under load (at the ramp-down rate, never breaking DC), /status shows it with its source,
and an unavailable connector refuses POST /start_session with a message."""

from __future__ import annotations

from ccs_sim.core.limits import LimitsInForce
from conftest import Rig


def test_the_minimum_of_the_rating_and_every_source_is_in_force() -> None:
    limits = LimitsInForce(rated_current_A=400.0, rated_power_W=350_000.0)
    assert (limits.current_A, limits.power_W) == (400.0, 350_000.0)
    limits.set_external_limit("ocpp", current_A=120.0)
    limits.set_external_limit("site", current_A=200.0, power_W=90_000.0)
    assert (limits.current_A, limits.power_W) == (120.0, 90_000.0)
    view = limits.view()
    assert view["current_source"] == "ocpp" and view["power_source"] == "site"
    assert [s["source"] for s in view["sources"]] == ["rating", "ocpp", "site"]
    limits.set_external_limit("ocpp", None, None)
    assert limits.current_A == 200.0 and limits.external("ocpp") is None


async def test_a_50_A_limit_under_a_150_A_session_is_followed_within_1_s_and_cleared(rig: Rig) -> None:
    response = await rig.post("/start_session", {"ev_preset": "ev800", "start_soc": 20, "target_soc": 90,
                                                 "initial_current": 150, "duration_s": 120})
    assert response.json()["status"] == "started"
    await rig.advance_until(lambda s: s["stage"] == "charging" and s["current"] > 149.0, timeout_s=30)
    rig.controller.set_external_limit("ocpp", current_A=50.0)
    start_s = rig.clock.now()
    status = await rig.advance_until(lambda s: s["current"] <= 50.0 + 0.5, timeout_s=1.1, record=True)
    assert rig.clock.now() - start_s <= 1.05  # 100 A at the 100 A/s ramp-down rate
    assert status["contactor_closed"] and status["session_active"] and status["error"] is None
    assert status["limits_in_force"]["current_A"] == 50.0
    assert status["limits_in_force"]["current_source"] == "ocpp"
    await rig.advance(0.5)
    assert (await rig.status())["current"] <= 50.0 + 0.5  # held
    rig.controller.set_external_limit("ocpp", None, None)
    status = await rig.advance_until(lambda s: s["current"] > 149.0, timeout_s=3)
    assert status["limits_in_force"]["current_source"] == "rating"


async def test_a_power_limit_caps_the_output_power(rig: Rig) -> None:
    await rig.post("/start_session", {"ev_preset": "ev800", "start_soc": 20, "target_soc": 90,
                                      "initial_current": 150, "duration_s": 120})
    await rig.advance_until(lambda s: s["stage"] == "charging" and s["current"] > 149.0, timeout_s=30)
    rig.controller.set_external_limit("ocpp", power_W=40_000.0)
    await rig.advance(1.0)
    status = await rig.status()
    assert status["power_W"] <= 40_000.0 * 1.01
    assert status["limits_in_force"]["power_W"] == 40_000.0 and status["limits_in_force"]["power_source"] == "ocpp"


async def test_an_unavailable_connector_refuses_a_session_with_a_message(rig: Rig) -> None:
    rig.controller.limits.unavailable_reason = "the connector is Unavailable (the operator set it Inoperative)"
    body = (await rig.post("/start_session", {})).json()
    assert body["status"] == "error" and "Unavailable" in body["message"]
    rig.controller.limits.unavailable_reason = None
    assert (await rig.post("/start_session", {})).json()["status"] == "started"


async def test_the_dashboard_snapshot_and_page_show_the_limit_in_force(rig: Rig) -> None:
    from ccs_sim.dashboard.snapshot import build_snapshot

    rig.controller.set_external_limit("ocpp", current_A=80.0)
    snapshot = build_snapshot(rig.controller)
    assert snapshot["status"]["limits_in_force"]["current_source"] == "ocpp"
    assert snapshot["limits"]["max_current_A"] == 80.0
    page = (await rig.client.get("/")).text
    assert 'id="limit-in-force"' in page
    script = (await rig.client.get("/dashboard/assets/live_view.js")).text
    assert "limits_in_force" in script
