"""Crash recovery: the transactions a killed process left open, found at the next start.

A transaction is a row of ``ocpp_transactions`` (``store.py``), written with its messages in one database
transaction; one still ``open`` at start belongs to a process that died mid-session. ``interrupted_transactions``
yields each (of this client's OCPP version) with the energy and the time its stop carries; ``Transactions.recover``
then ends it with reason PowerLoss.

- Energy: the session record's (the records close the session as interrupted with its last checkpoint). A
  meter value sent after that checkpoint means the CSMS already has more: the stop must not read less than a
  sample the CSMS has, so the record is raised to that sample and the stop carries it (billed = the record's
  energy still). No record here: the last meter value sent.
- Time: the record's ``ended_at``, else its last ``checkpoint_at``; None when neither is known (the caller's now).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ccs_sim.observability.session_store import Transaction
from ccs_sim.ocpp.store import OcppDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InterruptedTransaction:
    """An open transaction a stopped process left, and what its stop carries."""

    local_ref: str
    session_id: str
    id_tag: str | None
    register_start_Wh: float
    seq_no: int
    energy_Wh: float
    ended_at: datetime | None


def _open_rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in db.execute("SELECT * FROM ocpp_transactions WHERE status='open'")]


def _session_record(db: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    """The records' row of a session (the records' table, read only), if the records keep one here."""
    try:
        row = db.execute("SELECT energy_Wh, checkpoint_at, ended_at FROM sessions WHERE session_id=?",
                         (session_id,)).fetchone()
    except sqlite3.OperationalError:  # no records table in this database
        return None
    return dict(row) if row is not None else None


def _raise_interrupted_record_energy(db: sqlite3.Connection, session_id: str, energy_Wh: float) -> None:
    """An interrupted session's record takes the energy of the last meter value sent for it (never lowers it)."""
    with Transaction(db):
        db.execute("UPDATE sessions SET energy_Wh=? WHERE session_id=? AND status!='ended' AND energy_Wh<?",
                   (round(energy_Wh, 6), session_id, energy_Wh))


def _parse_utc(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


async def interrupted_transactions(database: OcppDatabase, version: str) -> AsyncIterator[InterruptedTransaction]:
    """Each transaction of ``version`` left open, one at a time (its record raised, if it must be, before it is
    yielded); one of another version is logged and left alone."""
    for row in await database.call(_open_rows):
        if row["version"] != version:
            log.warning("OCPP %s transaction %s left open by a %s client: not ended", version,
                        row["local_tx_ref"], row["version"])
            continue
        record = await database.call(_session_record, row["session_id"])
        sampled_Wh = row["last_register_Wh"] - row["register_start_Wh"]
        energy_Wh = sampled_Wh if record is None else float(record["energy_Wh"])
        if record is not None and sampled_Wh > energy_Wh:
            # A meter value sent after the record's last checkpoint: that energy was delivered, and the
            # stop must not read less than a sample the CSMS already has; the record follows the meter.
            await database.call(_raise_interrupted_record_energy, row["session_id"], sampled_Wh)
            energy_Wh = sampled_Wh
        at_text = (record["ended_at"] or record["checkpoint_at"]) if record is not None else None
        yield InterruptedTransaction(row["local_tx_ref"], row["session_id"], row["id_tag"],
                                     row["register_start_Wh"], row["seq_no"], energy_Wh, _parse_utc(at_text))
