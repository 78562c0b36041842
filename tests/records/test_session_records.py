"""Session records through the API: written at start, checkpointed while charging, completed at the end,
listed newest first, exported; recovery of a dead process's sessions; the safe state at start-up."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from ccs_sim.observability.session_store import SessionStore
from ccs_sim.runtime import attach_operations, build_controller
from evse_model.clock import ManualClock

from records_rig import RecordsRig, make_settings, open_rig


async def test_completed_session_record_matches_last_session_summary(records_rig: RecordsRig) -> None:
    rig = records_rig
    session_id = await rig.run_session(target_voltage=400, initial_current=50, duration_s=4)
    summary = (await rig.status())["last_session_summary"]
    record = await rig.record(session_id)
    assert record["status"] == "ended"
    assert summary["session_id"] == session_id
    for field in ("energy_Wh", "avg_voltage", "avg_current", "duration_s", "ended_phase", "error", "end_reason",
                  "charging_time_s", "started_at", "ended_at", "source", "ev"):
        assert record[field] == summary[field], field
    assert record["ended_phase"] == "COMPLETE" and record["error"] is None
    assert record["energy_Wh"] > 1.0
    assert record["source"] == "sim"
    assert record["ev"]["evcc_id"] == "SIM-FOLLOW"
    assert record["params"]["target_voltage_V"] == 400
    # the spec's six fields keep their meaning in /status
    assert set(summary) >= {"energy_Wh", "avg_voltage", "avg_current", "duration_s", "ended_phase", "error"}


async def test_row_exists_from_the_start_and_is_checkpointed_while_charging(records_rig: RecordsRig) -> None:
    rig = records_rig
    started = (await rig.client.post("/start_session", json={"duration_s": 30, "initial_current": 100})).json()
    session_id = started["session_id"]
    await rig.step(0.01)
    record = await rig.record(session_id)
    assert record["status"] == "running" and record["energy_Wh"] == 0.0
    await rig.advance_until(lambda s: s["phase"] == "CHARGING" and s["current"] > 50, 20.0)
    interval_s = rig.ops.recorder.checkpoint_interval_s
    for _ in range(8):
        await rig.advance(0.37)
        status = await rig.status()
        record = await rig.record(session_id)
        power_W = status["voltage"] * status["current"]
        lag_Wh = status["energy_Wh"] - record["energy_Wh"]
        # the record never runs ahead of the meter and lags it by at most one interval of charging
        assert -1e-6 <= lag_Wh <= power_W * (interval_s + 0.02) / 3600, (lag_Wh, power_W)
        assert record["status"] == "running" and record["checkpoint_at"] > record["started_at"]


async def test_fault_and_stop_are_recorded_with_their_reason(records_rig: RecordsRig) -> None:
    rig = records_rig
    started = (await rig.client.post("/start_session", json={"duration_s": 30})).json()
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
    await rig.advance(1.0)
    assert (await rig.client.post("/fault", json={"type": "ISOLATION_FAULT"})).json()["status"] == "fault_injected"
    await rig.advance(0.5)
    faulted = await rig.record(started["session_id"])
    assert faulted["status"] == "ended"
    assert (faulted["ended_phase"], faulted["end_reason"], faulted["error"]) == ("ABORTED", "fault", "ISOLATION_FAULT")
    assert faulted["energy_Wh"] > 0

    started = (await rig.client.post("/start_session", json={"duration_s": 30})).json()
    assert started["status"] == "started", started
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
    await rig.client.post("/stop_session")
    await rig.advance_until(lambda s: s["stage"] == "ended", 10.0)
    stopped = await rig.record(started["session_id"])
    assert (stopped["ended_phase"], stopped["end_reason"], stopped["error"]) == ("ABORTED", "stop_requested", None)


async def test_list_is_newest_first_and_paginated(records_rig: RecordsRig) -> None:
    rig = records_rig
    ids = [await rig.run_session(duration_s=0.5) for _ in range(3)]
    page1 = (await rig.client.get("/sessions", params={"limit": 2})).json()
    assert [r["session_id"] for r in page1["sessions"]] == [ids[2], ids[1]]
    assert (page1["total"], page1["next_offset"]) == (3, 2)
    page2 = (await rig.client.get("/sessions", params={"limit": 2, "offset": page1["next_offset"]})).json()
    assert [r["session_id"] for r in page2["sessions"]] == [ids[0]]
    assert page2["next_offset"] is None
    assert (await rig.client.get("/sessions", params={"limit": 0})).status_code == 422
    missing = await rig.client.get("/sessions/nope")
    assert missing.status_code == 404 and missing.json()["status"] == "error"


async def test_export_csv_and_json(records_rig: RecordsRig) -> None:
    rig = records_rig
    ids = [await rig.run_session(duration_s=0.5) for _ in range(2)]
    as_json = await rig.client.get("/sessions/export", params={"format": "json"})
    assert as_json.headers["content-type"].startswith("application/json")
    records = as_json.json()
    assert [r["session_id"] for r in records] == ids[::-1]
    as_csv = await rig.client.get("/sessions/export", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["session_id"] for row in rows] == ids[::-1]
    assert float(rows[0]["energy_Wh"]) == pytest.approx(records[0]["energy_Wh"])
    assert json.loads(rows[0]["ev"]) == records[0]["ev"]


def test_csv_export_neutralises_spreadsheet_formulas() -> None:
    from ccs_sim.observability.records_api import csv_cell

    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_cell("-1+2") == "'-1+2"
    assert csv_cell(-1.5) == -1.5  # numbers stay numbers
    assert csv_cell({"a": 1}) == '{"a": 1}'


async def test_empty_export_has_the_header_only(records_rig: RecordsRig) -> None:
    as_csv = await records_rig.client.get("/sessions/export")
    assert as_csv.text.strip().split(",")[0] == "session_id" and len(as_csv.text.strip().splitlines()) == 1
    assert (await records_rig.client.get("/sessions/export", params={"format": "json"})).json() == []


async def test_start_up_closes_a_dead_process_sessions_as_interrupted(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    rig, close = await open_rig(database)
    started = (await rig.client.post("/start_session", json={"duration_s": 60})).json()
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
    await rig.advance(3.0)
    await rig.ops.store.flush()
    checkpointed = await rig.record(started["session_id"])
    assert checkpointed["status"] == "running" and checkpointed["energy_Wh"] > 0
    # "Crash": drop everything without letting the recorder close the session.
    rig.ops.recorder.detach()
    await rig.ops.store.close()
    await rig.client.aclose()

    restarted, close_restarted = await open_rig(database)
    try:
        assert restarted.ops.recorder.recovered_interrupted == [started["session_id"]]
        record = await restarted.record(started["session_id"])
        assert record["status"] == "interrupted"
        assert (record["ended_phase"], record["end_reason"], record["error"]) == ("ABORTED", "interrupted",
                                                                                   "INTERRUPTED")
        assert record["energy_Wh"] == checkpointed["energy_Wh"]
        assert record["ended_at"] == checkpointed["checkpoint_at"]
        metrics = (await restarted.client.get("/metrics")).text
        assert "ccs_records_interrupted_at_startup 1" in metrics
        # the charger serves the next car
        assert (await restarted.run_session(duration_s=0.5))
    finally:
        await close_restarted()
        await rig.controller.shutdown()


async def test_graceful_shutdown_mid_session_writes_a_final_checkpoint(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    rig, close = await open_rig(database)
    started = (await rig.client.post("/start_session", json={"duration_s": 60})).json()
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
    await rig.advance(2.0)
    meter_Wh = (await rig.status())["energy_Wh"]
    await close()
    store = SessionStore(database)
    try:
        record = store.get(started["session_id"])
    finally:
        store.close()
    assert record is not None and record["status"] == "interrupted"
    assert record["energy_Wh"] == pytest.approx(meter_Wh, abs=1e-6)


async def test_charger_starts_in_the_safe_state_whatever_the_hardware_was_left_in(tmp_path: Path) -> None:
    clock = ManualClock()
    controller = build_controller(make_settings(), clock)
    hw = controller.hw
    # what a crash mid-charge could leave behind on real hardware: output on, contactor closed, 5 % PWM
    hw.supply.set_voltage(400.0)
    hw.supply.set_current_limit(50.0)
    hw.supply.set_enabled(True)
    hw.contactor.set_closed(True)
    hw.pwm.set_duty(5.0)
    assert hw.contactor.is_closed()
    ops = await attach_operations(controller, tmp_path / "sessions.db")
    await controller.start()
    try:
        assert hw.contactor.is_closed() is False
        assert hw.pwm.get_duty() == 100.0
        await clock.advance(0.05)
        status = controller.status_view()
        assert status["contactor_closed"] is False and status["current"] < 0.01
        assert status["supply_current"] < 0.01
    finally:
        await controller.shutdown()
        await ops.close()


def test_store_uses_wal_and_full_sync_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    store = SessionStore(database)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
    raw = sqlite3.connect(database)
    raw.execute("PRAGMA user_version=99")
    raw.close()
    with pytest.raises(RuntimeError, match="newer"):
        SessionStore(database)


def test_store_round_trip_and_idempotent_start(tmp_path: Path) -> None:
    from ccs_sim.observability.session_store import Checkpoint
    from evse_model.session import SessionSummary

    store = SessionStore(tmp_path / "s.db")
    store.insert_started("a", "hlc", "2026-01-01T00:00:00+00:00", {"x": 1}, {"evcc_id": "AB"})
    store.insert_started("a", "hlc", "2026-01-01T00:00:00+00:00", {"x": 2}, {})
    store.checkpoint("a", Checkpoint(5.0, 400.0, 45.0, 3.0, 1.0, "2026-01-01T00:00:03+00:00", {"evcc_id": "AB"}))
    record = store.get("a")
    assert record is not None and (record["energy_Wh"], record["params"], record["source"]) == (5.0, {"x": 1}, "hlc")
    # a summary whose start was never written still makes a record
    store.finish(SessionSummary(1.0, 2.0, 3.0, 4.0, "COMPLETE", None, session_id="b", end_reason="x",
                                started_at="2026-01-01T01:00:00+00:00", ended_at="2026-01-01T01:00:04+00:00"))
    assert store.get("b")["status"] == "ended"  # type: ignore[index]
    # a checkpoint after the end changes nothing
    store.checkpoint("b", Checkpoint(99.0, 0, 0, 0, 0, "later", {}))
    assert store.get("b")["energy_Wh"] == 1.0  # type: ignore[index]
    assert store.mark_interrupted() == ["a"]
    assert store.count_by_status() == {"ended": 1, "interrupted": 1}
    assert [batch for batch in store.iter_all(batch=1)] == [[store.get("b")], [store.get("a")]]
    store.close()
