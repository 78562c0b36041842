"""One running transaction's state as ``Transactions`` keeps it (also read by its identification steps)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ccs_sim.ocpp.transaction_messages import StopReason

#: 1.6 idTagInfo / 2.0.1 idTokenInfo statuses that let a transaction go on.
ACCEPTED = "Accepted"


@dataclass
class OpenTransaction:
    local_ref: str  # 1.6: the station's reference (the CSMS gives the id); 2.0.1: the transactionId itself
    session_id: str
    id_tag: str | None
    register_start_Wh: float
    seq_no: int = 0
    last_sample_s: float = 0.0
    charging_state: str | None = None
    remote_start_id: int | None = None
    remote_stop: bool = False
    deauthorized: bool = False
    #: Why it ends, when the station knows better than the session's end (a reset: ``note_stop_reason``).
    stop_reason: StopReason | None = None
    #: The start message is queued (or the transaction was refused: ``refused``).
    started: asyncio.Event | None = None
    refused: bool = False
    #: The id token's type (2.0.1 IdTokenEnumType; None: the station's configured type).
    id_token_type: str | None = None
    #: An ISO 15118 session waiting for the EV's identification (``note_identified``).
    awaiting_identification: bool = False
    #: The id token was authorised before the transaction opened (no second Authorize).
    authorized: bool = False
