"""The durable queue of transaction-related messages: nothing a CSMS bills from is lost.

What goes in: 1.6 StartTransaction, MeterValues (of a transaction), StopTransaction; 2.0.1 TransactionEvent
(OCPP 1.6 and 2.0.1 call these transaction-related messages: they must reach the CSMS, in order, even across
an offline period or a restart). Each is a row of ``ocpp_message_queue`` (``store.py``) holding the action
and its JSON payload as sent on the wire (camelCase); the functions that read and write them:
``message_queue_rows.py``.

Rules:

- Strict order: only the oldest message is ever in flight; the next waits until it is acknowledged or given up.
- Delivery only while the link is up (``link_up``: connected and BootNotification Accepted); ``link_down``
  pauses it. A message is removed in the same database transaction that records its CALLRESULT: a process
  killed before that commit sends it again after the restart (at-least-once at the wire: a CALLRESULT lost
  in the kill cannot be told from a CALL that never arrived), one killed after it never sends it again.
- Message ids: each row keeps the OCPP-J message id (``message_id``) it is sent with. A resend after a
  restart or a lost connection goes with the same id, so a CSMS that keeps its answers by message id
  processes the message once (exactly-once in its accepted set); OCPP-J allows it because an id only has to
  differ from the sender's earlier CALL ids on the same WebSocket connection (OCPP-J 1.6 §4.1.3; OCPP 2.0.1
  Part 4 §4.1.3), and a resend after either always runs on a new connection (libocpp also resends a message
  restored from its database with its stored id). A retry after a failed attempt (CALLERROR, timeout) may
  run on the same connection: it gets a new id, stored with the attempt count (libocpp does the same).
- Attempts (OCPP 1.6 TransactionMessageAttempts / TransactionMessageRetryInterval; 2.0.1 E13
  MessageAttemptsTransactionEvent / MessageAttemptIntervalTransactionEvent; libocpp defaults 3 and 30 s):
  an attempt fails when the CSMS answers CALLERROR (or the sender returns no result) or does not answer
  within the call timeout. Before retry n the queue waits ``retry_interval_s × n`` (1.6: the interval
  "multiplied by the number of preceding transmissions"). Being offline is not an attempt: a message waits
  for the link for as long as it takes, and the attempt count survives a restart (it is in the row).
- After the last attempt the message is given up (OCPP 1.6 allows skipping a transaction-related message
  only when the CSMS repeatedly failed to process it, so that the station is not stuck forever behind it;
  2.0.1 E13 / TC_E_50_CS: after MessageAttemptsTransactionEvent the station stops resending): logged at
  WARNING and moved to ``ocpp_dropped_messages`` (kept for inspection, never resent); the queue goes on.
- A cap (``max_messages``, libocpp's default 500): past it, intermediate samples are dropped by the rule in
  ``queue_cap.py`` (never a start or a stop), in the database transaction that queued the newest message;
  logged at WARNING, counted (``dropped_queue_full``), kept in ``ocpp_dropped_messages``.
- Transaction ids (1.6): the CSMS assigns the transactionId in its StartTransaction.conf. Messages of a
  transaction carry the station's local reference (``local_tx_ref``); the mapping local reference -> CSMS id
  is stored with the Start's acknowledgement, and a StopTransaction / MeterValues queued before it was known
  gets its ``transactionId`` filled in when it is sent. A StopTransaction whose Start was given up can never
  be valid and is given up too; a MeterValues of it goes without a transactionId (the field is optional).

The sender is injected: ``async send(action, payload) -> response payload`` (camelCase dicts; ``wire.py``
adapts the link's ``call``). It raises ``DeliveryOffline`` (or ``ConnectionError``/``OSError``) when the link
cannot carry the call (no attempt counted), ``DeliveryRejected`` for a CALLERROR and ``asyncio.TimeoutError``
when no answer came in time (both count).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ccs_sim.ocpp.message_queue_rows import (
    QueuedMessage,
    StateWrite,
    acknowledge_message,
    all_messages,
    count_failed_attempt,
    count_messages,
    drop_message,
    dropped_messages,
    head_message,
    insert_message,
    load_transaction_ids,
    new_message_id,
    set_message_id,
)
from ccs_sim.ocpp.queue_cap import DEFAULT_MAX_MESSAGES
from ccs_sim.ocpp.store import OcppDatabase

log = logging.getLogger(__name__)


class Sender(Protocol):
    """``await send(action, payload, message_id=None)``: the CALLRESULT payload (the OCPP-J message id given,
    else one the link chooses)."""

    def __call__(self, action: str, payload: dict[str, Any],
                 message_id: str | None = None) -> Awaitable[dict[str, Any] | None]: ...


TransactionIdListener = Callable[[str, str, str | None], None]

#: libocpp's defaults (include/ocpp/common/message_queue.hpp): 3 attempts, 30 s between them.
DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_INTERVAL_S = 30.0
#: Actions whose payload refers to a 1.6 transaction by the CSMS's integer id.
_NEEDS_CSMS_TRANSACTION_ID = frozenset({"StopTransaction", "MeterValues"})


class DeliveryOffline(Exception):
    """The link cannot carry a call now (not connected, not booted, closed mid-call): not an attempt."""


class DeliveryRejected(Exception):
    """The CSMS answered CALLERROR: a failed attempt."""


def _utc_now_text() -> str:
    return datetime.now(UTC).isoformat()


class TransactionMessageQueue:
    """Durable, ordered delivery of transaction-related messages (see the module's rules)."""

    def __init__(self, database: OcppDatabase, send: Sender | None = None, *, attempts: int = DEFAULT_ATTEMPTS,
                 retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 utc_now_text: Callable[[], str] = _utc_now_text,
                 max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.max_messages = max_messages
        self.database = database
        self.attempts = attempts
        self.retry_interval_s = retry_interval_s
        self._send = send
        self._sleep = sleep
        self._utc_now_text = utc_now_text
        self._online = asyncio.Event()
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._transaction_ids: dict[str, str] = {}
        self._transaction_id_listeners: list[TransactionIdListener] = []
        self._idle = asyncio.Event()
        #: Messages waiting (kept in step with the table), delivered and given up since start.
        self.depth = 0
        self.delivered = 0
        self.dropped = 0
        #: Intermediate samples dropped because more than ``max_messages`` waited (``queue_cap``), since start.
        self.dropped_queue_full = 0

    # --- life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the depth and the transaction-id mapping, then run the delivery loop (in a task)."""
        self.depth = await self.database.call(count_messages)
        self._transaction_ids = await self.database.call(load_transaction_ids)
        self._task = asyncio.create_task(self._deliver_forever(), name="ocpp-message-queue")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # --- the link -----------------------------------------------------------------------------------------
    def link_up(self, send: Sender | None = None) -> None:
        """The link is connected and booted: deliver (through ``send`` if given)."""
        if send is not None:
            self._send = send
        self._online.set()
        self._work.set()

    def link_down(self) -> None:
        """The link is lost: pause delivery (the message in flight fails as offline, not as an attempt)."""
        self._online.clear()

    @property
    def online(self) -> bool:
        return self._online.is_set()

    # --- producers ----------------------------------------------------------------------------------------
    def enqueue_nowait(self, action: str, payload: dict[str, Any], local_tx_ref: str | None = None,
                       with_state: StateWrite | None = None) -> asyncio.Future[int]:
        """Queue a message now (durable once the returned future is done; order = call order); its seq.
        ``with_state(connection)`` writes the producer's own state in the same database transaction."""
        inserted = self.database.submit(insert_message, action, json.dumps(payload), local_tx_ref,
                                        self._utc_now_text(), with_state, self.max_messages)
        self.depth += 1
        self._idle.clear()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def done(_: Any) -> None:
            self._work.set()
            if inserted.cancelled():
                future.cancel()
            elif inserted.exception() is not None:
                future.set_exception(inserted.exception())  # type: ignore[arg-type]
            else:
                seq, dropped = inserted.result()
                self._dropped_for_cap(dropped)
                future.set_result(seq)
        inserted.add_done_callback(done)
        return future

    def _dropped_for_cap(self, dropped: list[int]) -> None:
        if not dropped:
            return
        self.depth = max(0, self.depth - len(dropped))
        self.dropped_queue_full += len(dropped)
        log.warning("OCPP queue over its cap of %d messages: %d intermediate sample(s) dropped (seq %s), %d "
                    "waiting, %d dropped for the cap since start (kept in ocpp_dropped_messages)",
                    self.max_messages, len(dropped), ", ".join(map(str, dropped)), self.depth,
                    self.dropped_queue_full)

    async def enqueue(self, action: str, payload: dict[str, Any], local_tx_ref: str | None = None,
                      with_state: StateWrite | None = None) -> int:
        return await self.enqueue_nowait(action, payload, local_tx_ref, with_state)

    # --- transaction ids (1.6) ----------------------------------------------------------------------------
    def csms_transaction_id(self, local_tx_ref: str) -> str | None:
        return self._transaction_ids.get(local_tx_ref)

    def on_transaction_id(self, listener: TransactionIdListener) -> None:
        """``listener(local_tx_ref, csms_transaction_id, id_tag_status)`` when a StartTransaction is acknowledged."""
        self._transaction_id_listeners.append(listener)

    # --- observation ----------------------------------------------------------------------------------------
    async def wait_idle(self) -> None:
        """Return once every queued message was delivered or given up."""
        while self.depth > 0:
            self._idle.clear()
            await self._idle.wait()

    async def pending(self) -> list[QueuedMessage]:
        return await self.database.call(all_messages)

    async def dropped_messages(self) -> list[dict[str, Any]]:
        return await self.database.call(dropped_messages)

    # --- delivery -------------------------------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        while True:
            await self._online.wait()
            message = await self.database.call(head_message)
            if message is None:
                self._idle.set()
                self._work.clear()
                if await self.database.call(head_message) is None:  # nothing was queued meanwhile
                    await self._work.wait()
                continue
            await self._deliver(message)

    async def _deliver(self, message: QueuedMessage) -> None:
        payload = self._completed_payload(message)
        if payload is None:
            await self._give_up(message, message.attempts, "its StartTransaction never reached the CSMS "
                                "(no transactionId to stop)")
            return
        if self._send is None:
            self._online.clear()
            return
        if message.message_id is None:  # a row an older version wrote: its id, kept for any resend
            message = dataclasses.replace(message, message_id=new_message_id())
            await self.database.call(set_message_id, message.seq, message.message_id)
        try:
            response = await self._send(message.action, payload, message_id=message.message_id)
            if response is None:
                raise DeliveryRejected("no CALLRESULT")
        except asyncio.CancelledError:
            raise
        except (TimeoutError, DeliveryRejected) as failure:  # (TimeoutError is an OSError: first)
            await self._failed_attempt(message, failure)
            return
        except (DeliveryOffline, ConnectionError, OSError) as offline:
            log.info("OCPP %s #%d waits for the link: %s", message.action, message.seq, offline)
            self._online.clear()
            return
        except Exception as failure:  # anything else the sender raised: a failed attempt, logged
            log.exception("OCPP %s #%d: sender failed", message.action, message.seq)
            await self._failed_attempt(message, failure)
            return
        await self._acknowledged(message, response)

    def _completed_payload(self, message: QueuedMessage) -> dict[str, Any] | None:
        """The payload as sent: a 1.6 message of a transaction gets the CSMS's id (None: it cannot be sent)."""
        payload = dict(message.payload)
        if message.local_tx_ref is None or message.action not in _NEEDS_CSMS_TRANSACTION_ID \
                or "transactionId" in payload:
            return payload
        csms_id = self._transaction_ids.get(message.local_tx_ref)
        if csms_id is not None:
            payload["transactionId"] = int(csms_id)
            return payload
        return None if message.action == "StopTransaction" else payload

    async def _acknowledged(self, message: QueuedMessage, response: dict[str, Any]) -> None:
        mapping = None
        if message.action == "StartTransaction" and message.local_tx_ref is not None \
                and "transactionId" in response:
            status = (response.get("idTagInfo") or {}).get("status")
            mapping = (message.local_tx_ref, str(response["transactionId"]), status)
        await self.database.call(acknowledge_message, message.seq, mapping)
        self.depth = max(0, self.depth - 1)
        self.delivered += 1
        if mapping is not None:
            self._transaction_ids[mapping[0]] = mapping[1]
            for listener in list(self._transaction_id_listeners):
                try:
                    listener(*mapping)
                except Exception:
                    log.exception("transaction id listener %r failed", listener)

    async def _failed_attempt(self, message: QueuedMessage, failure: BaseException) -> None:
        attempts = message.attempts + 1
        if attempts >= self.attempts:
            await self._give_up(message, attempts, f"{type(failure).__name__}: {failure}")
            return
        await self.database.call(count_failed_attempt, message.seq, new_message_id())
        wait_s = self.retry_interval_s * attempts
        log.info("OCPP %s #%d failed (attempt %d of %d: %s); retry in %.0f s", message.action, message.seq,
                 attempts, self.attempts, failure, wait_s)
        await self._sleep(wait_s)

    async def _give_up(self, message: QueuedMessage, attempts: int, reason: str) -> None:
        log.warning("OCPP %s #%d given up after %d attempt(s) (%s); kept in ocpp_dropped_messages: %s",
                    message.action, message.seq, attempts, reason, json.dumps(message.payload))
        await self.database.call(drop_message, message, attempts, self._utc_now_text(), reason)
        self.depth = max(0, self.depth - 1)
        self.dropped += 1

