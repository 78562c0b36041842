"""The durable queue's OCPP-J message ids: a resend after a lost connection or a restart carries the same id (a
CSMS that keeps its answers by id processes it once); a retry after a failed attempt gets a new one."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fake_sender import FakeCsms, settle

from ccs_sim.ocpp.message_queue import TransactionMessageQueue
from ccs_sim.ocpp.store import OcppDatabase
from evse_model.clock import ManualClock

STOP = {"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z", "transactionId": 7}


@pytest.fixture
async def database(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = await OcppDatabase(tmp_path / "sessions.db").open()
    yield db
    await db.close()


async def test_a_resend_after_the_link_was_lost_keeps_the_message_id(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms(["offline"])
    queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep)
    await queue.start()
    await queue.enqueue("StopTransaction", STOP)
    stored_id = (await queue.pending())[0].message_id
    queue.link_up()
    await settle(clock)
    queue.link_up()
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert stored_id is not None and len(stored_id) <= 36  # OCPP-J: a message id is at most 36 characters
    assert csms.message_ids == [stored_id, stored_id] and queue.delivered == 1
    await queue.stop()


@pytest.mark.parametrize("failure", ["error", "timeout"])
async def test_a_retry_after_a_failed_attempt_gets_a_new_message_id(database: OcppDatabase, failure: str) -> None:
    clock, csms = ManualClock(), FakeCsms([failure])
    queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep, retry_interval_s=30.0)
    await queue.start()
    queue.link_up()
    await queue.enqueue("StopTransaction", STOP)
    await settle(clock)
    pending = await queue.pending()
    assert pending[0].attempts == 1 and pending[0].message_id != csms.message_ids[0]  # stored with the attempt
    await clock.advance(30.0)
    await settle(clock)
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert csms.message_ids == [csms.message_ids[0], pending[0].message_id]
    await queue.stop()


async def test_a_message_whose_answer_was_lost_in_a_stop_goes_again_with_its_id(database: OcppDatabase) -> None:
    clock = ManualClock()
    sent_ids: list[str | None] = []
    never = asyncio.Event()

    async def csms_that_never_answers(action: str, payload: dict[str, Any],
                                      message_id: str | None = None) -> dict[str, Any]:
        sent_ids.append(message_id)
        await never.wait()
        return {}

    first = TransactionMessageQueue(database, csms_that_never_answers, sleep=clock.sleep)
    await first.start()
    first.link_up()
    await first.enqueue("StopTransaction", STOP)
    await settle(clock)
    assert len(sent_ids) == 1
    await first.stop()  # the process ends with the CALL in flight (as in a SIGKILL: nothing acknowledged)
    csms = FakeCsms()
    second = TransactionMessageQueue(database, csms.send, sleep=clock.sleep)
    await second.start()
    second.link_up()
    await asyncio.wait_for(second.wait_idle(), 5)
    assert csms.message_ids == sent_ids and csms.calls == [("StopTransaction", STOP)]
    await second.stop()


async def test_a_row_an_older_version_wrote_gets_a_message_id_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE ocpp_message_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL,
            payload TEXT NOT NULL, local_tx_ref TEXT, attempts INTEGER NOT NULL DEFAULT 0, enqueued_at TEXT NOT NULL);
        INSERT INTO ocpp_message_queue (action, payload, enqueued_at)
            VALUES ('StopTransaction', '{"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z", "transactionId": 7}',
                    '2026-01-01T00:00:00+00:00');
    """)
    old.close()
    database = await OcppDatabase(path).open()
    try:
        clock, csms = ManualClock(), FakeCsms(["offline"])
        queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep)
        await queue.start()
        assert (await queue.pending())[0].message_id is None
        queue.link_up()
        await settle(clock)
        assert (await queue.pending())[0].message_id == csms.message_ids[0] is not None
        queue.link_up()
        await asyncio.wait_for(queue.wait_idle(), 5)
        assert csms.message_ids == [csms.message_ids[0]] * 2
        await queue.stop()
    finally:
        await database.close()
