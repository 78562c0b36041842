"""Transactions: the controller's sessions as OCPP transactions, their messages put in the durable queue.

From the controller's event bus (``ccs_sim/core/events.py``):

- SESSION_START (the session owns the output and the meter): a transaction opens. An ISO 15118 session
  (source ``hlc``) with no token yet waits for the EV's identification (EIM or the Plug & Charge eMAID, asked
  by the SECC: ``ccs_sim.ocpp.authorization``; its steps here: ``transaction_identification``): 1.6 sends StartTransaction once it is accepted (none
  when refused), 2.0.1 starts at once (E02 cable plugged in first) and sends Updated (Authorized, idToken). With an id token (the
  ``id_token`` of ``start_session``, or one the commands note for a remote start) it is authorised first
  (Authorize, sent directly: it is not a transaction message); a token the CSMS refuses stops the session
  and no transaction is sent. Offline, or no answer: the session goes on (the CSMS judges the token in
  StartTransaction.conf / TransactionEvent's idTokenInfo; 1.6 StopTransactionOnInvalidId then stops it).
  Then 1.6 StartTransaction (meterStart: the register) or 2.0.1 TransactionEvent Started (seqNo 0, trigger
  Authorized / RemoteStart / CablePluggedIn, the register in context Transaction.Begin).
- TICK: every ``meter_interval_s`` of the controller's clock, 1.6 MeterValues / 2.0.1 TransactionEvent Updated
  (MeterValuePeriodic); 2.0.1 also an Updated (ChargingStateChanged) when the charging state changes.
- SESSION_END (the final summary, the meter's final counts): 1.6 StopTransaction (meterStop, reason) /
  2.0.1 TransactionEvent Ended (stoppedReason, trigger, the register in context Transaction.End).

The register (Energy.Active.Import.Register) is the station's: the controller's meter counts one session, so
the register is the sum of the finished transactions' energy (``ocpp_meter_register``) plus the running
session's meter. Billed energy (meterStop − meterStart, or the Ended register − the Started one) is the
session record's ``energy_Wh`` (1.6 carries whole Wh, its schema's integer: there the register advances by
the rounded energy, so the billed Wh is the record's rounded to 1 Wh; 2.0.1 carries decimals).

A transaction is a row of ``ocpp_transactions`` (written with its messages, in one database transaction):
one a killed process left open is ended at the next start (``recover``; found by ``transaction_recovery``)
with its session record's energy (the records close it as interrupted with its last checkpoint) and reason
PowerLoss.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ccs_sim.core.events import Topic
from ccs_sim.ocpp import transaction_messages as messages
from ccs_sim.ocpp.config import DEFAULT_EIM_ID_TOKEN_TYPE
from ccs_sim.ocpp.message_queue import Sender, TransactionMessageQueue
from ccs_sim.ocpp.open_transaction import ACCEPTED, OpenTransaction
from ccs_sim.ocpp.transaction_identification import TransactionIdentification
from ccs_sim.ocpp.transaction_messages import MeterSample, StopReason
from ccs_sim.ocpp.transaction_recovery import interrupted_transactions
from evse_hal.iso15118.session import HlcSessionDriver
from evse_model.session import SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController

log = logging.getLogger(__name__)


def _register_Wh(db: sqlite3.Connection) -> float:
    return float(db.execute("SELECT energy_Wh FROM ocpp_meter_register WHERE id=1").fetchone()[0])


class Transactions(TransactionIdentification):
    """One connector's transactions for ``version`` ("1.6" or "2.0.1"); see the module's description (the
    id token's steps: ``TransactionIdentification``)."""

    def __init__(self, controller: ChargerController, queue: TransactionMessageQueue, version: str, *,
                 meter_interval_s: float = 60.0, connector_id: int = 1, evse_id: int = 1,
                 send: Sender | None = None, charging_state: Callable[[], str] | None = None,
                 offered_current_A: Callable[[], float | None] = lambda: None,
                 offered_power_W: Callable[[], float | None] = lambda: None,
                 id_token_type: str = "ISO14443", eim_id_token: str | None = None,
                 eim_id_token_type: str = DEFAULT_EIM_ID_TOKEN_TYPE) -> None:
        if version not in ("1.6", "2.0.1"):
            raise ValueError(f"unknown OCPP version {version!r}")
        self.controller = controller
        self.queue = queue
        self.version = version
        self.meter_interval_s = meter_interval_s
        self.connector_id = connector_id
        self.evse_id = evse_id
        #: Direct calls (Authorize): ``async send(action, payload) -> response``; None: offline.
        self.send = send
        self.charging_state = charging_state
        self.offered_current_A = offered_current_A
        self.offered_power_W = offered_power_W
        self.measurands: Callable[[], messages.MeasurandSelection] = messages.MeasurandSelection  # the CSMS's choice
        self.id_token_type = id_token_type
        self.eim_id_token = eim_id_token
        self.eim_id_token_type = eim_id_token_type
        self.register_Wh = 0.0
        self.current: OpenTransaction | None = None
        self._by_session: dict[str, OpenTransaction] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_remote_start: tuple[str | None, int | None] | None = None
        self._previous_authorizer: Any = None
        self._listeners: tuple[tuple[Topic, Any], ...] = ((Topic.SESSION_START, self._on_session_start), (Topic.TICK, self._on_tick),
                           (Topic.SESSION_END, self._on_session_end))

    # --- life cycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the register, end what a dead process left open, then follow the controller's events."""
        self.register_Wh = await self.queue.database.call(_register_Wh)
        await self.recover()
        for topic, listener in self._listeners:
            self.controller.events.listeners(topic).append(listener)
        self.queue.on_transaction_id(self._on_transaction_id)
        self.install_authorizer()

    async def stop(self) -> None:
        self.remove_authorizer()
        for topic, listener in self._listeners:
            listeners = self.controller.events.listeners(topic)
            if listener in listeners:
                listeners.remove(listener)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def view(self) -> dict[str, Any]:
        tx = self.current
        return {"transaction": None if tx is None else {"local_ref": tx.local_ref, "session_id": tx.session_id,
                                                        "csms_transaction_id": self._csms_id(tx)},
                "meter_register_Wh": round(self.register_Wh, 3)}

    # --- the commands' notes (remote start / stop) --------------------------------------------------------------
    def note_remote_start(self, id_tag: str | None, remote_start_id: int | None = None) -> None:
        """The next session is the CSMS's remote start (call before ``start_session``)."""
        self._pending_remote_start = (id_tag, remote_start_id)

    def note_remote_stop(self) -> None:
        """The running transaction is stopped by the CSMS (call before ``request_stop``)."""
        if self.current is not None:
            self.current.remote_stop = True

    def note_stop_reason(self, reason: StopReason) -> None:
        """The running transaction ends for ``reason`` (a reset; call before ``request_stop``)."""
        if self.current is not None:
            self.current.stop_reason = reason

    async def wait_settled(self) -> None:
        """Until every message of the transactions' steps so far is in the queue."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- samples --------------------------------------------------------------------------------------------------
    def sample(self, session: ActiveSession | None, register_start_Wh: float,
               energy_Wh: float | None = None) -> MeterSample:
        controller = self.controller
        if energy_Wh is None:
            energy_Wh = controller.session_meter_reading(session).energy_Wh if session is not None else 0.0
        m = controller.latest
        soc = controller.bms_view().get("present_soc")
        limit_A, limit_W = self.offered_current_A(), self.offered_power_W()
        offered_A = controller.evse_max_current_A if limit_A is None else min(limit_A, controller.evse_max_current_A)
        offered_W = controller.evse_max_power_W if limit_W is None else min(limit_W, controller.evse_max_power_W)
        return MeterSample(timestamp=controller.clock.utcnow(), register_Wh=register_start_Wh + energy_Wh,
                           power_W=m.output_voltage_V * m.output_current_A if m else 0.0,
                           current_A=m.output_current_A if m else 0.0, voltage_V=m.output_voltage_V if m else 0.0,
                           soc_percent=float(soc) if isinstance(soc, (int, float)) else None,
                           offered_power_W=offered_W, offered_current_A=offered_A, measurands=self.measurands())

    # --- session start ----------------------------------------------------------------------------------------------
    def _on_session_start(self, session: ActiveSession) -> None:
        remote = self._pending_remote_start
        self._pending_remote_start = None
        id_tag = getattr(session.params, "id_token", None) or (remote[0] if remote else None)
        local_ref = uuid.uuid4().hex if self.version == "1.6" else str(uuid.uuid4())
        tx = OpenTransaction(local_ref, session.session_id, id_tag, self.register_Wh,
                             last_sample_s=self.controller.clock.now(), started=asyncio.Event(),
                             remote_start_id=remote[1] if remote else None,
                             awaiting_identification=session.source == HlcSessionDriver.source and not id_tag
                             and remote is None)
        self.current = tx
        self._by_session[session.session_id] = tx
        if tx.awaiting_identification and self.version == "1.6":
            return  # 1.6: StartTransaction carries the identified idTag (note_identified)
        first_sample = self.sample(session, tx.register_start_Wh)
        self._track(self._open(tx, session, first_sample, remote is not None))

    async def _open(self, tx: OpenTransaction, session: ActiveSession, sample: MeterSample, remote: bool) -> None:
        assert tx.started is not None
        try:
            if tx.id_tag and not remote and not tx.authorized and not await self._authorized(tx.id_tag):
                tx.refused = True
                log.warning("OCPP: id token %r refused by the CSMS; stopping session %s", tx.id_tag, tx.session_id)
                if self.controller.session is session and self.controller.session_active:
                    self.controller.request_stop()
                return
            if self.version == "1.6":
                action = "StartTransaction"
                payload = messages.start_transaction_16(self.connector_id, tx.id_tag or messages.NO_AUTHORIZATION_ID_TAG,
                                                        sample)
            else:
                action = "TransactionEvent"
                trigger = "RemoteStart" if remote else ("Authorized" if tx.id_tag else "CablePluggedIn")
                tx.charging_state = "EVConnected"
                payload = messages.transaction_event_201(
                    "Started", trigger, self._next_seq_no(tx), tx.local_ref, sample, evse_id=self.evse_id,
                    connector_id=self.connector_id, charging_state=tx.charging_state, context="Transaction.Begin",
                    id_token=None if tx.awaiting_identification else  # E02: the idToken comes with Authorized
                    messages.id_token_201(tx.id_tag, tx.id_token_type or self.id_token_type))
                if tx.remote_start_id is not None:
                    payload["transactionInfo"]["remoteStartId"] = tx.remote_start_id
            await self.queue.enqueue(action, payload, tx.local_ref, self._write_open(tx, sample))
        finally:
            tx.started.set()

    def _write_open(self, tx: OpenTransaction, sample: MeterSample) -> Callable[[sqlite3.Connection], None]:
        row = (tx.local_ref, tx.session_id, self.version, tx.id_tag, sample.timestamp.isoformat(),
               tx.register_start_Wh, sample.register_Wh, tx.seq_no)

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO ocpp_transactions (local_tx_ref, session_id, version, id_tag, "
                       "started_at, register_start_Wh, last_register_Wh, seq_no, status) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')", row)
        return write

    # --- ticks ------------------------------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        tx = self.current
        if tx is None or tx.started is None or not tx.started.is_set() or tx.refused:
            return
        session = self.controller.session
        if session is None or session.session_id != tx.session_id or not self.controller.session_active:
            return
        now_s = self.controller.clock.now()
        if self.version == "2.0.1" and self.charging_state is not None:
            state = self.charging_state()
            if state != tx.charging_state and state != "Idle":
                tx.charging_state = state
                self._update_201(tx, self.sample(session, tx.register_start_Wh), "ChargingStateChanged", None)
        if now_s - tx.last_sample_s + 1e-9 < self.meter_interval_s:
            return
        tx.last_sample_s = now_s
        sample = self.sample(session, tx.register_start_Wh)
        if self.version == "1.6":
            self.queue.enqueue_nowait("MeterValues", messages.meter_values_16(self.connector_id, sample),
                                      tx.local_ref, self._write_progress(tx, sample))
        else:
            self._update_201(tx, sample, "MeterValuePeriodic", "Sample.Periodic")

    def _update_201(self, tx: OpenTransaction, sample: MeterSample, trigger: str, context: str | None) -> None:
        payload = messages.transaction_event_201(
            "Updated", trigger, self._next_seq_no(tx), tx.local_ref, sample, evse_id=self.evse_id,
            connector_id=self.connector_id, charging_state=tx.charging_state, context=context)
        self.queue.enqueue_nowait("TransactionEvent", payload, tx.local_ref, self._write_progress(tx, sample))

    def _write_progress(self, tx: OpenTransaction, sample: MeterSample) -> Callable[[sqlite3.Connection], None]:
        values = (sample.register_Wh, tx.seq_no, tx.local_ref)

        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE ocpp_transactions SET last_register_Wh=?, seq_no=? WHERE local_tx_ref=?", values)
        return write

    @staticmethod
    def _next_seq_no(tx: OpenTransaction) -> int:
        seq_no = tx.seq_no
        tx.seq_no += 1
        return seq_no

    # --- session end --------------------------------------------------------------------------------------------
    def _on_session_end(self, summary: SessionSummary) -> None:
        tx = self._by_session.pop(summary.session_id, None)
        if tx is None:
            return
        if self.current is tx:
            self.current = None
        if tx.awaiting_identification and self.version == "1.6":
            self.note_refused(tx)  # never identified: no transaction
        reason = messages.stop_reason(summary.end_reason, summary.error, tx.remote_stop)
        if tx.deauthorized:
            reason = StopReason("DeAuthorized", "DeAuthorized", "Deauthorized")
        elif tx.stop_reason is not None:
            reason = tx.stop_reason
        self._track(self._close(tx, summary.energy_Wh, reason, self.controller.clock.utcnow()))

    async def _close(self, tx: OpenTransaction, energy_Wh: float, reason: StopReason, at: datetime,
                     offline: bool | None = None) -> None:
        if tx.started is not None:
            await tx.started.wait()
        if tx.refused:
            return
        # The register is continuous, like a meter's: it never goes back below a sample the CSMS has. 1.6's
        # meterStart / meterStop carry it in whole Wh, so what a 1.6 CSMS bills is within 1 Wh of the energy
        # (and the rounding does not add up over transactions: each meterStart is the previous meterStop).
        register_end_Wh = tx.register_start_Wh + energy_Wh
        sample = MeterSample(timestamp=at, register_Wh=register_end_Wh, measurands=self.measurands())
        if self.version == "1.6":
            action, payload = "StopTransaction", messages.stop_transaction_16(sample, reason, tx.id_tag)
        else:
            action = "TransactionEvent"
            payload = messages.transaction_event_201(
                "Ended", reason.trigger_201, self._next_seq_no(tx), tx.local_ref, sample, evse_id=self.evse_id,
                connector_id=self.connector_id, charging_state=self._ended_charging_state(),
                context="Transaction.End", stopped_reason=reason.reason_201, offline=offline)
        self.register_Wh = max(self.register_Wh, register_end_Wh)
        register_now, local_ref = self.register_Wh, tx.local_ref

        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE ocpp_meter_register SET energy_Wh=? WHERE id=1", (register_now,))
            db.execute("UPDATE ocpp_transactions SET status='ended', last_register_Wh=? WHERE local_tx_ref=?",
                       (register_end_Wh, local_ref))
        await self.queue.enqueue(action, payload, tx.local_ref, write)

    def _ended_charging_state(self) -> str:
        if self.charging_state is None:
            return "Idle"
        state = self.charging_state()
        return "EVConnected" if state != "Idle" else "Idle"

    # --- recovery ---------------------------------------------------------------------------------------------
    async def recover(self) -> None:
        """End the transactions a dead process left open (``transaction_recovery``): reason PowerLoss."""
        async for interrupted in interrupted_transactions(self.queue.database, self.version):
            tx = OpenTransaction(interrupted.local_ref, interrupted.session_id, interrupted.id_tag,
                                 interrupted.register_start_Wh, seq_no=interrupted.seq_no)
            log.warning("OCPP: ending transaction %s of session %s left open by a stopped process (%.3f Wh)",
                        tx.local_ref, tx.session_id, interrupted.energy_Wh)
            await self._close(tx, interrupted.energy_Wh, messages.stop_reason("interrupted", None),
                              interrupted.ended_at or self.controller.clock.utcnow(),
                              offline=True if self.version == "2.0.1" else None)

    # --- the CSMS's answers ---------------------------------------------------------------------------------------
    def _on_transaction_id(self, local_ref: str, csms_id: str, status: str | None) -> None:
        """1.6 StartTransaction.conf: an idTag the CSMS does not accept stops the session
        (StopTransactionOnInvalidId, default true)."""
        tx = self.current
        if tx is None or tx.local_ref != local_ref or status in (None, ACCEPTED):
            return
        tx.deauthorized = True
        log.warning("OCPP: the CSMS answered %s for idTag %r: stopping session %s", status, tx.id_tag, tx.session_id)
        self.controller.request_stop()

    def _csms_id(self, tx: OpenTransaction) -> str | None:
        return self.queue.csms_transaction_id(tx.local_ref) if self.version == "1.6" else tx.local_ref

    def _track(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("OCPP transaction step failed: %r", task.exception())
