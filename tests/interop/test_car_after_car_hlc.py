"""Car after car over ISO 15118 (issue 10): ONE launcher (``evse-main --controller hal`` with the Live
Controller API) serves the stock EVCC again and again, each car different — DIN SPEC 70121, ISO 15118-2 DC
(EV max 500 V), ISO 15118-20 DC (EV max 1000 V) — with an emergency ``/fault`` during one CurrentDemand and a
``/stop_session`` during one DC_ChargeLoop between them, then a normal session again.

After every session: its record is its own (its session id; energy and average current only if current
flowed in it, and about what flowed), nothing is left ``running``, and the next car completes. Nothing of the
previous car may leak into the next: e.g. the -2 car's 500 V maximum kept for the -20 car makes its cable
check fail with OVERVOLTAGE (issue 10 item 1)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from evse_ev.demo_network import VethLink
from interop_harness import (
    API_PORT,
    MIN_ENERGY_20_Wh,
    InteropCase,
    LauncherProcess,
    WatchedSession,
    api_call,
    case_by_id,
    hal_charge_loops,
    interop_marks,
    launcher_case,
    watch_session,
    with_charge_loops,
)

pytestmark = interop_marks("iocar")

DIN = case_by_id("din70121")
ISO2 = case_by_id("iso2-dc-eim")
ISO20 = case_by_id("iso20-dc")
#: A loop the EV would not end itself: our side (/fault, /stop_session) ends these sessions.
LONG_LOOPS = 400
#: /fault and /stop_session go out once current has flowed this long (a record with real energy to check).
ACTION_AFTER_CURRENT_S = 1.0
#: Records are final once the output is off (the wind-down after the summary); this long at most.
RECORD_FINAL_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Car:
    name: str
    case: InteropCase
    loops: int
    action: str | None = None  # "fault" | "stop": sent through the API while current flows
    ended_phase: str = "COMPLETE"
    end_reason: str = "ev_requested_stop"
    error: str | None = None
    min_energy_Wh: float = 0.0


#: The cars that complete run hal_charge_loops(case) loops: current flows a while (the -20 car at 200 V / 18 A
#: for >= 1.9 s, so >= MIN_ENERGY_20_Wh; the DIN/-2 cars ask 500 V / 1 A).
SEQUENCE = (
    Car("din", DIN, hal_charge_loops(DIN)),
    Car("iso2-500V", ISO2, hal_charge_loops(ISO2)),
    Car("iso20-1000V", ISO20, hal_charge_loops(ISO20), min_energy_Wh=MIN_ENERGY_20_Wh),
    Car("iso2-fault", ISO2, LONG_LOOPS, action="fault", ended_phase="ABORTED", end_reason="fault", error="E_STOP"),
    Car("iso20-stop", ISO20, LONG_LOOPS, action="stop", ended_phase="ABORTED", end_reason="stop_requested"),
    Car("din-again", DIN, hal_charge_loops(DIN)),
)


def _action(link: VethLink, car: Car) -> Callable[[], dict] | None:
    if car.action is None:
        return None
    request = ("/fault", {"type": "E_STOP"}) if car.action == "fault" else ("/stop_session", None)

    def act() -> dict:
        time.sleep(ACTION_AFTER_CURRENT_S)  # wall time: the EVCC and the launcher run in real time
        return api_call(link, "POST", *request)

    return act


def _records(link: VethLink) -> list[dict]:
    return api_call(link, "GET", "/sessions?limit=100")["sessions"]


def _records_when_final(link: VethLink, session_id: str) -> list[dict]:
    """The records once this session's row is written and none is ``running``."""
    deadline = time.monotonic() + RECORD_FINAL_TIMEOUT_S
    while True:
        records = _records(link)
        mine = [r for r in records if r["session_id"] == session_id]
        if mine and not any(r["status"] == "running" for r in records):
            return records
        if time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _context(car: Car, run: WatchedSession, launcher: LauncherProcess) -> str:
    return (f"\n--- car {car.name}: session {run.session_id} summary {run.summary}"
            f"\n--- EVCC log tail ---\n{run.evcc.log[-2500:]}\n--- SECC log tail ---\n{launcher.log_text()[-4000:]}")


def _check_session(car: Car, run: WatchedSession, link: VethLink, launcher: LauncherProcess,
                   earlier_ids: list[str]) -> None:
    context = _context(car, run, launcher)
    summary = run.summary
    assert run.evcc.returncode == 0, f"EVCC exited {run.evcc.returncode}: {run.evcc.diagnosis()}{context}"
    assert (summary["ended_phase"], summary["end_reason"], summary["error"]) == \
        (car.ended_phase, car.end_reason, car.error), f"ended otherwise than expected{context}"
    assert summary["ev"]["protocol"] == car.case.protocol, context
    if car.action == "fault":
        assert run.answer["severity"] == "emergency", run.answer
        assert "EVSE_EmergencyShutdown" in run.evcc.log, f"the EV was not told{context}"
    if car.action == "stop":
        assert run.answer["status"] == "stopping", run.answer
        told = run.evcc.log.lower()
        assert "evse_shutdown" in told or "terminate" in told, f"the EV was not told{context}"

    # the record is its own: its id, written once, ended, and counting only what flowed in this session
    records = _records_when_final(link, run.session_id)
    mine = [r for r in records if r["session_id"] == run.session_id]
    assert len(mine) == 1, f"records of {run.session_id}: {mine}{context}"
    record = mine[0]
    assert record["status"] == "ended" and record["ended_phase"] == car.ended_phase, f"{record}{context}"
    assert [r for r in records if r["status"] == "running"] == [], f"left running: {records}{context}"
    assert {r["session_id"] for r in records} == {*earlier_ids, run.session_id}, records
    assert run.current_flowed(), f"no current in the API samples of {car.name}{context}"
    sampled_Wh = run.sampled_energy_Wh()
    assert record["energy_Wh"] > car.min_energy_Wh and record["avg_current"] > 0.0, f"{record}{context}"
    # the meter's exact ∫V·I dt against the API's 0.1 s samples: the same session's energy, not another's
    assert abs(record["energy_Wh"] - sampled_Wh) <= 0.5 * sampled_Wh + 0.2, \
        f"record {record['energy_Wh']} Wh, sampled {sampled_Wh:.3f} Wh{context}"
    status = api_call(link, "GET", "/status")
    assert not status["session_active"] and not status["contactor_closed"], f"{status}{context}"


@pytest.mark.parametrize("secc_launcher", ["hal"], indirect=True)
def test_one_launcher_serves_din_iso2_and_iso20_cars_with_a_fault_and_a_stop_between(
        secc_launcher: LauncherProcess, veth_link: VethLink, tmp_path: Path):
    secc_launcher.extra_args = ("--api-port", str(API_PORT))
    secc_launcher.start(launcher_case(ISO20, ISO2, DIN), None)
    seen_ids: list[str] = []
    for number, car in enumerate(SEQUENCE, start=1):
        case = with_charge_loops(car.case, car.loops)
        run = watch_session(veth_link, case, tmp_path / f"{number}-{car.name}", set(seen_ids),
                            action=_action(veth_link, car))
        _check_session(car, run, veth_link, secc_launcher, seen_ids)
        seen_ids.append(run.session_id)
    stops = [e.response_code for e in secc_launcher.exchanges() if e.response == "SessionStopRes"]
    assert stops == ["OK"] * len(SEQUENCE), stops
    assert secc_launcher.stop() == 0, f"launcher did not stop cleanly\n{secc_launcher.log_text()[-3000:]}"
