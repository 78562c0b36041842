"""A session the CSMS starts and stops, against a central system we did not write: ``ocpp-csms`` (PyPI 0.1.0,
OCPP 1.6J) driven as a library by tests/ocpp/ocpp_csms_driver.py in its own process and environment, and
``ccs-sim serve --ocpp-url``. The library's RemoteStartTransaction with an id tag starts a real session, it
charges (meter values during it), the library's RemoteStopTransaction ends it, and the transaction is the one that
CSMS would bill: StartTransaction with that id tag, Preparing → Charging → Finishing, StopTransaction reason
Remote, meterStop − meterStart = the session record's energy (1.6 carries whole Wh).
Outside CI the test skips when the peer cannot be installed (no network); in CI it must run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ocpp_csms_driver_process import CsmsDriverProcess, Event

from served_process import free_port, stop_process, wait_until_serving

SPEED = 10.0
STATION_ID = "CS1"
ID_TAG = "REMOTE-CARD-7"
#: Simulated seconds between MeterValues (5 s at speed 10: two a wall second).
METER_INTERVAL_S = 5
#: Meter values the session sends before the CSMS stops it (it charges for a few seconds of wall time).
SAMPLES_BEFORE_STOP = 3
EVENT_TIMEOUT_S = 30.0
#: 1.6 meterStart/meterStop are whole Wh (StartTransaction.req / StopTransaction.req meterStart, meterStop:
#: integer): each is rounded, so their difference is within 1 Wh of the record's energy.
BILLED_TOLERANCE_Wh = 1.0

pytestmark = pytest.mark.slow


def start_served(port: int, api_port: int, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    serve_log = tmp_path / "serve.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    with open(serve_log, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1", "--port", str(api_port),
             "--speed", str(SPEED), "--data-dir", str(tmp_path / "data"),
             "--ocpp-url", f"ws://127.0.0.1:{port}/{STATION_ID}", "--ocpp-station-id", STATION_ID,
             "--ocpp-version", "1.6", "--ocpp-meter-interval", str(METER_INTERVAL_S)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    return server, serve_log


def ended_record(api: httpx.Client, session_id: str) -> dict:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while True:
        record = api.get(f"/sessions/{session_id}").json()
        if record.get("status") == "ended" or time.monotonic() >= deadline:
            return record
        time.sleep(0.1)


def nth_sample(events: list[Event], transaction_id: int, count: int) -> Event | None:
    """The ``count``-th MeterValues of the transaction, once it came."""
    samples = [e for e in events if e["event"] == "meter_values" and e["transaction_id"] == transaction_id]
    return samples[count - 1] if len(samples) >= count else None


def test_a_csms_started_session_is_the_transaction_ocpp_csms_bills(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    csms = CsmsDriverProcess(port, tmp_path / "csms")
    server = None
    try:
        server, serve_log = start_served(port, api_port, tmp_path)

        def context() -> str:
            return f"--- serve ---\n{serve_log.read_text(errors='replace')[-3000:]}"

        base_url = f"http://127.0.0.1:{api_port}"
        wait_until_serving(server, f"{base_url}/health", EVENT_TIMEOUT_S, serve_log.read_text)
        csms.wait_for(lambda e: e["event"] == "boot" and e["charge_point_id"] == STATION_ID, EVENT_TIMEOUT_S, context)
        csms.wait_for(lambda e: e["event"] == "status" and e["status"] == "Available", EVENT_TIMEOUT_S, context)

        started = csms.command({"command": "remote_start", "charge_point_id": STATION_ID, "id_tag": ID_TAG},
                               EVENT_TIMEOUT_S)
        assert started["status"] == "Accepted", started
        transaction = csms.wait_for(lambda e: e["event"] == "transaction_started", EVENT_TIMEOUT_S, context)
        transaction_id = transaction["transaction_id"]
        csms.wait_until(lambda events: nth_sample(events, transaction_id, SAMPLES_BEFORE_STOP), EVENT_TIMEOUT_S,
                        context)
        stopped_answer = csms.command({"command": "remote_stop", "charge_point_id": STATION_ID,
                                       "transaction_id": transaction_id}, EVENT_TIMEOUT_S)
        assert stopped_answer["status"] == "Accepted", stopped_answer
        stopped = csms.wait_for(lambda e: e["event"] == "transaction_stopped", EVENT_TIMEOUT_S, context)

        with httpx.Client(base_url=base_url, timeout=5.0) as api:
            sessions = api.get("/sessions").json()["sessions"]
            assert [s["params"]["id_token"] for s in sessions] == [ID_TAG], sessions  # the remote start's session
            record = ended_record(api, sessions[0]["session_id"])
    finally:
        if server is not None:
            stop_process(server)
        csms.stop()

    assert transaction["id_tag"] == ID_TAG and transaction["id_tag_status"] == "Accepted", transaction
    assert [call["idTag"] for call in csms.calls("StartTransaction")] == [ID_TAG]
    assert stopped["transaction_id"] == transaction_id and stopped["id_tag"] == ID_TAG, stopped
    assert stopped["stop_reason"] == "Remote", stopped  # OCPP 1.6 StopTransaction.req Reason: Remote
    assert record["status"] == "ended" and record["end_reason"] == "stop_requested", record
    assert record["energy_Wh"] > 5, record
    billed_Wh = stopped["meter_stop"] - stopped["meter_start"]
    assert abs(billed_Wh - record["energy_Wh"]) <= BILLED_TOLERANCE_Wh, (stopped, record)

    periodic = [e for e in csms.of("meter_values") if e["transaction_id"] == transaction_id
                and any(r["context"] == "Sample.Periodic" for r in e["readings"])]
    assert len(periodic) >= SAMPLES_BEFORE_STOP, periodic
    registers = [float(r["value"]) for e in periodic for r in e["readings"]
                 if r["measurand"] == "Energy.Active.Import.Register"]
    assert registers == sorted(registers) and stopped["meter_start"] <= registers[0], registers
    assert registers[-1] <= stopped["meter_stop"] + BILLED_TOLERANCE_Wh, (registers, stopped)

    statuses = csms.statuses()
    assert statuses[0] == "Available" and "Faulted" not in statuses, statuses
    for status in ("Preparing", "Charging", "Finishing"):
        assert status in statuses, statuses
    assert statuses.index("Preparing") < statuses.index("Charging") < statuses.index("Finishing"), statuses
