"""The durable queue's cap: which transaction messages go when more than ``max_messages`` wait.

The rule is libocpp's (``include/ocpp/common/message_queue.hpp``: ``queues_total_size_threshold``, default
500; ``drop_update_messages_from_transactional_message_queue``, which cites OCPP 2.0.1 Part 2's
``QueueAllMessages`` / offline queueing): only *update* messages are dropped (1.6 MeterValues, 2.0.1
TransactionEvent eventType Updated), never one that opens or closes a transaction (1.6 StartTransaction /
StopTransaction, 2.0.1 TransactionEvent Started / Ended: the CSMS bills from those). One pass walks the queue
oldest first and drops every other update message: an update is dropped when the message before it in the
pass was kept, and when at least two messages follow it (the newest samples stay); a pass runs to its end
(the resolution halves evenly, and room for as many new messages is made at once), and passes repeat until
the queue fits or a pass drops nothing (then the queue stays over its cap: start and stop messages are kept
whatever it costs). The resolution of the meter values halves with each pass instead of a whole period of
the session going missing. The message in flight (the oldest) is never dropped. A 2.0.1 transaction whose
Updated events were dropped has gaps in its seqNo: that is how OCPP 2.0.1 lets the CSMS see that messages
are missing (E. Transactions, seqNo).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

#: libocpp's default (MessageQueueConfig.queues_total_size_threshold).
DEFAULT_MAX_MESSAGES = 500


@dataclass(frozen=True)
class QueueEntry:
    seq: int
    is_update: bool


def is_update_message(action: str, payload: dict[str, object]) -> bool:
    """1.6 MeterValues or 2.0.1 TransactionEvent Updated: a sample that may go when the queue is full."""
    return action == "MeterValues" or (action == "TransactionEvent" and payload.get("eventType") == "Updated")


def seqs_to_drop(entries: Sequence[QueueEntry], max_messages: int) -> list[int]:
    """The seqs to drop (oldest first) so that at most ``max_messages`` stay, by the rule above; the first
    entry is the message in flight (kept)."""
    if len(entries) <= max_messages or not entries:
        return []
    remaining = list(entries[1:])  # entries[0] is in flight: never dropped
    dropped: list[int] = []
    while len(remaining) + 1 > max_messages:
        kept: list[QueueEntry] = []
        dropped_this_pass = 0
        drop_next_update = True
        for index, entry in enumerate(remaining):
            followers = len(remaining) - index - 1
            if drop_next_update and entry.is_update and followers > 1:
                dropped.append(entry.seq)
                dropped_this_pass += 1
                drop_next_update = False
            else:
                kept.append(entry)
                drop_next_update = True
        remaining = kept
        if dropped_this_pass == 0:
            break
    return sorted(dropped)


def enforce_cap(db: sqlite3.Connection, max_messages: int, at: str) -> list[int]:
    """Within the caller's database transaction: move the messages the cap drops to ``ocpp_dropped_messages``
    (reason ``queue full``); their seqs."""
    rows = db.execute("SELECT seq, action, payload FROM ocpp_message_queue ORDER BY seq").fetchall()
    if len(rows) <= max_messages:
        return []
    entries = [QueueEntry(row[0], is_update_message(row[1], json.loads(row[2]))) for row in rows]
    dropped = seqs_to_drop(entries, max_messages)
    reason = f"queue full (at most {max_messages} messages): an intermediate sample dropped"
    for seq in dropped:
        db.execute("INSERT OR REPLACE INTO ocpp_dropped_messages (seq, action, payload, local_tx_ref, attempts, "
                   "enqueued_at, dropped_at, reason) SELECT seq, action, payload, local_tx_ref, attempts, "
                   "enqueued_at, ?, ? FROM ocpp_message_queue WHERE seq=?", (at, reason, seq))
        db.execute("DELETE FROM ocpp_message_queue WHERE seq=?", (seq,))
    return dropped
