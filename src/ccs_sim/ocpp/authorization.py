"""The EV's identification in an ISO 15118 session, decided by the CSMS: the controller's ``authorizer`` while
the OCPP client runs (installed by ``Transactions.start``, ``transaction_identification.py``; without OCPP the
controller accepts every one).

The SECC glue (``evse_hal.iso15118_hal_controller.HalEVSEController.is_authorized``) asks once per session
and answers the EV Ongoing until this decides; refused, it ends the session before any energy.

What is authorised (the id token the transaction then carries: 1.6 StartTransaction/StopTransaction idTag,
2.0.1 TransactionEvent idToken):

- Plug & Charge (ISO 15118-2 PaymentDetailsReq): the contract id, the eMAID. 2.0.1: IdToken type ``eMAID``
  (OCPP 2.0.1 C07 "Authorization using Contract Certificates": the station sends AuthorizeRequest for the
  contract, C07.FR.01; IdTokenEnumType eMAID "Electro-mobility account id as defined in ISO 15118"). 1.6
  has no ISO 15118 support of its own: the idTag is the eMAID itself (ISO 15118-2 eMAIDType is at most 15
  characters, within 1.6's CiString20 idTag). The contract chain was verified by the SECC against its MO
  root; the OCSP data of C07.FR.02 and 1.6's DataTransfer profile for ISO 15118 are not sent.
- EIM (External Identification Means: OCPP 2.0.1 C08, the driver identifies at the station, e.g. RFID,
  through the station's own means C01-C06): the token that means presented. The simulated station's one
  means is a configured token, ``OcppConfig.eim_id_token`` (``--ocpp-eim-id-token`` /
  ``CCS_SIM_OCPP_EIM_ID_TOKEN`` / the file's ``eim_id_token``; its type ``eim_id_token_type``, default
  ISO14443, an RFID card's UID), sent in Authorize. With none configured the session is charged
  without authorisation: no Authorize, 1.6 idTag ``NoAuthorization``, 2.0.1 IdToken type NoAuthorization
  ("no authorization possible", IdTokenEnumType) in TransactionEvent Started.
- A session already identified (``start_session``'s ``id_token``, authorised at its start; a CSMS's remote
  start, authorised by the CSMS): its token, no second Authorize.

2.0.1 transaction events of an ISO 15118 session follow E02 (cable plugged in first): Started at the
session's start (trigger CablePluggedIn, chargingState EVConnected), then Updated with trigger Authorized
and the idToken once accepted; refused, the transaction ends with trigger Deauthorized and stoppedReason
DeAuthorized (TriggerReasonEnumType / ReasonEnumType), no energy billed. 1.6 opens the transaction only
once the identification is accepted (a transaction needs an idTag, StartTransaction.req), so a refusal
bills nothing. Offline or no answer: accepted (as ``Transactions`` does for ``start_session``'s token).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ccs_sim.ocpp.config import DEFAULT_EIM_ID_TOKEN_TYPE
from evse_hal.iso15118.charger_port import ID_TOKEN_TYPE_EMAID, Authorization

log = logging.getLogger(__name__)

#: OCPP 2.0.1 IdTokenEnumType of a contract id (ISO 15118 Plug & Charge).
ID_TOKEN_TYPE_EMAID_201 = "eMAID"


class IdentifiedTransactions(Protocol):
    """What the authoriser asks of ``ccs_sim.ocpp.transactions.Transactions`` (its transactions: ``tx``)."""

    current: Any

    def awaiting_identification(self) -> Any: ...
    async def authorize(self, id_token: str, id_token_type: str) -> bool: ...
    def note_identified(self, tx: Any, id_token: str | None, id_token_type: str | None) -> None: ...
    def note_refused(self, tx: Any) -> None: ...


class CsmsAuthorizer:
    """``async (id_token, id_token_type) -> Authorization`` for the controller: see the module's description."""

    def __init__(self, transactions: IdentifiedTransactions, eim_id_token: str | None = None,
                 eim_id_token_type: str = DEFAULT_EIM_ID_TOKEN_TYPE) -> None:
        self.transactions = transactions
        #: The station's EIM token (``OcppConfig.eim_id_token``; None: NoAuthorization) and its 2.0.1 type.
        self.eim_id_token = eim_id_token
        self.eim_id_token_type = eim_id_token_type
        self._deciding: dict[str, asyncio.Future[Authorization]] = {}

    async def __call__(self, id_token: str | None, id_token_type: str) -> Authorization:
        transactions = self.transactions
        tx = transactions.awaiting_identification()
        if tx is None:  # identified before (an API token, a remote start) or no transaction of ours
            current = transactions.current
            refused = current is not None and (current.refused or current.deauthorized)
            return Authorization.REJECTED if refused else Authorization.ACCEPTED
        deciding = self._deciding.get(tx.local_ref)
        if deciding is None:
            deciding = asyncio.ensure_future(self._decide(tx, id_token, id_token_type))
            self._deciding[tx.local_ref] = deciding
            local_ref = tx.local_ref
            deciding.add_done_callback(lambda _done: self._deciding.pop(local_ref, None))
        return await asyncio.shield(deciding)

    async def _decide(self, tx: Any, id_token: str | None, id_token_type: str) -> Authorization:
        transactions = self.transactions
        token: str | None = self.eim_id_token
        token_type = self.eim_id_token_type
        if id_token_type == ID_TOKEN_TYPE_EMAID and id_token:
            token, token_type = id_token, ID_TOKEN_TYPE_EMAID_201
        if token is None:
            log.info("OCPP: EIM session %s with no identification means configured: NoAuthorization",
                     tx.session_id)
            transactions.note_identified(tx, None, None)
            return Authorization.ACCEPTED
        if not await transactions.authorize(token, token_type):
            log.warning("OCPP: the CSMS refused %s %r: session %s ends without energy", token_type, token,
                        tx.session_id)
            transactions.note_refused(tx)
            return Authorization.REJECTED
        transactions.note_identified(tx, token, token_type)
        return Authorization.ACCEPTED
