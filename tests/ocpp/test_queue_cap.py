"""The durable queue's cap (``queue_cap.py``, libocpp's rule): past ``max_messages`` every other intermediate
sample goes, pass after pass, never a start or a stop, never the message in flight nor the newest two."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fake_sender import FakeCsms, settle

from ccs_sim.ocpp.config import OcppConfigError, build_ocpp_config, environment_settings
from ccs_sim.ocpp.message_queue import TransactionMessageQueue
from ccs_sim.ocpp.queue_cap import QueueEntry, is_update_message, seqs_to_drop
from ccs_sim.ocpp.store import OcppDatabase
from evse_model.clock import ManualClock


@pytest.fixture
async def database(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = await OcppDatabase(tmp_path / "sessions.db").open()
    yield db
    await db.close()


def test_a_pass_drops_every_other_sample_and_keeps_the_boundaries_and_the_newest_two() -> None:
    # seq 1 Start (in flight), 2..11 samples, 12 Stop: 12 > 10
    entries = [QueueEntry(1, False), *(QueueEntry(seq, True) for seq in range(2, 12)), QueueEntry(12, False)]
    assert seqs_to_drop(entries, 10) == [2, 4, 6, 8, 10]  # one whole pass (11 has only the Stop after it)
    assert seqs_to_drop(entries, 12) == []


def test_passes_repeat_until_it_fits_and_stop_when_nothing_is_left_to_drop() -> None:
    entries = [QueueEntry(1, False), *(QueueEntry(seq, True) for seq in range(2, 10)), QueueEntry(10, False)]
    # pass 1: 2, 4, 6, 8 (9 has one follower) -> 1 3 5 7 9 10; pass 2: 3, 7 -> 1 5 9 10: fits
    assert seqs_to_drop(entries, 4) == [2, 3, 4, 6, 7, 8]
    boundaries = [QueueEntry(seq, False) for seq in range(1, 7)]
    assert seqs_to_drop(boundaries, 3) == []  # starts and stops only: kept over the cap


def test_only_meter_values_and_updated_events_are_samples() -> None:
    assert is_update_message("MeterValues", {}) and is_update_message("TransactionEvent", {"eventType": "Updated"})
    for action, payload in (("StartTransaction", {}), ("StopTransaction", {}),
                            ("TransactionEvent", {"eventType": "Started"}), ("TransactionEvent", {"eventType": "Ended"})):
        assert not is_update_message(action, payload)


async def test_cap_10_offline_25_messages_of_a_16_transaction(database: OcppDatabase,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    clock, csms = ManualClock(), FakeCsms()
    queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep, max_messages=10)
    await queue.start()
    with caplog.at_level(logging.WARNING, logger="ccs_sim.ocpp.message_queue"):
        await queue.enqueue("StartTransaction", {"n": 0}, "tx")
        for n in range(1, 24):
            await queue.enqueue("MeterValues", {"n": n}, "tx")
        await queue.enqueue("StopTransaction", {"n": 24}, "tx")
    # over the cap after samples 10, 14, 18 and 22: 4 passes of 4
    assert [payload["n"] for payload in [m.payload for m in await queue.pending()]] == [
        0, 12, 16, 18, 20, 21, 22, 23, 24]
    assert queue.depth == 9 and queue.dropped_queue_full == 16 and queue.dropped == 0
    dropped = await queue.dropped_messages()
    assert sorted(row["seq"] - 1 for row in dropped) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 19]
    assert all(row["reason"].startswith("queue full (at most 10 messages)") for row in dropped)
    warnings = [record.getMessage() for record in caplog.records if "over its cap" in record.getMessage()]
    assert len(warnings) == 4 and "4 intermediate sample(s) dropped" in warnings[0]
    assert "16 dropped for the cap since start" in warnings[-1]
    queue.link_up()
    await asyncio.wait_for(queue.wait_idle(), 5)
    assert [payload["n"] for _, payload in csms.accepted] == [0, 12, 16, 18, 20, 21, 22, 23, 24]
    await queue.stop()


async def test_201_updated_events_go_started_and_ended_stay(database: OcppDatabase) -> None:
    clock, csms = ManualClock(), FakeCsms()
    queue = TransactionMessageQueue(database, csms.send, sleep=clock.sleep, max_messages=4)
    await queue.start()
    await queue.enqueue("TransactionEvent", {"eventType": "Started", "seqNo": 0})
    for seq_no in range(1, 6):
        await queue.enqueue("TransactionEvent", {"eventType": "Updated", "seqNo": seq_no})
    await queue.enqueue("TransactionEvent", {"eventType": "Ended", "seqNo": 6})
    await settle(clock)
    kept = [(m.payload["eventType"], m.payload["seqNo"]) for m in await queue.pending()]
    assert kept == [("Started", 0), ("Updated", 4), ("Updated", 5), ("Ended", 6)]  # seqNo gaps: the CSMS sees them
    assert queue.dropped_queue_full == 3
    await queue.stop()


def test_the_cap_is_configured_like_the_other_options(tmp_path: Path) -> None:
    base = {"url": "ws://h/ocpp", "station_id": "CS1"}
    config = build_ocpp_config(base, environ={})
    assert config is not None and config.queue_max_messages == 500  # libocpp's default
    assert environment_settings({"CCS_SIM_OCPP_QUEUE_MAX_MESSAGES": "40"}) == {"queue_max_messages": 40}
    file = tmp_path / "ocpp.toml"
    file.write_text('url = "ws://h/ocpp"\nstation_id = "CS1"\nqueue_max_messages = 60\n')
    from_file = build_ocpp_config({}, environ={}, config_file=file)
    assert from_file is not None and from_file.queue_max_messages == 60
    flagged = build_ocpp_config({"queue_max_messages": "70"}, environ={"CCS_SIM_OCPP_QUEUE_MAX_MESSAGES": "40"},
                                config_file=file)
    assert flagged is not None and flagged.queue_max_messages == 70
    with pytest.raises(OcppConfigError, match="queue_max_messages must be >= 3"):
        build_ocpp_config({**base, "queue_max_messages": "2"}, environ={})
    with pytest.raises(OcppConfigError, match="--ocpp-queue-max-messages"):
        build_ocpp_config({**base, "queue_max_messages": "many"}, environ={})
