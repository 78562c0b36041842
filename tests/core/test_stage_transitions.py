"""The session state machine's transition table (ccs_sim/orchestrator.py): the paths a simulated session, an
ISO 15118 session, a fault and a stop take are allowed; a move the table does not allow raises under pytest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ccs_sim.core.types import ActiveSession
from ccs_sim.orchestrator import TRANSITIONS, IllegalTransition, SessionStateMachine
from evse_model.session import STAGE_PHASE, Phase, SessionParams, Stage

S = Stage


def new_session() -> ActiveSession:
    return ActiveSession(session_id="s", params=SessionParams(), source="sim", started_at_s=0.0,
                         started_at=datetime(2026, 1, 1, tzinfo=UTC))


def walk(machine: SessionStateMachine, stages: list[Stage]) -> None:
    for stage in stages:
        machine.advance(stage)
        assert machine.stage is stage
        if machine.session_active and stage in STAGE_PHASE:
            assert machine.phase is STAGE_PHASE[stage]


def test_strict_under_pytest() -> None:
    assert SessionStateMachine().strict


def test_a_simulated_session_then_the_next_car() -> None:
    machine = SessionStateMachine()
    assert (machine.phase, machine.stage) == (Phase.IDLE, S.IDLE)
    machine.begin_session(new_session())
    assert (machine.phase, machine.stage, machine.session_active) == (Phase.HANDSHAKE, S.PLUG_IN, True)
    walk(machine, [S.PLUG_IN, S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP, S.CHARGING,
                   S.OUTPUT_INTERRUPTED, S.CURRENT_RAMP, S.CHARGING])
    machine.end_session(Phase.COMPLETE)
    walk(machine, [S.RAMP_DOWN, S.WELDING_DETECTION, S.ENDED])
    assert (machine.phase, machine.session_active) == (Phase.COMPLETE, False)
    machine.begin_session(new_session())
    assert (machine.phase, machine.stage) == (Phase.HANDSHAKE, S.PLUG_IN)


def test_an_iso15118_session_with_the_evs_stop_before_its_end() -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    # PowerDelivery(Stop): ramp down and open while the session runs; SessionStop ends it, whose wind-down
    # ramps down again.
    walk(machine, [S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.PRECHARGE, S.CURRENT_RAMP, S.CHARGING,
                   S.RAMP_DOWN, S.WELDING_DETECTION])
    assert machine.phase is Phase.CHARGING
    machine.end_session(Phase.COMPLETE)
    walk(machine, [S.RAMP_DOWN, S.WELDING_DETECTION, S.ENDED])
    assert machine.phase is Phase.COMPLETE


@pytest.mark.parametrize("fault_in", [S.PLUG_IN, S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP,
                                      S.CHARGING, S.OUTPUT_INTERRUPTED, S.RAMP_DOWN, S.WELDING_DETECTION])
def test_a_fault_in_any_stage_of_a_session(fault_in: Stage) -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    path = [S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP, S.CHARGING, S.OUTPUT_INTERRUPTED,
            S.RAMP_DOWN, S.WELDING_DETECTION]
    walk(machine, path[:path.index(fault_in) + 1] if fault_in in path else [])
    machine.end_session(Phase.ABORTED)
    walk(machine, [S.EMERGENCY_SHUTDOWN, S.EMERGENCY_SHUTDOWN, S.ENDED])
    assert machine.phase is Phase.ABORTED


def test_a_fault_without_a_session_and_after_the_end() -> None:
    machine = SessionStateMachine()
    machine.fault_without_session()
    walk(machine, [S.EMERGENCY_SHUTDOWN, S.ENDED, S.EMERGENCY_SHUTDOWN, S.ENDED])
    assert machine.phase is Phase.ABORTED
    machine.begin_session(new_session())
    assert machine.stage is S.PLUG_IN


@pytest.mark.parametrize("stopped_in", [S.PLUG_IN, S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP,
                                        S.CHARGING, S.OUTPUT_INTERRUPTED])
def test_a_stop_in_any_stage(stopped_in: Stage) -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    path = [S.PLUG_IN, S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP, S.CHARGING, S.OUTPUT_INTERRUPTED]
    walk(machine, path[:path.index(stopped_in) + 1])
    machine.end_session(Phase.ABORTED)
    walk(machine, [S.RAMP_DOWN, S.WELDING_DETECTION, S.ENDED])
    assert machine.phase is Phase.ABORTED


def test_the_next_car_may_plug_in_during_the_previous_wind_down() -> None:
    for shutdown in ([S.RAMP_DOWN], [S.RAMP_DOWN, S.WELDING_DETECTION], [S.EMERGENCY_SHUTDOWN]):
        machine = SessionStateMachine()
        first = new_session()
        machine.begin_session(first)
        machine.end_session(Phase.ABORTED)
        walk(machine, shutdown)
        second = new_session()
        machine.begin_session(second)
        machine.report_for(first, S.ENDED)  # the earlier session's wind-down no longer reports
        assert machine.stage is S.PLUG_IN and machine.phase is Phase.HANDSHAKE


@pytest.mark.parametrize(("path", "illegal"), [
    ([], S.CHARGING),                                          # charging before precharge
    ([S.HANDSHAKE, S.CABLE_CHECK], S.CHARGING),
    ([S.HANDSHAKE], S.PRECHARGE),                              # precharge before the cable check
    ([S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE], S.CHARGING),   # no current ramp
    ([S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP], S.HANDSHAKE),  # back to the handshake
    ([S.HANDSHAKE], S.PLUG_IN),                                # plug-in only by a new session
    ([S.HANDSHAKE], S.ENDED),                                  # ended without a wind-down
])
def test_illegal_moves_in_a_session_raise(path: list[Stage], illegal: Stage) -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    walk(machine, path)
    before = machine.stage
    with pytest.raises(IllegalTransition):
        machine.advance(illegal)
    assert machine.stage is before


@pytest.mark.parametrize("after_end", [S.HANDSHAKE, S.CABLE_CHECK, S.PRECHARGE, S.CURRENT_RAMP, S.CHARGING,
                                       S.OUTPUT_INTERRUPTED, S.RAMP_DOWN, S.WELDING_DETECTION, S.IDLE])
def test_nothing_after_ended_but_a_new_session_or_a_fault(after_end: Stage) -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    machine.end_session(Phase.COMPLETE)
    walk(machine, [S.RAMP_DOWN, S.ENDED])
    with pytest.raises(IllegalTransition):
        machine.advance(after_end)
    assert machine.stage is S.ENDED


def test_a_second_session_while_one_runs_raises() -> None:
    machine = SessionStateMachine()
    machine.begin_session(new_session())
    with pytest.raises(IllegalTransition):
        machine.begin_session(new_session())


def test_production_refuses_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    machine = SessionStateMachine(strict=False)
    machine.begin_session(new_session())
    machine.advance(S.CHARGING)
    assert machine.stage is S.PLUG_IN and machine.refused == [(S.PLUG_IN, S.CHARGING)]
    assert "illegal stage transition plug_in -> charging" in caplog.text


def test_the_table_has_every_stage_and_a_fault_may_strike_in_each() -> None:
    assert set(TRANSITIONS) == set(Stage)
    assert all(S.EMERGENCY_SHUTDOWN in allowed for allowed in TRANSITIONS.values())
    assert TRANSITIONS[S.ENDED] == {S.PLUG_IN, S.EMERGENCY_SHUTDOWN}
