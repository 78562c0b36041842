"""The stock iso15118 EVCC against ``evse_main --controller hal`` (our HAL controller on the sim adapter) with
the Live Controller API served in the same process: DIN SPEC 70121, ISO 15118-2 DC EIM, ISO 15118-20 DC,
-2 over TLS 1.2 (PnC) and -20 over TLS 1.3. Each session ends with SessionStopRes OK and is recorded
(energy > 0, COMPLETE), the API shows it live (phases, /vehicle/bms with the EV's values while it charges);
and ``/fault`` / ``/stop_session`` during CurrentDemand stop the EV cleanly."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest

from evse_ev.demo_network import VethLink
from interop_harness import (
    API_PORT,
    CASES,
    MIN_ENERGY_20_Wh,
    ApiMonitor,
    InteropCase,
    LauncherProcess,
    api_call,
    hal_charge_loops,
    interop_marks,
    is_iso15118_20,
    phases_seen,
    run_evcc,
    with_charge_loops,
)

pytestmark = interop_marks("iophal")

#: For /fault and /stop_session: a loop long enough that our side ends it, not the EV.
LONG_CHARGE_LOOPS = 200
HAL_ARGS = ("--api-port", str(API_PORT))


def _context(evcc_log: str, launcher: LauncherProcess) -> str:
    return f"\n--- EVCC log tail ---\n{evcc_log[-3000:]}\n--- SECC log tail ---\n{launcher.log_text()[-4000:]}"


def _charging_bms(samples: list[dict]) -> list[dict]:
    return [s["/vehicle/bms"] for s in samples
            if s.get("/status", {}).get("phase") == "CHARGING" and s.get("/vehicle/bms", {}).get("source")]


@pytest.mark.parametrize("secc_launcher", ["hal"], indirect=True)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_stock_evcc_charges_from_the_hal_controller(case: InteropCase, secc_launcher: LauncherProcess,
                                                    veth_link: VethLink, tmp_path: Path,
                                                    request: pytest.FixtureRequest):
    pki = request.getfixturevalue("interop_pki") if case.needs_pki else None
    secc_launcher.extra_args = HAL_ARGS
    secc_launcher.start(case, pki)
    monitor = ApiMonitor(veth_link, tmp_path / "api.jsonl").start()
    try:
        evcc = run_evcc(veth_link, with_charge_loops(case, hal_charge_loops(case)), tmp_path / "evcc", pki)
        final = monitor.wait_for(lambda s: s.get("/status", {}).get("last_session_summary"), timeout_s=15.0)
    finally:
        samples = monitor.stop()
    context = _context(evcc.log, secc_launcher)
    assert evcc.returncode == 0, f"EVCC exited {evcc.returncode}: {evcc.diagnosis()}{context}"
    stops = [e for e in secc_launcher.exchanges() if e.response == "SessionStopRes"]
    assert [e.response_code for e in stops] == ["OK"], f"SessionStopRes: {stops}{context}"

    summary = final["/status"]["last_session_summary"]
    assert summary["ended_phase"] == "COMPLETE" and summary["error"] is None, f"{summary}{context}"
    assert summary["source"] == "hlc" and summary["energy_Wh"] > 0.0 and summary["avg_current"] > 0.0, summary
    if is_iso15118_20(case):
        assert summary["energy_Wh"] > MIN_ENERGY_20_Wh, f"current flowed too briefly: {summary}{context}"
    assert summary["ev"]["protocol"] == case.protocol, summary
    seen = phases_seen(samples)
    assert [p for p in ("HANDSHAKE", "PRECHARGE", "CHARGING", "COMPLETE") if p in seen] == \
        ["HANDSHAKE", "PRECHARGE", "CHARGING", "COMPLETE"], f"phases seen: {seen}{context}"

    charging = _charging_bms(samples)
    assert charging, f"no /vehicle/bms sample while CHARGING{context}"
    bms = charging[-1]
    assert bms["protocol"] == case.protocol and bms["evcc_id"], bms
    assert bms["target_voltage"] and bms["target_current"] is not None, bms
    assert bms["rated_limits"]["dc"]["max_voltage"], bms
    live = [s["/status"] for s in samples if s.get("/status", {}).get("phase") == "CHARGING"]
    assert any(s["contactor_closed"] and s["voltage"] > 60.0 for s in live), live[-3:]
    iso = [s["/vehicle/iso15118"] for s in samples if s.get("/vehicle/iso15118", {}).get("session_id")]
    assert iso and iso[-1]["protocol"] == case.protocol and iso[-1]["evse_id"] == "DE*CCS*E0000001*1", iso[-1:]
    assert iso[-1]["authorized"] in (True, None) and iso[-1]["timestamps"]["last_message_at"]

    records = api_call(veth_link, "GET", "/sessions")
    recorded = records.get("sessions") or records.get("items") or []
    assert any(r.get("session_id") == summary["session_id"] for r in recorded), records
    # every decoded V2G message of the session, in the session's own log (issue 6 item 7)
    message_log = secc_launcher.workdir / "data" / "v2g" / f"{summary['session_id']}.jsonl"
    logged = [json.loads(line) for line in message_log.read_text().splitlines()]
    names = {entry["message"] for entry in logged}
    assert {"CurrentDemandReq", "CurrentDemandRes"} <= names or {"DC_ChargeLoopReq", "DC_ChargeLoopRes"} <= names, names
    assert {entry["direction"] for entry in logged} == {"ev_to_evse", "evse_to_ev"}
    assert secc_launcher.stop() == 0, f"launcher did not stop cleanly{context}"


ISO2 = next(case for case in CASES if case.id == "iso2-dc-eim")


@pytest.mark.parametrize("api_args", [(*HAL_ARGS, "--no-api-front-process"), HAL_ARGS],
                         ids=["api", "api-front-process"])  # the front process is the default
@pytest.mark.parametrize("secc_launcher", ["hal"], indirect=True)
def test_fault_and_stop_session_during_current_demand(secc_launcher: LauncherProcess, veth_link: VethLink,
                                                      tmp_path: Path, api_args: tuple[str, ...]):
    """One launcher, two EVs: /fault (emergency) ends the first session ABORTED with the contactor open and
    the EV told EVSE_EmergencyShutdown + StopCharging; /stop_session ends the second one normally. The same
    with the API served by a front process (the commands forwarded to the controller, readings from its copy)."""
    secc_launcher.extra_args = api_args
    secc_launcher.start(ISO2, None)
    long_case = with_charge_loops(ISO2, LONG_CHARGE_LOOPS)

    def during_charging(action, name: str) -> tuple[object, list[dict], dict]:
        monitor = ApiMonitor(veth_link, tmp_path / f"api-{name}.jsonl").start()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(run_evcc, veth_link, long_case, tmp_path / f"evcc-{name}", None)
            try:
                charging = monitor.wait_for(lambda s: s.get("/status", {}).get("stage") == "charging", timeout_s=40.0)
                answer = action()
            finally:
                evcc_result = running.result()
        session_id = charging["/status"]["session_id"]
        # the summary is written when the session ends logically, the output winds down after it: the ended
        # session is the first sample whose stage has left the wind-down (ended / idle)
        ended = monitor.wait_for(lambda s: (s.get("/status", {}).get("last_session_summary") or {})
                                 .get("session_id") == session_id
                                 and s["/status"].get("stage") in ("ended", "idle"), timeout_s=15.0)
        return evcc_result, monitor.stop(), {"answer": answer, "ended": ended}

    evcc, samples, info = during_charging(lambda: api_call(veth_link, "POST", "/fault", {"type": "E_STOP"}), "fault")
    context = _context(evcc.log, secc_launcher)
    assert info["answer"]["severity"] == "emergency"
    status = info["ended"]["/status"]
    assert status["phase"] == "ABORTED" and status["error"] == "E_STOP", f"{status}{context}"
    assert status["last_session_summary"]["ended_phase"] == "ABORTED" and not status["contactor_closed"], status
    after = [s["/status"] for s in samples if s["/status"].get("phase") == "ABORTED"]
    assert after and not any(s["contactor_closed"] for s in after), after[:3]
    assert "EVSE_EmergencyShutdown" in evcc.log and "StopCharging" in evcc.log, f"EV not told why{context}"
    assert evcc.returncode == 0, f"the EV did not stop cleanly: {evcc.diagnosis()}{context}"
    stops = [e for e in secc_launcher.exchanges() if e.response == "SessionStopRes"]
    assert [e.response_code for e in stops] == ["OK"], stops

    evcc, samples, info = during_charging(lambda: api_call(veth_link, "POST", "/stop_session"), "stop")
    context = _context(evcc.log, secc_launcher)
    assert info["answer"]["status"] == "stopping"
    summary = info["ended"]["/status"]["last_session_summary"]
    assert summary["end_reason"] == "stop_requested" and summary["error"] is None, summary
    assert summary["energy_Wh"] > 0.0, summary
    assert "EVSE_Shutdown" in evcc.log and "StopCharging" in evcc.log, f"EV not told{context}"
    assert evcc.returncode == 0, f"the EV did not stop cleanly: {evcc.diagnosis()}{context}"
    stops = [e for e in secc_launcher.exchanges() if e.response == "SessionStopRes"]
    assert [e.response_code for e in stops] == ["OK", "OK"], stops
    assert not any(s["/status"]["contactor_closed"] for s in samples[-3:])
    assert secc_launcher.stop() == 0, f"launcher did not stop cleanly{context}"
