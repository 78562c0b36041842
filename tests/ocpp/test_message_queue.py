"""The durable transaction-message queue on its own: a fake sender that records, fails, times out or is offline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fake_sender import FakeCsms, eventually, settle

from ccs_sim.ocpp.message_queue import TransactionMessageQueue
from ccs_sim.ocpp.store import OcppDatabase
from evse_model.clock import ManualClock

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def database(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = await OcppDatabase(tmp_path / "sessions.db").open()
    yield db
    await db.close()


def make_queue(database: OcppDatabase, clock: ManualClock, csms: FakeCsms, **kwargs: Any) -> TransactionMessageQueue:
    return TransactionMessageQueue(database, csms.send, sleep=clock.sleep, **kwargs)


async def test_messages_wait_for_the_link_and_go_in_order(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms()
    queue = make_queue(database, clock, csms)
    await queue.start()
    for n in range(5):
        await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": [], "n": n})
    await settle(clock)
    assert csms.calls == [] and queue.depth == 5  # offline: nothing sent, nothing lost
    queue.link_up()
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert [payload["n"] for _, payload in csms.accepted] == [0, 1, 2, 3, 4]
    assert queue.depth == 0 and queue.delivered == 5 and await queue.pending() == []
    await queue.stop()


async def test_offline_is_not_an_attempt(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(["offline"] * 5)
    queue = make_queue(database, clock, csms, attempts=2)
    await queue.start()
    await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": []})
    for _ in range(5):
        queue.link_up()  # the link comes back, the call finds it gone again
        await settle(clock)
    assert len(csms.calls) == 5 and not queue.online and queue.depth == 1
    assert (await queue.pending())[0].attempts == 0
    queue.link_up()
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert queue.delivered == 1 and queue.dropped == 0
    await queue.stop()


async def test_retry_interval_grows_with_each_attempt(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(["error", "timeout"])
    queue = make_queue(database, clock, csms, attempts=3, retry_interval_s=30.0)
    await queue.start()
    queue.link_up()
    await queue.enqueue("StopTransaction", {"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z",
                                            "transactionId": 7})
    await settle(clock)
    assert len(csms.calls) == 1  # CALLERROR: wait 30 s × 1
    await clock.advance(29.9)
    await settle(clock)
    assert len(csms.calls) == 1
    await clock.advance(0.1)
    await settle(clock)
    assert len(csms.calls) == 2  # timeout: wait 30 s × 2
    async def two_attempts_counted() -> bool:
        return (await queue.pending())[0].attempts == 2
    await eventually(two_attempts_counted)  # counted in the row: a restart continues the count
    await clock.advance(59.9)
    await settle(clock)
    assert len(csms.calls) == 2
    await clock.advance(0.1)
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert len(csms.accepted) == 1 and queue.dropped == 0
    await queue.stop()


async def test_after_the_last_attempt_the_message_is_kept_aside_and_the_queue_goes_on(
        database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(["error", "error", "error"])
    queue = make_queue(database, clock, csms, attempts=3, retry_interval_s=1.0)
    await queue.start()
    queue.link_up()
    await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": [], "n": 1})
    await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": [], "n": 2})
    for _ in range(5):
        await clock.advance(3.0)
        await settle(clock)
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert [payload["n"] for _, payload in csms.calls] == [1, 1, 1, 2]
    dropped = await queue.dropped_messages()
    assert len(dropped) == 1 and dropped[0]["attempts"] == 3 and json.loads(dropped[0]["payload"])["n"] == 1
    assert "DeliveryRejected" in dropped[0]["reason"]
    assert queue.dropped == 1 and queue.delivered == 1
    await queue.stop()


async def test_stop_queued_before_the_transaction_id_is_completed_when_it_arrives(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(first_transaction_id=41)
    queue = make_queue(database, clock, csms)
    seen: list[tuple[str, str, str | None]] = []
    queue.on_transaction_id(lambda *mapping: seen.append(mapping))
    await queue.start()
    await queue.enqueue("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 10,
                                             "timestamp": "2026-01-01T00:00:00Z"}, "local-1")
    await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": []}, "local-1")
    await queue.enqueue("StopTransaction", {"meterStop": 20, "timestamp": "2026-01-01T00:10:00Z"}, "local-1")
    queue.link_up()
    await asyncio.wait_for(queue.wait_idle(), 5)
    actions = [(action, payload.get("transactionId")) for action, payload in csms.accepted]
    assert actions == [("StartTransaction", None), ("MeterValues", 42), ("StopTransaction", 42)]
    assert seen == [("local-1", "42", "Accepted")] and queue.csms_transaction_id("local-1") == "42"
    await queue.stop()
    # the mapping is persisted: a new queue on the same file completes a later message of the transaction
    clock2, csms2 = ManualClock(), FakeCsms()
    queue2 = make_queue(database, clock2, csms2)
    await queue2.start()
    await queue2.enqueue("MeterValues", {"connectorId": 1, "meterValue": []}, "local-1")
    queue2.link_up()
    await asyncio.wait_for(queue2.wait_idle(), 5)
    assert csms2.accepted[0][1]["transactionId"] == 42
    await queue2.stop()


async def test_a_stop_whose_start_was_given_up_is_given_up(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(["error"])
    queue = make_queue(database, clock, csms, attempts=1)
    await queue.start()
    queue.link_up()
    await queue.enqueue("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                             "timestamp": "2026-01-01T00:00:00Z"}, "lost")
    await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": []}, "lost")
    await queue.enqueue("StopTransaction", {"meterStop": 1, "timestamp": "2026-01-01T00:00:01Z"}, "lost")
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert [action for action, _ in csms.accepted] == ["MeterValues"]  # without a transactionId (optional)
    assert [row["action"] for row in await queue.dropped_messages()] == ["StartTransaction", "StopTransaction"]
    await queue.stop()


_ENQUEUE_AND_WAIT = textwrap.dedent("""
    import asyncio, sys
    from ccs_sim.ocpp.message_queue import TransactionMessageQueue
    from ccs_sim.ocpp.store import OcppDatabase

    async def main():
        db = await OcppDatabase(sys.argv[1]).open()
        queue = TransactionMessageQueue(db)
        await queue.start()
        for n in range(int(sys.argv[2])):
            await queue.enqueue("MeterValues", {"connectorId": 1, "meterValue": [], "n": n}, "tx")
        print("queued", flush=True)
        await asyncio.Event().wait()  # never delivered: the link never comes up

    asyncio.run(main())
""")


async def test_survives_sigkill_and_delivers_each_message_exactly_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-c", _ENQUEUE_AND_WAIT, str(path), "50"], stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "queued"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    db = await OcppDatabase(path).open()
    try:
        clock, csms = ManualClock(), FakeCsms()
        queue = make_queue(db, clock, csms)
        await queue.start()
        assert queue.depth == 50
        queue.link_up()
        await asyncio.wait_for(queue.wait_idle(), 10)
        assert [payload["n"] for _, payload in csms.calls] == list(range(50))
        await queue.stop()
        # a third queue object finds nothing left to send
        csms3 = FakeCsms()
        queue3 = make_queue(db, clock, csms3)
        await queue3.start()
        queue3.link_up()
        await settle(clock)
        assert queue3.depth == 0 and csms3.calls == []
        await queue3.stop()
    finally:
        await db.close()
