"""The EV's identification in an ISO 15118 session, asked of the charger's authoriser without blocking the SECC.

The SECC asks ``is_authorized`` once per PaymentDetailsReq / AuthorizationReq and must answer each request
in time (ISO 15118-2 Table 109: the EV waits 2 s for an AuthorizationRes); a backend (an OCPP CSMS) may take
longer. ``PendingAuthorization`` starts the charger's ``authorize`` once per communication session and
answers ONGOING until it is decided (the EV repeats AuthorizationReq: EVSEProcessing Ongoing, [V2G2-684]),
waiting at most ``ANSWER_WAIT_S`` within one request so a quick answer is given at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from evse_hal.iso15118 import messages  # installs the pydantic.v1 hook before iso15118 is imported

# isort: split
from iso15118.shared.messages.din_spec.datatypes import ResponseCode as ResponseCodeDIN
from iso15118.shared.messages.enums import Protocol
from iso15118.shared.messages.iso15118_2.datatypes import ResponseCode as ResponseCodeV2
from iso15118.shared.messages.iso15118_20.common_types import ResponseCode as ResponseCodeV20

from evse_hal.iso15118.charger_port import Authorization, ChargerPort

logger = logging.getLogger(__name__)

#: How long one request waits for the authoriser before answering Ongoing: well inside the EV's 2 s
#: AuthorizationRes timeout (ISO 15118-2 Table 109, V2G_EVCC_Msg_Timeout).
ANSWER_WAIT_S = 0.5


class PendingAuthorization:
    """One communication session's identification: asked once, polled by each request of the EV."""

    def __init__(self, charger: ChargerPort) -> None:
        self.charger = charger
        self._comm_session: Any = None
        self._task: asyncio.Task[Authorization] | None = None

    async def poll(self, comm_session: Any, id_token: str | None, id_token_type: str) -> Authorization:
        """ACCEPTED / REJECTED once decided, ONGOING meanwhile (or when the authoriser itself says so)."""
        if comm_session is not self._comm_session:
            self.reset(comm_session)
        if self._task is None:
            self._task = asyncio.ensure_future(self.charger.authorize(id_token, id_token_type))
        await asyncio.wait({self._task}, timeout=ANSWER_WAIT_S)
        if not self._task.done():
            return Authorization.ONGOING
        task, result = self._task, Authorization.ONGOING
        try:
            result = task.result()
        except Exception as error:  # an authoriser that failed decides nothing: asked again next request
            logger.error("authorisation of %r failed: %r", id_token, error)
        if result is Authorization.ONGOING:
            self._task = None  # asked again with the EV's next request
        return result

    def reset(self, comm_session: Any = None) -> None:
        """A new communication session: the previous one's question is dropped."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._comm_session, self._task = comm_session, None


def authorization_failed_code(protocol: Protocol | None) -> Any:
    """The response code of a refused identification: FAILED of ``protocol``'s message set (ISO 15118-2
    Table 112 / -20 Table 224 allow it for PaymentDetailsRes and AuthorizationRes)."""
    if protocol == Protocol.DIN_SPEC_70121:
        return ResponseCodeDIN.FAILED
    if protocol is not None and protocol.name.startswith("ISO_15118_20"):
        return ResponseCodeV20.FAILED
    return ResponseCodeV2.FAILED


__all__ = ["ANSWER_WAIT_S", "PendingAuthorization", "authorization_failed_code", "messages"]
