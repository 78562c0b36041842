"""The EV's identification in an ISO 15118 session, decided by the CSMS (``ccs_sim.ocpp.authorization``): EIM
with the station's configured token and Plug & Charge with the eMAID, against the test CSMS accepting and
refusing; the session's transaction carries what was authorised. The SECC's side (ONGOING while the CSMS has
not answered) is ``evse_hal.iso15118.authorization.PendingAuthorization``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from csms import TestCsms
from link_rig import PROTOCOL_SECOND_S, VERSIONS, make_config
from test_client_transactions import advance_until, billed, transaction_actions

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal.iso15118 import authorization as secc_authorization
from evse_hal.iso15118.authorization import PendingAuthorization
from evse_hal.iso15118.charger_port import ID_TOKEN_TYPE_EIM, ID_TOKEN_TYPE_EMAID, Authorization
from evse_hal.iso15118.session import HlcSessionDriver
from evse_model.clock import ManualClock
from evse_model.session import EndReason, Phase, SessionParams

RFID_UID = "04A1B2C3D4E5F6"  # a 7-byte ISO 14443 UID: the station's EIM token
EMAID = "DEABC123456789X"  # ISO 15118-2 eMAIDType: 15 characters


class IdentifyingCar:
    """An ISO 15118 session (source ``hlc``) as the SECC runs it: the EV identifies (EIM / PnC), then charges
    like the simulated car when accepted; refused, the session ends before any energy (as the glue does)."""

    source = HlcSessionDriver.source

    def __init__(self, charging: Any, id_token: str | None, id_token_type: str) -> None:
        self.charging = charging
        self.id_token = id_token
        self.id_token_type = id_token_type
        self.decision: Authorization | None = None

    async def run(self, charger: Any, session: Any) -> None:
        self.decision = await charger.authorize(self.id_token, self.id_token_type)
        if self.decision is Authorization.ACCEPTED:
            await self.charging.run(charger, session)
        else:
            charger.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)


async def run_identified_session(tmp_path: Path, version: str, id_token: str | None, id_token_type: str,
                                 authorize_status: str = "Accepted", eim_id_token: str | None = RFID_UID,
                                 ) -> tuple[TestCsms, dict[str, Any], IdentifyingCar]:
    """One session of an identifying car against the test CSMS; (the CSMS, the session record, the car)."""
    csms = await TestCsms(version).start()
    csms.authorize_status = authorize_status
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
                                  clock=ManualClock())
    operations = await attach_operations(controller)
    await controller.start()
    client = OcppClient(controller, make_config(csms, version, meter_interval_s=5.0, eim_id_token=eim_id_token),
                        protocol_second_s=PROTOCOL_SECOND_S)
    await client.start()
    try:
        await asyncio.wait_for(client.link.booted.wait(), 10)  # Authorize is not sent before (offline: accepted)
        transactions = next(part.transactions for part in client.parts if hasattr(part, "transactions"))
        assert controller._sim_driver_factory is not None
        car = IdentifyingCar(controller._sim_driver_factory(), id_token, id_token_type)
        session = controller.start_session(SessionParams(duration_s=12.0), car)
        await operations.recorder.record_start(session)
        await advance_until(controller, operations, lambda: controller.last_session_summary is not None
                            and not controller.shutting_down)
        await transactions.wait_settled()
        await csms.wait_for(lambda: client.queue_depth() == 0, timeout_s=10)
        await operations.store.flush()
        record = await operations.store.call("get", session.session_id)
        assert csms.violations == []
        return csms, record, car
    finally:
        await client.stop()
        await controller.shutdown()
        await operations.close()
        await csms.stop()


def authorize_tokens(csms: TestCsms) -> list[Any]:
    return [frame.payload.get("idTag") or frame.payload.get("idToken") for frame in csms.calls_received("Authorize")]


def transaction_tokens(csms: TestCsms, version: str) -> list[Any]:
    if version == "1.6":
        return [frame.payload.get("idTag") for frame in csms.calls_received()
                if frame.action in ("StartTransaction", "StopTransaction")]
    return [(frame.payload["triggerReason"], frame.payload.get("idToken"))
            for frame in csms.calls_received("TransactionEvent") if frame.payload["eventType"] != "Updated"
            or frame.payload["triggerReason"] == "Authorized"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("id_token", "id_token_type", "expected_token", "expected_type"), [
    (None, ID_TOKEN_TYPE_EIM, RFID_UID, "ISO14443"),
    (EMAID, ID_TOKEN_TYPE_EMAID, EMAID, "eMAID"),
], ids=["eim", "pnc"])
async def test_an_accepted_identification_is_the_transaction_s_token(
        tmp_path: Path, version: str, id_token: str | None, id_token_type: str, expected_token: str,
        expected_type: str) -> None:
    csms, record, car = await run_identified_session(tmp_path, version, id_token, id_token_type)
    assert car.decision is Authorization.ACCEPTED
    expected_authorize = expected_token if version == "1.6" else {"idToken": expected_token, "type": expected_type}
    assert authorize_tokens(csms) == [expected_authorize]
    actions = [frame.action for frame in csms.calls_received()]
    if version == "1.6":  # the transaction opens once the identification is accepted
        assert actions.index("Authorize") < actions.index("StartTransaction")
    if version == "1.6":
        assert transaction_tokens(csms, version) == [expected_token, expected_token]
        assert "MeterValues" in transaction_actions(csms)
    else:  # E02: Started when the cable is plugged in (no idToken yet), Updated Authorized with it, Ended
        assert transaction_tokens(csms, version)[:2] == [("CablePluggedIn", None), ("Authorized", expected_authorize)]
        assert len(transaction_tokens(csms, version)) == 3  # then Ended
        periodic = [frame for frame in csms.calls_received("TransactionEvent")
                    if frame.payload["triggerReason"] == "MeterValuePeriodic"]
        assert periodic
    assert record["energy_Wh"] > 1.0
    assert billed(csms, version) == pytest.approx(record["energy_Wh"], abs=1.0 if version == "1.6" else 0.001)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_refused_identification_ends_the_session_without_energy_or_bill(tmp_path: Path,
                                                                                  version: str) -> None:
    csms, record, car = await run_identified_session(tmp_path, version, EMAID, ID_TOKEN_TYPE_EMAID,
                                                     authorize_status="Invalid")
    assert car.decision is Authorization.REJECTED
    assert record["energy_Wh"] == 0.0
    assert len(authorize_tokens(csms)) == 1
    if version == "1.6":  # a transaction needs an accepted idTag: none was opened
        assert transaction_actions(csms) == []
    else:  # E02 started it at plug-in: it ends DeAuthorized, nothing billed
        events = [frame.payload for frame in csms.calls_received("TransactionEvent")]
        assert [event["eventType"] for event in events] == ["Started", "Ended"]
        assert events[0]["triggerReason"] == "CablePluggedIn" and "idToken" not in events[0]
        assert events[-1]["triggerReason"] == "Deauthorized"
        assert events[-1]["transactionInfo"]["stoppedReason"] == "DeAuthorized"
        assert billed(csms, version) == 0.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_eim_without_identification_means_charges_without_authorization(tmp_path: Path,
                                                                               version: str) -> None:
    csms, record, car = await run_identified_session(tmp_path, version, None, ID_TOKEN_TYPE_EIM, eim_id_token=None)
    assert car.decision is Authorization.ACCEPTED
    assert csms.calls_received("Authorize") == []
    if version == "1.6":
        assert transaction_tokens(csms, version) == ["NoAuthorization", None]  # StopTransaction: idTag optional
    else:
        assert [trigger for trigger, _ in transaction_tokens(csms, version)][0] == "CablePluggedIn"
        assert all(token is None for _, token in transaction_tokens(csms, version))
    assert billed(csms, version) == pytest.approx(record["energy_Wh"], abs=1.0 if version == "1.6" else 0.001)


# --- the SECC's side: ONGOING while the charger's authoriser decides --------------------------------------
class SlowCharger:
    """A charger whose authoriser answers when the test says."""

    def __init__(self) -> None:
        self.asked: list[tuple[str | None, str]] = []
        self.answer: asyncio.Future[Authorization] = asyncio.get_running_loop().create_future()

    async def authorize(self, id_token: str | None, id_token_type: str) -> Authorization:
        self.asked.append((id_token, id_token_type))
        return await self.answer


async def test_the_secc_answers_ongoing_until_the_authoriser_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secc_authorization, "ANSWER_WAIT_S", 0.01)
    charger = SlowCharger()
    pending = PendingAuthorization(charger)  # type: ignore[arg-type]
    comm_session = object()
    assert await pending.poll(comm_session, EMAID, ID_TOKEN_TYPE_EMAID) is Authorization.ONGOING
    assert await pending.poll(comm_session, EMAID, ID_TOKEN_TYPE_EMAID) is Authorization.ONGOING
    assert charger.asked == [(EMAID, ID_TOKEN_TYPE_EMAID)]  # asked once, polled by each request
    charger.answer.set_result(Authorization.REJECTED)
    assert await pending.poll(comm_session, EMAID, ID_TOKEN_TYPE_EMAID) is Authorization.REJECTED
    charger.answer = asyncio.get_running_loop().create_future()
    charger.answer.set_result(Authorization.ACCEPTED)
    assert await pending.poll(object(), None, ID_TOKEN_TYPE_EIM) is Authorization.ACCEPTED  # a new session asks anew
    assert charger.asked[-1] == (None, ID_TOKEN_TYPE_EIM)


async def test_without_ocpp_every_identification_is_accepted(tmp_path: Path) -> None:
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
                                  clock=ManualClock())
    assert await controller.authorize(EMAID, ID_TOKEN_TYPE_EMAID) is Authorization.ACCEPTED
    assert await controller.authorize(None, ID_TOKEN_TYPE_EIM) is Authorization.ACCEPTED
