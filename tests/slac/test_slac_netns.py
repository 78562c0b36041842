"""pyslac (through SlacService) in the EVSE namespace against our simulated EV in the EV namespace, over a veth.

Each side runs as its own process inside its namespace (evse_slac.evse_runner / evse_slac.ev_peer). Needs root;
skipped with a reason outside CI when namespaces are unavailable, and fails in CI instead.
"""

from __future__ import annotations

from slac_requirements import skip_without_pyslac

skip_without_pyslac()

import pytest

from evse_ev.demo_network import VethLink
from evse_slac.processes import EvPeerProcess, EvseRunnerProcess

pytestmark = pytest.mark.netns

MATCH_TIMEOUT_S = 5.0  # a match takes about 0.4 s on a veth
SLAC_INIT_TIMEOUT_S = 1.0  # TT_EVSE_SLAC_init shortened so a silent EV fails quickly


def _assert_same_network(evse_matched: dict, ev_result: dict, link: VethLink) -> None:
    assert ev_result["matched"] is True, ev_result
    assert evse_matched["state"] == "MATCHED"
    assert evse_matched["nid"] == ev_result["nid"] and len(ev_result["nid"]) == 14
    assert evse_matched["nmk"] == ev_result["nmk"] and len(ev_result["nmk"]) == 32
    assert evse_matched["run_id"] == ev_result["run_id"]
    assert evse_matched["ev_mac"] == link.ev_mac.upper()
    assert ev_result["evse_mac"] == link.evse_mac.upper()
    assert evse_matched["attenuation_db"] == ev_result["attenuation_db"] == 25.0


@pytest.mark.parametrize("veth_link", ["slact"], indirect=True)
def test_three_plug_ins_in_a_row_match_with_fresh_keys(veth_link: VethLink):
    ev = EvPeerProcess(veth_link.in_ev([]), veth_link.ev_iface, runs=3)
    evse = EvseRunnerProcess(veth_link.in_evse([]), veth_link.evse_iface, settle_time_s=0.0)
    try:
        keys = []
        for _ in range(3):
            evse.cp("B")
            matched = evse.wait_matched(MATCH_TIMEOUT_S)
            result = ev.next_result(MATCH_TIMEOUT_S)
            _assert_same_network(matched, result, veth_link)
            assert matched["cp_to_matched_s"] < 2.0
            keys.append((matched["nid"], matched["nmk"]))
            evse.cp("A")
            idle = evse.wait_state("IDLE", MATCH_TIMEOUT_S)
            assert (idle["ev_mac"], idle["nid"], idle["run_id"], idle["attenuation_db"]) == (None,) * 4
        assert len({nmk for _, nmk in keys}) == 3 and len({nid for nid, _ in keys}) == 3
        assert evse.stop() == 0 and ev.stop() == 0
        assert "no CM_SET_KEY.CNF" not in evse.stderr, "the emulated modem confirmed every new key"
    finally:
        evse.stop()
        ev.stop()


@pytest.mark.parametrize("veth_link", ["slact"], indirect=True)
def test_silent_ev_fails_then_the_next_plug_in_matches(veth_link: VethLink, tmp_path):
    slac_env = tmp_path / "slac.env"
    slac_env.write_text(f"SLAC_INIT_TIMEOUT={SLAC_INIT_TIMEOUT_S}\n")
    silent = EvPeerProcess(veth_link.in_ev([]), veth_link.ev_iface, silent=True)
    evse = EvseRunnerProcess(veth_link.in_evse([]), veth_link.evse_iface, settle_time_s=0.0, slac_config=slac_env)
    ev = None
    try:
        evse.cp("B")
        evse.wait_state("MATCHING", MATCH_TIMEOUT_S)
        failed = evse.wait_state("FAILED", SLAC_INIT_TIMEOUT_S + MATCH_TIMEOUT_S)
        assert failed["ev_mac"] is None and failed["nid"] is None
        silent.stop()

        ev = EvPeerProcess(veth_link.in_ev([]), veth_link.ev_iface, runs=1)
        evse.cp("A")
        evse.wait_state("IDLE", MATCH_TIMEOUT_S)
        evse.cp("B")
        matched = evse.wait_matched(MATCH_TIMEOUT_S)
        _assert_same_network(matched, ev.next_result(MATCH_TIMEOUT_S), veth_link)
    finally:
        evse.stop()
        silent.stop()
        if ev is not None:
            ev.stop()


@pytest.mark.parametrize("veth_link", ["slact"], indirect=True)
def test_an_ev_that_finds_the_attenuation_too_high_does_not_match(veth_link: VethLink):
    ev = EvPeerProcess(veth_link.in_ev([]), veth_link.ev_iface, runs=1, extra_args=["--threshold-db", "5"])
    evse = EvseRunnerProcess(veth_link.in_evse([]), veth_link.evse_iface, settle_time_s=0.0)
    try:
        evse.cp("B")
        result = ev.next_result(MATCH_TIMEOUT_S)
        assert result["matched"] is False and "above 5.0 dB" in result["reason"]
        assert result["attenuation_db"] == 25.0 and result["nmk"] is None
        evse.send("status")
        status = evse.next_event(lambda event: event["event"] == "status" and event["ev_mac"] is not None,
                                 MATCH_TIMEOUT_S)
        assert status["state"] == "MATCHING", "the EVSE waits for a CM_SLAC_MATCH.REQ that never comes"
        evse.cp("A")
        evse.wait_state("IDLE", MATCH_TIMEOUT_S)
    finally:
        evse.stop()
        ev.stop()
