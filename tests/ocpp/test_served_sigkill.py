"""SIGKILL of ``ccs-sim serve`` mid-transaction against the test CSMS, both OCPP versions: after a restart on the
same data directory every transaction message reaches the CSMS once and in order, and it bills the session
record's energy.

The kill lands in the worst moment the queue has: a transaction message the CSMS received and processed, whose
CALLRESULT never came back (the CSMS holds it, ``idempotent_csms``). The station must send it again after the
restart (it cannot know it arrived): at the wire that is at-least-once. It resends it with the same message id
(a new WebSocket connection allows that, OCPP-J 1.6 §4.1.3 / 2.0.1 Part 4 §4.1.3), so a CSMS that keeps its
answers by message id processes each message once: the assertions are on the CSMS's accepted set (each
message id once), and that the resent frame is the held one (same id, same payload).

1.6: one StartTransaction, MeterValues with increasing timestamps none twice, one StopTransaction with reason
PowerLoss (``Transactions.recover``: a transaction a dead process left open); 2.0.1: seqNo 0..n-1, one Started,
one Ended (stoppedReason PowerLoss, offline). Billed (meterStop − meterStart; Ended − Started register) = the
record's energy (1.6: whole Wh of the continuous register, < 1 Wh).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from idempotent_csms import TRANSACTION_ACTIONS, IdempotentCsms

from served_process import free_port, stop_process, wait_until_serving

SPEED = 10.0
METER_INTERVAL_S = 2.0  # simulated: a MeterValues every 0.2 wall s
#: Transaction messages the CSMS acknowledges before it holds one answer (Start + 3 samples).
ACKNOWLEDGED_BEFORE_HOLD = 4
START_TIMEOUT_S = 30.0
EVENT_TIMEOUT_S = 60.0

pytestmark = pytest.mark.slow


async def serve(tmp_path: Path, csms: IdempotentCsms, version: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--speed",
             str(SPEED), "--data-dir", str(tmp_path / "data"), "--ocpp-url", csms.url, "--ocpp-station-id", "CS1",
             "--ocpp-version", version, "--ocpp-meter-interval", str(METER_INTERVAL_S)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    base_url = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_until_serving, process, f"{base_url}/health", START_TIMEOUT_S, log_path.read_text)
    return process, base_url


async def poll(http: httpx.AsyncClient, path: str, until: Any, process: subprocess.Popen[bytes],
               timeout_s: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        answer = (await http.get(path)).json()
        if until(answer):
            return answer
        assert process.poll() is None, f"the server exited ({process.returncode})"
        assert asyncio.get_running_loop().time() < deadline, f"GET {path} not as expected within {timeout_s} s: {answer}"
        await asyncio.sleep(0.05)


async def wait_for(condition: Any, what: str, timeout_s: float = EVENT_TIMEOUT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.02)


def register_Wh(event: dict[str, Any]) -> float:
    return next(float(value["value"]) for value in event["meterValue"][0]["sampledValue"]
                if value.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register")


def is_stop(frame: Any) -> bool:
    return frame.action == "StopTransaction" or (
        frame.action == "TransactionEvent" and frame.payload.get("eventType") == "Ended")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_sigkill_mid_transaction_every_message_once_in_order_billed_as_recorded(tmp_path: Path,
                                                                                     version: str) -> None:
    async with IdempotentCsms(version) as csms:
        csms.hold_answer(lambda action, _payload: action in TRANSACTION_ACTIONS
                         and len(csms.accepted) > ACKNOWLEDGED_BEFORE_HOLD)
        process, base_url = await serve(tmp_path, csms, version, "before-kill")
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
                await poll(http, "/ocpp", lambda view: view.get("connection") == "booted", process)
                started = (await http.post("/start_session", json={
                    "target_voltage": 400, "initial_current": 50, "duration_s": 600,
                    "id_token": "CARD-0042"})).json()
                assert started["status"] == "started", started
                await asyncio.wait_for(csms.held.wait(), EVENT_TIMEOUT_S)
                view = (await http.get("/ocpp")).json()
            process.kill()  # SIGKILL, this process only (by its PID)
            assert await asyncio.to_thread(process.wait, 10.0) == -9
        finally:
            await asyncio.to_thread(stop_process, process)
        assert view["transaction"]["session_id"] == started["session_id"], view  # killed mid-transaction
        held_id = csms.held_id
        held_frame = next(frame for frame in csms.accepted if frame.unique_id == held_id)

        process, base_url = await serve(tmp_path, csms, version, "after-restart")
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
                await wait_for(lambda: any(is_stop(frame) for frame in csms.accepted), "the transaction's end")
                view = await poll(http, "/ocpp", lambda view: view.get("queue_depth") == 0, process)
                record = (await http.get(f"/sessions/{started['session_id']}")).json()
                metrics = (await http.get("/metrics")).text
        finally:
            await asyncio.to_thread(stop_process, process)

    assert csms.violations == []
    # nothing dropped: not for the queue's cap, not given up
    assert (view["queue_dropped_full"], view["queue_dropped"], view["queue_max_messages"]) == (0, 0, 500), view
    assert 'ccs_ocpp_queue_dropped_messages_total{reason="queue_full"} 0.0' in metrics
    assert 'ccs_ocpp_queue_dropped_messages_total{reason="given_up"} 0.0' in metrics
    # the message whose answer the kill lost came again, with its id and payload: processed once
    assert held_id in csms.resent
    resent_frame = next(frame for frame in csms.calls_received() if frame.unique_id == held_id
                        and frame is not held_frame)
    assert resent_frame.payload == held_frame.payload
    ids = [frame.unique_id for frame in csms.accepted]
    assert len(ids) == len(set(ids))
    assert len(csms.accepted) > ACKNOWLEDGED_BEFORE_HOLD + 1
    assert record["status"] == "interrupted" and record["energy_Wh"] > 0, record
    if version == "1.6":
        actions = [frame.action for frame in csms.accepted]
        assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction", actions
        assert actions.count("StartTransaction") == 1 and actions.count("StopTransaction") == 1, actions
        start = csms.accepted_payloads("StartTransaction")[0]
        stop = csms.accepted_payloads("StopTransaction")[0]
        assert start["idTag"] == "CARD-0042" and stop["reason"] == "PowerLoss", stop
        transaction_ids = {payload["transactionId"] for payload in csms.accepted_payloads("MeterValues")}
        assert transaction_ids == {stop["transactionId"]} == {1}, transaction_ids  # the one id the CSMS gave
        stamps = [payload["meterValue"][0]["timestamp"] for payload in csms.accepted_payloads("MeterValues")]
        assert len(stamps) >= ACKNOWLEDGED_BEFORE_HOLD and stamps == sorted(set(stamps)), stamps
        # the register the CSMS saw never went back, the stop included (meterStart, meterStop: whole Wh): a sample
        # sent after the record's last checkpoint raises the interrupted record, the stop follows it
        registers = [start["meterStart"], *(register_Wh(payload) for payload in csms.accepted_payloads("MeterValues")),
                     stop["meterStop"]]
        assert all(later >= earlier - 0.5 for earlier, later in pairwise(registers)), registers
        billed_Wh = stop["meterStop"] - start["meterStart"]
        assert abs(billed_Wh - record["energy_Wh"]) < 1.0, (start, stop, record)
    else:
        events = csms.accepted_payloads("TransactionEvent")
        assert [event["seqNo"] for event in events] == list(range(len(events)))
        kinds = [event["eventType"] for event in events]
        assert kinds[0] == "Started" and kinds[-1] == "Ended" and set(kinds[1:-1]) == {"Updated"}, kinds
        assert {event["transactionInfo"]["transactionId"] for event in events} == {
            events[0]["transactionInfo"]["transactionId"]}
        assert events[-1]["transactionInfo"]["stoppedReason"] == "PowerLoss" and events[-1]["offline"] is True
        assert events[0]["idToken"]["idToken"] == "CARD-0042"
        registers = [register_Wh(event) for event in events if "meterValue" in event]  # samples and the end (see 1.6)
        assert registers == sorted(registers), registers  # the register the CSMS saw never went back
        billed_Wh = register_Wh(events[-1]) - register_Wh(events[0])
        assert billed_Wh == pytest.approx(record["energy_Wh"], abs=0.5), (events[0], events[-1], record)
