"""The durable queue's rows (``ocpp_message_queue``, ``ocpp_dropped_messages``, ``ocpp_transaction_ids`` of
``store.py``): the database functions ``TransactionMessageQueue`` runs on the store's worker thread, each write
in one database transaction (the session store's ``Transaction``: BEGIN IMMEDIATE ... COMMIT).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccs_sim.observability.session_store import Transaction
from ccs_sim.ocpp.queue_cap import enforce_cap

#: The producer's own state, written in the database transaction that queues its message.
StateWrite = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class QueuedMessage:
    """A row of ``ocpp_message_queue``: a message waiting for its CALLRESULT."""

    seq: int
    action: str
    payload: dict[str, Any]
    local_tx_ref: str | None
    attempts: int
    enqueued_at: str
    #: The OCPP-J message id it is sent with (None only in rows an older version wrote: one is given).
    message_id: str | None = None


def new_message_id() -> str:
    """An OCPP-J message id (max 36 characters: a UUID's text)."""
    return str(uuid.uuid4())


def insert_message(db: sqlite3.Connection, action: str, payload: str, local_tx_ref: str | None, at: str,
                   with_state: StateWrite | None, max_messages: int) -> tuple[int, list[int]]:
    """The message, and the producer's state that goes with it (``with_state``), in one database transaction,
    with the samples the cap drops then (``queue_cap``); its seq and theirs."""
    with Transaction(db):
        if with_state is not None:
            with_state(db)
        cursor = db.execute("INSERT INTO ocpp_message_queue (action, payload, local_tx_ref, enqueued_at, message_id) "
                            "VALUES (?, ?, ?, ?, ?)", (action, payload, local_tx_ref, at, new_message_id()))
        dropped = enforce_cap(db, max_messages, at)
    return int(cursor.lastrowid or 0), dropped


_SELECT = ("SELECT seq, action, payload, local_tx_ref, attempts, enqueued_at, message_id FROM ocpp_message_queue "
           "ORDER BY seq")


def _row_message(row: sqlite3.Row) -> QueuedMessage:
    return QueuedMessage(row["seq"], row["action"], json.loads(row["payload"]), row["local_tx_ref"],
                         row["attempts"], row["enqueued_at"], row["message_id"])


def head_message(db: sqlite3.Connection) -> QueuedMessage | None:
    row = db.execute(f"{_SELECT} LIMIT 1").fetchone()
    return None if row is None else _row_message(row)


def all_messages(db: sqlite3.Connection) -> list[QueuedMessage]:
    return [_row_message(row) for row in db.execute(_SELECT)]


def count_messages(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM ocpp_message_queue").fetchone()[0])


def load_transaction_ids(db: sqlite3.Connection) -> dict[str, str]:
    """1.6: local transaction reference -> the CSMS's transactionId, as acknowledged so far."""
    return {row[0]: row[1] for row in db.execute("SELECT local_tx_ref, csms_transaction_id FROM ocpp_transaction_ids")}


def acknowledge_message(db: sqlite3.Connection, seq: int, mapping: tuple[str, str, str | None] | None) -> None:
    with Transaction(db):
        if mapping is not None:
            db.execute("INSERT OR REPLACE INTO ocpp_transaction_ids (local_tx_ref, csms_transaction_id, "
                       "id_tag_status) VALUES (?, ?, ?)", mapping)
        db.execute("DELETE FROM ocpp_message_queue WHERE seq=?", (seq,))


def count_failed_attempt(db: sqlite3.Connection, seq: int, next_message_id: str) -> None:
    """A failed attempt: counted, and the retry's message id."""
    with Transaction(db):
        db.execute("UPDATE ocpp_message_queue SET attempts = attempts + 1, message_id=? WHERE seq=?",
                   (next_message_id, seq))


def set_message_id(db: sqlite3.Connection, seq: int, message_id: str) -> None:
    with Transaction(db):
        db.execute("UPDATE ocpp_message_queue SET message_id=? WHERE seq=?", (message_id, seq))


def drop_message(db: sqlite3.Connection, message: QueuedMessage, attempts: int, at: str, reason: str) -> None:
    with Transaction(db):
        db.execute("INSERT OR REPLACE INTO ocpp_dropped_messages (seq, action, payload, local_tx_ref, attempts, "
                   "enqueued_at, dropped_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (message.seq, message.action, json.dumps(message.payload), message.local_tx_ref, attempts,
                    message.enqueued_at, at, reason))
        db.execute("DELETE FROM ocpp_message_queue WHERE seq=?", (message.seq,))


def dropped_messages(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The messages given up, oldest first (for inspection and tests)."""
    return [dict(row) for row in db.execute("SELECT * FROM ocpp_dropped_messages ORDER BY seq")]
