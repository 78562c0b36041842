"""The station model: one test per row of the status table, the error codes, and no duplicate notification."""

from __future__ import annotations

import pytest

from ccs_sim.ocpp.station_model import (
    ConnectorState,
    ConnectorStatus16,
    StationInputs,
    StatusChangeDetector,
    connector_status,
)
from evse_model.faults import CP_LOSS, E_STOP, ISOLATION_FAULT, OVER_TEMPERATURE, OVERCURRENT
from evse_model.session import Phase, Stage

IDLE = StationInputs()


def session_at(stage: Stage, phase: Phase, **overrides: object) -> StationInputs:
    values = dict(cp_state="C", phase=phase, stage=stage, session_active=True, ev_requested_current_A=50.0)
    values.update(overrides)
    return StationInputs(**values)  # type: ignore[arg-type]


def states(inputs: StationInputs) -> tuple[str, str, str]:
    state = connector_status(inputs)
    return state.status_16.value, state.status_201, state.charging_state


def test_blocking_fault_is_faulted() -> None:
    state = connector_status(StationInputs(blocking_reason="emergency stop is pressed", fault=E_STOP,
                                           stage=Stage.ENDED, phase=Phase.ABORTED))
    assert (state.status_16, state.status_201, state.error_code, state.vendor_error_code) == \
        (ConnectorStatus16.FAULTED, "Faulted", "OtherError", "E_STOP")


def test_hot_connector_is_faulted_high_temperature() -> None:
    state = connector_status(StationInputs(blocking_reason="connector temperature 95.0 °C above its limit"))
    assert (state.status_16, state.error_code) == (ConnectorStatus16.FAULTED, "HighTemperature")


def test_fault_shutdown_under_way_is_faulted_with_its_error_code() -> None:
    state = connector_status(StationInputs(cp_state="C", phase=Phase.ABORTED, stage=Stage.EMERGENCY_SHUTDOWN,
                                           shutting_down=True, fault=OVERCURRENT))
    assert (state.status_16, state.error_code, state.vendor_error_code) == \
        (ConnectorStatus16.FAULTED, "OverCurrentFailure", "OVERCURRENT")


@pytest.mark.parametrize(("fault", "code"), [(ISOLATION_FAULT, "GroundFailure"), (OVER_TEMPERATURE, "HighTemperature"),
                                             (CP_LOSS, "EVCommunicationError")])
def test_error_codes_follow_the_fault(fault, code) -> None:  # type: ignore[no-untyped-def]
    inputs = StationInputs(phase=Phase.ABORTED, stage=Stage.EMERGENCY_SHUTDOWN, shutting_down=True, fault=fault)
    assert connector_status(inputs).error_code == code


def test_inoperative_without_session_is_unavailable() -> None:
    assert states(StationInputs(available=False)) == ("Unavailable", "Unavailable", "Idle")


def test_inoperative_during_a_session_waits_for_its_end() -> None:
    assert states(session_at(Stage.CHARGING, Phase.CHARGING, available=False))[0] == "Charging"


@pytest.mark.parametrize("stage", [Stage.PLUG_IN, Stage.HANDSHAKE, Stage.CABLE_CHECK, Stage.PRECHARGE])
def test_session_before_energy_transfer_is_preparing(stage: Stage) -> None:
    phase = Phase.PRECHARGE if stage is Stage.PRECHARGE else Phase.HANDSHAKE
    assert states(session_at(stage, phase)) == ("Preparing", "Occupied", "EVConnected")


def test_offered_limit_zero_is_suspended_evse() -> None:
    assert states(session_at(Stage.CHARGING, Phase.CHARGING, offered_current_A=0.0)) == \
        ("SuspendedEVSE", "Occupied", "SuspendedEVSE")


def test_output_interrupted_is_suspended_evse() -> None:
    assert states(session_at(Stage.OUTPUT_INTERRUPTED, Phase.CHARGING))[0] == "SuspendedEVSE"


def test_ev_asking_no_current_is_suspended_ev() -> None:
    assert states(session_at(Stage.CHARGING, Phase.CHARGING, ev_requested_current_A=0.0)) == \
        ("SuspendedEV", "Occupied", "SuspendedEV")


@pytest.mark.parametrize("stage", [Stage.CURRENT_RAMP, Stage.CHARGING])
def test_energy_transfer_is_charging(stage: Stage) -> None:
    assert states(session_at(stage, Phase.CHARGING, offered_current_A=100.0)) == ("Charging", "Occupied", "Charging")


def test_wind_down_after_the_session_is_finishing() -> None:
    inputs = StationInputs(cp_state="A", phase=Phase.COMPLETE, stage=Stage.RAMP_DOWN, shutting_down=True)
    assert states(inputs) == ("Finishing", "Occupied", "EVConnected")


def test_ev_still_plugged_after_the_session_is_finishing() -> None:
    assert states(StationInputs(cp_state="B", phase=Phase.COMPLETE, stage=Stage.ENDED))[0] == "Finishing"


def test_ev_plugged_before_any_session_is_preparing() -> None:
    assert states(StationInputs(cp_state="B"))[0] == "Preparing"


def test_no_ev_is_available() -> None:
    assert states(IDLE) == ("Available", "Available", "Idle")
    assert states(StationInputs(cp_state="A", phase=Phase.COMPLETE, stage=Stage.ENDED))[0] == "Available"


def test_change_detector_never_repeats_a_status() -> None:
    detector = StatusChangeDetector()
    available, charging = ConnectorState(ConnectorStatus16.AVAILABLE), ConnectorState(ConnectorStatus16.CHARGING)
    seen = [state for state in (available, available, charging, charging, charging, available)
            if detector.changed(state)]
    assert seen == [available, charging, available]
    detector.forget()  # after a reconnect the CSMS is told again
    assert detector.changed(available)
