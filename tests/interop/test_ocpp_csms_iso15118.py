"""An ISO 15118 session with the stock EVCC is the transaction a central system we did not write would bill
(issue 12, Tests): the launcher (``evse_main --controller hal --ocpp-url ...``) against ``ocpp-csms`` (PyPI 0.1.0,
OCPP 1.6J, driven as a library by tests/ocpp/ocpp_csms_driver.py in its own environment), both in the EVSE
namespace (the launcher reaches only 127.0.0.1 there). EIM with the station's configured token
(``CCS_SIM_OCPP_EIM_ID_TOKEN``, ``ccs_sim.ocpp.authorization``): the CSMS gets Authorize with that token and
answers it itself, the transaction carries it (StartTransaction / StopTransaction idTag), meter values come
during it, and meterStop − meterStart is the session record's energy to 1 Wh (1.6 carries whole Wh)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from interop_harness import (
    API_PORT,
    ApiMonitor,
    LauncherProcess,
    case_by_id,
    hal_charge_loops,
    interop_marks,
    run_evcc,
    with_charge_loops,
)

from evse_ev.demo_network import VethLink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ocpp"))

from ocpp_csms_driver_process import CsmsDriverProcess  # noqa: E402

pytestmark = interop_marks("iopcsms")

CSMS_PORT = 9181  # in the EVSE namespace (a fresh namespace: every port is free)
STATION_ID = "CS-ISO15118"
RFID_UID = "04A1B2C3D4E5F7"  # the station's EIM token: an ISO 14443 card UID
METER_INTERVAL_S = 1  # the charge loop lasts a few seconds: meter values fall inside the transaction
STATUS_TIMEOUT_S = 20.0
END_TIMEOUT_S = 20.0
#: 1.6 meterStart/meterStop are whole Wh (StartTransaction.req / StopTransaction.req: integer): each is rounded.
BILLED_TOLERANCE_Wh = 1.0
#: A sampled register is sent with 3 decimals (Wh).
REGISTER_DIGITS_TOLERANCE_Wh = 0.001


@pytest.mark.parametrize("secc_launcher", ["hal"], indirect=True)
def test_stock_evcc_eim_session_is_the_transaction_ocpp_csms_bills(
        secc_launcher: LauncherProcess, veth_link: VethLink, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = case_by_id("iso2-dc-eim")
    monkeypatch.setenv("CCS_SIM_OCPP_EIM_ID_TOKEN", RFID_UID)  # the launcher inherits it
    csms = CsmsDriverProcess(CSMS_PORT, tmp_path / "csms", command_prefix=veth_link.in_evse([]))
    try:
        secc_launcher.extra_args = ("--api-port", str(API_PORT), "--ocpp-url", f"ws://127.0.0.1:{CSMS_PORT}/ocpp",
                                    "--ocpp-station-id", STATION_ID, "--ocpp-version", "1.6",
                                    "--ocpp-meter-interval", str(METER_INTERVAL_S))
        secc_launcher.start(case, None)
        csms.wait_for(lambda e: e["event"] == "status" and e["charge_point_id"] == STATION_ID
                      and e["status"] == "Available", STATUS_TIMEOUT_S, lambda: secc_launcher.log_text()[-3000:])
        monitor = ApiMonitor(veth_link, tmp_path / "api.jsonl").start()
        try:
            evcc = run_evcc(veth_link, with_charge_loops(case, hal_charge_loops(case)), tmp_path / "evcc", None)
            final = monitor.wait_for(lambda s: s.get("/status", {}).get("last_session_summary"), timeout_s=15.0)
        finally:
            monitor.stop()

        def context() -> str:
            return f"\n--- EVCC ---\n{evcc.log[-2500:]}\n--- SECC ---\n{secc_launcher.log_text()[-4000:]}"

        assert evcc.returncode == 0, f"EVCC exited {evcc.returncode}: {evcc.diagnosis()}{context()}"
        summary = final["/status"]["last_session_summary"]
        assert summary["source"] == "hlc" and summary["ended_phase"] == "COMPLETE", f"{summary}{context()}"
        assert summary["energy_Wh"] > 0.0, summary
        stopped = csms.wait_for(lambda e: e["event"] == "transaction_stopped", END_TIMEOUT_S, context)
        assert secc_launcher.stop() == 0, f"launcher did not stop cleanly{context()}"
    finally:
        secc_launcher.stop()
        csms.stop()

    assert [e["id_tag"] for e in csms.of("authorize")] == [RFID_UID], csms.of("authorize")
    answers = [e["payload"] for e in csms.of("answer") if e["action"] == "Authorize"]
    assert answers == [{"idTagInfo": {"status": "Accepted"}}], answers  # the library's own answer
    started = csms.of("transaction_started")
    assert [(e["id_tag"], e["id_tag_status"]) for e in started] == [(RFID_UID, "Accepted")], started
    transaction_id = started[0]["transaction_id"]
    assert [call["idTag"] for call in csms.calls("StartTransaction")] == [RFID_UID]
    assert [call.get("idTag") for call in csms.calls("StopTransaction")] == [RFID_UID]
    assert stopped["transaction_id"] == transaction_id and stopped["id_tag"] == RFID_UID, stopped
    periodic = [e for e in csms.of("meter_values") if e["transaction_id"] == transaction_id
                and any(r["context"] == "Sample.Periodic" for r in e["readings"])]
    assert periodic, f"no MeterValues during the transaction: {csms.of('meter_values')}"
    registers = [float(r["value"]) for e in periodic for r in e["readings"]
                 if r["measurand"] == "Energy.Active.Import.Register"]
    # the samples read the meter the session record ends with: never back, never beyond its final energy
    assert registers == sorted(registers), registers
    assert registers[-1] <= summary["energy_Wh"] + REGISTER_DIGITS_TOLERANCE_Wh, (registers, summary)
    billed_Wh = stopped["meter_stop"] - stopped["meter_start"]
    assert billed_Wh == pytest.approx(summary["energy_Wh"], abs=BILLED_TOLERANCE_Wh), (stopped, summary)
    statuses = csms.statuses()
    assert "Faulted" not in statuses and "Charging" in statuses, statuses
