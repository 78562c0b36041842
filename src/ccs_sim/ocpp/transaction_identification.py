"""The id token of a transaction, judged by the CSMS: the Authorize call, and the EV's identification in an
ISO 15118 session (the steps ``ccs_sim.ocpp.authorization.CsmsAuthorizer`` drives).

``TransactionIdentification`` is a part of ``ccs_sim.ocpp.transactions.Transactions`` (its base class):

- ``install_authorizer`` / ``remove_authorizer``: while the client runs, the controller's ``authorizer`` is a
  ``CsmsAuthorizer`` with the station's external identification means (``OcppConfig.eim_id_token`` and its
  type, ``--ocpp-eim-id-token``); stopped, the controller's own authoriser is back.
- ``_authorized``: Authorize (sent directly, not through the queue: it is not a transaction message); False only
  when the CSMS answers and the status is not Accepted (offline or no answer: the session goes on).
- An ISO 15118 session (source ``hlc``) with no token waits for the EV's identification (EIM: the station's
  token; Plug & Charge: the contract's eMAID): ``awaiting_identification`` gives its transaction, ``authorize``
  asks the CSMS, then ``note_identified`` (1.6: StartTransaction with the accepted idTag; 2.0.1: TransactionEvent
  Updated, trigger Authorized, with the idToken, after the Started of E02) or ``note_refused`` (1.6: no
  transaction; 2.0.1: the transaction ends Deauthorized / DeAuthorized, ``Transactions._on_session_end``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ccs_sim.ocpp import transaction_messages as messages
from ccs_sim.ocpp.authorization import CsmsAuthorizer
from ccs_sim.ocpp.message_queue import DeliveryOffline, Sender, TransactionMessageQueue
from ccs_sim.ocpp.open_transaction import ACCEPTED, OpenTransaction
from ccs_sim.ocpp.transaction_messages import MeterSample

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController

log = logging.getLogger(__name__)


class TransactionIdentification:
    """The identification steps of ``Transactions`` (see the module's description); the attributes and methods
    declared here are the ones ``Transactions`` gives."""

    controller: ChargerController
    queue: TransactionMessageQueue
    version: str
    connector_id: int
    evse_id: int
    #: Direct calls (Authorize): ``async send(action, payload) -> response``; None: offline.
    send: Sender | None
    #: The 2.0.1 IdTokenEnumType of an id token given without one (``start_session``'s, a remote start's).
    id_token_type: str
    #: The station's external identification means (EIM): its token (None: NoAuthorization) and 2.0.1 type.
    eim_id_token: str | None
    eim_id_token_type: str
    current: OpenTransaction | None
    _by_session: dict[str, OpenTransaction]
    _previous_authorizer: Any

    if TYPE_CHECKING:
        def sample(self, session: ActiveSession | None, register_start_Wh: float,
                   energy_Wh: float | None = None) -> MeterSample: ...
        async def _open(self, tx: OpenTransaction, session: ActiveSession, sample: MeterSample,
                        remote: bool) -> None: ...
        def _track(self, coroutine: Any) -> None: ...
        @staticmethod
        def _next_seq_no(tx: OpenTransaction) -> int: ...
        def _write_progress(self, tx: OpenTransaction,
                            sample: MeterSample) -> Callable[[sqlite3.Connection], None]: ...

    # --- the controller's authoriser ------------------------------------------------------------------------
    def install_authorizer(self) -> None:
        """The CSMS decides the EV's identification (``CsmsAuthorizer``) until ``remove_authorizer``."""
        self._previous_authorizer, self.controller.authorizer = self.controller.authorizer, CsmsAuthorizer(
            self, self.eim_id_token, self.eim_id_token_type)

    def remove_authorizer(self) -> None:
        if self._previous_authorizer is not None:
            self.controller.authorizer, self._previous_authorizer = self._previous_authorizer, None

    # --- Authorize ------------------------------------------------------------------------------------------
    async def _authorized(self, id_tag: str, id_token_type: str | None = None) -> bool:
        """Authorize: False only when the CSMS answers and the status is not Accepted."""
        if self.send is None:
            return True
        payload = messages.authorize_16(id_tag) if self.version == "1.6" else \
            messages.authorize_201(id_tag, id_token_type or self.id_token_type)
        try:
            response = await self.send("Authorize", payload) or {}
        except (DeliveryOffline, ConnectionError, OSError, Exception) as error:  # offline / no answer: go on
            log.info("OCPP Authorize not answered (%s): the session goes on", error)
            return True
        info = response.get("idTagInfo") or response.get("idTokenInfo") or {}
        return info.get("status", ACCEPTED) == ACCEPTED

    # --- the EV's identification (ISO 15118: ``ccs_sim.ocpp.authorization``) ----------------------------------
    def awaiting_identification(self) -> OpenTransaction | None:
        """The running session's transaction while it waits for the EV's identification."""
        session = self.controller.session
        tx = self._by_session.get(session.session_id) if session is not None else None
        return tx if tx is not None and tx.awaiting_identification else None

    async def authorize(self, id_token: str, id_token_type: str) -> bool:
        """Authorize ``id_token`` (False only when the CSMS answers and refuses it)."""
        return await self._authorized(id_token, id_token_type)

    def note_identified(self, tx: OpenTransaction, id_token: str | None, id_token_type: str | None) -> None:
        """The EV's identification is accepted (``id_token`` None: EIM with no token, NoAuthorization): 1.6
        StartTransaction with it; 2.0.1 TransactionEvent Updated, trigger Authorized, with the idToken."""
        if not tx.awaiting_identification or self._by_session.get(tx.session_id) is not tx:
            return  # the session ended meanwhile
        tx.awaiting_identification, tx.authorized = False, True
        tx.id_tag, tx.id_token_type = id_token, id_token_type
        session = self.controller.session
        assert session is not None and session.session_id == tx.session_id
        sample = self.sample(session, tx.register_start_Wh)
        if self.version == "1.6":
            self._track(self._open(tx, session, sample, False))
        elif id_token:
            self._track(self._authorized_201(tx, sample))

    def note_refused(self, tx: OpenTransaction) -> None:
        """The CSMS refused the EV's identification (the SECC ends the session, no energy): 1.6 no
        transaction; 2.0.1 the transaction ends DeAuthorized."""
        tx.awaiting_identification = False
        if self.version == "1.6":
            tx.refused = True
            assert tx.started is not None
            tx.started.set()
        else:
            tx.deauthorized = True

    async def _authorized_201(self, tx: OpenTransaction, sample: MeterSample) -> None:
        assert tx.started is not None
        await tx.started.wait()
        payload = messages.transaction_event_201(
            "Updated", "Authorized", self._next_seq_no(tx), tx.local_ref, sample, evse_id=self.evse_id,
            connector_id=self.connector_id, charging_state=tx.charging_state, context=None,
            id_token=messages.id_token_201(tx.id_tag, tx.id_token_type or self.id_token_type))
        await self.queue.enqueue("TransactionEvent", payload, tx.local_ref, self._write_progress(tx, sample))
