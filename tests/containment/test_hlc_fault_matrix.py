"""Fault matrix, HLC part (issue 6 item 4): every documented fault type (GET /faults), injected through
POST /fault while an ISO 15118 session is in cable check, precharge or CurrentDemand, with ``--controller hal``'s
HalEVSEController on the shared controller (manual clock; the SECC's calls made in-process by
containment_rig.FakeSecc, in iso15118's order). Each cell: < 5 A within 30 ms and the contactor open within
100 ms of the fault (the simulated plant, 1 ms steps), the session record written (ABORTED, the fault as
error), the EV told to stop, and the next car's session completes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from iso15118.shared.messages.datatypes import DCEVSEStatusCode

from evse_model.faults import FAULT_CATALOGUE, Severity
from ccs_sim.fastapi_app import create_app
from containment_rig import Car, ContainmentRig

PHASES = ("cable_check", "precharge", "current_demand")


def _in_phase(rig: ContainmentRig, phase: str) -> bool:
    charger, m = rig.charger, rig.charger.latest
    if m is None or not charger.session_active:
        return False
    if phase == "cable_check":  # contactor closed, test voltage applied, insulation being measured
        return charger.stage.value == "cable_check" and m.contactor_closed and m.output_voltage_V > 300.0
    if phase == "precharge":
        return charger.stage.value == "precharge" and m.output_voltage_V > 100.0
    return rig.charging() and charger.stage.value == "charging"  # the EV's 100 A flowing


@pytest.fixture
async def rig(tmp_path) -> AsyncIterator[ContainmentRig]:
    rig_ = await ContainmentRig.create(tmp_path / "sessions.db")
    task = asyncio.create_task(rig_.secc.serve(lambda: None))
    try:
        yield rig_
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await rig_.close()


async def test_the_matrix_covers_every_documented_fault(rig: ContainmentRig) -> None:
    app = create_app(rig.charger, operations=rig.operations)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
        documented = {fault["type"] for fault in (await client.get("/faults")).json()["faults"]}
    assert documented == set(FAULT_CATALOGUE)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("fault_type", sorted(FAULT_CATALOGUE))
async def test_fault_injected_during_an_hlc_session(rig: ContainmentRig, fault_type: str, phase: str) -> None:
    app = create_app(rig.charger, operations=rig.operations)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
        car = Car(charge_loops=100_000)
        rig.secc.cars.put_nowait(car)
        await rig.pump(lambda: _in_phase(rig, phase), timeout_s=30.0)
        session_id = rig.charger.session.session_id
        response = (await client.post("/fault", json={"type": fault_type})).json()
        assert response["status"] == "fault_injected" and response["known"] is True
        fault = rig.charger.fault_history[-1]
        assert fault.name == fault_type and fault.source == "api"

        below_5A_s, open_s = await rig.shutdown_timeline(fault.time_s)
        assert below_5A_s is not None and below_5A_s <= 0.030, below_5A_s
        assert open_s is not None and open_s <= 0.100, open_s
        status = (await client.get("/status")).json()
        assert status["phase"] == "ABORTED" and status["error"] == fault_type and not status["session_active"]
        emergency = FAULT_CATALOGUE[fault_type].severity is Severity.EMERGENCY
        dc_status = await rig.hal.get_dc_evse_status()  # what the EV's next response carries
        assert dc_status.evse_status_code == (DCEVSEStatusCode.EVSE_EMERGENCY_SHUTDOWN if emergency
                                              else DCEVSEStatusCode.EVSE_SHUTDOWN)

        await rig.pump(car.done.is_set, timeout_s=5.0)
        assert car.outcome is not None and car.outcome.startswith("aborted")
        await rig.until_ended()
        record = (await client.get(f"/sessions/{session_id}")).json()
        assert record["status"] == "ended" and record["ended_phase"] == "ABORTED"
        assert record["error"] == fault_type and record["end_reason"] == "fault" and record["source"] == "hlc"

        following = Car(charge_loops=3)
        rig.secc.cars.put_nowait(following)
        await rig.pump(following.done.is_set, timeout_s=30.0)
        assert following.outcome == "complete"
        assert rig.charger.last_session_summary.ended_phase == "COMPLETE"
