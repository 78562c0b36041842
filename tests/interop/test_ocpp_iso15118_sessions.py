"""An ISO 15118 session with the stock EVCC is the transaction a CSMS bills (issue 12, item 3): the launcher
(``evse_main --controller hal --ocpp-url ...``) against the in-repository test CSMS, both in the EVSE
namespace. The EV's identification goes to the CSMS (``ccs_sim.ocpp.authorization``): EIM with the station's
configured token (``CCS_SIM_OCPP_EIM_ID_TOKEN``), Plug & Charge with the eMAID of the EV's PaymentDetailsReq.
The CSMS gets Authorize with that token, a transaction carrying it, meter values during it, and an end whose
billed energy is the session record's (1.6: within 1 Wh, whole Wh of the register; 2.0.1: 0.01 Wh)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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

pytestmark = interop_marks("iopocpp")

CSMS_SCRIPT = Path(__file__).resolve().parent / "csms_process.py"
CSMS_PORT = 9180  # in the EVSE namespace (a fresh namespace: every port is free)
CSMS_READY_TIMEOUT_S = 15.0
RFID_UID = "04A1B2C3D4E5F6"  # the station's EIM token: an ISO 14443 card UID
METER_INTERVAL_S = 1  # the charge loop lasts a few seconds: meter values fall inside the transaction
#: Billed vs the record: 1.6 carries the continuous register in whole Wh (meterStop - meterStart within 1 Wh);
#: 2.0.1 carries it with decimals.
BILLED_TOLERANCE_Wh = {"1.6": 1.0, "2.0.1": 0.01}


class CsmsProcess:
    """tests/interop/csms_process.py in the EVSE namespace; its recorded frames."""

    def __init__(self, link: VethLink, version: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.frames_path = workdir / f"csms-{version}.json"
        self.log_path = workdir / "csms.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(link.in_evse([sys.executable, str(CSMS_SCRIPT), version, str(CSMS_PORT),
                                                          str(self.frames_path)]), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + CSMS_READY_TIMEOUT_S
        while "test CSMS ready" not in self.log_path.read_text(errors="replace"):
            assert self.process.poll() is None and time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.05)

    def recorded(self) -> dict[str, Any]:
        return json.loads(self.frames_path.read_text()) if self.frames_path.exists() else {"frames": []}

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [f["payload"] for f in self.recorded()["frames"] if f["type"] == "CALL" and f["action"] == action]

    def wait_for(self, condition: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def billed_Wh(csms: CsmsProcess, version: str) -> float:
    if version == "1.6":
        return csms.calls("StopTransaction")[0]["meterStop"] - csms.calls("StartTransaction")[0]["meterStart"]
    events = csms.calls("TransactionEvent")

    def register(event: dict[str, Any]) -> float:
        return next(float(v["value"]) for v in event["meterValue"][0]["sampledValue"]
                    if v.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register")
    return register(events[-1]) - register(events[0])


def emaid_sent_by_the_ev(launcher: LauncherProcess, session_id: str) -> str:
    log = launcher.workdir / "data" / "v2g" / f"{session_id}.jsonl"
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["message"] == "PaymentDetailsReq":
            return str(entry["body"]["V2G_Message"]["Body"]["PaymentDetailsReq"]["eMAID"])
    raise AssertionError(f"no PaymentDetailsReq in {log}")


@pytest.mark.parametrize("secc_launcher", ["hal"], indirect=True)
@pytest.mark.parametrize(("case_id", "version"), [("iso2-dc-eim", "2.0.1"), ("iso2-dc-eim", "1.6"),
                                                  ("iso2-dc-tls12-pnc", "2.0.1"), ("iso2-dc-tls12-pnc", "1.6")],
                         ids=["eim-2.0.1", "eim-1.6", "pnc-2.0.1", "pnc-1.6"])
def test_stock_evcc_session_is_the_transaction_the_csms_bills(
        case_id: str, version: str, secc_launcher: LauncherProcess, veth_link: VethLink, tmp_path: Path,
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    case = case_by_id(case_id)
    pki = request.getfixturevalue("interop_pki") if case.needs_pki else None
    monkeypatch.setenv("CCS_SIM_OCPP_EIM_ID_TOKEN", RFID_UID)  # the launcher inherits it
    csms = CsmsProcess(veth_link, version, tmp_path / "csms")
    try:
        secc_launcher.extra_args = ("--api-port", str(API_PORT), "--ocpp-url", f"ws://127.0.0.1:{CSMS_PORT}/ocpp",
                                    "--ocpp-station-id", "CS-ISO15118", "--ocpp-version", version,
                                    "--ocpp-meter-interval", str(METER_INTERVAL_S))
        secc_launcher.start(case, pki)
        assert csms.wait_for(lambda: csms.calls("StatusNotification"), 20.0), secc_launcher.log_text()[-3000:]
        monitor = ApiMonitor(veth_link, tmp_path / "api.jsonl").start()
        try:
            evcc = run_evcc(veth_link, with_charge_loops(case, hal_charge_loops(case)), tmp_path / "evcc", pki)
            final = monitor.wait_for(lambda s: s.get("/status", {}).get("last_session_summary"), timeout_s=15.0)
        finally:
            monitor.stop()
        context = f"\n--- EVCC ---\n{evcc.log[-2500:]}\n--- SECC ---\n{secc_launcher.log_text()[-4000:]}"
        assert evcc.returncode == 0, f"EVCC exited {evcc.returncode}: {evcc.diagnosis()}{context}"
        summary = final["/status"]["last_session_summary"]
        assert summary["source"] == "hlc" and summary["ended_phase"] == "COMPLETE", f"{summary}{context}"
        assert summary["energy_Wh"] > 0.0, summary
        ended = "StopTransaction" if version == "1.6" else "TransactionEvent"
        assert csms.wait_for(lambda: any(version == "1.6" or e["eventType"] == "Ended" for e in csms.calls(ended)),
                             20.0), f"no end of the transaction at the CSMS{context}"
        recorded = csms.recorded()
        assert recorded["violations"] == [], recorded["violations"]

        token = RFID_UID if "eim" in case_id else emaid_sent_by_the_ev(secc_launcher, summary["session_id"])
        token_type = "ISO14443" if "eim" in case_id else "eMAID"
        expected = token if version == "1.6" else {"idToken": token, "type": token_type}
        authorize = [call.get("idTag") or call.get("idToken") for call in csms.calls("Authorize")]
        assert authorize == [expected], authorize
        if version == "1.6":
            assert [call["idTag"] for call in csms.calls("StartTransaction")] == [token]
            assert [call.get("idTag") for call in csms.calls("StopTransaction")] == [token]
            assert csms.calls("MeterValues"), "no MeterValues during the transaction"
        else:
            events = csms.calls("TransactionEvent")
            assert events[0]["eventType"] == "Started" and events[0]["triggerReason"] == "CablePluggedIn"
            authorized = [e for e in events if e["triggerReason"] == "Authorized"]
            assert [e.get("idToken") for e in authorized] == [expected], events
            assert any(e["triggerReason"] == "MeterValuePeriodic" for e in events), "no periodic meter values"
            assert events[-1]["eventType"] == "Ended"
            assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
        assert billed_Wh(csms, version) == pytest.approx(summary["energy_Wh"], abs=BILLED_TOLERANCE_Wh[version])
        assert secc_launcher.stop() == 0, f"launcher did not stop cleanly{context}"
    finally:
        secc_launcher.stop()
        csms.stop()
