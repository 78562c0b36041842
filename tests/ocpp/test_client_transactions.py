"""The client with its station model, queue and transactions against the test CSMS (both versions): a CSMS
that is down for the whole session, and a station that stops mid-transaction and ends it at the next start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from csms import TestCsms
from link_rig import PROTOCOL_SECOND_S, VERSIONS, make_config

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.session import SessionParams


async def start_station(data_dir: Path, csms: TestCsms, version: str) -> tuple[Any, Any, OcppClient]:
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=data_dir),  # type: ignore[call-arg]
                                  clock=ManualClock())
    operations = await attach_operations(controller)
    await controller.start()
    client = OcppClient(controller, make_config(csms, version, meter_interval_s=5.0),
                        protocol_second_s=PROTOCOL_SECOND_S)
    await client.start()
    return controller, operations, client


async def advance_until(controller: Any, operations: Any, condition: Any, timeout_s: float = 120.0) -> None:
    """Simulated time in steps; after each, the records' writes queued meanwhile are finished (their thread runs
    on the wall clock: a session's start and its checkpoints then take no simulated time whatever the disk)."""
    end_s = controller.clock.now() + timeout_s
    while not condition():
        assert controller.clock.now() < end_s
        await controller.clock.advance(0.05)
        await operations.store.flush()
        await controller.clock.settle()


def billed(csms: TestCsms, version: str) -> float:
    if version == "1.6":
        start = csms.calls_received("StartTransaction")[0].payload
        stop = csms.calls_received("StopTransaction")[0].payload
        return stop["meterStop"] - start["meterStart"]
    events = [frame.payload for frame in csms.calls_received("TransactionEvent")]

    def register(event: dict[str, Any]) -> float:
        return next(float(v["value"]) for v in event["meterValue"][0]["sampledValue"]
                    if v.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register")
    return register(events[-1]) - register(events[0])


def transaction_actions(csms: TestCsms) -> list[str]:
    return [frame.action for frame in csms.calls_received()
            if frame.action in ("StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_csms_down_for_the_whole_session(tmp_path: Path, version: str) -> None:
    csms = TestCsms(version)
    await csms.start()
    port = csms.port
    await csms.stop()  # down before the station starts, for the whole session
    controller, operations, client = await start_station(tmp_path, csms, version)
    try:
        session = controller.start_session(SessionParams(duration_s=20.0, id_token="CARD-7"))
        await operations.recorder.record_start(session)
        await advance_until(controller, operations, lambda: controller.last_session_summary is not None
                            and not controller.shutting_down)
        await asyncio.sleep(0.05)
        depth = client.queue_depth()
        assert depth >= 4  # start, ≥ 3 periodic samples, stop: all waiting
        csms.port = port
        await csms.start()
        await csms.wait_for(lambda: client.queue_depth() == 0, timeout_s=20)
        assert csms.violations == []
        actions = transaction_actions(csms)
        assert len(actions) == depth  # each exactly once
        first, last = ("StartTransaction", "StopTransaction") if version == "1.6" else ("TransactionEvent",) * 2
        assert actions[0] == first and actions[-1] == last
        await operations.store.flush()
        record = await operations.store.call("get", session.session_id)
        assert billed(csms, version) == pytest.approx(record["energy_Wh"], abs=1.0 if version == "1.6" else 0.001)
        statuses = [frame.payload.get("status") or frame.payload.get("connectorStatus")
                    for frame in csms.calls_received("StatusNotification")]
        assert statuses and statuses[-1] in ("Available", "Finishing", "Occupied")
    finally:
        await client.stop()
        await controller.shutdown()
        await operations.close()
        await csms.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_transaction_left_open_by_a_stopped_process_is_ended_at_the_next_start(
        tmp_path: Path, version: str) -> None:
    async with TestCsms(version) as csms:
        controller, operations, client = await start_station(tmp_path, csms, version)
        session = controller.start_session(SessionParams(duration_s=600.0))
        await operations.recorder.record_start(session)
        await advance_until(controller, operations, lambda: controller.clock.now() > 30.0)
        await csms.wait_for(lambda: client.queue_depth() == 0, timeout_s=20)
        # the process stops mid-transaction: no session end, no StopTransaction (as after a SIGKILL)
        await client.stop()
        await controller.shutdown()
        await operations.close()  # the records close the session as interrupted with its last checkpoint
        controller, operations, client = await start_station(tmp_path, csms, version)
        try:
            await csms.wait_for(lambda: client.queue_depth() == 0 and transaction_actions(csms)[-1:] in (
                ["StopTransaction"], ["TransactionEvent"]) and csms.calls_received()[-1].action != "Heartbeat"
                and (version == "1.6" or csms.calls_received("TransactionEvent")[-1].payload["eventType"]
                     == "Ended"), timeout_s=20)
            assert csms.violations == []
            await operations.store.flush()
            record = await operations.store.call("get", session.session_id)
            assert record["status"] == "interrupted" and record["energy_Wh"] > 0
            assert billed(csms, version) == pytest.approx(record["energy_Wh"], abs=1.0 if version == "1.6" else 0.001)
            if version == "1.6":
                assert csms.calls_received("StopTransaction")[0].payload["reason"] == "PowerLoss"
            else:
                ended = csms.calls_received("TransactionEvent")[-1].payload
                assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss" and ended["offline"] is True
        finally:
            await client.stop()
            await controller.shutdown()
            await operations.close()


@pytest.mark.parametrize("version", VERSIONS)
async def test_csms_that_drops_mid_session_gets_every_message_once_in_order(tmp_path: Path, version: str) -> None:
    async with TestCsms(version) as csms:
        port = csms.port
        controller, operations, client = await start_station(tmp_path, csms, version)
        try:
            await csms.wait_for(lambda: client.link.booted.is_set())
            session = controller.start_session(SessionParams(duration_s=40.0, id_token="CARD-9"))
            await operations.recorder.record_start(session)
            # charging, with the start and a periodic sample delivered (simulated time stands while we wait)
            await advance_until(controller, operations, lambda: controller.clock.now() > 20.0)
            await csms.wait_for(lambda: client.queue_depth() == 0 and len(transaction_actions(csms)) >= 2)
            delivered_before_drop = len(transaction_actions(csms))
            await csms.stop()  # the connection drops mid-session; the CSMS stays away for the rest of it
            await advance_until(controller, operations, lambda: controller.last_session_summary is not None
                                and not controller.shutting_down)
            await asyncio.sleep(0.05)
            assert client.queue_depth() >= 3  # periodic samples and the stop, queued while it was away
            assert len(transaction_actions(csms)) == delivered_before_drop
            csms.port = port
            await csms.start()
            await csms.wait_for(lambda: client.queue_depth() == 0, timeout_s=20)
            assert csms.violations == []
            actions = transaction_actions(csms)
            if version == "1.6":
                assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
                assert actions.count("StartTransaction") == 1 and actions.count("StopTransaction") == 1
                stamps = [frame.payload["meterValue"][0]["timestamp"] for frame in csms.calls_received("MeterValues")]
                assert stamps == sorted(set(stamps))  # each sample once, in order
            else:
                events = [frame.payload for frame in csms.calls_received("TransactionEvent")]
                assert [event["seqNo"] for event in events] == list(range(len(events)))  # once each, in order
                assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
            await operations.store.flush()
            record = await operations.store.call("get", session.session_id)
            assert billed(csms, version) == pytest.approx(record["energy_Wh"], abs=1.0 if version == "1.6" else 0.001)
        finally:
            await client.stop()
            await controller.shutdown()
            await operations.close()
