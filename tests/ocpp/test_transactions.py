"""Transactions from a simulated session on the manual clock: messages, schemas, stop reasons, billed energy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_sender import FakeCsms

from ccs_sim.controller import ChargerController
from ccs_sim.ocpp.message_queue import TransactionMessageQueue
from ccs_sim.ocpp.station_model import StationModel
from ccs_sim.ocpp.store import OcppDatabase
from ccs_sim.ocpp.transactions import Transactions
from ccs_sim.runtime import Operations, attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.faults import E_STOP
from evse_model.session import Phase, SessionParams

METER_INTERVAL_S = 2.0


class Station:
    """A controller with its records, the OCPP database, queue and transactions, and a fake CSMS."""

    def __init__(self, controller: ChargerController, clock: ManualClock, operations: Operations,
                 database: OcppDatabase, queue: TransactionMessageQueue, transactions: Transactions,
                 csms: FakeCsms) -> None:
        self.controller, self.clock, self.operations = controller, clock, operations
        self.database, self.queue, self.transactions, self.csms = database, queue, transactions, csms

    async def run_session(self, params: SessionParams, timeout_s: float = 120.0) -> str:
        session = self.controller.start_session(params)
        await self.operations.recorder.record_start(session)
        await self.until(lambda: self.controller.last_session_summary is not None
                         and self.controller.last_session_summary.session_id == session.session_id
                         and not self.controller.shutting_down, timeout_s)
        await asyncio.sleep(0.01)
        return session.session_id

    async def until(self, condition: Any, timeout_s: float, step_s: float = 0.05) -> None:
        end_s = self.clock.now() + timeout_s
        while not condition():
            assert self.clock.now() < end_s, "condition not reached in simulated time"
            await self.step(step_s)

    async def step(self, step_s: float) -> None:
        """Advance simulated time, then finish the database writes queued meanwhile (the records' and the OCPP
        tables' threads run on the wall clock) and let what awaited them run: a session's start waits for its
        record, so on the manual clock it takes no simulated time whatever the disk's speed."""
        await self.clock.advance(step_s)
        await self.operations.store.flush()
        await self.database.call(lambda _connection: None)
        await self.clock.settle()

    async def delivered(self) -> None:
        await asyncio.wait_for(self.queue.wait_idle(), 10)

    async def record(self, session_id: str) -> dict[str, Any]:
        await self.operations.store.flush()
        record = await self.operations.store.call("get", session_id)
        assert record is not None
        return record


async def make_station(tmp_path: Path, version: str, csms: FakeCsms) -> AsyncIterator[Station]:
    clock = ManualClock()
    settings = ControllerSettings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    controller = build_controller(settings, clock)
    path = tmp_path / "sessions.db"
    operations = await attach_operations(controller, path)
    await controller.start()
    database = await OcppDatabase(path).open()
    queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep)
    model = StationModel(controller)
    transactions = Transactions(controller, queue, version, meter_interval_s=METER_INTERVAL_S, send=csms.send,
                                charging_state=lambda: model.current().charging_state)
    await queue.start()
    await transactions.start()
    queue.link_up()
    station = Station(controller, clock, operations, database, queue, transactions, csms)
    try:
        yield station
    finally:
        await transactions.stop()
        await queue.stop()
        await controller.shutdown()
        await operations.close()
        await database.close()


@pytest.fixture
async def station16(tmp_path: Path) -> AsyncIterator[Station]:
    async for station in make_station(tmp_path, "1.6", FakeCsms(version="1.6")):
        yield station


@pytest.fixture
async def station201(tmp_path: Path) -> AsyncIterator[Station]:
    async for station in make_station(tmp_path, "2.0.1", FakeCsms(version="2.0.1")):
        yield station


def measurands(meter_value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {value["measurand"]: value for value in meter_value["sampledValue"]}


async def test_v16_session_is_a_billed_transaction(station16: Station) -> None:
    session_id = await station16.run_session(SessionParams(duration_s=10.0, id_token="CARD-0001"))
    await station16.delivered()
    csms = station16.csms
    assert csms.violations == []
    actions = [action for action, _ in csms.accepted]
    assert actions[:2] == ["Authorize", "StartTransaction"] and actions[-1] == "StopTransaction"
    assert set(actions[2:-1]) == {"MeterValues"} and len(actions[2:-1]) >= 5  # every 2 s of ~12 s
    start, stop = csms.sent("StartTransaction")[0], csms.sent("StopTransaction")[0]
    assert start["idTag"] == "CARD-0001" and start["connectorId"] == 1 and start["meterStart"] == 0
    assert stop["transactionId"] == csms.next_transaction_id and stop["reason"] == "Other"  # duration elapsed
    record = await station16.record(session_id)
    assert record["energy_Wh"] > 10
    billed_Wh = stop["meterStop"] - start["meterStart"]
    assert abs(billed_Wh - record["energy_Wh"]) < 1.0  # 1.6 carries the continuous register in whole Wh
    periodic = csms.sent("MeterValues")
    assert all(payload["transactionId"] == stop["transactionId"] for payload in periodic)
    charging = [measurands(p["meterValue"][0]) for p in periodic
                if float(measurands(p["meterValue"][0])["Current.Import"]["value"]) > 1.0]
    assert charging, "a sample while current flowed"
    sample = charging[-1]
    assert set(sample) == {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
                           "Power.Offered", "Current.Offered", "SoC"}
    assert (sample["Voltage"]["unit"], sample["Power.Active.Import"]["unit"], sample["SoC"]["unit"]) == \
        ("V", "W", "Percent")
    assert sample["SoC"]["location"] == "EV" and sample["Voltage"]["location"] == "Outlet"
    assert sample["Voltage"]["context"] == "Sample.Periodic"
    registers = [float(measurands(p["meterValue"][0])["Energy.Active.Import.Register"]["value"]) for p in periodic]
    assert registers == sorted(registers) and registers[-1] <= stop["meterStop"] + 0.5
    end_values = stop["transactionData"][0]["sampledValue"]
    assert end_values[0]["context"] == "Transaction.End"  # the register itself, of which meterStop is the whole Wh
    assert registers[-1] <= float(end_values[0]["value"]) and abs(float(end_values[0]["value"]) - stop["meterStop"]) <= 0.5


async def test_v16_second_session_continues_the_register(station16: Station) -> None:
    first = await station16.run_session(SessionParams(duration_s=5.0))
    second = await station16.run_session(SessionParams(duration_s=5.0))
    await station16.delivered()
    starts, stops = station16.csms.sent("StartTransaction"), station16.csms.sent("StopTransaction")
    assert [start["idTag"] for start in starts] == ["NoAuthorization"] * 2
    assert starts[1]["meterStart"] == stops[0]["meterStop"]  # one register across transactions
    for start, stop, session_id in zip(starts, stops, (first, second), strict=True):
        assert abs(stop["meterStop"] - start["meterStart"] - (await station16.record(session_id))["energy_Wh"]) < 1.0


async def test_v16_stop_reasons(station16: Station) -> None:
    controller = station16.controller
    session = controller.start_session(SessionParams(duration_s=60.0))
    await station16.until(lambda: controller.phase is Phase.CHARGING, 30)
    controller.request_stop()  # the API's /stop_session: a local stop
    await station16.until(lambda: not controller.shutting_down and controller.last_session_summary is not None, 30)
    session = controller.start_session(SessionParams(duration_s=60.0))
    await station16.until(lambda: controller.phase is Phase.CHARGING, 30)
    station16.transactions.note_remote_stop()  # what the CSMS's RemoteStopTransaction does first
    controller.request_stop()
    await station16.until(lambda: not controller.shutting_down and controller.last_session_summary.session_id
                          == session.session_id, 30)
    controller.start_session(SessionParams(duration_s=60.0))
    await station16.until(lambda: controller.phase is Phase.CHARGING, 30)
    await controller.raise_fault(E_STOP, "api")
    await station16.until(lambda: not controller.shutting_down, 30)
    await asyncio.sleep(0.01)
    await station16.delivered()
    assert [stop["reason"] for stop in station16.csms.sent("StopTransaction")] == ["Local", "Remote", "EmergencyStop"]


async def test_v16_refused_id_tag_stops_the_session_and_sends_no_transaction(tmp_path: Path) -> None:
    async for station in make_station(tmp_path, "1.6", FakeCsms(version="1.6", id_tag_status="Invalid")):
        await station.run_session(SessionParams(duration_s=30.0, id_token="STOLEN"))
        await station.delivered()
        assert [action for action, _ in station.csms.accepted] == ["Authorize"]
        assert station.controller.last_session_summary.end_reason == "stop_requested"


async def test_v201_session_is_a_billed_transaction(station201: Station) -> None:
    session_id = await station201.run_session(SessionParams(duration_s=10.0, id_token="CARD-0001"))
    await station201.delivered()
    csms = station201.csms
    assert csms.violations == []
    events = csms.sent("TransactionEvent")
    assert [action for action, _ in csms.accepted][0] == "Authorize"
    assert [event["seqNo"] for event in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert {event["eventType"] for event in events[1:-1]} == {"Updated"}
    assert len({event["transactionInfo"]["transactionId"] for event in events}) == 1
    started, ended = events[0], events[-1]
    assert started["triggerReason"] == "Authorized" and started["idToken"] == {"idToken": "CARD-0001",
                                                                                  "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert ended["transactionInfo"]["stoppedReason"] == "TimeLimitReached"
    assert ended["triggerReason"] == "TimeLimitReached"
    triggers = [event["triggerReason"] for event in events[1:-1]]
    assert "MeterValuePeriodic" in triggers and "ChargingStateChanged" in triggers
    states = [event["transactionInfo"].get("chargingState") for event in events if event["triggerReason"]
              == "ChargingStateChanged"]
    assert "Charging" in states

    def register(event: dict[str, Any]) -> float:
        value = measurands(event["meterValue"][0])["Energy.Active.Import.Register"]
        return float(value["value"])
    assert started["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.Begin"
    assert ended["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
    record = await station201.record(session_id)
    assert register(ended) - register(started) == pytest.approx(record["energy_Wh"], abs=0.001)
    periodic = [event for event in events if event["triggerReason"] == "MeterValuePeriodic"]
    assert measurands(periodic[-1]["meterValue"][0])["Voltage"]["unitOfMeasure"] == {"unit": "V"}
