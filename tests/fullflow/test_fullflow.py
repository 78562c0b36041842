"""The whole flow on one machine, over a veth pair between two namespaces, against ONE launcher that is never
restarted (module fixture): plug-in (CP B) → SLAC matched → SDP → … → CurrentDemand → SessionStop → unplug
(CP A), three times; an EV that never answers SLAC → FAILED, then a clean match; the cable pulled during
CurrentDemand → < 5 A within 30 ms and contactor open within 100 ms (the launcher's CP-loss timeline, on the
controller's clock), then the charger serves the next car.

Needs root, iproute2, a JRE and iso15118/pyslac; runs (never skips) under CI=true. About 1.5 min.
"""

from __future__ import annotations

import pytest

from fullflow_support import cp_loss_records, require_fullflow

pytestmark = [pytest.mark.netns, pytest.mark.hlc]

SESSION_ARGS = ("--preset", "800V", "--start-soc", "40", "--target-soc", "80", "--max-charge-loops", "6",
                "--progress-interval-s", "5")
SLAC_INIT_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def charger(tmp_path_factory):
    from evse_ev.demo_network import Launcher, VethLink

    require_fullflow()
    workdir = tmp_path_factory.mktemp("fullflow")
    with VethLink(prefix="ccsff") as link:
        launcher = Launcher(link, workdir / "launcher", slac_init_timeout_s=SLAC_INIT_TIMEOUT_S).start()
        try:
            yield link, launcher, workdir
        finally:
            launcher.stop()


def _assert_ok(run, launcher, count: int) -> None:
    assert run.returncode == 0, f"EV tool failed: {run.plugins}\n{run.stderr[-3000:]}\n{launcher.log_text()[-3000:]}"
    assert len(run.plugins) == count


def test_three_sessions_in_a_row(charger) -> None:
    from evse_ev.demo_network import run_ev

    link, launcher, workdir = charger
    run = run_ev(link, workdir / "three", *SESSION_ARGS, "--sessions", "3", timeout_s=150)
    _assert_ok(run, launcher, 3)
    run_ids = set()
    for plugin in run.plugins:
        assert plugin["outcome"] == "session_ok"
        # matched within the EVSE's and the EV's SLAC timeouts; how fast (target 1 s) is bench/bench_fullflow.py's
        # figure, not a wall-clock assertion here
        assert plugin["slac"]["matched"]
        evse_side = plugin["evse_slac"]
        assert evse_side["state"] == "MATCHED" and evse_side["ev_mac"] == link.ev_mac.upper()
        assert evse_side["nid"] == plugin["slac"]["nid"] and evse_side["run_id"] == plugin["slac"]["run_id"]
        run_ids.add(evse_side["run_id"])
        assert plugin["charge_loops"] >= 6 and plugin["delivered_Wh"] > 0
        assert plugin["soc_end"] > plugin["soc_start"], "SOC rises with the energy delivered"
    assert len(run_ids) == 3
    assert len({plugin["slac"]["nid"] for plugin in run.plugins}) == 3, "a fresh NID per plug-in"
    assert launcher.api_get("/vehicle/slac")["state"] == "IDLE", "unplug resets SLAC"
    status = launcher.api_get("/status")
    assert not status["session_active"] and status["cp_state"] == "A"


def test_silent_ev_fails_then_the_next_plugin_matches(charger) -> None:
    from evse_ev.demo_network import run_ev

    link, launcher, workdir = charger
    silent = run_ev(link, workdir / "silent", "--mode", "silent", "--silent-s", str(SLAC_INIT_TIMEOUT_S + 1.5))
    assert silent.returncode == 0, silent.stderr[-3000:]
    assert silent.plugins[0]["evse_slac"]["state"] == "FAILED"
    run = run_ev(link, workdir / "after-silent", *SESSION_ARGS)
    _assert_ok(run, launcher, 1)
    assert run.plugins[0]["outcome"] == "session_ok" and run.plugins[0]["evse_slac"]["state"] == "MATCHED"


def test_cable_pulled_during_current_demand(charger) -> None:
    from evse_ev.demo_network import run_ev

    link, launcher, workdir = charger
    before = len(cp_loss_records(launcher))
    pulled = run_ev(link, workdir / "pull", "--preset", "800V", "--start-soc", "40", "--target-soc", "80",
                    "--mode", "pull", "--pull-after-loops", "15")
    assert pulled.returncode == 0, f"{pulled.plugins}\n{pulled.stderr[-3000:]}"
    assert pulled.plugins[0]["outcome"] == "cable_pulled" and pulled.plugins[0]["current_at_pull_A"] > 50
    records = cp_loss_records(launcher)[before:]
    assert len(records) == 1, launcher.log_text()[-3000:]
    record = records[0]
    assert record["current_before_loss_A"] > 50
    assert record["current_below_5A_after_s"] is not None and record["current_below_5A_after_s"] <= 0.030, record
    assert record["contactor_open_after_s"] is not None and record["contactor_open_after_s"] <= 0.100, record
    # ready for the next car
    run = run_ev(link, workdir / "after-pull", *SESSION_ARGS)
    _assert_ok(run, launcher, 1)
    assert run.plugins[0]["outcome"] == "session_ok"
